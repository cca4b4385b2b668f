"""Sources read through ``cv2.VideoCapture``: video files, network streams, USB/V4L2 cameras.

The three share one reading loop (:class:`CaptureSource`) and differ in what they open, how they
describe themselves and what the end of frames means: a video file ends (or loops), a stream or
a camera that stops delivering has failed and ``read()`` raises :class:`CameraError`. That raise
is the seam for reconnecting streams: a supervisor catches it, backs off, and enters the source
again (``__enter__`` reopens).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import cv2
import numpy as np
import numpy.typing as npt

from camera._pacing import Pacer
from camera.config import StreamSourceConfig, UsbSourceConfig, VideoFileSourceConfig
from camera.frame import Frame, Image
from ovedge.errors import CameraError, openvino_message

__all__ = ["CaptureSource", "StreamSource", "UsbSource", "VideoFileSource", "as_bgr", "scrub_url"]

log = logging.getLogger(__name__)

STREAM_OPEN_TIMEOUT_MS: Final = 10_000
"""How long FFmpeg may take to open a network stream before the open fails."""
STREAM_READ_TIMEOUT_MS: Final = 10_000
"""How long a network stream may stay silent before ``read()`` fails."""

_USERINFO = re.compile(r"(?<=://)[^/@?#\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|passwd|pwd|pass|token|key|secret|auth)=)[^&#]*")


def scrub_url(url: str) -> str:
    """``url`` safe to log: user info becomes ``***`` and secret-looking query values ``***``.

    >>> scrub_url("rtsp://admin:hunter2@10.0.0.5:554/h264?token=abc&ch=1")
    'rtsp://***@10.0.0.5:554/h264?token=***&ch=1'
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", url))


def as_bgr(image: npt.NDArray[Any]) -> Image:
    """Any 8/16-bit grey, BGR or BGRA image as H x W x 3 uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"cannot make a BGR image from an array of shape {image.shape}")
    out: Image = np.ascontiguousarray(image)
    return out


class CaptureSource:
    """A :class:`camera.frame.FrameSource` over ``cv2.VideoCapture``; subclasses say what to open."""

    finite: bool = False  # True: a failed read is the end of the frames, not a fault
    loop: bool = False

    def __init__(self, *, fps: float = 0.0) -> None:
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

    # FrameSource ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.close()
        self._cap = self._open_capture()
        self._index = 0
        self._position = 0
        self._pacer.reset()
        log.info("opened %s", self.description)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
            raise RuntimeError(f"{self.description} is not open: use it as a context manager")
        self._pacer.wait()
        ok, image = self._cap.read()
        if not ok or image is None:
            if not self.finite:
                raise CameraError(
                    f"{self.description} stopped delivering frames; check the device or network "
                    "(the daemon reopens it after a back-off)"
                )
            if not self.loop or self._position == 0:
                return None
            self.close()
            self._cap = self._open_capture()
            self._position = 0
            ok, image = self._cap.read()
            if not ok or image is None:
                raise CameraError(f"{self.description} could not be read again after looping to its start")
        ref = self._source_ref()
        frame = Frame(
            image=as_bgr(image),
            index=self._index,
            timestamp=time.time(),
            monotonic=time.monotonic(),
            source_ref=ref,
        )
        self._index += 1
        self._position += 1
        return frame


class VideoFileSource(CaptureSource):
    """A video file (mp4, avi, mkv, ...): ends, or loops, at its last frame."""

    finite = True

    def __init__(self, config: VideoFileSourceConfig) -> None:
        super().__init__(fps=config.fps)
        self.path = config.path
        self.loop = config.loop

    @property
    def description(self) -> str:
        """``video file <path>``."""
        return f"video file {self.path}"

    def _open_capture(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise CameraError(f"{self.description} does not exist; fix the camera's `path` in the config")
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"{self.description} cannot be decoded by OpenCV; re-encode it (e.g. H.264 .mp4 or MJPG .avi)"
            )
        return cap

    def _source_ref(self) -> str:
        return f"{self.path.name}#{self._position}"


class StreamSource(CaptureSource):
    """A network stream through FFmpeg: ``rtsp://``, ``http(s)://`` MJPEG, ... Never ends by itself."""

    def __init__(self, config: StreamSourceConfig) -> None:
        super().__init__()
        self.url = config.url

    @property
    def description(self) -> str:
        """``stream <scrubbed url>``."""
        return f"stream {scrub_url(self.url)}"

    def _open_capture(self) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_READ_TIMEOUT_MS,
        ]
        try:
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        except cv2.error as exc:
            raise CameraError(f"{self.description} cannot be opened: {scrub_url(openvino_message(exc))}") from exc
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"{self.description} cannot be opened; check that the camera or server is up, the URL "
                "and its credentials, and that this host can reach it"
            )
        return cap


class UsbSource(CaptureSource):
    """A USB/V4L2 camera by index or ``/dev/video*`` path, with optional requested size and rate."""

    def __init__(self, config: UsbSourceConfig) -> None:
        super().__init__()
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
            raise CameraError(
                f"{self.description} does not exist; plug the camera in or fix `device` "
                "(`v4l2-ctl --list-devices` lists them)"
            )
        cap = cv2.VideoCapture(self.device, api)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"{self.description} cannot be opened; check it is plugged in, not used by another "
                "program, and that this user may open it (group `video`)"
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

