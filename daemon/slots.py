"""Where camera threads leave frames for the inference dispatcher: one slot per camera.

Drop policy, written down:

* ``free-run``: the slot holds the latest frame only. A frame not yet taken when the next one
  arrives is replaced and counted in ``dropped`` (a slow model skips frames, it never lags).
* ``every-frame``: the camera thread waits until its previous frame was taken: nothing is skipped,
  the camera is slowed to the model's pace (files, folders, triggered parts).

The dispatcher takes frames round-robin across cameras, so one fast camera cannot starve another.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from camera.frame import Frame

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    key: T
    latest: bool
    frame: Frame | None = None
    closed: bool = False
    dropped: int = 0
    delivered: int = 0
    space: threading.Condition = field(default_factory=threading.Condition)


class FrameHub(Generic[T]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._slots: list[_Slot[T]] = []
        self._by_key: dict[T, _Slot[T]] = {}
        self._next = 0
        self._closed = False

    def add(self, key: T, *, latest_wins: bool) -> None:
        slot: _Slot[T] = _Slot(key, latest_wins)
        slot.space = threading.Condition(self._lock)
        with self._cond:
            self._slots.append(slot)
            self._by_key[key] = slot

    def put(self, key: T, frame: Frame, stop: threading.Event) -> bool:
        """Leave ``frame`` for the dispatcher; False when the hub or ``stop`` ended the wait."""
        slot = self._by_key[key]
        with self._cond:
            if slot.latest:
                if slot.frame is not None:
                    slot.dropped += 1
            else:
                while slot.frame is not None and not self._closed and not stop.is_set():
                    slot.space.wait(0.1)
                if self._closed or stop.is_set():
                    return False
            slot.frame = frame
            self._cond.notify_all()
            return True

    def close_source(self, key: T) -> None:
        """The camera has no more frames (end of file); the hub notes it."""
        with self._cond:
            self._by_key[key].closed = True
            self._cond.notify_all()

    def get(self, timeout: float) -> tuple[T, Frame] | None:
        """The next frame round-robin across cameras, or None after ``timeout``."""
        with self._cond:
            found = self._pick()
            if found is None:
                self._cond.wait(timeout)
                found = self._pick()
            return found

    def _pick(self) -> tuple[T, Frame] | None:
        n = len(self._slots)
        for i in range(n):
            slot = self._slots[(self._next + i) % n]
            if slot.frame is not None:
                frame, slot.frame = slot.frame, None
                slot.delivered += 1
                self._next = (self._next + i + 1) % n
                slot.space.notify_all()
                return slot.key, frame
        return None

    def is_empty(self) -> bool:
        with self._cond:
            return all(s.frame is None for s in self._slots)

    def dropped(self) -> dict[T, int]:
        with self._cond:
            return {s.key: s.dropped for s in self._slots}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
