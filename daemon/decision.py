"""From detections to a verdict, by the camera's rules; everything resolved at load time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from daemon.config import Rules
from daemon.result import Verdict
from ovedge.errors import ConfigError
from ovedge.irmeta import IRMeta
from ovedge.layouts import Detection


class RulesError(ConfigError):
    """A camera's ``[rules]`` do not fit its model (unknown labels) or name an unreadable mask."""

    def __init__(self, camera: str, key: str, problem: str) -> None:
        self.camera = camera
        self.key = key  # the rules key, e.g. "thresholds"
        self.problem = problem
        super().__init__(f"camera {camera!r}: rules.{key} {problem}")


@dataclass(frozen=True, slots=True)
class Decider:
    """The rules of one camera for one model, checked against the model's labels once."""

    ok_labels: frozenset[str]
    ignore_labels: frozenset[str]
    thresholds: dict[str, float]  # every label of the model, resolved
    default_threshold: float  # for labels outside the model's list (e.g. "anomaly")
    min_area: int
    rois: tuple[tuple[int, int, int, int], ...]
    ignore_mask: npt.NDArray[np.bool_] | None  # True = ignore defects centred here

    @classmethod
    def build(cls, rules: Rules, meta: IRMeta, *, camera: str) -> Decider:
        """Resolve the rules against the model's labels (and read the ignore mask) once."""
        labels = set(meta.labels)
        ok = set(rules.ok_labels) if rules.ok_labels is not None else set(meta.ok_labels)
        for what, names in (
            ("ok_labels", ok),
            ("ignore_labels", set(rules.ignore_labels)),
            ("thresholds", set(rules.thresholds)),
        ):
            unknown = sorted(names - labels)
            if unknown and meta.task.value != "anomaly":
                raise RulesError(
                    camera=camera,
                    key=what,
                    problem=f"names labels the model does not have: {unknown} (model labels: {sorted(labels)})",
                )
        thresholds = {label: rules.thresholds.get(label, rules.min_score) for label in labels}
        return cls(
            ok_labels=frozenset(ok),
            ignore_labels=frozenset(rules.ignore_labels),
            thresholds=thresholds,
            default_threshold=rules.min_score,
            min_area=rules.min_area,
            rois=rules.rois,
            ignore_mask=_read_mask(rules.ignore_mask, camera) if rules.ignore_mask else None,
        )

    def decide(self, detections: Sequence[Detection]) -> tuple[Verdict, list[Detection]]:
        """The verdict and the defects that made it (empty for OK)."""
        counted = [d for d in detections if self._counts(d)]
        return (Verdict.NG if counted else Verdict.OK), counted

    def near_threshold(self, detections: Sequence[Detection], margin: float) -> bool:
        """Whether a finding the rules look at scored within ``margin`` of its label's threshold (either
        side): the model was unsure about this frame. Ignored labels do not count."""
        for d in detections:
            if d.label in self.ignore_labels:
                continue
            if abs(d.score - self.thresholds.get(d.label, self.default_threshold)) < margin:
                return True
        return False

    def _counts(self, d: Detection) -> bool:
        if d.label in self.ok_labels or d.label in self.ignore_labels:
            return False
        if d.score < self.thresholds.get(d.label, self.default_threshold):
            return False
        if self.min_area and d.box is not None:
            area = d.area if d.area is not None else (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])
            if area < self.min_area:
                return False
        if d.box is not None and (self.rois or self.ignore_mask is not None):
            cx = (d.box[0] + d.box[2]) // 2
            cy = (d.box[1] + d.box[3]) // 2
            if self.rois and not any(x0 <= cx < x1 and y0 <= cy < y1 for x0, y0, x1, y1 in self.rois):
                return False
            mask = self.ignore_mask
            if mask is not None and 0 <= cy < mask.shape[0] and 0 <= cx < mask.shape[1] and mask[cy, cx]:
                return False
        return True


def _read_mask(path: Path, camera: str) -> npt.NDArray[np.bool_]:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)  # absolute: resolved when the config was loaded
    if image is None:
        raise RulesError(camera=camera, key="ignore_mask", problem=f"{path} is not a readable image")
    return np.asarray(image > 0)
