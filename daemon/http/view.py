"""What the HTTP API needs from the daemon: one small Protocol, so the server is tested on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from daemon.adhoc import AdhocModel
from daemon.metrics import MetricsSnapshot
from daemon.result import ResultRecord

__all__ = ["CameraState", "DaemonView", "Latest", "Readiness"]


@dataclass(frozen=True, slots=True)
class Latest:
    """A camera's last judged frame and its result, kept by reference (encoded only on request)."""

    image: npt.NDArray[np.uint8]
    record: ResultRecord


class CameraState(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    state: str = Field(description="running | reconnecting | finished")
    error: str | None = Field(None, description="the source's last error while reconnecting")


class Readiness(BaseModel):
    """``GET /readyz``: ready when the model is loaded, the broker connected and no camera is failing."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    model: str | None = Field(description="'<name> v<version> on <device>', null until loaded")
    mqtt_connected: bool
    cameras: tuple[CameraState, ...]
    reasons: tuple[str, ...] = Field((), description="why not ready, one line each")


class DaemonView(Protocol):
    """The daemon as the HTTP API sees it. Every method is cheap and safe from any thread."""

    @property
    def station(self) -> str: ...

    def camera_ids(self) -> Sequence[str]: ...

    def status(self) -> dict[str, Any]:
        """The body of the retained MQTT status message, as it would be published now."""
        ...

    def readiness(self) -> Readiness: ...

    def metrics(self) -> MetricsSnapshot: ...

    def adhoc_model(self) -> AdhocModel | None:
        """The running compiled model and the ``[rules]`` decider; None before the model is loaded."""
        ...

    def latest(self, camera: str) -> Latest | None:
        """The camera's last judged frame, None before its first one."""
        ...

    def recent_not_ok(self) -> Sequence[ResultRecord]:
        """The last results that were NG or ERROR, every camera's, newest first (the live page)."""
        ...
