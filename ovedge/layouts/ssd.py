"""SSD detection: one ``[1, 1, N, 7]`` DetectionOutput (image_id, label, conf, x0, y0, x1, y1 normalised)."""

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
class Ssd:
    """Rows up to the first image_id -1, above the confidence threshold, best first.

    Label indices index ``meta.labels`` directly (put ``"background"`` first when the model counts it).
    """

    meta: IRMeta

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        det = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 7)
        end = np.flatnonzero(det[:, 0] < 0)  # image_id -1 ends the valid rows
        if end.size:
            det = det[: end[0]]
        det = det[det[:, 2] >= self.meta.confidence_threshold]
        if len(det) == 0:
            return []
        det = det[np.argsort(-det[:, 2], kind="stable")[:MAX_DETECTIONS]]
        pre = self.meta.preprocessing
        xyxy = det[:, 3:7] * np.array(
            [pre.input_width, pre.input_height, pre.input_width, pre.input_height], dtype=np.float32
        )
        aff = affine(pre, frame_hw)
        return to_detections(
            self.meta.labels, det[:, 1].astype(np.int64), det[:, 2], boxes_to_frame(xyxy, aff, frame_hw)
        )


def build(meta: IRMeta, shapes: Sequence[Shape]) -> Ssd:
    core = squeeze_leading(shapes[0], 2) if len(shapes) == 1 else None
    if core is None or not dim_is(core[1], 7):
        raise ModelError(
            "SSD detection IR must have one [1, 1, N, 7] DetectionOutput "
            f"(image_id, label, conf, x0, y0, x1, y1), found {fmts(shapes)}"
        )
    return Ssd(meta)
