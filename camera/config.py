"""Frame source options, one model per ``type``; the daemon's config embeds :data:`SourceConfig`.

Validators here do no I/O: whether a file exists or a stream opens is checked when the source
is opened (and by ``ovedged check-config``). Paths come out of validation absolute
(:data:`ovedge.paths.ConfigPath`: relative to the config file's folder, ``~`` expanded).

A new kind of source is one config class here (with its ``type`` literal, added to
:data:`SourceConfig`) and one entry in :mod:`camera.registry`; :data:`SOURCE_TYPES` and the
config error messages follow from the union.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from ovedge.paths import ConfigPath

__all__ = [
    "SOURCE_CONFIGS",
    "SOURCE_TYPES",
    "ImageFolderSourceConfig",
    "SourceConfig",
    "StreamSourceConfig",
    "SyntheticSourceConfig",
    "UsbSourceConfig",
    "VideoFileSourceConfig",
]


class _Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SyntheticSourceConfig(_Source):
    """Rendered textured parts with injected defects; deterministic for a seed."""

    type: Literal["synthetic"] = "synthetic"
    seed: int = Field(0, description="same seed, same frames and same defects")
    width: int = Field(256, gt=15, description="frame width, pixels")
    height: int = Field(256, gt=15, description="frame height, pixels")
    fps: float = Field(10.0, ge=0.0, description="frames per second; 0 renders as fast as consumed")
    defect_rate: float = Field(0.5, ge=0.0, le=1.0, description="share of frames that carry a defect")
    count: int = Field(0, ge=0, description="frames before the source ends; 0 never ends")


class VideoFileSourceConfig(_Source):
    """A video file read through OpenCV (mp4, avi, mkv, ...)."""

    type: Literal["video"] = "video"
    path: ConfigPath = Field(description="video file; relative paths are taken from the config's folder")
    loop: bool = Field(False, description="start again at the end instead of ending")
    fps: float = Field(0.0, ge=0.0, description="pace reading to this rate; 0 reads as fast as consumed")


class ImageFolderSourceConfig(_Source):
    """Every image of a folder, in name order."""

    type: Literal["folder"] = "folder"
    path: ConfigPath = Field(description="folder of images; relative paths are taken from the config's folder")
    pattern: str = Field("*", description="glob for file names, e.g. '*.png'")
    loop: bool = Field(False, description="start again after the last image")
    fps: float = Field(0.0, ge=0.0, description="pace reading to this rate; 0 reads as fast as consumed")


class StreamSourceConfig(_Source):
    """A network stream OpenCV opens: rtsp://, http(s):// MJPEG, ..."""

    type: Literal["stream"] = "stream"
    url: str = Field(description="stream URL; credentials in it are never logged")


class UsbSourceConfig(_Source):
    """A USB/V4L2 camera: /dev/videoN or its index."""

    type: Literal["usb"] = "usb"
    device: str | int = Field(0, description="index or /dev/video* path")
    width: int | None = Field(None, gt=0, description="requested capture width")
    height: int | None = Field(None, gt=0, description="requested capture height")
    fps: float | None = Field(None, gt=0, description="requested capture rate")


SourceConfig = Annotated[
    SyntheticSourceConfig
    | VideoFileSourceConfig
    | ImageFolderSourceConfig
    | StreamSourceConfig
    | UsbSourceConfig,
    Field(discriminator="type"),
]

SOURCE_CONFIGS: Final[tuple[type[BaseModel], ...]] = get_args(get_args(SourceConfig)[0])
"""The config class of each source ``type``, in the union's order."""

SOURCE_TYPES: Final[tuple[str, ...]] = tuple(
    str(get_args(c.model_fields["type"].annotation)[0]) for c in SOURCE_CONFIGS  # each ``Literal["tag"]``
)
"""The ``type`` values a camera source may have, derived from :data:`SourceConfig`."""
