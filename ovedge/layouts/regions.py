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
    outlines: bool = False,
) -> list[Detection]:
    """Connected components of ``mask`` -> one Detection each (bbox, area, mean or peak score).

    With ``outlines`` each region also carries its outer outline (:func:`component_outlines`).
    """
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
    shapes = component_outlines(comp, n, (r0, c0), maff, frame_hw) if outlines else None
    return to_detections((label,), ids, score.astype(np.float32), boxes, px_area, outlines=shapes)


def component_outlines(
    comp: npt.NDArray[np.int32], n: int, origin: tuple[int, int], maff: Affine, frame_hw: tuple[int, int]
) -> list[tuple[int, ...] | None]:
    """The outer outline of each component ``1..n-1`` of ``comp``, flat ``x0, y0, x1, y1, ...`` in frame pixels.

    OpenCV traces each component's outer boundary (8-connected, as the components are; holes are
    left out); every point is the frame pixel under its map pixel's centre, and the polygon is
    simplified to within half a map pixel. A component whose outline has fewer than three points
    (a single pixel, a one-pixel line) gets None: its box says as much.
    """
    fh, fw = frame_hw
    r0, c0 = origin
    found: list[tuple[int, ...] | None] = [None] * (n - 1)
    contours, hierarchy = cv2.findContours((comp > 0).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return found
    for contour, links in zip(contours, hierarchy[0], strict=True):
        if links[3] != -1:
            continue  # the boundary of a hole
        x, y = (int(v) for v in contour[0, 0])
        k = int(comp[y, x]) - 1
        if k < 0 or found[k] is not None:
            continue
        poly = cv2.approxPolyDP(contour, 0.5, True).reshape(-1, 2).astype(np.float64)
        if len(poly) < 3:
            continue
        # the frame pixel under the boundary pixel's centre (floor: no half-pixel rounding ties)
        xs = np.clip(np.floor((poly[:, 0] + c0 + 0.5) * maff.kx + maff.bx), 0, fw - 1)
        ys = np.clip(np.floor((poly[:, 1] + r0 + 0.5) * maff.ky + maff.by), 0, fh - 1)
        found[k] = tuple(int(v) for v in np.stack([xs, ys], axis=1).reshape(-1))
    return found
