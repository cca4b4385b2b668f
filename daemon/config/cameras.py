"""``[[cameras]]``: where frames come from, how they are queued, how they are judged."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from camera.config import SourceConfig
from daemon.config._base import Section, TopicLevel
from daemon.config.rules import Rules
from ovedge.paths import ConfigPath

__all__ = ["CameraConfig", "CameraMode", "Crop"]

Crop = tuple[int, int, int, int]
"""``[x0, y0, x1, y1]`` in frame pixels."""


class CameraMode(StrEnum):
    FREE_RUN = "free-run"  # latest frame wins: a slow model drops frames (counted), never lags
    EVERY_FRAME = "every-frame"  # back-pressure: the camera waits, no frame skipped
    TRIGGERED = "triggered"  # one frame per trigger (Daemon.trigger), carrying its part id


class CameraConfig(Section):
    """One camera: where frames come from and how they are judged."""

    id: TopicLevel = Field(description="camera id, one MQTT topic level")
    source: SourceConfig = Field(description="the frame source, chosen by its `type` (camera.config)")
    mode: CameraMode = Field(
        CameraMode.FREE_RUN,
        description="free-run (latest wins), every-frame (none skipped) or triggered (one frame per trigger, "
        "with its part id; software trigger where the source has one, else the next frame)",
    )
    rules: Rules | None = Field(None, description="overrides [rules] for this camera")
    trigger_timeout: float = Field(
        5.0, gt=0.0, description="triggered: seconds from a trigger to its frame; later = ERROR result with the part id"
    )
    trigger_queue: int = Field(
        16, ge=1, le=10_000,
        description="triggered: triggers waiting for the camera; one more is answered at once with an ERROR result",
    )
    trigger_folder: ConfigPath | None = Field(
        None,
        description="triggered: a folder where each new file is one trigger (its text, stripped, is the part id); "
        "write it under a dot-name and rename it into place; it is deleted once taken",
    )
    crops: tuple[Crop, ...] = Field(
        (),
        description="[[x0, y0, x1, y1], ...] in frame pixels: each rectangle is inferred on its own (tiles); "
        "boxes come back in frame pixels and the frame's verdict is the worst of its crops; empty = the whole frame",
    )

    @field_validator("crops")
    @classmethod
    def _crops(cls, v: tuple[Crop, ...]) -> tuple[Crop, ...]:
        for c in v:
            if not (0 <= c[0] < c[2] and 0 <= c[1] < c[3]):
                msg = f"each crop is [x0, y0, x1, y1] with 0 <= x0 < x1 and 0 <= y0 < y1, got {list(c)}"
                raise ValueError(msg)
        return v

    @model_validator(mode="after")
    def _trigger_keys(self) -> CameraConfig:
        if self.trigger_folder is not None and self.mode is not CameraMode.TRIGGERED:
            msg = "trigger_folder needs mode = \"triggered\""
            raise ValueError(msg)
        return self
