"""GenICam pixel formats to the BGR (or grey) images :class:`camera.validate.FrameCheck` accepts.

The `genicam` and `basler` sources both deliver raw buffers named by a GenICam ``PixelFormat``;
numpy and OpenCV only, no camera SDK.
"""

from __future__ import annotations

import re
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from camera.errors import BufferSizeError, PixelFormatError

__all__ = ["pixels"]

# GenICam pixel format name -> OpenCV demosaicing, named by the colour of the first 2x2 cell.
_BAYER: Final = {
    "RG": cv2.COLOR_BayerRGGB2BGR,
    "GR": cv2.COLOR_BayerGRBG2BGR,
    "GB": cv2.COLOR_BayerGBRG2BGR,
    "BG": cv2.COLOR_BayerBGGR2BGR,
}
_FORMAT: Final = re.compile(r"^(Mono|Bayer(RG|GR|GB|BG)|RGB|BGR|RGBa|BGRa|RGBA|BGRA)(8|10|12|14|16)(Packed)?$")
_SUPPORTED: Final = "Mono8/10/12, Bayer**8/10/12, RGB8, BGR8, RGBa8 or BGRa8 (packed 10/12-bit formats are not)"
"""What :data:`_FORMAT` accepts, in the words of the message naming a format it does not."""


def pixels(data: npt.NDArray[Any], pixel_format: str, width: int, height: int) -> tuple[npt.NDArray[Any], int | None]:
    """A buffer in ``pixel_format`` as an image :class:`camera.validate.FrameCheck` accepts, and its bit depth.

    Mono stays grey (the check makes it BGR), Bayer is demosaiced, RGB/RGBa are reordered to
    BGR/BGRA. Raises :class:`camera.errors.FrameRejectedError` (a ``ValueError``: the frame's error)
    for a format or size that does not fit.
    """
    m = _FORMAT.match(pixel_format)
    if m is None:
        raise PixelFormatError(pixel_format, _SUPPORTED)
    kind, bits = m.group(1), int(m.group(3))
    channels = {"Mono": 1, "RGB": 3, "BGR": 3}.get(kind, 1 if kind.startswith("Bayer") else 4)
    dtype = np.uint8 if bits == 8 else np.uint16
    flat = np.asarray(data).reshape(-1)
    if flat.dtype != dtype:
        flat = flat.view(dtype) if flat.dtype.itemsize < np.dtype(dtype).itemsize else flat.astype(dtype)
    if flat.size != width * height * channels:
        raise BufferSizeError(pixel_format, flat.size, width, height, channels)
    image = flat.reshape((height, width) if channels == 1 else (height, width, channels))
    if kind.startswith("Bayer"):
        image = cv2.cvtColor(image, _BAYER[kind[5:]])
    elif kind == "RGB":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif kind in ("RGBa", "RGBA"):
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    return image, (bits if bits != 8 else None)
