"""Frame sources: cameras, streams, files, folders and a synthetic defect generator.

Every source is a :class:`FrameSource` (a context manager with ``read()``) built from one of the
config models in :mod:`camera.config`; :func:`open_source` picks the class from the config's
``type``. Frames are H x W x 3 uint8 BGR, checked by :mod:`camera.validate`; a capture that cannot
be judged is a frame with ``error`` set.
"""

from camera.basler import BaslerSource
from camera.config import (
    SOURCE_TYPES,
    BaslerSourceConfig,
    FrameLimits,
    GenICamSourceConfig,
    ImageFolderSourceConfig,
    SourceConfig,
    StreamSourceConfig,
    SyntheticSourceConfig,
    UsbSourceConfig,
    VideoFileSourceConfig,
)
from camera.errors import (
    CameraNotFoundError,
    CameraStalledError,
    FrameRejectedError,
    FreeRunningError,
    MissingExtraError,
    NodeRefusedError,
    SourceError,
    SourceNotOpenError,
    UnknownNodeError,
)
from camera.folder import ImageFolderSource
from camera.frame import Frame, FrameSource, Image, Interruptible, SoftwareTriggerable
from camera.genicam import GenICamSource
from camera.opencv_source import StreamSource, UsbSource, VideoFileSource, scrub_url
from camera.registry import open_source
from camera.synthetic import LABELS, DefectGenerator, DefectTruth, FrameTruth, SyntheticSource
from camera.validate import FrameCheck

__all__ = [
    "LABELS",
    "SOURCE_TYPES",
    "BaslerSource",
    "BaslerSourceConfig",
    "CameraNotFoundError",
    "CameraStalledError",
    "DefectGenerator",
    "DefectTruth",
    "Frame",
    "FrameCheck",
    "FrameLimits",
    "FrameRejectedError",
    "FrameSource",
    "FrameTruth",
    "FreeRunningError",
    "GenICamSource",
    "GenICamSourceConfig",
    "Image",
    "ImageFolderSource",
    "ImageFolderSourceConfig",
    "Interruptible",
    "MissingExtraError",
    "NodeRefusedError",
    "SoftwareTriggerable",
    "SourceConfig",
    "SourceError",
    "SourceNotOpenError",
    "StreamSource",
    "StreamSourceConfig",
    "SyntheticSource",
    "SyntheticSourceConfig",
    "UnknownNodeError",
    "UsbSource",
    "UsbSourceConfig",
    "VideoFileSource",
    "VideoFileSourceConfig",
    "open_source",
    "scrub_url",
]
