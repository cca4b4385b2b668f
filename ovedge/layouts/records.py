"""What every decoder produces: :class:`Detection` records, and the seam :class:`PostProcessor`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

ANOMALY_LABEL = "anomaly"
MAX_DETECTIONS = 300  # boxes kept per frame after NMS, best first (as Ultralytics' max_det)
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding on one frame (a class, a box, a region, or the whole frame)."""

    label: str
    score: float
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 in ORIGINAL frame pixels; None = whole frame
    area: int | None = None  # region pixels (segmentation/anomaly); None -> box area
    # A region's outer outline, flat x0, y0, x1, y1, ... in frame pixels; only from a decoder built
    # with ``outlines=True`` (annotation), never on the camera path; None for boxes and classes.
    outline: tuple[int, ...] | None = None


class PostProcessor(Protocol):
    """Decodes one frame's outputs (in output-index order) for a frame of ``frame_hw``."""

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]: ...


def to_detections(
    labels: Sequence[str],
    class_ids: npt.NDArray[np.integer[Any]],
    scores: FloatArray,
    boxes: npt.NDArray[np.int64],
    areas: npt.NDArray[np.int64] | None = None,
    *,
    outlines: Sequence[tuple[int, ...] | None] | None = None,
) -> list[Detection]:
    """Build the records; boxes left empty by clipping (wholly outside the frame) are dropped.

    An index outside ``labels`` becomes ``"class_<i>"``: an unexpected class is never dropped.
    """
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    n_labels = len(labels)
    names = [labels[c] if 0 <= c < n_labels else f"class_{c}" for c in class_ids[keep].tolist()]
    box_list = [tuple(b) for b in boxes[keep].tolist()]
    score_list = scores[keep].tolist()
    area_list = areas[keep].tolist() if areas is not None else [None] * len(names)
    outline_list = [o for o, k in zip(outlines, keep.tolist(), strict=True) if k] if outlines is not None \
        else [None] * len(names)
    return [
        Detection(name, score, box, area, outline)
        for name, score, box, area, outline in zip(names, score_list, box_list, area_list, outline_list, strict=True)
    ]
