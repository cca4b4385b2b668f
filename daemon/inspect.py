"""``inspect`` requests: the next judged frame of a camera becomes the answer.

This branch has no triggered camera mode yet (helper ``cameras`` adds one, with a trigger API on
the sources). Until it lands, ``inspect`` is an ad-hoc inspection of the camera's **next frame**:
the request waits here; the decide thread claims it for the first frame of that camera it
judges (:meth:`InspectRequests.claim`, a dictionary look-up that costs nothing while no request
waits), the ``part_id`` becomes that result's ``frame.ref``, and once the result is numbered and
stored the answer carries it (:meth:`InspectRequests.stored`). With a trigger API, :meth:`request`
is where the camera's ``trigger()`` will be called; nothing else changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from daemon.result import Numbered, ResultDraft, ResultRecord

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
        self.waiting = False  # read without the lock by the decide thread: the fast path

    def request(self, camera: str, part_id: str | None, reply: Reply, timeout: float) -> None:
        with self._lock:
            self._open.setdefault(camera, []).append(
                _Waiting(camera, part_id, reply, time.monotonic() + timeout))
            self.waiting = True

    def claim(self, draft: ResultDraft) -> ResultDraft:
        """Decide thread: the draft, tagged with the part id when a request waits for its camera."""
        if not self.waiting:
            return draft
        with self._lock:
            queue = self._open.get(draft.camera)
            if not queue:
                return draft
            w = queue.pop(0)
            w.frame, w.claimed_at = draft.frame.index, time.monotonic()
            self._claimed[(draft.camera, draft.frame.index)] = w
        if w.part_id is None:
            return draft
        return replace(draft, frame=draft.frame.model_copy(update={"ref": w.part_id}))

    def stored(self, records: Sequence[Numbered]) -> None:
        """After a batch is numbered (stored or not): answer the requests whose frame it holds."""
        if not self._claimed:
            return
        done: list[tuple[_Waiting, ResultRecord]] = []
        with self._lock:
            for r in records:
                if not isinstance(r, ResultRecord):
                    continue  # the daemon's records are ResultRecords; anything else carries no frame
                w = self._claimed.pop((r.camera, r.frame.index), None)
                if w is not None:
                    done.append((w, r))
            self._update()
        for w, r in done:
            w.reply({"ok": True, "result": r.model_dump(mode="json", by_alias=True)})

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
            self._update()
        for w in late:
            what = "no frame" if w.frame is None else f"frame {w.frame} was judged but never stored"
            w.reply({"ok": False, "error": f"camera {w.camera}: {what} within the inspect timeout "
                                           "([commands] inspect_timeout)"})

    def _update(self) -> None:
        self.waiting = any(self._open.values())
