"""The seam between deciding and publishing: drafts -> spool (numbered, stored) -> publisher.

The decide thread calls :meth:`Delivery.submit` with a batch of judged frames and goes on at once:
the ``spool-writer`` thread takes everything queued, numbers and stores it in one transaction, and
wakes the ``mqtt-send`` thread, which publishes from the spool. While results queue (one arrives
within :data:`BUSY_GAP` of the last transaction) it first waits up to ``[spool] batch_ms`` for
more, at most ``batch_max``: a transaction of one result costs ~180 us of CPU with
``synchronous = full`` (the fsync), of 16 results ~27 us each. A lone result is stored at once.
The fsync of a transaction never stalls inference, and the slower the disk, the larger the
batches (group commit). The queue is bounded
(:data:`MAX_QUEUED` batches): when the disk cannot keep up, ``submit`` waits (back-pressure, the
cameras' slots then apply their drop policy); nothing is dropped here.

When the spool cannot store a batch (quota, disk full, read-only, unopenable) the daemon does not
pretend: the status turns ``degraded`` with the reason, the ``spool`` alarm is raised, each of
those inspections becomes an ``ERROR`` result naming the reason (published directly when the
broker is there, never stored), and the log says so once per change of state, not per frame.
Each later batch tries the spool again (the spool itself limits real write attempts to one per
second), so the daemon recovers on its own when storage comes back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from daemon.publisher import Alarms, Publisher
from daemon.result import Publishable, Unnumbered
from daemon.spool import Spool, SpoolStorageError

log = logging.getLogger(__name__)

ALARM = "spool"
MAX_QUEUED = 1024  # batches waiting for the disk before submit() waits
BUSY_GAP = 0.005  # s: a result this soon after the last transaction means results are queueing


class Delivery:
    """Context manager: starts the ``spool-writer`` thread; on exit stores everything queued."""

    def __init__(self, spool: Spool, publisher: Publisher, alarms: Alarms, *, batch_max: int = 64,
                 batch_ms: float = 8.0, on_result: Callable[[Any, Any], None] | None = None,
                 listener: Callable[[Sequence[Publishable]], None] | None = None) -> None:
        self._spool = spool
        self._publisher = publisher
        self._alarms = alarms
        self._batch_max = batch_max
        self._batch_s = batch_ms / 1000.0
        self._on_result = on_result  # (numbered result, its note) after storing, on the writer thread
        self._queue: queue.Queue[tuple[Sequence[Unnumbered], Sequence[Any]]] = queue.Queue(maxsize=MAX_QUEUED)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._writer = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._listener = listener  # told about every numbered batch (inspect requests wait for theirs)
        self.problem: str | None = None  # why results are not being stored; None = they are
        self.unstored = 0  # inspections that became ERROR results because they could not be stored
        self.stored = 0
        self.handed = 0  # results passed on to the publisher (stored, or ERRORs sent directly): watchdog

    def __enter__(self) -> Self:
        if self._spool.problem is not None:  # say at once if the spool could not be opened
            self._degrade(self._spool.problem)
        self._writer.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._writer.join()

    def submit(self, drafts: Sequence[Unnumbered], notes: Sequence[Any] = ()) -> None:
        """Queue a batch for storing (returns at once unless :data:`MAX_QUEUED` batches wait).

        ``notes`` (one per draft, optional) go back to ``on_result`` with the numbered result.
        """
        if drafts:
            self._queue.put((drafts, notes))

    # -- spool-writer ---------------------------------------------------------------------------

    def _run(self) -> None:
        last_stored = 0.0
        while True:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return  # nothing queued any more, and the decide thread has stopped
                continue
            batch, notes = list(first[0]), list(first[1]) or [None] * len(first[0])
            now = time.monotonic()
            # Results coming within BUSY_GAP of the last transaction are queueing: gather for up to
            # batch_ms (one transaction, one fsync and one wake of the sender for many). A lone
            # result (a line at tens of fps) is stored at once: no latency where it would show.
            wait = self._batch_s if now - last_stored < BUSY_GAP else 0.0
            deadline = now + wait
            while len(batch) < self._batch_max:
                try:
                    more, more_notes = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                batch.extend(more)
                notes.extend(more_notes or [None] * len(more))
            try:
                records = self.store(batch)
            except Exception:
                log.exception("bug while storing %d results; they become ERROR results", len(batch))
                records = self._unstored(batch, "internal error while storing (see the log)")
            last_stored = time.monotonic()
            if self._on_result is not None:
                try:
                    for record, note in zip(records, notes, strict=True):
                        self._on_result(record, note)
                except Exception:  # bookkeeping only: never stop storing because of it
                    log.exception("bug while noting %d stored results", len(records))

    def store(self, drafts: Sequence[Unnumbered]) -> list[Publishable]:
        """Store a batch now (the writer thread; tests): the records subscribers will receive."""
        try:
            records = self._spool.commit(drafts)
        except SpoolStorageError as exc:
            self._degrade(exc.reason)
            return self._unstored(drafts, f"result not stored: {exc.reason}")
        self.stored += len(records)
        if self.problem is not None:
            self._recover()
        self._publisher.wake(len(records))
        self.handed += len(records)  # the watchdog's sign that results reach the publisher
        if self._listener is not None:
            self._listener(records)
        return records

    def _unstored(self, drafts: Sequence[Unnumbered], reason: str) -> list[Publishable]:
        errors = [d.as_error(reason) for d in drafts]
        seqs = self._spool.number_unstored(len(errors))
        records = [d.numbered(s) for d, s in zip(errors, seqs, strict=True)]
        self.unstored += len(records)
        for record in records:
            self._publisher.publish_result(record)
        self.handed += len(records)
        if self._listener is not None:
            self._listener(records)
        return records

    def _degrade(self, reason: str) -> None:
        with self._lock:
            if self.problem == reason:
                return
            self.problem = reason
        log.error("results cannot be stored: %s; status degraded, every new inspection is an ERROR result "
                  "until storage is back", reason)
        self._alarms.raise_(ALARM, reason)
        self._publisher.set_health("degraded", reason)

    def _recover(self) -> None:
        with self._lock:
            if self.problem is None:
                return
            self.problem = None
        log.warning("results are stored again; status online (%d inspections became ERROR results meanwhile)",
                    self.unstored)
        self._alarms.clear(ALARM)
        self._publisher.set_health("online", None)
