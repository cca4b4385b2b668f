"""Frame sources: cameras, streams, files, folders and a synthetic defect generator.

Every source is a :class:`FrameSource` (a context manager with ``read()``) built from one of the
config models in :mod:`camera.config`; :func:`open_source` picks the class from the config's
``type``. Frames are H x W x 3 uint8 BGR.
"""

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
from camera.frame import Frame, FrameSource, Image
from camera.opencv_source import StreamSource, UsbSource, VideoFileSource, scrub_url
from camera.registry import open_source
from camera.synthetic import LABELS, DefectGenerator, DefectTruth, FrameTruth, SyntheticSource

__all__ = [
    "LABELS",
    "SOURCE_TYPES",
    "DefectGenerator",
    "DefectTruth",
    "Frame",
    "FrameSource",
    "FrameTruth",
    "Image",
    "ImageFolderSource",
    "ImageFolderSourceConfig",
    "SourceConfig",
    "StreamSource",
    "StreamSourceConfig",
    "SyntheticSource",
    "SyntheticSourceConfig",
    "UsbSource",
    "UsbSourceConfig",
    "VideoFileSource",
    "VideoFileSourceConfig",
    "open_source",
    "scrub_url",
]
