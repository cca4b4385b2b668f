"""``[[cameras]]``: where frames come from, how they are queued, how they are judged."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from camera.config import SourceConfig
from daemon.config._base import Section, TopicLevel
from daemon.config.rules import Rules

__all__ = ["CameraConfig", "CameraMode"]


class CameraMode(StrEnum):
    FREE_RUN = "free-run"  # latest frame wins: a slow model drops frames (counted), never lags
    EVERY_FRAME = "every-frame"  # back-pressure: the camera waits, no frame skipped


class CameraConfig(Section):
    """One camera: where frames come from and how they are judged."""

    id: TopicLevel = Field(description="camera id, one MQTT topic level")
    source: SourceConfig = Field(description="the frame source, chosen by its `type` (camera.config)")
    mode: CameraMode = Field(CameraMode.FREE_RUN, description="free-run (latest wins) or every-frame")
    rules: Rules | None = Field(None, description="overrides [rules] for this camera")
