"""The result record: the unit of truth, complete before anyone publishes it.

The JSON published on ``<prefix>/<station>/<camera>/result`` is exactly
``ResultRecord.model_dump_json()``; its JSON Schema (``docs/result.schema.json``) is generated
from this model, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

RESULT_SCHEMA = "ovedge.result/1"
STATUS_SCHEMA = "ovedge.status/1"


class Verdict(StrEnum):
    OK = "OK"  # no defect that counts under the camera's rules
    NG = "NG"  # at least one defect counts
    ERROR = "ERROR"  # the frame could not be judged (inference failed): never a silent OK


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DefectOut(_Frozen):
    label: str
    score: float = Field(ge=0.0, le=1.0, description="confidence, 0..1")
    box: tuple[int, int, int, int] | None = Field(
        description="x0, y0, x1, y1 in the frame's pixels; null = the whole frame (classification)"
    )
    area: int | None = Field(None, description="region size in pixels (segmentation/anomaly regions)")


class FrameOut(_Frozen):
    index: int = Field(description="frame number from the camera, 0-based")
    ref: str | None = Field(description="where the frame came from: file name, part id, synthetic:<seed>:<n>")
    captured: str = Field(description="UTC capture time, ISO 8601 with microseconds and Z")
    width: int
    height: int


class ModelOut(_Frozen):
    name: str
    version: int
    device: str = Field(description="device the model runs on, e.g. CPU, GPU.0, NPU")


class TimingsOut(_Frozen):
    inference_ms: float = Field(description="the infer request's own latency")
    capture_to_result_ms: float = Field(description="from capture to the verdict being decided")


class ResultRecord(_Frozen):
    """One inspected frame."""

    schema_: Literal["ovedge.result/1"] = Field("ovedge.result/1", alias="schema", description="payload schema tag")
    seq: int = Field(
        ge=1, description="per-station sequence number: increasing across restarts, never reused (docs/MQTT.md)"
    )
    station: str
    camera: str
    time: str = Field(description="UTC time the verdict was decided, ISO 8601 with Z")
    frame: FrameOut
    model: ModelOut
    verdict: Verdict
    defects: tuple[DefectOut, ...] = Field(description="the defects that count under the camera's rules")
    timings: TimingsOut
    error: str | None = Field(None, description="why the verdict is ERROR")
    evidence: str | None = Field(
        None, description="the evidence image (JPEG, defects drawn) for this result, relative to the state folder, "
        "e.g. evidence/cam0/20260101T000000.000000Z-f42.jpg; null = none saved ([evidence] in the config)",
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def model_version(self) -> int:
        return self.model.version


class Numbered(Protocol):
    """What the spool stores and the publisher sends: a result with its sequence number."""

    @property
    def seq(self) -> int: ...

    @property
    def camera(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> int: ...

    def to_json(self) -> bytes: ...


class Unnumbered(Protocol):
    """What the decide thread hands to the spool: a judged frame that the spool numbers."""

    @property
    def camera(self) -> str: ...

    def numbered(self, seq: int) -> Numbered: ...

    def as_error(self, reason: str) -> Unnumbered: ...


@dataclass(frozen=True, slots=True)
class ResultDraft:
    """A judged frame before it has its sequence number: the spool numbers it as it stores it."""

    station: str
    camera: str
    time: str
    frame: FrameOut
    model: ModelOut
    verdict: Verdict
    defects: tuple[DefectOut, ...]
    timings: TimingsOut
    error: str | None = None
    evidence: str | None = None

    def numbered(self, seq: int) -> ResultRecord:
        return ResultRecord(
            seq=seq, station=self.station, camera=self.camera, time=self.time, frame=self.frame,
            model=self.model, verdict=self.verdict, defects=self.defects, timings=self.timings, error=self.error,
            evidence=self.evidence,
        )

    def as_error(self, reason: str) -> ResultDraft:
        """The same inspection as an ``ERROR`` result: used when its verdict cannot be stored."""
        return ResultDraft(
            station=self.station, camera=self.camera, time=self.time, frame=self.frame, model=self.model,
            verdict=Verdict.ERROR, defects=(), timings=self.timings, error=reason, evidence=self.evidence,
        )


def utc_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
