"""torchvision-style detection: three outputs, boxes ``[N, 4]`` (x0, y0, x1, y1 input pixels), scores, labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta
from ovedge.layouts.geometry import affine, boxes_to_frame
from ovedge.layouts.records import MAX_DETECTIONS, Detection, to_detections
from ovedge.layouts.shapes import Shape, dim_is, fmts, squeeze_leading


@dataclass(frozen=True, slots=True)
class BoxesScoresLabels:
    """Rows above the confidence threshold, best first; labels index ``meta.labels`` directly."""

    meta: IRMeta

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        boxes = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(outputs[1], dtype=np.float32).reshape(-1)
        labels = np.asarray(outputs[2]).reshape(-1).astype(np.int64)
        keep = scores >= self.meta.confidence_threshold
        if not keep.any():
            return []
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        order = np.argsort(-scores, kind="stable")[:MAX_DETECTIONS]
        aff = affine(self.meta.preprocessing, frame_hw)
        return to_detections(
            self.meta.labels, labels[order], scores[order], boxes_to_frame(boxes[order], aff, frame_hw)
        )


def build(meta: IRMeta, shapes: Sequence[Shape]) -> BoxesScoresLabels:
    ok = len(shapes) == 3
    if ok:
        boxes = squeeze_leading(shapes[0], 2)
        scores = squeeze_leading(shapes[1], 1)
        labels = squeeze_leading(shapes[2], 1)
        ok = boxes is not None and dim_is(boxes[1], 4) and scores is not None and labels is not None
    if not ok:
        raise ModelError(
            "torchvision-style detection IR must have three outputs in this order: boxes [N, 4] "
            f"(x0, y0, x1, y1 in input pixels), scores [N], labels [N]; found {fmts(shapes)}"
        )
    return BoxesScoresLabels(meta)
