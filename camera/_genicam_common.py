"""What the `genicam` and `basler` sources share: applying feature settings (pixel formats to BGR are
:mod:`camera.pixels`).

Both SDKs wrap the same GenApi; each source gives a small :class:`NodeMap` adapter over its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Protocol

from camera.config import NodeSettings, NodeValue
from camera.errors import NodeRefusedError, UnknownNodeError

__all__ = ["EXECUTE", "NodeMap", "apply_settings", "settings_of"]

EXECUTE: Final = "execute"
"""The value that runs a command node (e.g. ``nodes = {UserSetLoad = "execute"}``)."""



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


