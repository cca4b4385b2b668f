"""``inspect`` requests: the next judged frame of a camera becomes the answer.

A **triggered** camera is asked for one inspection (:meth:`InspectRequests.triggered` calls
:meth:`daemon.app.Daemon.trigger`): the answer is the result carrying that trigger id (the
inspected frame, or ERROR with the reason the trigger was not served).

A **free-running** camera has no trigger: ``inspect`` is an ad-hoc inspection of the camera's
**next frame**: the request waits here; the decide thread claims it for the first frame of that
camera it judges (:meth:`InspectRequests.claim`, a dictionary look-up that costs nothing while no
request waits), the ``part_id`` becomes that result's ``frame.ref`` and ``part_id``.

Either way the answer is sent once the result is numbered and stored (:meth:`InspectRequests.stored`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.result import Publishable, Result

__all__ = ["InspectRequests"]

Reply = Callable[[dict[str, Any]], None]
CLAIMED_GRACE = 30.0  # seconds a claimed frame may take from judged to numbered before the request gives up


@dataclass
class _Waiting:
    camera: str
    part_id: str | None
    reply: Reply
    deadline: float
    frame: int | None = None  # the frame index claimed for it
    claimed_at: float = field(default=0.0)


class InspectRequests:
    """Requests waiting for a camera's next judged frame (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, list[_Waiting]] = {}  # camera -> not yet claimed, oldest first
        self._claimed: dict[tuple[str, int], _Waiting] = {}
        self._triggered: dict[str, _Waiting] = {}  # trigger id -> the request it answers
        self.waiting = False  # read without the lock by the decide thread: the fast path

    def request(self, camera: str, part_id: str | None, reply: Reply, timeout: float) -> None:
        with self._lock:
            self._open.setdefault(camera, []).append(
                _Waiting(camera, part_id, reply, time.monotonic() + timeout))
            self.waiting = True

    def triggered(self, camera: str, part_id: str | None, reply: Reply, timeout: float,
                  trigger: Callable[[str, str | None], str]) -> None:
        """A triggered camera: ``trigger(camera, part_id)`` (non-blocking) and wait for that trigger's result.

        The lock is held across the call so that the result cannot be stored before the request
        is registered; ``trigger`` only queues (it never calls back into this object).
        """
        with self._lock:
            trigger_id = trigger(camera, part_id)
            self._triggered[trigger_id] = _Waiting(camera, part_id, reply, time.monotonic() + timeout)

    def claim(self, draft: Result) -> Result:
        """Decide thread: the result, tagged with the part id when a request waits for its camera."""
        if not self.waiting or draft.trigger_id is not None:
            return draft
        with self._lock:
            queue = self._open.get(draft.camera)
            if not queue:
                return draft
            w = queue.pop(0)
            w.frame, w.claimed_at = draft.frame_index, time.monotonic()
            self._claimed[(draft.camera, draft.frame_index)] = w
        if w.part_id is None:
            return draft
        return draft._replace(frame_ref=w.part_id, part_id=w.part_id)

    def stored(self, records: Sequence[Publishable]) -> None:
        """After a batch is numbered (stored or not): answer the requests whose frame it holds.

        Even "nothing waits" is looked at under the lock (once per batch, in the spool writer):
        :meth:`triggered` registers its request after the trigger call returns, so the result of
        a fast pipeline can be stored before; the lock makes this wait for the registration.
        """
        done: list[tuple[_Waiting, Result]] = []
        with self._lock:
            if not self._claimed and not self._triggered:
                return
            for r in records:
                if not isinstance(r, Result):
                    continue  # the daemon's records are Results; anything else carries no frame
                if r.trigger_id is not None:
                    w = self._triggered.pop(r.trigger_id, None)
                else:
                    w = self._claimed.pop((r.camera, r.frame_index), None)
                if w is not None:
                    done.append((w, r))
            self._update()
        for w, r in done:
            w.reply({"ok": True, "result": r.record().model_dump(mode="json", by_alias=True)})

    def expire(self, now: float | None = None) -> None:
        """Answer the requests whose camera gave no frame in time (the command thread calls this)."""
        now = time.monotonic() if now is None else now
        late: list[_Waiting] = []
        with self._lock:
            for camera, queue in self._open.items():
                late.extend(w for w in queue if w.deadline <= now)
                self._open[camera] = [w for w in queue if w.deadline > now]
            for key, w in list(self._claimed.items()):
                if w.deadline + CLAIMED_GRACE <= now:  # judged but never numbered (a bug): answer anyway
                    late.append(self._claimed.pop(key))
            for tid, w in list(self._triggered.items()):
                if w.deadline + CLAIMED_GRACE <= now:  # every trigger ends in a result: this is a bug
                    late.append(self._triggered.pop(tid))
            self._update()
        for w in late:
            what = "no frame" if w.frame is None else f"frame {w.frame} was judged but never stored"
            w.reply({"ok": False, "error": f"camera {w.camera}: {what} within the inspect timeout "
                                           "([commands] inspect_timeout)"})

    def _update(self) -> None:
        self.waiting = any(self._open.values())
