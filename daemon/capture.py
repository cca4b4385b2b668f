"""One named thread per camera: open the source, read frames, leave them in the camera's slot.

A source that fails is entered again (the same object: it knows what it already delivered, so a
reopen never repeats a frame) with back-off (1 s doubling to 30 s); the failure is logged once
per outage, with the source's scrubbed description. A finite source (a file, a folder, a
synthetic run with ``count``) that ends closes its slot; the camera is then finished.

What the thread tells (attributes read by the daemon's status; written only by this thread):
``health`` (:class:`Health`), ``frames``, ``rejected`` (frames with an error: unreadable file,
outside the limits), ``converted`` (grey/16-bit/BGRA frames made BGR, each kind logged once),
``failures``, ``reconnects``, ``last_error``, ``last_failure`` and ``last_frame`` (monotonic), and
the rate: ``fps`` measured over ``RATE_WINDOW`` seconds and ``below_rate`` when it is under
``RATE_TOLERANCE`` of the rate the source is configured for (logged once per episode).
:meth:`CameraWorker.snapshot` has them all; :attr:`CameraWorker.state` is the short form
(running / failing / ended) the status and the HTTP API have carried since before.

``on_change`` (optional) is called from the camera's thread whenever ``health`` or ``state``
changes (online, an outage starts or changes its reason, the source is back, it ended); it must
only hand off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from camera import FrameSource, Interruptible, open_source
from camera.config import SourceConfig
from camera.errors import CameraStalledError
from camera.validate import CONVERTED
from daemon.config import CameraConfig, CameraMode
from daemon.slots import FrameHub
from ovedge.errors import CameraError

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
RATE_WINDOW: Final = 5.0
"""Seconds of reading over which the delivered rate is measured."""
RATE_TOLERANCE: Final = 0.9
"""A camera delivering less than this share of its configured rate is reported as below rate."""


class Health(StrEnum):
    """What the capture thread knows of its camera (``CameraWorker.health``)."""

    STARTING = "starting"
    ONLINE = "online"
    RECONNECTING = "reconnecting"  # open or read failed; entered again after a back-off
    STALLED = "stalled"  # connected but no frame for the source's stall timeout; reconnecting
    ENDED = "ended"  # a finite source delivered its last frame
    STOPPED = "stopped"


def configured_rate(source: SourceConfig) -> float | None:
    """The frames per second a source is configured to deliver, when it says (None: as fast as read)."""
    fps = getattr(source, "fps", None)
    return float(fps) if isinstance(fps, int | float) and fps > 0 else None


class CameraWorker:
    def __init__(
        self,
        cfg: CameraConfig,
        hub: FrameHub[str],
        stop: threading.Event,
        *,
        opener: Callable[..., FrameSource] = open_source,
        rate_window: float = RATE_WINDOW,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._hub = hub
        self._stop = stop
        self._opener = opener
        self._source: FrameSource | None = None
        self.health = Health.STARTING
        self._on_change = on_change
        self.frames = 0
        self.rejected = 0  # frames carrying an error (they become ERROR results)
        self.converted = 0  # frames converted to BGR (grey, BGRA, 16-bit)
        self._conversions_logged: set[str] = set()
        self.failures = 0  # open or read failures (each followed by a reopen with back-off)
        self.reconnects = 0  # successful reopens after a failure
        self.finished = threading.Event()
        self.last_error: str | None = None
        self.last_failure: float | None = None  # time.monotonic() of the last open or read failure
        self.last_frame: float | None = None  # time.monotonic() of the last frame read
        self.expected_fps = configured_rate(cfg.source)
        self.fps: float | None = None  # measured over the last complete window
        self.below_rate = False
        self.below_rate_episodes = 0
        self._rate_window = rate_window
        hub.add(cfg.id, latest_wins=cfg.mode is CameraMode.FREE_RUN)
        self._thread = threading.Thread(target=self._run, name=f"camera-{cfg.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def interrupt(self) -> None:
        """Wake a source blocked waiting for a frame (watched folder, triggered camera); any thread may call."""
        source = self._source
        if isinstance(source, Interruptible):
            source.interrupt()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> dict[str, object]:
        """The camera's health as plain values (for the daemon's status); any thread may call it."""
        last = self.last_frame
        return {
            "state": self.health.value,
            "frames": self.frames,
            "rejected": self.rejected,
            "converted": self.converted,
            "failures": self.failures,
            "reconnects": self.reconnects,
            "last_error": self.last_error,  # source descriptions are scrubbed of credentials
            "last_frame_age_s": None if last is None else round(time.monotonic() - last, 3),
            "fps": None if self.fps is None else round(self.fps, 2),
            "configured_fps": self.expected_fps,
            "below_rate": self.below_rate,
        }

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
        try:
            # Built once: entering it again after a failure reopens it where it was.
            self._source = source = self._opener(self.cfg.source)
            while not self._stop.is_set():
                try:
                    with source:
                        came_back = self.last_error is not None
                        if came_back:
                            log.info("camera %s: source is back", self.cfg.id)
                            self.last_error = None
                            self.reconnects += 1
                        self._set_health(Health.ONLINE, changed=came_back)
                        backoff = BACKOFF_START
                        if self._pump(source):
                            self.health = Health.ENDED  # told below, with the end
                            return  # the source ended
                except CameraError as exc:
                    self._failed(exc)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        except CameraError as exc:  # the source cannot even be built (a missing extra)
            self._failed(exc)
        except Exception:
            log.exception("camera %s: capture thread failed (bug)", self.cfg.id)
            self.last_error = "capture thread failed"
        finally:
            if self.health is not Health.ENDED:
                self.health = Health.STOPPED
            self._hub.close_source(self.cfg.id)
            self.finished.set()
            self._changed()

    def _pump(self, source: FrameSource) -> bool:
        """Read until stop (False) or the end of the source (True)."""
        window_start = time.monotonic()
        window_frames = 0
        while not self._stop.is_set():
            frame = source.read()
            if frame is None:
                if self._stop.is_set():
                    return False  # interrupted for the stop, not ended
                log.info("camera %s: source ended after %d frames", self.cfg.id, self.frames)
                return True
            self.frames += 1
            now = self.last_frame = time.monotonic()
            if frame.error is not None:
                self.rejected += 1
            note = frame.extra.get(CONVERTED)
            if note is not None:
                self.converted += 1
                if note not in self._conversions_logged:
                    self._conversions_logged.add(str(note))
                    log.warning("camera %s: frames arrive needing conversion (%s); converted, see camera.validate",
                                self.cfg.id, note)
            if not self._hub.put(self.cfg.id, frame, self._stop):
                return False
            window_frames += 1
            if now - window_start >= self._rate_window:
                self._rate(window_frames / (now - window_start))
                window_start, window_frames = time.monotonic(), 0
        return False

    def _rate(self, fps: float) -> None:
        self.fps = fps
        expected = self.expected_fps
        if expected is None:
            return
        below = fps < RATE_TOLERANCE * expected
        if below and not self.below_rate:
            self.below_rate_episodes += 1
            log.warning(
                "camera %s: %.1f fps delivered, configured %g fps; the source, the CPU or (mode every-frame) "
                "the model cannot keep up", self.cfg.id, fps, expected,
            )
        elif not below and self.below_rate:
            log.info("camera %s: back to its configured rate (%.1f fps)", self.cfg.id, fps)
        self.below_rate = below

    def _set_health(self, health: Health, *, changed: bool = False) -> None:
        """Set ``health``; tell ``on_change`` when it (or, with ``changed``, something else) changed."""
        changed = changed or health is not self.health
        self.health = health
        if changed:
            self._changed()

    def _failed(self, exc: CameraError) -> None:
        self.last_failure = time.monotonic()
        self.failures += 1
        new_error = self.last_error != str(exc)
        if new_error:
            log.error("camera %s: %s (retrying)", self.cfg.id, exc)
            self.last_error = str(exc)
        self._set_health(Health.STALLED if isinstance(exc, CameraStalledError) else Health.RECONNECTING,
                         changed=new_error)
