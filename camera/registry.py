"""Build the frame source a config describes: one explicit entry per source ``type``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from camera import native_logs
from camera.config import SourceConfig
from camera.folder import ImageFolderSource
from camera.frame import FrameSource
from camera.opencv_source import StreamSource, UsbSource, VideoFileSource
from camera.synthetic import SyntheticSource

__all__ = ["SOURCE_TYPES", "open_source"]

# Each entry takes the config of its own ``type`` and the folder relative paths are taken from.
# Adapters with heavy optional dependencies (pypylon, harvesters) import them inside their
# factory, so that a config which does not use them never pays for them.
_FACTORIES: Final[dict[str, Callable[[Any, Path], FrameSource]]] = {
    "synthetic": lambda config, _base: SyntheticSource(config),
    "video": lambda config, base: VideoFileSource(config, base_dir=base),
    "folder": lambda config, base: ImageFolderSource(config, base_dir=base),
    "stream": lambda config, _base: StreamSource(config),
    "usb": lambda config, _base: UsbSource(config),
}

SOURCE_TYPES: Final = tuple(_FACTORIES)
"""The ``type`` values :func:`open_source` knows."""


def open_source(config: SourceConfig, *, base_dir: Path) -> FrameSource:
    """The source for ``config``, not yet opened: enter it (``with``) to open the device or file.

    Relative paths in ``config`` are taken from ``base_dir`` (the config file's folder).
    """
    native_logs.apply()  # before any OpenCV call of any source (imread in folders, captures)
    try:
        factory = _FACTORIES[config.type]
    except KeyError:
        raise ValueError(f"no frame source for type {config.type!r}; known: {', '.join(SOURCE_TYPES)}") from None
    return factory(config, base_dir)
