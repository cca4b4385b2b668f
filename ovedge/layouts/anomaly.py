"""Anomaly: a ``[1, 1, H, W]`` map and/or a ``[1]`` image score (Anomalib's outputs).

Regions and the whole-frame anomaly are labelled ``"anomaly"``; a map region at or above the
threshold is reported even when the image score is below it (a visible defect is never hidden).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, OutputLayout
from ovedge.layouts.records import ANOMALY_LABEL, Detection
from ovedge.layouts.regions import map_geometry, regions
from ovedge.layouts.shapes import Shape, fmts, is_map, plane, size_one


@dataclass(frozen=True, slots=True)
class Anomaly:
    meta: IRMeta
    map_index: int | None
    score_index: int | None
    outlines: bool = False  # regions carry their outlines (annotation; not the camera path)

    def image_score(self, outputs: Sequence[np.ndarray]) -> float:
        """The image's anomaly score: the score output, else the map's maximum."""
        if self.score_index is not None:
            return float(np.asarray(outputs[self.score_index]).reshape(-1)[0])
        if self.map_index is not None:
            return float(np.asarray(outputs[self.map_index]).max())
        return 0.0

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        threshold = self.meta.anomaly_threshold
        found: list[Detection] = []
        if self.map_index is not None:
            map_hw = plane(outputs[self.map_index])
            amap = np.asarray(outputs[self.map_index], dtype=np.float32).reshape(map_hw)
            maff, outside = map_geometry(self.meta.preprocessing, frame_hw, map_hw)
            mask = amap >= threshold
            if outside is not None:
                mask &= ~outside
            found = regions(mask, amap, ANOMALY_LABEL, maff, frame_hw, peak=True, outlines=self.outlines)
            found.sort(key=lambda d: -d.score)
        if not found:
            score = self.image_score(outputs)
            if score >= threshold:
                found = [Detection(ANOMALY_LABEL, score, None)]
        return found


WANT = {
    OutputLayout.ANOMALY_MAP_SCORE: "two outputs: a [1, 1, H, W] map and a [1] score (any order)",
    OutputLayout.ANOMALY_MAP: "one [1, 1, H, W] map output",
    OutputLayout.ANOMALY_SCORE: "one [1] score output",
}


def build(meta: IRMeta, shapes: Sequence[Shape]) -> Anomaly:
    layout = meta.output_layout
    scores = [i for i, s in enumerate(shapes) if size_one(s)]
    maps = [i for i, s in enumerate(shapes) if is_map(s)]
    if layout is OutputLayout.ANOMALY_MAP_SCORE and len(shapes) == 2 and len(scores) == len(maps) == 1:
        return Anomaly(meta, maps[0], scores[0])
    if layout is OutputLayout.ANOMALY_MAP and len(shapes) == 1 and maps:
        return Anomaly(meta, maps[0], None)
    if layout is OutputLayout.ANOMALY_SCORE and len(shapes) == 1 and scores:
        return Anomaly(meta, None, scores[0])
    raise ModelError(f"anomaly IR ({layout}) must have {WANT[layout]}; found {fmts(shapes)}")
