"""What the `genicam` and `basler` sources share: applying feature settings, and pixel formats to BGR.

Both SDKs wrap the same GenApi; each source gives a small :class:`NodeMap` adapter over its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from camera.config import NodeSettings, NodeValue
from camera.errors import BufferSizeError, NodeRefusedError, PixelFormatError, UnknownNodeError

__all__ = ["EXECUTE", "NodeMap", "apply_settings", "pixels", "settings_of"]

EXECUTE: Final = "execute"
"""The value that runs a command node (e.g. ``nodes = {UserSetLoad = "execute"}``)."""

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


class NodeMap(Protocol):
    """A camera's features, by GenICam name; methods raise the SDK's own error when refused."""

    def has(self, name: str) -> bool: ...

    def is_command(self, name: str) -> bool: ...

    def set(self, name: str, value: str) -> None: ...

    def get(self, name: str) -> str: ...

    def execute(self, name: str) -> None: ...


def settings_of(config: NodeSettings, has: Any) -> Iterator[tuple[str, NodeValue]]:
    """The (feature, value) pairs a config asks for, in the order they are applied.

    ``has(name)`` tells whether the camera has a feature (some are set only where they exist:
    the offsets before a ROI, ``TriggerSelector``).
    """
    if config.pixel_format is not None:
        yield "PixelFormat", config.pixel_format
    if config.roi is not None:
        x, y, w, h = config.roi
        for offset in ("OffsetX", "OffsetY"):  # back to 0 first, so that the new size fits
            if has(offset):
                yield offset, 0
        yield "Width", w
        yield "Height", h
        if x or has("OffsetX"):
            yield "OffsetX", x
        if y or has("OffsetY"):
            yield "OffsetY", y
    if config.exposure is not None:
        older = not has("ExposureTime") and has("ExposureTimeAbs")  # GigE cameras before SFNC 2.0
        yield ("ExposureTimeAbs" if older else "ExposureTime"), config.exposure
    if config.gain is not None:
        yield "Gain", config.gain
    if config.software_trigger:
        if has("TriggerSelector"):
            yield "TriggerSelector", "FrameStart"
        yield "TriggerMode", "On"
        yield "TriggerSource", "Software"
    yield from config.nodes.items()


def _text(value: NodeValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _reason(exc: BaseException) -> str:
    """The SDK's message without its source-file trailer."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" : ")[0].strip() or type(exc).__name__


def apply_settings(
    config: NodeSettings, nodes: NodeMap, *, description: str, sdk_error: type[BaseException]
) -> None:
    """Set every feature ``config`` asks for; the first bad one raises :class:`UnknownNodeError` or
    :class:`NodeRefusedError` naming it."""
    for name, value in settings_of(config, nodes.has):
        if not nodes.has(name):
            raise UnknownNodeError(description, name)
        try:
            if nodes.is_command(name):
                if value != EXECUTE:
                    raise NodeRefusedError(description, name, value, f"it is a command: write {name} = \"{EXECUTE}\"")
                nodes.execute(name)
            else:
                nodes.set(name, _text(value))
        except sdk_error as exc:
            raise NodeRefusedError(description, name, value, _reason(exc)) from exc


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
