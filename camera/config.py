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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ovedge.paths import ConfigPath

__all__ = [
    "SOURCE_CONFIGS",
    "SOURCE_TYPES",
    "BaslerSourceConfig",
    "FrameLimits",
    "GenICamSourceConfig",
    "ImageFolderSourceConfig",
    "NodeSettings",
    "NodeValue",
    "SourceConfig",
    "StreamSourceConfig",
    "SyntheticSourceConfig",
    "UsbSourceConfig",
    "VideoFileSourceConfig",
]


class _Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FrameLimits(_Source):
    """Limits every captured frame is held to (:mod:`camera.validate`); a frame outside them is an ERROR result."""

    min_width: int = Field(16, ge=1, description="narrower frames are rejected (ERROR result with the reason)")
    min_height: int = Field(16, ge=1, description="lower frames are rejected")
    max_aspect: float = Field(
        10.0,
        ge=0.0,
        description="frames longer than this many times their width (or wider) are rejected; 0 = no limit",
    )


NodeValue = bool | int | float | str


class NodeSettings(FrameLimits):
    """GenICam feature settings shared by the `genicam` and `basler` sources, applied on open in this order:
    pixel_format, roi, exposure, gain, then `nodes` in the order written."""

    pixel_format: str | None = Field(
        None, description="PixelFormat: Mono8, Mono10, Mono12, Bayer*8/10/12, RGB8, BGR8, RGBa8, ... (all become BGR)"
    )
    roi: tuple[int, int, int, int] | None = Field(
        None, description="[offset_x, offset_y, width, height] in sensor pixels (OffsetX, OffsetY, Width, Height)"
    )
    exposure: float | None = Field(None, gt=0, description="ExposureTime, microseconds")
    gain: float | None = Field(None, description="Gain, dB")
    nodes: dict[str, NodeValue] = Field(
        default_factory=dict,
        description="any other feature by its GenICam name, e.g. {TriggerMode = \"On\", TriggerSource = \"Line1\"}; "
        "a command node takes the value \"execute\"",
    )
    software_trigger: bool = Field(
        False, description="TriggerMode=On, TriggerSource=Software: a frame is taken only when the daemon triggers"
    )
    timeout: float = Field(
        5.0,
        ge=0.0,
        description="seconds without a frame before a free-running camera counts as stalled and is reopened; "
        "0 = never. A triggered camera (software_trigger, or TriggerMode = \"On\" in nodes) waits for its "
        "trigger without a limit",
    )

    @property
    def stall_after(self) -> float | None:
        """Seconds of silence that mean the camera stalled; None when silence is normal (triggered, or timeout 0)."""
        hardware_trigger = str(self.nodes.get("TriggerMode", "")).lower() == "on"
        if self.software_trigger or hardware_trigger or self.timeout == 0:
            return None
        return self.timeout

    @model_validator(mode="after")
    def _roi(self) -> NodeSettings:
        if self.roi is not None and (min(self.roi[:2]) < 0 or min(self.roi[2:]) <= 0):
            msg = f"roi is [offset_x, offset_y, width, height] with offsets >= 0 and sizes > 0, got {list(self.roi)}"
            raise ValueError(msg)
        return self


class SyntheticSourceConfig(_Source):
    """Rendered textured parts with injected defects; deterministic for a seed."""

    type: Literal["synthetic"] = "synthetic"
    seed: int = Field(0, description="same seed, same frames and same defects")
    width: int = Field(256, gt=15, description="frame width, pixels")
    height: int = Field(256, gt=15, description="frame height, pixels")
    fps: float = Field(10.0, ge=0.0, description="frames per second; 0 renders as fast as consumed")
    defect_rate: float = Field(0.5, ge=0.0, le=1.0, description="share of frames that carry a defect")
    count: int = Field(0, ge=0, description="frames before the source ends; 0 never ends")


class VideoFileSourceConfig(FrameLimits):
    """A video file read through OpenCV (mp4, avi, mkv, ...)."""

    type: Literal["video"] = "video"
    path: ConfigPath = Field(description="video file; relative paths are taken from the config's folder")
    loop: bool = Field(False, description="start again at the end instead of ending")
    fps: float = Field(0.0, ge=0.0, description="pace reading to this rate; 0 reads as fast as consumed")


class ImageFolderSourceConfig(FrameLimits):
    """Every image of a folder, in name order; or, with ``watch``, each image dropped into it, once."""

    type: Literal["folder"] = "folder"
    path: ConfigPath = Field(description="folder of images; relative paths are taken from the config's folder")
    pattern: str = Field("*", description="glob for file names, e.g. '*.png'")
    loop: bool = Field(False, description="start again after the last image (not with watch)")
    fps: float = Field(0.0, ge=0.0, description="pace reading to this rate; 0 reads as fast as consumed")
    watch: bool = Field(
        False, description="a drop folder: wait for new images and read each once, when completely written"
    )
    settle: float = Field(
        1.0, gt=0.0, description="watch: seconds a file's size and time must stay unchanged before it is read"
    )
    poll: float = Field(0.25, gt=0.0, description="watch: seconds between looks at the folder")
    after: Literal["move", "keep"] = Field(
        "move",
        description="watch: move each file read into done/ (or failed/ when it is no usable image) inside the folder; "
        "keep = leave it, remembered in the folder's .ovedge-read file so it is not read again",
    )

    @model_validator(mode="after")
    def _watch(self) -> ImageFolderSourceConfig:
        if self.watch and self.loop:
            msg = "a watched folder (watch = true) cannot loop: each file is read once"
            raise ValueError(msg)
        return self


class StreamSourceConfig(FrameLimits):
    """A network stream OpenCV opens: rtsp://, http(s):// MJPEG, ..."""

    type: Literal["stream"] = "stream"
    url: str = Field(description="stream URL; credentials in it are never logged")
    transport: Literal["tcp", "udp"] | None = Field(
        None,
        description="RTSP only: carry the video over tcp (unset: tcp, survives NAT and loss) or udp (lower latency)",
    )
    stall_timeout: float = Field(
        10.0, gt=0.0, description="seconds without a frame before the stream counts as stalled and is reconnected"
    )
    open_timeout: float = Field(10.0, gt=0.0, description="seconds opening may take before it fails")

    @model_validator(mode="after")
    def _transport(self) -> StreamSourceConfig:
        if self.transport is not None and not self.url.lower().startswith(("rtsp://", "rtsps://")):
            msg = "transport applies to rtsp:// URLs only; remove it for this stream"
            raise ValueError(msg)
        return self


class UsbSourceConfig(FrameLimits):
    """A USB/V4L2 camera: /dev/videoN or its index."""

    type: Literal["usb"] = "usb"
    device: str | int = Field(0, description="index or /dev/video* path")
    width: int | None = Field(None, gt=0, description="requested capture width")
    height: int | None = Field(None, gt=0, description="requested capture height")
    fps: float | None = Field(None, gt=0, description="requested capture rate")


class GenICamSourceConfig(NodeSettings):
    """A GigE Vision / USB3 Vision camera through a GenTL producer (extra ``ovedge[genicam]``: harvesters).

    The device is chosen by ``serial``, ``user_id`` or ``index`` (at most one; none = the first found).
    """

    type: Literal["genicam"] = "genicam"
    cti: ConfigPath = Field(
        description="the GenTL producer (.cti) of the camera vendor's SDK; relative paths are taken from the "
        "config's folder"
    )
    serial: str | None = Field(None, description="device serial number")
    user_id: str | None = Field(None, description="device user-defined name (DeviceUserID)")
    index: int | None = Field(None, ge=0, description="position in the producer's device list")

    @model_validator(mode="after")
    def _one_selector(self) -> GenICamSourceConfig:
        given = [k for k in ("serial", "user_id", "index") if getattr(self, k) is not None]
        if len(given) > 1:
            msg = f"choose the device by one of serial, user_id, index; got {', '.join(given)}"
            raise ValueError(msg)
        return self


class BaslerSourceConfig(NodeSettings):
    """A Basler camera through pylon (extra ``ovedge[basler]``: pypylon), by serial number or the first found."""

    type: Literal["basler"] = "basler"
    serial: str | None = Field(None, description="serial number; unset = the first camera found")


SourceConfig = Annotated[
    SyntheticSourceConfig
    | VideoFileSourceConfig
    | ImageFolderSourceConfig
    | StreamSourceConfig
    | UsbSourceConfig
    | GenICamSourceConfig
    | BaslerSourceConfig,
    Field(discriminator="type"),
]

SOURCE_CONFIGS: Final[tuple[type[BaseModel], ...]] = get_args(get_args(SourceConfig)[0])
"""The config class of each source ``type``, in the union's order."""

SOURCE_TYPES: Final[tuple[str, ...]] = tuple(
    str(get_args(c.model_fields["type"].annotation)[0]) for c in SOURCE_CONFIGS  # each ``Literal["tag"]``
)
"""The ``type`` values a camera source may have, derived from :data:`SourceConfig`."""
