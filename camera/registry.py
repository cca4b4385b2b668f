"""Build the frame source a config describes: one explicit entry per source config class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel

from camera import native_logs
from camera.config import (
    SOURCE_TYPES,
    ImageFolderSourceConfig,
    SourceConfig,
    StreamSourceConfig,
    SyntheticSourceConfig,
    UsbSourceConfig,
    VideoFileSourceConfig,
)
from camera.folder import ImageFolderSource
from camera.frame import FrameSource
from camera.opencv_source import StreamSource, UsbSource, VideoFileSource
from camera.synthetic import SyntheticSource

__all__ = ["SOURCE_TYPES", "open_source", "registered"]

# Each entry takes the config of its own class; its paths are already absolute (resolved when the
# config was loaded). Adapters with heavy optional dependencies (pypylon, harvesters) import them
# inside their factory, so that a config which does not use them never pays for them.
_FACTORIES: Final[dict[type[BaseModel], Callable[[Any], FrameSource]]] = {
    SyntheticSourceConfig: SyntheticSource,
    VideoFileSourceConfig: VideoFileSource,
    ImageFolderSourceConfig: ImageFolderSource,
    StreamSourceConfig: StreamSource,
    UsbSourceConfig: UsbSource,
}


def registered() -> tuple[type[BaseModel], ...]:
    """The config classes :func:`open_source` can build a source for (a test holds it equal to the union)."""
    return tuple(_FACTORIES)


def open_source(config: SourceConfig) -> FrameSource:
    """The source for ``config``, not yet opened: enter it (``with``) to open the device or file."""
    native_logs.apply()  # before any OpenCV call of any source (imread in folders, captures)
    factory = _FACTORIES.get(type(config))
    if factory is None:  # a config class added to the union without its registry entry: a bug
        msg = f"no frame source registered for {type(config).__name__}; add it to camera.registry"
        raise TypeError(msg)
    return factory(config)
