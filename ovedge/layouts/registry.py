"""The decoder of each output layout: ONE explicit registry, chosen once when a model is loaded.

:func:`build_postprocessor` also checks the model's output count and shapes against the layout and
refuses a mismatch with a :class:`~ovedge.errors.ModelError`, so nothing is guessed per frame. The
daemon decodes every frame with it and the converter's parity check decodes the reference's and the
IR's outputs with it, so parity proves what the daemon will report.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

from ovedge.irmeta import IRMeta, OutputLayout
from ovedge.layouts import anomaly, boxes_scores_labels, classification, segmentation, ssd, yolov8
from ovedge.layouts.records import PostProcessor
from ovedge.layouts.shapes import Shape, fmts

log = logging.getLogger(__name__)

Builder = Callable[[IRMeta, Sequence[Shape]], PostProcessor]

DECODERS: dict[OutputLayout, Builder] = {
    OutputLayout.LOGITS: classification.build,
    OutputLayout.PROBABILITIES: classification.build,
    OutputLayout.YOLOV8: yolov8.build,
    OutputLayout.SSD: ssd.build,
    OutputLayout.BOXES_SCORES_LABELS: boxes_scores_labels.build,
    OutputLayout.SEG_LOGITS: segmentation.build,
    OutputLayout.CLASS_MAP: segmentation.build,
    OutputLayout.ANOMALY_MAP_SCORE: anomaly.build,
    OutputLayout.ANOMALY_MAP: anomaly.build,
    OutputLayout.ANOMALY_SCORE: anomaly.build,
}

# Layouts whose rows are sorted by score: rows of near-equal score may come in another order from
# another runtime or precision, so their raw outputs are compared as sorted values.
UNORDERED_ROWS = frozenset({OutputLayout.SSD, OutputLayout.BOXES_SCORES_LABELS})


def build_postprocessor(
    meta: IRMeta, output_shapes: Sequence[tuple[int, ...]], *, outlines: bool = False
) -> PostProcessor:
    """Choose and configure the decoder for ``meta`` once, checking the model's output shapes.

    ``output_shapes`` are in output-index order; a dynamic dimension is -1 or 0 (see
    :func:`ovedge.layouts.shapes.output_shapes`). Raises :class:`ModelError` naming the expected
    and found shapes. With ``outlines``, segmentation and anomaly-map regions also carry their
    outer outline (for annotation, e.g. CVAT polygons); other layouts have none to give.
    """
    shapes = [tuple(int(d) for d in s) for s in output_shapes]
    decoder = DECODERS[meta.output_layout](meta, shapes)
    if outlines and isinstance(decoder, segmentation.Segmentation | anomaly.Anomaly):
        decoder = dataclasses.replace(decoder, outlines=True)
    log.debug("post-processing %s/%s for outputs %s", meta.task, meta.output_layout, fmts(shapes))
    return decoder
