"""``--task``: the task and output layout from the IR's output shapes (``auto``), or a given one checked.

What the shapes mean is :mod:`ovedge.layouts.recognise`; this module turns it into the CLI's answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from convert.options import TaskChoice
from ovedge.errors import ConvertError
from ovedge.irmeta import OutputLayout, Task
from ovedge.layouts import Shape, candidates


def _fmt(shapes: Sequence[Shape]) -> str:
    return ", ".join("[" + ",".join(map(str, s)) + "]" for s in shapes)


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
