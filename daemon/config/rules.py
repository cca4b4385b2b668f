"""``[rules]`` and ``[cameras.rules]``: how detections become a verdict."""

from __future__ import annotations

from pydantic import Field, field_validator

from daemon.config._base import Section
from ovedge.paths import ConfigPath

__all__ = ["Rules"]


class Rules(Section):
    """How detections become a verdict. Per-camera rules replace these defaults key by key."""

    ok_labels: tuple[str, ...] | None = Field(
        None, description="labels that mean a good part; unset = the ok labels recorded in the IR"
    )
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="score from which a defect counts")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="per-label min_score, e.g. {scratch = 0.7}"
    )
    min_area: int = Field(0, ge=0, description="smallest defect region that counts, in pixels")
    ignore_labels: tuple[str, ...] = Field((), description="labels reported but never NG")
    rois: tuple[tuple[int, int, int, int], ...] = Field(
        (), description="regions of interest [[x0, y0, x1, y1], ...]: only defects centred inside one count; "
        "empty = the whole frame"
    )
    ignore_mask: ConfigPath | None = Field(
        None, description="image the size of the frame: defects centred on a non-zero pixel never count"
    )

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: t for k, t in v.items() if not 0.0 <= t <= 1.0}
        if bad:
            msg = f"must be between 0 and 1: {bad}"
            raise ValueError(msg)
        return v

    @field_validator("rois")
    @classmethod
    def _rois(cls, v: tuple[tuple[int, int, int, int], ...]) -> tuple[tuple[int, int, int, int], ...]:
        for r in v:
            if not (r[0] < r[2] and r[1] < r[3]):
                msg = f"each roi is [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {list(r)}"
                raise ValueError(msg)
        return v
