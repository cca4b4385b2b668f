"""YOLOv8 detection: one ``[1, 4+C, N]`` output (cx, cy, w, h in input pixels, then class scores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta
from ovedge.layouts.geometry import affine, boxes_to_frame
from ovedge.layouts.records import MAX_DETECTIONS, Detection, to_detections
from ovedge.layouts.shapes import Shape, dim_is, fmts, squeeze_leading

MAX_CANDIDATES = 1000  # YOLO boxes above the threshold that enter NMS, best first


@dataclass(frozen=True, slots=True)
class YoloV8:
    """Confidence threshold, per-class NMS (OpenCV), boxes mapped back to the frame."""

    meta: IRMeta

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        pred = np.asarray(outputs[0], dtype=np.float32)
        pred = pred.reshape(pred.shape[-2], pred.shape[-1])  # [4 + C, N]
        if pred.shape[0] != 4 + len(self.meta.labels):  # only possible when the IR left 4+C dynamic
            raise ModelError(f"YOLOv8 output has {pred.shape[0]} rows, expected 4+{len(self.meta.labels)}")
        class_scores = pred[4:]
        scores = class_scores.max(axis=0)
        keep = np.flatnonzero(scores >= self.meta.confidence_threshold)
        if keep.size == 0:
            return []
        if keep.size > MAX_CANDIDATES:  # NMS is quadratic: a flood of candidates is cut to the best
            keep = keep[np.argpartition(-scores[keep], MAX_CANDIDATES)[:MAX_CANDIDATES]]
        cx, cy, w, h = pred[:4, keep]
        scores, class_ids = scores[keep], class_scores[:, keep].argmax(axis=0)
        xywh = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        picked = np.asarray(
            cv2.dnn.NMSBoxesBatched(
                xywh,  # type: ignore[arg-type]  # the stubs say Sequence; float32 arrays are accepted
                scores,
                class_ids.astype(np.int32),
                self.meta.confidence_threshold,
                self.meta.iou_threshold,
            ),
            dtype=np.int64,
        ).reshape(-1)[:MAX_DETECTIONS]
        xywh, scores, class_ids = xywh[picked], scores[picked], class_ids[picked]
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        aff = affine(self.meta.preprocessing, frame_hw)
        return to_detections(self.meta.labels, class_ids, scores, boxes_to_frame(xyxy, aff, frame_hw))


def build(meta: IRMeta, shapes: Sequence[Shape]) -> YoloV8:
    want = 4 + len(meta.labels)
    core = squeeze_leading(shapes[0], 2) if len(shapes) == 1 else None
    if core is None or not dim_is(core[0], want):
        raise ModelError(
            f"YOLOv8 detection IR must have one [1, 4+C, N] output with 4+C = 4+len(labels) = {want}, "
            f"found {fmts(shapes)} (a transposed [1, N, 4+C] head must be re-exported)"
        )
    return YoloV8(meta)
