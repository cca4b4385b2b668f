"""One named thread per camera: open the source, read frames, leave them in the camera's slot.

A source that fails is reopened with back-off (1 s doubling to 30 s) and the failure is logged
once per outage, with the source's scrubbed description. A finite source (a file, a folder, a
synthetic run with ``count``) that ends closes its slot; the camera is then finished.

``on_change`` (optional) is called from the camera's thread whenever :attr:`CameraWorker.state`
changes (an outage starts, the source is back, it ended); it must only hand off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from camera import FrameSource, open_source
from daemon.config import CameraConfig, CameraMode
from daemon.slots import FrameHub
from ovedge.errors import CameraError

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0


class CameraWorker:
    def __init__(
        self,
        cfg: CameraConfig,
        hub: FrameHub[str],
        stop: threading.Event,
        *,
        opener: Callable[..., FrameSource] = open_source,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._hub = hub
        self._stop = stop
        self._opener = opener
        self._on_change = on_change
        self.frames = 0
        self.failures = 0  # open or read failures (each followed by a reopen with back-off)
        self.finished = threading.Event()
        self.last_error: str | None = None
        hub.add(cfg.id, latest_wins=cfg.mode is CameraMode.FREE_RUN)
        self._thread = threading.Thread(target=self._run, name=f"camera-{cfg.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def state(self) -> dict[str, str | None]:
        """``{"state": "running" | "failing" | "ended", "error": <last error or None>}``."""
        if self.finished.is_set():
            return {"state": "ended", "error": self.last_error}
        return {"state": "failing" if self.last_error is not None else "running", "error": self.last_error}

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _run(self) -> None:
        backoff = BACKOFF_START
        source: FrameSource | None = None
        try:
            while not self._stop.is_set():
                if source is None:
                    try:
                        source = self._opener(self.cfg.source)
                    except CameraError as exc:
                        self._failed(exc)
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, BACKOFF_MAX)
                        continue
                try:
                    with source:
                        if self.last_error is not None:
                            log.info("camera %s: source is back", self.cfg.id)
                            self.last_error = None
                            self._changed()
                        backoff = BACKOFF_START
                        if self._pump(source):
                            return  # the source ended
                except CameraError as exc:
                    self._failed(exc)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
                source = None
        except Exception:
            log.exception("camera %s: capture thread failed (bug)", self.cfg.id)
            self.last_error = "capture thread failed"
        finally:
            self._hub.close_source(self.cfg.id)
            self.finished.set()
            self._changed()

    def _pump(self, source: FrameSource) -> bool:
        """Read until stop (False) or the end of the source (True)."""
        while not self._stop.is_set():
            frame = source.read()
            if frame is None:
                log.info("camera %s: source ended after %d frames", self.cfg.id, self.frames)
                return True
            self.frames += 1
            if not self._hub.put(self.cfg.id, frame, self._stop):
                return False
        return False

    def _failed(self, exc: CameraError) -> None:
        self.failures += 1
        if self.last_error != str(exc):
            log.error("camera %s: %s (retrying)", self.cfg.id, exc)
            self.last_error = str(exc)
            self._changed()
