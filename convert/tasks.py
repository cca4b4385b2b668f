"""Tell the task and output layout from the IR's output shapes (``--task auto``) or check a given one."""

from __future__ import annotations

from collections.abc import Sequence

from convert.options import TaskChoice
from ovedge.errors import ConvertError
from ovedge.irmeta import OutputLayout, Task

Shape = tuple[int, ...]


def _fmt(shapes: Sequence[Shape]) -> str:
    return ", ".join("[" + ",".join(map(str, s)) + "]" for s in shapes)


def candidates(shapes: Sequence[Shape]) -> list[tuple[Task, OutputLayout]]:
    """Every (task, layout) the output shapes fit, most specific first."""
    if len(shapes) == 1:
        return _single(shapes[0])
    if len(shapes) == 2:
        maps = [s for s in shapes if len(s) == 4 and s[:2] == (1, 1)]
        scores = [s for s in shapes if s in {(1,), (1, 1)}]
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
    if s in {(1,), (1, 1)}:
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


def resolve(shapes: Sequence[Shape], choice: TaskChoice) -> tuple[Task, OutputLayout]:
    """The (task, layout) for ``--task``; refuses when shapes do not fit or ``auto`` is ambiguous."""
    found = candidates(shapes)
    if choice is TaskChoice.AUTO:
        tasks = {task for task, _ in found}
        if len(found) == 1 or (found and len(tasks) == 1):
            return found[0]
        if not found:
            raise ConvertError(
                f"cannot tell the task from the output shapes {_fmt(shapes)}: expected [1,C] (classification), "
                "[1,4+C,N] or [1,1,N,7] or boxes/scores/labels (detection), [1,C,H,W] (segmentation), "
                "a [1,1,H,W] map and/or [1] score (anomaly)"
            )
        names = " or ".join(sorted(t.value for t in tasks))
        raise ConvertError(f"output shapes {_fmt(shapes)} could be {names}: say which with --task")
    task = Task(choice.value)
    for found_task, layout in found:
        if found_task is task:
            return task, layout
    raise ConvertError(f"--task {task.value} does not fit the model's output shapes {_fmt(shapes)}")


def label_count(shapes: Sequence[Shape], layout: OutputLayout) -> int | None:
    """How many labels the outputs imply (None when they do not say)."""
    s = shapes[0]
    if layout is OutputLayout.LOGITS:
        return s[1]
    if layout is OutputLayout.YOLOV8:
        return s[1] - 4
    if layout is OutputLayout.SEG_LOGITS:
        return s[1]
    return None
