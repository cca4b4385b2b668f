"""Sources read through ``cv2.VideoCapture``: video files, network streams, USB/V4L2 cameras.

The three share one reading loop (:class:`CaptureSource`) and differ in what they open, how they
describe themselves and what the end of frames means: a video file ends (or loops), a stream or
a camera that stops delivering has failed and ``read()`` raises :class:`CameraError`. That raise
is the seam for reconnecting streams: a supervisor catches it, backs off, and enters the source
again (``__enter__`` reopens).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Final, Self

import cv2

from camera import native_logs
from camera._pacing import Pacer
from camera.config import FrameLimits, StreamSourceConfig, UsbSourceConfig, VideoFileSourceConfig
from camera.errors import CameraStalledError, SourceError, SourceNotOpenError
from camera.frame import ClosedOnExit, Frame
from camera.validate import FrameCheck
from ovedge.errors import CameraError, openvino_message

__all__ = ["CaptureSource", "StreamSource", "UsbSource", "VideoFileSource", "scrub_url"]

log = logging.getLogger(__name__)

_FFMPEG_OPTIONS: Final = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_FFMPEG_OPTIONS_LOCK: Final = threading.Lock()
"""OpenCV reads FFmpeg options from the environment when a capture opens: one open at a time sets it."""
STALL_MARGIN: Final = 0.8
"""A failed read that took at least this share of ``stall_timeout`` was FFmpeg's timeout: a stall."""

_USERINFO = re.compile(r"(?<=://)[^/@?#\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pwd|pass|token|key|secret|auth)=)[^&#]*")


def scrub_url(url: str) -> str:
    """``url`` safe to log: user info becomes ``***`` and secret-looking query values ``***``.

    >>> scrub_url("rtsp://admin:hunter2@10.0.0.5:554/h264?token=abc&ch=1")
    'rtsp://***@10.0.0.5:554/h264?token=***&ch=1'
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", url))


class CaptureSource(ClosedOnExit):
    """A :class:`camera.frame.FrameSource` over ``cv2.VideoCapture``; subclasses say what to open."""

    finite: bool = False  # True: a failed read is the end of the frames, not a fault
    loop: bool = False

    def __init__(self, limits: FrameLimits, *, fps: float = 0.0) -> None:
        self._check = FrameCheck.of(limits)
        self._pacer = Pacer(fps)
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self._position = 0  # frame number within the current pass (video files)

    # Subclasses --------------------------------------------------------------------------

    @property
    def description(self) -> str:
        """Human-readable name with credentials scrubbed (safe to log)."""
        raise NotImplementedError

    def _open_capture(self) -> cv2.VideoCapture:
        """A capture that ``isOpened()``, or :class:`CameraError` naming the source and the fix."""
        raise NotImplementedError

    def _source_ref(self) -> str | None:
        return None

    def _failed(self, waited: float) -> CameraError:
        """The error for a live source whose read failed after ``waited`` seconds."""
        return SourceError(
            what=self.description,
            problem="stopped delivering frames",
            fix="check the device or network (the daemon reopens it after a back-off)",
        )

    # FrameSource ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.close()
        native_logs.apply()  # OpenCV's/FFmpeg's own lines off unless we log at DEBUG
        self._cap = self._open_capture()
        self._index = 0
        self._position = 0
        self._pacer.reset()
        log.info("opened %s", self.description)
        return self

    def close(self) -> None:
        """Release the capture (idempotent)."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def read(self) -> Frame | None:
        """The next frame; ``None`` at the end of a file that does not loop.

        Raises :class:`CameraError` when a stream or camera stops delivering frames.
        """
        if self._cap is None:
            raise SourceNotOpenError(self.description)
        self._pacer.wait()
        started = time.monotonic()
        ok, image = self._cap.read()
        if not ok or image is None:
            if not self.finite:
                raise self._failed(time.monotonic() - started)
            if not self.loop or self._position == 0:
                return None
            self.close()
            self._cap = self._open_capture()
            self._position = 0
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceError(
                    what=self.description,
                    problem="could not be read again after looping to its start",
                    fix="check that the file is still there and readable",
                )
        frame = self._check.frame(image, index=self._index, ref=self._source_ref())
        self._index += 1
        self._position += 1
        return frame


class VideoFileSource(CaptureSource):
    """A video file (mp4, avi, mkv, ...): ends, or loops, at its last frame."""

    finite = True

    def __init__(self, config: VideoFileSourceConfig) -> None:
        super().__init__(config, fps=config.fps)
        self.path = config.path
        self.loop = config.loop

    @property
    def description(self) -> str:
        """``video file <path>``."""
        return f"video file {self.path}"

    def _open_capture(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise SourceError(
                what=self.description, problem="does not exist", fix="fix the camera's `path` in the config"
            )
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                what=self.description,
                problem="cannot be decoded by OpenCV",
                fix="re-encode it (e.g. H.264 .mp4 or MJPG .avi)",
            )
        return cap

    def _source_ref(self) -> str:
        return f"{self.path.name}#{self._position}"


class StreamSource(CaptureSource):
    """A network stream through FFmpeg: ``rtsp://``, ``http(s)://`` MJPEG, ... Never ends by itself.

    FFmpeg's read timeout is ``stall_timeout``: a stream that stays connected but sends nothing
    fails the read after that long with :class:`CameraStalledError`, and the capture thread reconnects.
    RTSP goes over TCP unless ``transport = "udp"``.
    """

    def __init__(self, config: StreamSourceConfig) -> None:
        super().__init__(config)
        self.url = config.url
        self.config = config
        is_rtsp = config.url.lower().startswith(("rtsp://", "rtsps://"))
        self.transport = (config.transport or "tcp") if is_rtsp else None

    @property
    def description(self) -> str:
        """``stream <scrubbed url>``."""
        return f"stream {scrub_url(self.url)}"

    def _failed(self, waited: float) -> CameraError:
        if waited >= STALL_MARGIN * self.config.stall_timeout:
            return CameraStalledError(self.description, self.config.stall_timeout)
        return super()._failed(waited)

    def _open_capture(self) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            round(self.config.open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            round(self.config.stall_timeout * 1000),
        ]
        try:
            with _FFMPEG_OPTIONS_LOCK:
                before = os.environ.get(_FFMPEG_OPTIONS)
                if self.transport is not None:
                    os.environ[_FFMPEG_OPTIONS] = f"rtsp_transport;{self.transport}"
                try:
                    cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
                finally:
                    if before is None:
                        os.environ.pop(_FFMPEG_OPTIONS, None)
                    else:
                        os.environ[_FFMPEG_OPTIONS] = before
        except cv2.error as exc:
            raise SourceError(
                what=self.description, problem="cannot be opened", detail=scrub_url(openvino_message(exc))
            ) from exc
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                what=self.description,
                problem="cannot be opened",
                fix="check that the camera or server is up, the URL and its credentials, "
                "and that this host can reach it",
            )
        return cap


class UsbSource(CaptureSource):
    """A USB/V4L2 camera by index or ``/dev/video*`` path, with optional requested size and rate."""

    def __init__(self, config: UsbSourceConfig) -> None:
        super().__init__(config)
        device = config.device
        self.device: str | int = int(device) if isinstance(device, str) and device.isdigit() else device
        self.config = config

    @property
    def description(self) -> str:
        """``USB camera <device>``."""
        return f"USB camera {self.device}"

    def _open_capture(self) -> cv2.VideoCapture:
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        if isinstance(self.device, str) and not Path(self.device).exists():
            raise SourceError(
                what=self.description,
                problem="does not exist",
                fix="plug the camera in or fix `device` (`v4l2-ctl --list-devices` lists them)",
            )
        cap = cv2.VideoCapture(self.device, api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                what=self.description,
                problem="cannot be opened",
                fix="check it is plugged in, not used by another program, "
                "and that this user may open it (group `video`)",
            )
        c = self.config
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, c.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, c.height),
            (cv2.CAP_PROP_FPS, c.fps),
        ):
            if value is not None and not cap.set(prop, float(value)):
                log.warning("%s: the camera refused property %s=%s", self.description, prop, value)
        return cap

