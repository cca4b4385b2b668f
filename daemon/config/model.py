"""``[model]``: which IR to run, where, and how."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from daemon.config._base import Section
from daemon.config.device import DeviceString
from daemon.config.dirs import default_cache_dir
from ovedge.paths import ConfigPath

__all__ = ["InferencePrecision", "ModelConfig", "PerformanceHint"]


class PerformanceHint(StrEnum):
    """OpenVINO's performance hint; :func:`daemon.devices.compile_properties` maps it."""

    LATENCY = "latency"
    THROUGHPUT = "throughput"
    CUMULATIVE_THROUGHPUT = "cumulative_throughput"


class InferencePrecision(StrEnum):
    """The execution precision hint; :func:`daemon.devices.compile_properties` maps it."""

    F32 = "f32"
    F16 = "f16"
    BF16 = "bf16"


class ModelConfig(Section):
    """Which IR to run and where."""

    store: ConfigPath = Field(
        Path("ir_models"), validate_default=True, description="model store folder (ir_models/<name>/<version>/)"
    )
    name: str = Field("demo", description="model name in the store")
    version: int | Literal["latest"] = Field("latest", description="integer version or \"latest\"")
    device: DeviceString = Field(
        "CPU", description="CPU, GPU, GPU.1, NPU, AUTO, AUTO:NPU,GPU,CPU, HETERO:..., MULTI:... (checked when parsed)"
    )
    fallback: tuple[DeviceString, ...] = Field(
        (), description="devices to use when `device` is not present, e.g. [\"CPU\"]"
    )
    hint: PerformanceHint = Field(PerformanceHint.LATENCY, description="OpenVINO performance hint")
    num_requests: int = Field(
        0, ge=0,
        description="infer requests in flight; 0 = the device's optimal number plus one queued per stream "
        "(+1 for the latency hint, x2 for the throughput hints)",
    )
    streams: int | None = Field(None, ge=1, description="inference streams; unset = chosen by the hint")
    threads: int | None = Field(None, ge=1, description="CPU inference threads; unset = all cores")
    inference_precision: InferencePrecision | None = Field(
        None, description="execution precision hint: f32, f16 or bf16; unset = device default"
    )
    static_shapes: bool = Field(
        True,
        description="after the first frame of each size, compile a static-shape copy of the model for that "
        "size in the background (checked against the dynamic model on that frame) and run later frames "
        "of that size on it; at most 4 sizes per model, other frames use the dynamic model",
    )
    cache: bool = Field(True, description="cache compiled blobs (faster starts)")
    cache_dir: ConfigPath = Field(
        default_factory=default_cache_dir,
        validate_default=True,
        description="compiled-model cache; unset = $CACHE_DIRECTORY/ovedge, $XDG_CACHE_HOME/ovedge or "
        "~/.cache/ovedge, never the working dir",
    )
    verify_hashes: bool = Field(True, description="check model.xml/bin against manifest.json before loading")
    trusted_keys: tuple[ConfigPath, ...] = Field(
        (), description="Ed25519 public keys (PEM); when set, only models signed by one of them load"
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        # One message for the union instead of one per member ("not an int", "not 'latest'").
        if value == "latest" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        msg = f'{value!r} is not a version: give an integer version (1, 2, ...) or "latest"'
        raise ValueError(msg)
