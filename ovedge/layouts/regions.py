"""Segmentation and anomaly maps -> regions: connected components mapped back to frame pixels."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from ovedge.irmeta import Preprocessing
from ovedge.layouts.geometry import Affine, affine, boxes_to_frame, map_affine, outside_valid
from ovedge.layouts.records import Detection, FloatArray, to_detections


def map_geometry(
    pre: Preprocessing, frame_hw: tuple[int, int], map_hw: tuple[int, int]
) -> tuple[Affine, npt.NDArray[np.bool_] | None]:
    """The map -> frame affine, and the mask of map pixels in the letterbox padding (or None)."""
    maff = map_affine(affine(pre, frame_hw), pre, map_hw)
    return maff, outside_valid(map_hw, maff)


def regions(
    mask: npt.NDArray[np.bool_],
    score_map: FloatArray,
    label: str,
    maff: Affine,
    frame_hw: tuple[int, int],
    *,
    peak: bool,
) -> list[Detection]:
    """Connected components of ``mask`` -> one Detection each (bbox, area, mean or peak score)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    # label only the window that holds defect pixels (defects are small; the map is not)
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    mask = np.ascontiguousarray(mask[r0:r1, c0:c1])
    score_map = score_map[r0:r1, c0:c1]
    n, comp_any, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    comp = np.asarray(comp_any, dtype=np.int32)
    stats = stats[1:].astype(np.int64)
    stats[:, 0] += c0
    stats[:, 1] += r0
    members, values = comp[mask], score_map[mask]  # the region pixels only
    if peak:
        score = np.full(n, -np.inf, dtype=np.float64)
        np.maximum.at(score, members, values)
        score = score[1:]
    else:
        score = np.bincount(members, weights=values, minlength=n)[1:] / np.maximum(stats[:, 4], 1)
    x, y, w, h, area = (stats[:, i].astype(np.float64) for i in range(5))
    xyxy = np.stack([x, y, x + w, y + h], axis=1)
    boxes = boxes_to_frame(xyxy, maff, frame_hw)
    px_area = np.maximum(np.rint(area * abs(maff.kx * maff.ky)), 1).astype(np.int64)
    ids = np.zeros(len(area), dtype=np.int64)
    return to_detections((label,), ids, score.astype(np.float32), boxes, px_area)
