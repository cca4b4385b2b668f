"""Which layouts a model's static output shapes fit: the converter's ``--task auto``.

Stricter than the decoders' load-time checks (which accept dynamic dimensions): here the shapes
must tell one layout from another, most specific first.
"""

from __future__ import annotations

from collections.abc import Sequence

from ovedge.irmeta import OutputLayout, Task
from ovedge.layouts.shapes import Shape

SCORE_SHAPES = {(1,), (1, 1)}


def candidates(shapes: Sequence[Shape]) -> list[tuple[Task, OutputLayout]]:
    """Every (task, layout) the output shapes fit, most specific first."""
    if len(shapes) == 1:
        return _single(shapes[0])
    if len(shapes) == 2:
        maps = [s for s in shapes if len(s) == 4 and s[:2] == (1, 1)]
        scores = [s for s in shapes if s in SCORE_SHAPES]
        if maps and scores:
            return [(Task.ANOMALY, OutputLayout.ANOMALY_MAP_SCORE)]
    if len(shapes) == 3:
        boxes = [s for s in shapes if len(s) in (2, 3) and s[-1] == 4]
        flat = [s for s in shapes if len(s) in (1, 2) and s[-1] != 4]
        if len(boxes) == 1 and len(flat) == 2:
            return [(Task.DETECTION, OutputLayout.BOXES_SCORES_LABELS)]
    return []


def _single(s: Shape) -> list[tuple[Task, OutputLayout]]:  # noqa: PLR0911 - one return per layout
    if len(s) == 2 and s[0] == 1 and s[1] >= 2:
        return [(Task.CLASSIFICATION, OutputLayout.LOGITS)]
    if s in SCORE_SHAPES:
        return [(Task.ANOMALY, OutputLayout.ANOMALY_SCORE)]
    if len(s) == 4 and s[:2] == (1, 1) and s[3] == 7:
        return [(Task.DETECTION, OutputLayout.SSD)]
    if len(s) == 3 and s[0] == 1 and s[1] > 4 and s[2] > s[1]:
        return [(Task.DETECTION, OutputLayout.YOLOV8)]
    if len(s) == 4 and s[0] == 1 and s[1] >= 2 and s[2] > 1 and s[3] > 1:
        return [(Task.SEGMENTATION, OutputLayout.SEG_LOGITS)]
    if len(s) == 4 and s[:2] == (1, 1) and s[2] > 1 and s[3] > 1:
        # a one-channel map: an anomaly map or a class-index map -- ambiguous for --task auto
        return [(Task.ANOMALY, OutputLayout.ANOMALY_MAP), (Task.SEGMENTATION, OutputLayout.CLASS_MAP)]
    if len(s) == 3 and s[0] == 1 and s[1] > 1 and s[2] > 1:
        return [(Task.SEGMENTATION, OutputLayout.CLASS_MAP)]
    return []


def label_count(shapes: Sequence[Shape], layout: OutputLayout) -> int | None:
    """How many labels the outputs imply (None when they do not say)."""
    s = shapes[0]
    if layout in (OutputLayout.LOGITS, OutputLayout.SEG_LOGITS):
        return s[1]
    if layout is OutputLayout.YOLOV8:
        return s[1] - 4
    return None
