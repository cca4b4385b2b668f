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
only hand off (the daemon publishes the camera's retained status from it).

In ``mode = "triggered"`` the thread reads nothing until a trigger is queued (:meth:`offer`);
each trigger fires the camera's software trigger where the source has one
(:class:`camera.frame.SoftwareTriggerable` configured with ``software_trigger``), else takes the
next frame, and the frame carries the trigger (``Frame.extra[TRIGGER]``). A trigger the camera
does not serve within its ``trigger_timeout`` (or at all: the camera failed, ended, the daemon
stops) is handed to ``answer(trigger, reason)``, which makes it an ERROR result: never dropped.
A source that can wait (:class:`camera.frame.Interruptible`) is interrupted at the deadline; a
frame from another source that comes later than the deadline is passed on with ``error`` set.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Final

from camera import Frame, FrameSource, Interruptible, SoftwareTriggerable, open_source
from camera.config import SourceConfig
from camera.errors import CameraStalledError
from camera.validate import CONVERTED
from daemon.config import CameraConfig, CameraMode
from daemon.slots import FrameHub
from daemon.triggers import TRIGGER, Trigger, TriggerQueue
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
    OFFLINE = "offline"  # the thread ended without the source ending: stopped, or the source cannot be built
    STOPPED = "offline"  # the same member (an alias): the name the first version used


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
        answer: Callable[[Trigger, str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._hub = hub
        self._stop = stop
        self._opener = opener
        self._source: FrameSource | None = None
        self.health = Health.STARTING
        self._on_change = on_change
        self._answer = answer
        self.triggered = cfg.mode is CameraMode.TRIGGERED
        self._triggers = TriggerQueue(cfg.trigger_queue)
        self.triggers_received = 0
        self.triggers_refused = 0  # the queue was full
        self.triggers_unserved = 0  # timed out, camera failed, ended or stopping: ERROR results
        self._outage_started: float | None = None
        self._offer_lock = threading.Lock()
        self._closed = False  # set (under _offer_lock) when the thread ends: no trigger is queued after
        self._stale_interrupt = False  # a trigger's timeout interrupt fired after its frame was read
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
        hub.add(cfg.id, latest_wins=cfg.mode is CameraMode.FREE_RUN)  # triggered: never dropped
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

    def offer(self, trigger: Trigger) -> str | None:
        """Queue a trigger (any thread, never blocks); the reason when it is refused (the caller answers it)."""
        with self._offer_lock:
            self.triggers_received += 1
            if self._closed:
                reason = f"camera {self.cfg.id} is {self.health.value}: it takes no more triggers"
            elif self._triggers.offer(trigger):
                return None
            else:
                reason = (f"camera {self.cfg.id}: {self.cfg.trigger_queue} triggers already waiting "
                          "(trigger_queue); trigger refused")
            self.triggers_refused += 1
            return reason

    def _unserved(self, trigger: Trigger, reason: str) -> None:
        self.triggers_unserved += 1
        if self._answer is not None:
            self._answer(trigger, reason)
        else:  # only a bare worker without a daemon (never in ovedged): still said, never silent
            log.error("camera %s: trigger %s (part %s) not served: %s", self.cfg.id, trigger.id, trigger.part_id,
                      reason)

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
            **({"triggers": {
                "received": self.triggers_received,
                "waiting": len(self._triggers),
                "refused": self.triggers_refused,
                "unserved": self.triggers_unserved,
            }} if self.triggered else {}),
        }

    @property
    def state(self) -> dict[str, str | None]:
        """``{"state": "running" | "failing" | "ended", "error": <last error or None>}``."""
        if self.finished.is_set():
            return {"state": "ended", "error": self.last_error}
        return {"state": "failing" if self.last_error is not None else "running", "error": self.last_error}

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:  # telling the state is bookkeeping: a bug in it never stops capture
                log.exception("camera %s: bug while announcing its state (capture goes on)", self.cfg.id)

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
                            down = time.monotonic() - (self._outage_started or time.monotonic())
                            log.info("camera %s: source is back after %.1f s (%d failed attempts so far)",
                                     self.cfg.id, down, self.failures)
                            self.last_error = None
                            self.reconnects += 1
                        self._outage_started = None
                        self._set_health(Health.ONLINE, changed=came_back)
                        backoff = BACKOFF_START
                        pump = self._pump_triggered if self.triggered else self._pump
                        if pump(source):
                            self.health = Health.ENDED  # told below, with the end
                            return  # the source ended
                except CameraError as exc:
                    self._failed(exc)
                    self._wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        except CameraError as exc:  # the source cannot even be built (a missing extra)
            self._failed(exc)
        except Exception:
            log.exception("camera %s: capture thread failed (bug)", self.cfg.id)
            self.last_error = "capture thread failed"
        finally:
            reason = "the daemon is stopping" if self._stop.is_set() else f"camera {self.cfg.id} is offline"
            if self.health is Health.ENDED:
                reason = f"camera {self.cfg.id}: the source has ended"
            else:
                self.health = Health.OFFLINE
            with self._offer_lock:
                self._closed = True
                left = self._triggers.drain()
            for trigger in left:
                self._unserved(trigger, reason)
            self._hub.close_source(self.cfg.id)
            self.finished.set()
            self._changed()

    def _wait(self, seconds: float) -> None:
        """The back-off before a reopen; triggers whose deadline passes meanwhile are answered."""
        until = time.monotonic() + seconds
        while not self._stop.wait(min(0.1, max(0.0, until - time.monotonic()))):
            for trigger in self._triggers.expired(time.monotonic()):
                self._unserved(trigger, f"camera {self.cfg.id} did not deliver within trigger_timeout "
                                        f"{trigger.timeout:g} s: reconnecting after: {self.last_error}")
            if time.monotonic() >= until:
                return

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

    def _pump_triggered(self, source: FrameSource) -> bool:
        """One frame per trigger until stop (False) or the end of the source (True)."""
        soft = isinstance(source, SoftwareTriggerable) and bool(getattr(self.cfg.source, "software_trigger", False))
        while not self._stop.is_set():
            trigger = self._triggers.take(timeout=0.1)
            if trigger is not None and self._serve(source, trigger, soft=soft):
                return True
        return False

    def _serve(self, source: FrameSource, trigger: Trigger, *, soft: bool) -> bool:
        """Capture the frame for one trigger (or answer it with the reason); True when the source ended."""
        cam = self.cfg.id
        if time.monotonic() >= trigger.deadline:
            self._unserved(trigger, f"camera {cam} did not deliver within trigger_timeout {trigger.timeout:g} s "
                                    "(the trigger waited in the queue behind others)")
            return False
        try:
            if soft:
                source.trigger()  # type: ignore[attr-defined]  # checked: SoftwareTriggerable
            frame, timed_out = self._read_until(source, trigger.deadline)
        except CameraError as exc:
            self._unserved(trigger, f"camera {cam} failed: {exc}")
            raise
        if frame is None:
            if self._stop.is_set():
                self._unserved(trigger, "the daemon is stopping")
                return False
            if timed_out:
                self._unserved(trigger, f"camera {cam} did not deliver within trigger_timeout {trigger.timeout:g} s")
                return False
            self._unserved(trigger, f"camera {cam}: the source has ended")
            return True
        late = time.monotonic() - trigger.deadline
        extra = {**frame.extra, TRIGGER: trigger}
        error = frame.error
        if late > 0 and error is None:
            error = (f"camera {cam} delivered {late + trigger.timeout:.2f} s after the trigger, later than "
                     f"trigger_timeout {trigger.timeout:g} s")
        frame = dataclasses.replace(frame, source_ref=trigger.part_id or frame.source_ref, extra=extra, error=error)
        self._count(frame)
        if not self._hub.put(self.cfg.id, frame, self._stop):
            self._unserved(trigger, "the daemon is stopping")
        return False

    def _read_until(self, source: FrameSource, deadline: float) -> tuple[Frame | None, bool]:
        """``source.read()``, interrupted at ``deadline`` when the source can be; (frame, timed out)."""
        if not isinstance(source, Interruptible):
            return source.read(), False
        lock = threading.Lock()
        state = {"waiting": True, "fired": False}

        def fire() -> None:
            with lock:
                if state["waiting"]:
                    state["fired"] = True
                    source.interrupt()

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), fire)
        timer.name = f"trigger-timeout-{self.cfg.id}"
        timer.daemon = True
        timer.start()
        try:
            frame = source.read()
            if frame is None and self._stale_interrupt and not state["fired"] and not self._stop.is_set():
                frame = source.read()  # that None answered a timer that fired too late last time
        finally:
            with lock:
                state["waiting"] = False
            timer.cancel()
        # A timer that fired just after the frame left an interrupt behind; the next None may be its.
        self._stale_interrupt = frame is not None and state["fired"]
        return frame, frame is None and state["fired"]

    def _count(self, frame: Frame) -> None:
        self.frames += 1
        self.last_frame = time.monotonic()
        if frame.error is not None:
            self.rejected += 1

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
        if self._outage_started is None:  # logged once per outage; later attempts only at DEBUG
            self._outage_started = self.last_failure
            log.error("camera %s: %s (reconnecting with back-off %g s doubling to %g s)",
                      self.cfg.id, exc, BACKOFF_START, BACKOFF_MAX)
        elif new_error:
            log.debug("camera %s: still failing: %s", self.cfg.id, exc)
        self.last_error = str(exc)
        self._set_health(Health.STALLED if isinstance(exc, CameraStalledError) else Health.RECONNECTING,
                         changed=new_error)
