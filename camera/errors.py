"""Camera errors that carry their data: each builds its one-line message (thing + fix) itself.

:class:`CameraError` subclasses are user-fixable faults of a source (the daemon logs them and
reopens it after a back-off). :class:`FrameRejectedError` is not raised to the user: it becomes
the ``error`` of one frame (an ``ERROR`` result). :class:`SourceNotOpenError` is a caller's bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from ovedge.errors import CameraError, DescribedError, describe

__all__ = [
    "BufferSizeError",
    "CameraNotFoundError",
    "CameraStalledError",
    "FrameAspectError",
    "FrameRejectedError",
    "FrameSizeError",
    "FreeRunningError",
    "MissingExtraError",
    "NodeRefusedError",
    "PixelFormatError",
    "SourceError",
    "SourceNotOpenError",
    "UnknownNodeError",
]


class SourceError(DescribedError, CameraError):
    """A source cannot be opened or has stopped: ``what`` is its description (credentials scrubbed).

    The message reads ``"{what} {problem}: {detail}; {fix}"``, e.g. ``video file /x.mp4 cannot be
    decoded by OpenCV; re-encode it (e.g. H.264 .mp4 or MJPG .avi)``.
    """


class CameraNotFoundError(CameraError):
    """The camera a config selects is not among those connected; lists the serial numbers found."""

    def __init__(self, description: str, serials: Sequence[str], fix: str) -> None:
        self.description = description
        self.serials = tuple(serials)
        self.fix = fix
        found = ", ".join(self.serials) or "none"
        super().__init__(f"{description} is not found (cameras found: {found}); {fix}")


class FreeRunningError(CameraError):
    """A software trigger sent to a camera configured free-running (``software_trigger`` not set)."""

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(f"{description} is free-running; set software_trigger = true to trigger it")


class SourceNotOpenError(RuntimeError):
    """A source was used outside its ``with`` block: a bug in the caller, not a camera fault."""

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(f"{description} is not open: use it as a context manager")


class MissingExtraError(CameraError):
    """A source type needs an optional SDK that is not installed."""

    def __init__(self, source_type: str, extra: str, module: str) -> None:
        self.source_type = source_type
        self.extra = extra
        self.module = module
        super().__init__(
            f"source type {source_type!r} needs the Python package {module!r}, which is not installed; "
            f"install the extra: pip install 'ovedge[{extra}]'"
        )


class CameraStalledError(CameraError):
    """A connected source delivered no frame for ``seconds`` (it is reconnected)."""

    def __init__(self, description: str, seconds: float, key: str = "stall_timeout") -> None:
        self.description = description
        self.seconds = seconds
        self.key = key
        super().__init__(
            f"{description} stalled: no frame for {seconds:g} s ({key}); reconnecting. "
            f"Check the camera, cable or network, or raise {key} for a slow source"
        )


class UnknownNodeError(CameraError):
    """The config names a GenICam feature the camera does not have."""

    def __init__(self, description: str, node: str) -> None:
        self.description = description
        self.node = node
        super().__init__(
            f"{description} has no feature {node!r}; fix the name in the camera's settings "
            "(the vendor's viewer lists the features of this model)"
        )


class NodeRefusedError(CameraError):
    """The camera refused a value for one of its features."""

    def __init__(self, description: str, node: str, value: object, reason: str) -> None:
        self.description = description
        self.node = node
        self.value = value
        self.reason = reason
        super().__init__(f"{description} refused {node} = {value!r}: {reason}; fix the value in the camera's settings")


class FrameRejectedError(ValueError):
    """A capture that cannot become a BGR frame; ``reason`` says why and what to change.

    ``reason`` reads ``"{what} {problem}; {fix}"`` (the fix left out when empty) and becomes the
    frame's ``error``.
    """

    def __init__(self, *, what: str, problem: str, fix: str = "") -> None:
        self.what = what
        self.problem = problem
        self.fix = fix
        self.reason = describe(what, problem, fix=fix)
        super().__init__(self.reason)


class FrameSizeError(FrameRejectedError):
    """A capture smaller than the source's ``min_width`` x ``min_height``."""

    def __init__(self, width: int, height: int, min_width: int, min_height: int) -> None:
        self.width, self.height = width, height
        self.min_width, self.min_height = min_width, min_height
        super().__init__(
            what=f"frame {width}x{height} px",
            problem=f"is smaller than the minimum {min_width}x{min_height} (source `min_width`/`min_height`)",
        )


class FrameAspectError(FrameRejectedError):
    """A capture more elongated than the source's ``max_aspect`` (a cut-off or line-scan frame?)."""

    def __init__(self, width: int, height: int, aspect: float, max_aspect: float) -> None:
        self.width, self.height = width, height
        self.aspect, self.max_aspect = aspect, max_aspect
        super().__init__(
            what=f"frame {width}x{height} px",
            problem=f"has an aspect ratio of {aspect:.1f}:1, above the source's `max_aspect` {max_aspect:g}",
            fix="a cut-off or line-scan frame? raise `max_aspect` if intended",
        )


class PixelFormatError(FrameRejectedError):
    """A GenICam pixel format the sources cannot turn into BGR; ``supported`` lists those they can."""

    def __init__(self, pixel_format: str, supported: str) -> None:
        self.pixel_format = pixel_format
        self.supported = supported
        super().__init__(
            what=f"pixel format {pixel_format}", problem="is not supported", fix=f"set pixel_format to {supported}"
        )


class BufferSizeError(FrameRejectedError):
    """A camera buffer whose size does not fit the width, height and channels it claims."""

    def __init__(self, pixel_format: str, values: int, width: int, height: int, channels: int) -> None:
        self.pixel_format = pixel_format
        self.values = values
        self.width, self.height, self.channels = width, height, channels
        super().__init__(
            what=f"a {pixel_format} buffer of {values} values",
            problem=f"does not hold {width}x{height} px x {channels} channels",
        )
