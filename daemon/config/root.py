"""The whole of ``config.toml``: one object holding every section."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from daemon.config._base import Section
from daemon.config.cameras import CameraConfig
from daemon.config.commands import CommandsConfig
from daemon.config.evidence import EvidenceConfig
from daemon.config.http import HttpConfig
from daemon.config.logs import LoggingConfig
from daemon.config.model import ModelConfig
from daemon.config.mqtt import MqttConfig
from daemon.config.rules import Rules
from daemon.config.spool import SpoolConfig
from daemon.config.state import StateConfig
from daemon.config.station import StationConfig

__all__ = ["DaemonConfig"]


class DaemonConfig(Section):
    """The whole of ``config.toml``.

    A missing table is validated from ``{}`` (``validate_default``), not copied from an object
    built at import, so its paths are resolved against this config file's folder too.
    """

    station: StationConfig = Field(default_factory=dict, validate_default=True)
    model: ModelConfig = Field(default_factory=dict, validate_default=True)
    rules: Rules = Field(default_factory=dict, validate_default=True)
    cameras: tuple[CameraConfig, ...] = Field(description="at least one [[cameras]] table")
    mqtt: MqttConfig = Field(default_factory=dict, validate_default=True)
    state: StateConfig = Field(default_factory=dict, validate_default=True)
    spool: SpoolConfig = Field(default_factory=dict, validate_default=True)
    logging: LoggingConfig = Field(default_factory=dict, validate_default=True)
    http: HttpConfig = Field(default_factory=dict, validate_default=True)
    commands: CommandsConfig = Field(default_factory=dict, validate_default=True)
    evidence: EvidenceConfig = Field(default_factory=dict, validate_default=True)

    @field_validator("cameras")
    @classmethod
    def _at_least_one(cls, cameras: tuple[CameraConfig, ...]) -> tuple[CameraConfig, ...]:
        # Checked here rather than with min_length: an after-validator runs only when every camera
        # validated, so a camera with an error is reported once, without a derived "too short".
        if not cameras:
            msg = "at least one camera is required: add a [[cameras]] table"
            raise ValueError(msg)
        return cameras

    @model_validator(mode="after")
    def _unique_cameras(self) -> DaemonConfig:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            msg = f"camera ids must be unique, repeated: {dupes}"
            raise ValueError(msg)
        unknown = sorted(set(self.evidence.publish) - set(ids))
        if unknown:
            msg = f"evidence.publish names cameras that are not configured: {unknown}; use ids from [[cameras]]"
            raise ValueError(msg)
        return self

    def rules_for(self, camera: CameraConfig) -> Rules:
        """``[rules]`` with the keys the camera's own ``[cameras.rules]`` sets replaced."""
        if camera.rules is None:
            return self.rules
        overrides = camera.rules.model_dump(exclude_unset=True)
        return self.rules.model_copy(update=overrides)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"ovedge-{self.station.name}"

    def state_dir(self) -> Path:
        """``state.dir``: decided at load (:mod:`daemon.config.dirs` when the file leaves it unset)."""
        return self.state.dir

    def cache_dir(self) -> Path:
        """``model.cache_dir``: decided at load (:mod:`daemon.config.dirs` when the file leaves it unset)."""
        return self.model.cache_dir
