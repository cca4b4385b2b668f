"""Camera errors that carry their data: each builds its one-line message (thing + fix) itself."""

from __future__ import annotations

from ovedge.errors import CameraError

__all__ = ["CameraStalledError", "MissingExtraError", "NodeRefusedError", "UnknownNodeError"]


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
