"""Frame-rate pacing shared by the sources that can read faster than real time."""

from __future__ import annotations

import time


class Pacer:
    """Sleeps so that successive :meth:`wait` calls return at most ``fps`` times a second.

    ``fps == 0`` never sleeps. A consumer that falls behind is not made to catch up with a
    burst: the schedule restarts from the late call (a camera does not queue missed frames).
    """

    def __init__(self, fps: float) -> None:
        if fps < 0:
            msg = f"fps must be >= 0, got {fps}"  # a programming error: every config bounds fps >= 0
            raise ValueError(msg)
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._due: float | None = None

    def reset(self) -> None:
        """Forget the schedule: the next :meth:`wait` returns at once."""
        self._due = None

    def wait(self) -> None:
        """Block until the next frame is due."""
        if self._period == 0.0:
            return
        now = time.monotonic()
        if self._due is not None and now < self._due:
            time.sleep(self._due - now)
            now = self._due
        self._due = now + self._period
