"""Ad-hoc work off the event loop, with admission control so HTTP clients cannot starve the cameras.

At most ``concurrency`` ad-hoc inferences run at once (each one infer request on the cameras'
compiled model, beside the engine's own requests); up to ``queue`` more may wait for a slot.
Anything beyond is refused at once with :class:`SaturatedError` (HTTP 503 + ``Retry-After``), never
queued without bound. The slot is held by the worker thread until its inference has really
finished, even when the client's request timed out and was abandoned, so the bound holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread

from ovedge.errors import OvedgeError

__all__ = ["AdhocRunner", "SaturatedError"]

T = TypeVar("T")


class SaturatedError(OvedgeError):
    """Every ad-hoc slot and queue place is taken."""

    def __init__(self, running: int, waiting: int, retry_after: int) -> None:
        self.running = running
        self.waiting = waiting
        self.retry_after = retry_after
        super().__init__(
            f"busy: {running} ad-hoc inference(s) running and {waiting} waiting; retry in {retry_after} s"
        )


class _AbandonedError(Exception):
    """The caller went away before the work started; nobody reads this."""


@dataclass
class _Ticket:
    started: bool = False
    abandoned: bool = False


class AdhocRunner:
    def __init__(self, *, concurrency: int, queue: int, retry_after: int) -> None:
        self._concurrency = concurrency
        self._admit_max = concurrency + queue
        self._retry_after = retry_after
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        # Threads: never fewer than admitted requests, so an admitted request never waits for one.
        self._limiter = anyio.CapacityLimiter(self._admit_max)

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a worker thread inside a slot; :class:`SaturatedError` when none is left."""
        with self._lock:
            if self._admitted >= self._admit_max:
                running = min(self._admitted, self._concurrency)
                raise SaturatedError(running, self._admitted - running, self._retry_after)
            self._admitted += 1
        ticket = _Ticket()
        try:
            return await anyio.to_thread.run_sync(
                self._work, work, ticket, limiter=self._limiter, abandon_on_cancel=True
            )
        finally:
            with self._lock:
                if not ticket.started:  # cancelled before the thread began: it never will
                    ticket.abandoned = True
                    self._admitted -= 1

    def _work(self, work: Callable[[], T], ticket: _Ticket) -> T:
        with self._lock:
            if ticket.abandoned:
                raise _AbandonedError
            ticket.started = True
        try:
            with self._slots:
                return work()
        finally:
            with self._lock:
                self._admitted -= 1
