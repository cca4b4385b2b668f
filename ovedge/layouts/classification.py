"""Classification: one ``[1, C]`` output (``[1, C, 1, 1]`` from a conv head), logits or probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, OutputLayout
from ovedge.layouts.records import Detection
from ovedge.layouts.shapes import Shape, dim_is, fmts, squeeze_leading

TOP_K = 1  # classification reports the best label only


@dataclass(frozen=True, slots=True)
class Classification:
    """Softmax (``logits``) or not (``probabilities``), then the best ``top_k`` labels, whole frame."""

    labels: tuple[str, ...]
    softmax: bool
    top_k: int

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        scores = np.asarray(outputs[0], dtype=np.float32).reshape(-1)
        if scores.size != len(self.labels):  # only possible when the IR left C dynamic
            raise ModelError(f"classification output has {scores.size} scores for {len(self.labels)} labels")
        if self.softmax:
            exp = np.exp(scores - scores.max())
            scores = exp / exp.sum()
        if self.top_k == 1:
            order = [int(scores.argmax())]
        else:
            order = [int(i) for i in np.argsort(-scores, kind="stable")[: self.top_k]]
        return [Detection(self.labels[i], float(scores[i]), None) for i in order]


def build(meta: IRMeta, shapes: Sequence[Shape]) -> Classification:
    n = len(meta.labels)
    core = squeeze_leading(shapes[0], 1) if len(shapes) == 1 else None
    if core is None and len(shapes) == 1:  # [1, C, 1, 1] from a conv head
        trailing = tuple(shapes[0])
        while len(trailing) > 2 and dim_is(trailing[-1], 1):
            trailing = trailing[:-1]
        core = squeeze_leading(trailing, 1)
    if core is None or not dim_is(core[0], n):
        raise ModelError(
            f"classification IR must have one [1, C] output with C = len(labels) = {n}, found {fmts(shapes)}"
        )
    return Classification(meta.labels, meta.output_layout is OutputLayout.LOGITS, min(TOP_K, n))
