"""Triggered inspection: a trigger (with an optional part id) asks a camera for exactly one frame.

One internal API, :meth:`daemon.app.Daemon.trigger`, takes every trigger (the trigger folder
below today; the MQTT ``cmd/inspect`` command and the HTTP API call the same method). It is
thread-safe and never blocks: the trigger goes into its camera's :class:`TriggerQueue`.

Policy, written down: a trigger is never dropped silently. Each one ends as exactly one result
carrying its ``part_id`` and ``trigger_id``:

* served: the camera's frame (software trigger where the source has one, else its next frame),
  inspected once;
* the queue is full (``trigger_queue`` waiting): answered at once with an ``ERROR`` result;
* no frame within ``trigger_timeout`` of the trigger (camera down, reconnecting, too slow), the
  source ended, or the daemon stops first: an ``ERROR`` result with the reason.

:class:`TriggerFolder` is the first caller: a file per trigger, its text the part id.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from camera.frame import Frame
from camera.validate import failed_frame
from ovedge.errors import OvedgeError

__all__ = [
    "TRIGGER",
    "CameraNotTriggeredError",
    "Trigger",
    "TriggerFolder",
    "TriggerQueue",
    "UnknownCameraError",
    "trigger_of",
    "unanswered_frame",
]

log = logging.getLogger(__name__)

TRIGGER: Final = "trigger"
"""The key of :attr:`camera.frame.Frame.extra` that holds the :class:`Trigger` a frame answers."""

PART_ID_MAX: Final = 256
"""Characters of a part id kept (a longer file content is cut, with a warning)."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """One request for one inspection."""

    id: str
    camera: str
    part_id: str | None
    timestamp: float  # UTC epoch seconds the trigger arrived
    monotonic: float  # time.monotonic() it arrived: trigger-to-result latency, timeout
    timeout: float  # seconds the camera has to deliver

    @classmethod
    def new(cls, camera: str, part_id: str | None, timeout: float) -> Trigger:
        return cls(uuid.uuid4().hex, camera, part_id, time.time(), time.monotonic(), timeout)

    @property
    def deadline(self) -> float:
        return self.monotonic + self.timeout


def trigger_of(frame: Frame) -> Trigger | None:
    """The trigger a frame answers, if any."""
    found = frame.extra.get(TRIGGER)
    return found if isinstance(found, Trigger) else None


def unanswered_frame(trigger: Trigger, reason: str) -> Frame:
    """A frame carrying only ``reason``: the ERROR answer to a trigger the camera did not serve.

    Its index is -1 (no frame was captured) and its clock is the trigger's, so the result's
    latency figures run from the trigger.
    """
    frame = failed_frame(reason, index=-1, ref=trigger.part_id)
    return Frame(image=frame.image, index=-1, timestamp=trigger.timestamp, monotonic=trigger.monotonic,
                 source_ref=trigger.part_id, extra={TRIGGER: trigger}, error=reason)


class UnknownCameraError(OvedgeError):
    """A trigger names a camera the config does not have."""

    def __init__(self, camera: str, known: tuple[str, ...]) -> None:
        self.camera, self.known = camera, known
        super().__init__(f"no camera {camera!r} to trigger; cameras: {', '.join(known)}")


class CameraNotTriggeredError(OvedgeError):
    """A trigger names a camera that is not in ``mode = "triggered"``."""

    def __init__(self, camera: str, mode: str) -> None:
        self.camera, self.mode = camera, mode
        super().__init__(f"camera {camera!r} runs in mode {mode!r}; set mode = \"triggered\" to trigger it")


class TriggerQueue:
    """The triggers waiting for one camera: at most ``size``; :meth:`offer` refuses the next one."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: collections.deque[Trigger] = collections.deque()
        self._cond = threading.Condition()

    def offer(self, trigger: Trigger) -> bool:
        """Queue ``trigger``; False (and nothing queued) when ``size`` are already waiting."""
        with self._cond:
            if len(self._items) >= self._size:
                return False
            self._items.append(trigger)
            self._cond.notify()
            return True

    def take(self, timeout: float) -> Trigger | None:
        """The oldest waiting trigger, or None after ``timeout``."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def expired(self, now: float) -> list[Trigger]:
        """Remove and return the waiting triggers whose deadline has passed."""
        with self._cond:
            gone = [t for t in self._items if t.deadline <= now]
            for t in gone:
                self._items.remove(t)
            return gone

    def drain(self) -> list[Trigger]:
        """Remove and return every waiting trigger."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class TriggerFolder:
    """Thread ``trigger-folder``: each new file in a camera's ``trigger_folder`` is one trigger.

    The file's text (stripped, UTF-8) is the part id; empty = none. Files are taken oldest first
    (modification time, then name), passed to ``trigger(camera, part_id)`` and deleted. Dot-names
    are never taken: write the file under a dot-name and rename it into place.
    """

    POLL: Final = 0.05

    def __init__(self, folders: Mapping[str, Path], trigger: Callable[[str, str | None], str]) -> None:
        self._folders = dict(folders)
        self._trigger = trigger
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trigger-folder", daemon=True)
        self._failed: set[Path] = set()  # unreadable names, reported once

    def __enter__(self) -> TriggerFolder:
        for folder in self._folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        if self._folders:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.POLL):
            for camera, folder in self._folders.items():
                try:
                    self._scan(camera, folder)
                except Exception:
                    log.exception("trigger folder %s: scan failed (bug)", folder)

    def _scan(self, camera: str, folder: Path) -> None:
        try:
            entries = [e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
        except OSError as exc:
            problem = exc.strerror
        else:
            problem = None
        if problem is not None:
            if folder not in self._failed:
                self._failed.add(folder)
                log.error("trigger folder %s cannot be listed: %s; fix its permissions", folder, problem)
            return
        for entry in sorted(entries, key=lambda e: (e.stat().st_mtime_ns, e.name)):
            path = Path(entry.path)
            text = self._take(path)
            if text is None:
                continue
            if len(text) > PART_ID_MAX:
                log.warning("trigger file %s: part id longer than %d characters, cut", path.name, PART_ID_MAX)
                text = text[:PART_ID_MAX]
            self._trigger(camera, text or None)

    def _take(self, path: Path) -> str | None:
        """The file's text, the file deleted; None when it cannot be read or deleted (said once)."""
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            path.unlink()
        except OSError as exc:
            problem = exc.strerror
        else:
            return text
        if path not in self._failed:
            self._failed.add(path)
            log.error("trigger file %s cannot be taken: %s; fix its permissions", path, problem)
        return None
