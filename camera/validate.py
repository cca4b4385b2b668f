"""Every source's last step: make a raw capture a frame the model may judge, or say why not.

What is converted (and noted in ``Frame.extra["converted"]``, which the capture thread logs once
per camera and counts):

* grey (H x W or H x W x 1) -> BGR, the grey value copied into the three channels;
* BGRA -> BGR, alpha dropped;
* 16-bit -> 8-bit by a right shift: by ``bits - 8`` when the source knows the sensor's depth
  (GenICam/pylon Mono10 -> ``>> 2``, Mono12 -> ``>> 4``), else by 8 (a 16-bit PNG or TIFF is taken
  as full range). No per-frame stretching: the same sensor value always gives the same byte.

What is rejected (a frame with ``error`` set, which becomes an ``ERROR`` result naming the reason):
anything smaller than ``min_width`` x ``min_height``, longer than ``max_aspect`` times its width
(or the other way), with 2 or more than 4 channels, or of another pixel type (float, signed, 32-bit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from camera.config import FrameLimits
from camera.errors import FrameAspectError, FrameRejectedError, FrameSizeError
from camera.frame import Frame, Image

__all__ = ["CONVERTED", "FrameCheck", "failed_frame"]

CONVERTED: Final = "converted"
"""Key of ``Frame.extra`` holding what was converted, e.g. ``"grey -> BGR"``."""


def _placeholder(height: int, width: int) -> Image:
    """An H x W x 3 array that takes no memory: a rejected frame keeps its size for the result."""
    out: Image = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (max(height, 0), max(width, 0), 3))
    return out


def failed_frame(reason: str, *, index: int, ref: str | None, height: int = 0, width: int = 0) -> Frame:
    """A frame that carries only an error: nothing arrived that could be judged."""
    return Frame(
        image=_placeholder(height, width),
        index=index,
        timestamp=time.time(),
        monotonic=time.monotonic(),
        source_ref=ref,
        error=reason,
    )


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """The limits of one source, applied to every capture by :meth:`frame`."""

    min_width: int = 16
    min_height: int = 16
    max_aspect: float = 10.0  # 0 = no limit

    @classmethod
    def of(cls, config: FrameLimits) -> FrameCheck:
        """The limits a source's config sets."""
        return cls(config.min_width, config.min_height, config.max_aspect)

    def convert(self, raw: npt.NDArray[Any], *, bits: int | None = None) -> tuple[Image, str | None]:
        """``raw`` as H x W x 3 uint8 BGR and what was converted (None: nothing); or :class:`FrameRejectedError`."""
        if raw.ndim not in (2, 3):
            raise FrameRejectedError(
                what=f"a capture of shape {raw.shape}", problem="is no image (expected H x W or H x W x C)"
            )
        height, width = int(raw.shape[0]), int(raw.shape[1])
        self._check_size(width, height)
        notes: list[str] = []
        image = raw
        if image.dtype == np.uint16:
            shift = 8 if bits is None else max(bits - 8, 0)
            image = np.minimum(image >> shift, 255).astype(np.uint8)
            notes.append(f"{bits or 16}-bit -> 8-bit (>> {shift})")
        elif image.dtype != np.uint8:
            raise FrameRejectedError(
                what=f"pixel type {image.dtype}",
                problem="is not supported (8 or 16-bit unsigned only)",
                fix="save or capture the images as 8/16-bit",
            )
        channels = 1 if image.ndim == 2 else int(image.shape[2])
        if channels == 1:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            notes.append("grey -> BGR")
        elif channels == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
            notes.append("BGRA -> BGR (alpha dropped)")
        elif channels != 3:
            raise FrameRejectedError(what=f"{channels} channels", problem="are not supported (1 grey, 3 BGR or 4 BGRA)")
        out: Image = np.ascontiguousarray(image)
        return out, ", ".join(notes) or None

    def _check_size(self, width: int, height: int) -> None:
        if width < self.min_width or height < self.min_height:
            raise FrameSizeError(width, height, self.min_width, self.min_height)
        if self.max_aspect > 0:
            aspect = max(width, height) / max(min(width, height), 1)
            if aspect > self.max_aspect:
                raise FrameAspectError(width, height, aspect, self.max_aspect)

    def frame(
        self,
        raw: npt.NDArray[Any],
        *,
        index: int,
        ref: str | None,
        bits: int | None = None,
        extra: dict[str, object] | None = None,
    ) -> Frame:
        """A checked frame: converted pixels, or ``error`` with the reason (after ``ref``, when given)
        and the size that arrived."""
        now, mono = time.time(), time.monotonic()
        extra = dict(extra or {})
        try:
            image, note = self.convert(raw, bits=bits)
        except FrameRejectedError as exc:
            h, w = (int(raw.shape[0]), int(raw.shape[1])) if raw.ndim >= 2 else (0, 0)
            reason = exc.reason if ref is None else f"{ref}: {exc.reason}"
            return Frame(_placeholder(h, w), index, now, mono, ref, extra, error=reason)
        if note is not None:
            extra[CONVERTED] = note
        return Frame(image, index, now, mono, ref, extra)
