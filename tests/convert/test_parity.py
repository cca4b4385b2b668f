"""Parity decodes both sides with the daemon's own decoder (ovedge.layouts) and compares what it reports."""

from __future__ import annotations

import numpy as np
import pytest

from convert.parity import compare
from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, OutputLayout, Preprocessing, ResizeMode

PRE = Preprocessing(input_width=64, input_height=64, resize=ResizeMode.LETTERBOX)


def _yolo(*boxes: tuple[float, float, float, float, float]) -> list[np.ndarray]:
    """A [1, 4+1, N] head: cx, cy, w, h, score of one class per column."""
    return [np.array(boxes, np.float32).T[None]]


def test_detection_agreement_follows_the_decoded_boxes() -> None:
    """The same best boxes agree; the IR's boxes moved far off disagree; nothing reported still compares the best."""
    meta = IRMeta(task="detection", output_layout=OutputLayout.YOLOV8, labels=("dent",), preprocessing=PRE)
    ref = _yolo((20, 20, 10, 10, 0.3), (50, 40, 8, 8, 0.2))  # below the 0.5 threshold: the daemon reports nothing
    moved = _yolo((40, 44, 10, 10, 0.3), (10, 8, 8, 8, 0.2))
    same = compare(meta, [(1, 5, 2)], [ref], [ref], [(480, 640)], reference="ref", threshold=0.99)
    off = compare(meta, [(1, 5, 2)], [ref], [moved], [(480, 640)], reference="ref", threshold=0.99)
    assert (same.metric, same.agreement, same.extra["mean box IoU"], same.passed) == (
        "detection agreement", 1.0, 1.0, True
    )
    assert same.extra["reported detections"] == 0.0
    assert (off.agreement, off.passed) == (0.0, False)


def test_segmentation_mask_iou_from_the_decoders_class_map() -> None:
    """SEG_LOGITS: the class maps the daemon's decoder derives are compared by mean IoU over classes."""
    meta = IRMeta(task="segmentation", output_layout=OutputLayout.SEG_LOGITS, labels=("ok", "dent"), preprocessing=PRE)
    ref = np.zeros((1, 2, 4, 4), np.float32)
    ref[0, 0] = 1.0
    ref[0, 1, :2, :2] = 2.0  # 4 dent pixels
    ir = ref.copy()
    ir[0, 1, 3, 3] = 2.0  # one more dent pixel
    result = compare(meta, [(1, 2, 4, 4)], [[ref]], [[ir]], [(4, 4)], reference="ref", threshold=0.5)
    assert result.metric == "mask IoU"
    assert result.agreement == pytest.approx((11 / 12 + 4 / 5) / 2)


def test_outputs_that_do_not_fit_the_layout_are_refused_as_the_daemon_would() -> None:
    """Parity builds the decoder through the same registry: a wrong label count is the daemon's ModelError."""
    meta = IRMeta(task="detection", output_layout=OutputLayout.YOLOV8, labels=("a", "b"), preprocessing=PRE)
    with pytest.raises(ModelError, match=r"4\+C = 4\+len\(labels\) = 6, found \[1, 5, 2\]"):
        compare(meta, [(1, 5, 2)], [], [], [], reference="ref", threshold=0.5)
