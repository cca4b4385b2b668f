"""Segmentation: ``[1, C, H, W]`` class scores or a ``[1, (1,) H, W]`` class-index map -> regions.

``meta.ok_labels`` are the background, or ``labels[0]`` when no OK label is given; every other class
present becomes one region per connected component, biggest first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, OutputLayout
from ovedge.layouts.records import Detection, FloatArray
from ovedge.layouts.regions import map_geometry, regions
from ovedge.layouts.shapes import Shape, dim_is, fmts, is_map, plane, spatial, squeeze_leading

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Segmentation:
    meta: IRMeta
    background: frozenset[int]
    background_lut: npt.NDArray[np.bool_]  # index -> is background
    logits: bool
    outlines: bool = False  # regions carry their outlines (annotation; not the camera path)

    def class_map(self, outputs: Sequence[np.ndarray]) -> tuple[npt.NDArray[np.integer[Any]], FloatArray]:
        """The per-pixel class index and its probability on defect pixels (map pixels)."""
        n_classes = len(self.meta.labels)
        map_hw = plane(outputs[0])
        if not self.logits:
            cmap = np.rint(np.asarray(outputs[0]).reshape(map_hw)).astype(np.int64)
            return cmap, np.ones(map_hw, dtype=np.float32)
        seg = np.asarray(outputs[0], dtype=np.float32).reshape(n_classes, *map_hw)
        top = seg.max(axis=0)
        # argmax over classes, plane by plane (3x faster than argmax(axis=0)); ties -> lowest
        cmap32 = np.zeros(map_hw, dtype=np.int32)
        for c in range(n_classes - 1, 0, -1):
            np.putmask(cmap32, seg[c] == top, c)
        # softmax probability of the winner, 1 / sum_c exp(l_c - l_max), on defect pixels only
        prob = np.zeros(map_hw, dtype=np.float32)
        fg = ~self.background_lut[cmap32]
        if fg.any():
            prob[fg] = 1.0 / np.exp(seg[:, fg] - top[fg]).sum(axis=0)
        return cmap32, prob

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        n_classes = len(self.meta.labels)
        cmap, prob = self.class_map(outputs)
        maff, outside = map_geometry(self.meta.preprocessing, frame_hw, cmap.shape)
        present = np.bincount(cmap.ravel().clip(0, n_classes), minlength=n_classes + 1)
        found: list[Detection] = []
        for cid in np.flatnonzero(present[:n_classes]):
            if int(cid) in self.background:
                continue
            mask = cmap == cid
            if outside is not None:
                mask &= ~outside
            found.extend(regions(mask, prob, self.meta.labels[int(cid)], maff, frame_hw, peak=False,
                                 outlines=self.outlines))
        if present[n_classes]:
            log.debug("class map holds indices outside the %d labels; ignored", n_classes)
        found.sort(key=lambda d: -(d.area or 0))
        return found


def build(meta: IRMeta, shapes: Sequence[Shape]) -> Segmentation:
    n = len(meta.labels)
    logits = meta.output_layout is OutputLayout.SEG_LOGITS
    fits = False
    if len(shapes) == 1:
        if logits:
            core = squeeze_leading(shapes[0], 3)
            fits = core is not None and dim_is(core[0], n) and spatial(core[1]) and spatial(core[2])
        else:
            fits = is_map(shapes[0])
    if not fits:
        want = f"[1, C, H, W] with C = len(labels) = {n}" if logits else "[1, H, W] or [1, 1, H, W]"
        raise ModelError(f"segmentation IR ({meta.output_layout}) must have one {want} output; found {fmts(shapes)}")
    ok = meta.ok_labels or meta.labels[:1]
    background = frozenset(meta.labels.index(label) for label in ok)
    lut = np.zeros(n, dtype=bool)
    lut[list(background)] = True
    return Segmentation(meta, background, lut, logits)
