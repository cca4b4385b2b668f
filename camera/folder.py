"""A folder of still images read in name order, as if a camera had taken them."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import cv2
import numpy as np

from camera._pacing import Pacer
from camera.config import ImageFolderSourceConfig
from camera.frame import Frame
from camera.opencv_source import as_bgr
from ovedge.errors import CameraError

__all__ = ["IMAGE_SUFFIXES", "ImageFolderSource"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: Final = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
)
"""With the default pattern ``*``, only files with these suffixes are taken (a stray README is not a frame)."""


class ImageFolderSource:
    """Every image matching ``pattern`` in a folder, sorted by name; ends (or loops) after the last.

    Grey and BGRA images come out as BGR. A file that cannot be decoded raises
    :class:`CameraError` naming it: a folder is curated input, so a bad file is not skipped.
    """

    def __init__(self, config: ImageFolderSourceConfig) -> None:
        self.path = config.path
        self.config = config
        self._pacer = Pacer(config.fps)
        self._files: list[Path] = []
        self._next = 0
        self._index = 0

    @property
    def description(self) -> str:
        """``image folder <path> (<pattern>)``."""
        return f"image folder {self.path} ({self.config.pattern})"

    @property
    def files(self) -> tuple[Path, ...]:
        """The images found on entering, in reading order."""
        return tuple(self._files)

    def __enter__(self) -> Self:
        if not self.path.is_dir():
            raise CameraError(f"{self.description}: the folder does not exist; fix the camera's `path`")
        pattern = self.config.pattern
        found = [p for p in self.path.glob(pattern) if p.is_file() and not p.name.startswith(".")]
        if pattern == "*":
            found = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        if not found:
            raise CameraError(
                f"{self.description} holds no images; add some or fix `pattern` "
                f"(with '*', files ending in {', '.join(sorted(IMAGE_SUFFIXES))} are taken)"
            )
        self._files = sorted(found, key=lambda p: p.name)
        self._next = 0
        self._index = 0
        self._pacer.reset()
        log.info("opened %s: %d images", self.description, len(self._files))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._files = []

    def read(self) -> Frame | None:
        """The next image as a frame; ``None`` after the last unless ``loop``."""
        if not self._files:
            raise RuntimeError(f"{self.description} is not open: use it as a context manager")
        if self._next >= len(self._files):
            if not self.config.loop:
                return None
            self._next = 0
        self._pacer.wait()
        path = self._files[self._next]
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            raise CameraError(f"image {path} cannot be read ({exc.strerror}); restore it or remove it") from exc
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if image is None:
            raise CameraError(f"image {path} is not a readable image; replace it or remove it from {self.path}")
        frame = Frame(
            image=as_bgr(image),
            index=self._index,
            timestamp=time.time(),
            monotonic=time.monotonic(),
            source_ref=path.name,
        )
        self._next += 1
        self._index += 1
        return frame
