"""Raw model outputs -> :class:`Detection` records, in the original frame's pixels.

The decoder is chosen ONCE, when the model is loaded, from the IR metadata
(:class:`ovedge.irmeta.IRMeta`: task, output layout, labels, thresholds) through the explicit
registry :data:`DECODERS`, keyed by :class:`~ovedge.irmeta.OutputLayout`.
:func:`build_postprocessor` also checks the model's output count and shapes against the layout
and refuses a mismatch with a :class:`~ovedge.errors.ModelError`, so nothing is guessed per frame.

Geometry. The IR resizes a frame of any size to ``input_width x input_height`` inside the graph
(``meta.preprocessing.resize``). Boxes and maps come out in input (or map) pixels; they are
mapped back to the frame with one affine map per axis, ``frame = input * k + b``:

* ``stretch``: each axis scaled on its own, ``k = frame / input``;
* ``letterbox``: ``s = min(in_w / f_w, in_h / f_h)``, the frame resized to
  ``round(f * s)`` (clamped to the input) and centred, ``pad = (input - resized) // 2`` before;
  map pixels that fall in the padding are ignored;
* ``crop``: ``s = max(in_w / f_w, in_h / f_h)``, resized to ``round(f * s)``, the centre kept
  (``(resized - input) // 2`` cut before).

These are the exact sizes and offsets ``convert.preprocess`` builds into the graph.

Boxes are ``(x0, y0, x1, y1)`` ints, end-exclusive, clipped to the frame; ``None`` means the
whole frame. Areas are in frame pixels.

Label conventions: SSD and torchvision-style label indices index ``meta.labels`` directly (put
``"background"`` first when the model counts it); an index outside the labels becomes
``"class_<i>"`` (kept, so an unexpected class is never silently dropped). Segmentation treats
``meta.ok_labels`` as background, or ``labels[0]`` when no OK label is given. Anomaly regions and
the whole-frame anomaly are labelled ``"anomaly"``; a map region above the threshold is reported
even when the image score is below it (a visible defect is never hidden).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, OutputLayout, Preprocessing, ResizeMode

__all__ = [
    "ANOMALY_LABEL",
    "DECODERS",
    "Detection",
    "PostProcessor",
    "build_postprocessor",
    "input_to_frame",
    "output_shapes",
]

log = logging.getLogger(__name__)

ANOMALY_LABEL = "anomaly"
TOP_K = 1  # classification reports the best label only
MAX_DETECTIONS = 300  # boxes kept per frame after NMS, best first (as Ultralytics' max_det)
MAX_CANDIDATES = 1000  # YOLO boxes above the threshold that enter NMS, best first
FloatArray = npt.NDArray[np.float32]
Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding on one frame (a class, a box, a region, or the whole frame)."""

    label: str
    score: float
    box: tuple[int, int, int, int] | None  # x0, y0, x1, y1 in ORIGINAL frame pixels; None = whole frame
    area: int | None = None  # region pixels (segmentation/anomaly); None -> box area


class PostProcessor(Protocol):
    """Decodes one frame's outputs (in output-index order) for a frame of ``frame_hw``."""

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]: ...


def output_shapes(model: Any) -> list[Shape]:
    """The output shapes of an ``ov.Model`` or ``ov.CompiledModel``; dynamic dimensions are -1."""
    shapes = []
    for port in model.outputs:
        pshape = port.get_partial_shape()
        shapes.append(tuple(d.get_length() if d.is_static else -1 for d in pshape))
    return shapes


# --------------------------------------------------------------------------------------------
# geometry


@dataclass(frozen=True, slots=True)
class _Affine:
    """``frame_x = x * kx + bx``, ``frame_y = y * ky + by`` (input pixels -> frame pixels)."""

    kx: float
    ky: float
    bx: float
    by: float
    valid: tuple[float, float, float, float]  # x0, y0, x1, y1 of the frame's image in input pixels


def input_to_frame(pre: Preprocessing, frame_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(kx, ky, bx, by)`` mapping network-input pixels to frame pixels for ``pre.resize``."""
    aff = _affine(pre, frame_hw)
    return aff.kx, aff.ky, aff.bx, aff.by


def _affine(pre: Preprocessing, frame_hw: tuple[int, int]) -> _Affine:
    fh, fw = frame_hw
    iw, ih = pre.input_width, pre.input_height
    if pre.resize is ResizeMode.STRETCH:
        return _Affine(fw / iw, fh / ih, 0.0, 0.0, (0.0, 0.0, float(iw), float(ih)))
    # Exactly what convert.preprocess builds in the graph: sizes rounded half-to-even, clamped to
    # the input size, integer offsets (padding or crop) floored.
    letterbox = pre.resize is ResizeMode.LETTERBOX
    ratio = min(iw / fw, ih / fh) if letterbox else max(iw / fw, ih / fh)
    new_w, new_h = round(fw * ratio), round(fh * ratio)
    if letterbox:
        new_w, new_h = min(new_w, iw), min(new_h, ih)
        left, top = (iw - new_w) // 2, (ih - new_h) // 2
    else:
        new_w, new_h = max(new_w, iw), max(new_h, ih)
        left, top = -((new_w - iw) // 2), -((new_h - ih) // 2)
    sx, sy = new_w / fw, new_h / fh  # input pixels per frame pixel
    valid = (float(max(left, 0)), float(max(top, 0)), float(min(left + new_w, iw)), float(min(top + new_h, ih)))
    return _Affine(1 / sx, 1 / sy, -left / sx, -top / sy, valid)


def _boxes_to_frame(
    boxes: npt.NDArray[np.floating[Any]], aff: _Affine, frame_hw: tuple[int, int]
) -> npt.NDArray[np.int64]:
    """``[N, 4]`` xyxy boxes in input pixels -> rounded, clipped xyxy in frame pixels."""
    fh, fw = frame_hw
    out = np.empty(boxes.shape, dtype=np.float64)
    out[:, 0::2] = boxes[:, 0::2] * aff.kx + aff.bx
    out[:, 1::2] = boxes[:, 1::2] * aff.ky + aff.by
    np.clip(out[:, 0::2], 0, fw, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, fh, out=out[:, 1::2])
    return np.rint(out).astype(np.int64)


def _to_detections(
    labels: Sequence[str],
    class_ids: npt.NDArray[np.integer[Any]],
    scores: FloatArray,
    boxes: npt.NDArray[np.int64],
    areas: npt.NDArray[np.int64] | None = None,
) -> list[Detection]:
    """Build the records; boxes left empty by clipping (wholly outside the frame) are dropped."""
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    n_labels = len(labels)
    names = [labels[c] if 0 <= c < n_labels else f"class_{c}" for c in class_ids[keep].tolist()]
    box_list = [tuple(b) for b in boxes[keep].tolist()]
    score_list = scores[keep].tolist()
    area_list = areas[keep].tolist() if areas is not None else [None] * len(names)
    return [
        Detection(name, score, box, area)
        for name, score, box, area in zip(names, score_list, box_list, area_list, strict=True)
    ]


# --------------------------------------------------------------------------------------------
# shape checks (load time)


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join("?" if d <= 0 else str(d) for d in shape) + "]"


def _fmts(shapes: Sequence[Shape]) -> str:
    return ", ".join(_fmt(s) for s in shapes) or "no outputs"


def _dim_is(dim: int, value: int) -> bool:
    return dim <= 0 or dim == value  # -1 (or 0 from get_min_shape) is a dynamic dimension


def _squeeze_leading(shape: Shape, keep: int) -> Shape | None:
    """Drop leading 1 (or dynamic) dims until ``keep`` remain; None if a real dim is in the way."""
    shape = tuple(shape)
    while len(shape) > keep:
        if not _dim_is(shape[0], 1):
            return None
        shape = shape[1:]
    return shape if len(shape) == keep else None


def _size_one(shape: Shape) -> bool:
    return all(d == 1 for d in shape)  # a score: static, one element


def _spatial(dim: int) -> bool:
    return dim <= 0 or dim > 1  # dynamic, or a real extent


def _is_map(shape: Shape) -> bool:
    """``[H, W]``, ``[1, H, W]`` or ``[1, 1, H, W]`` (H, W > 1 or dynamic: read per frame)."""
    core = _squeeze_leading(shape, 2)
    return core is not None and all(_spatial(d) for d in core)


def _plane(output: np.ndarray) -> tuple[int, int]:
    h, w = output.shape[-2:]
    return int(h), int(w)


# --------------------------------------------------------------------------------------------
# classification


@dataclass(frozen=True, slots=True)
class _Classification:
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


def _build_classification(meta: IRMeta, shapes: Sequence[Shape]) -> PostProcessor:
    n = len(meta.labels)
    core = _squeeze_leading(shapes[0], 1) if len(shapes) == 1 else None
    if core is None and len(shapes) == 1:  # [1, C, 1, 1] from a conv head
        trailing = tuple(shapes[0])
        while len(trailing) > 2 and _dim_is(trailing[-1], 1):
            trailing = trailing[:-1]
        core = _squeeze_leading(trailing, 1)
    if core is None or not _dim_is(core[0], n):
        raise ModelError(
            f"classification IR must have one [1, C] output with C = len(labels) = {n}, found {_fmts(shapes)}"
        )
    return _Classification(meta.labels, meta.output_layout is OutputLayout.LOGITS, min(TOP_K, n))


# --------------------------------------------------------------------------------------------
# detection


@dataclass(frozen=True, slots=True)
class _YoloV8:
    meta: IRMeta

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        pred = np.asarray(outputs[0], dtype=np.float32)
        pred = pred.reshape(pred.shape[-2], pred.shape[-1])  # [4 + C, N]
        if pred.shape[0] != 4 + len(self.meta.labels):  # only possible when the IR left 4+C dynamic
            raise ModelError(f"YOLOv8 output has {pred.shape[0]} rows, expected 4+{len(self.meta.labels)}")
        class_scores = pred[4:]
        scores = class_scores.max(axis=0)
        keep = np.flatnonzero(scores >= self.meta.confidence_threshold)
        if keep.size == 0:
            return []
        if keep.size > MAX_CANDIDATES:  # NMS is quadratic: a flood of candidates is cut to the best
            keep = keep[np.argpartition(-scores[keep], MAX_CANDIDATES)[:MAX_CANDIDATES]]
        cx, cy, w, h = pred[:4, keep]
        scores, class_ids = scores[keep], class_scores[:, keep].argmax(axis=0)
        xywh = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        picked = np.asarray(
            cv2.dnn.NMSBoxesBatched(
                xywh,  # type: ignore[arg-type]  # the stubs say Sequence; float32 arrays are accepted
                scores,
                class_ids.astype(np.int32),
                self.meta.confidence_threshold,
                self.meta.iou_threshold,
            ),
            dtype=np.int64,
        ).reshape(-1)[:MAX_DETECTIONS]
        xywh, scores, class_ids = xywh[picked], scores[picked], class_ids[picked]
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        aff = _affine(self.meta.preprocessing, frame_hw)
        return _to_detections(self.meta.labels, class_ids, scores, _boxes_to_frame(xyxy, aff, frame_hw))


def _build_yolov8(meta: IRMeta, shapes: Sequence[Shape]) -> PostProcessor:
    want = 4 + len(meta.labels)
    core = _squeeze_leading(shapes[0], 2) if len(shapes) == 1 else None
    if core is None or not _dim_is(core[0], want):
        raise ModelError(
            f"YOLOv8 detection IR must have one [1, 4+C, N] output with 4+C = 4+len(labels) = {want}, "
            f"found {_fmts(shapes)} (a transposed [1, N, 4+C] head must be re-exported)"
        )
    return _YoloV8(meta)


@dataclass(frozen=True, slots=True)
class _Ssd:
    meta: IRMeta

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        det = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 7)
        end = np.flatnonzero(det[:, 0] < 0)  # image_id -1 ends the valid rows
        if end.size:
            det = det[: end[0]]
        det = det[det[:, 2] >= self.meta.confidence_threshold]
        if len(det) == 0:
            return []
        det = det[np.argsort(-det[:, 2], kind="stable")[:MAX_DETECTIONS]]
        pre = self.meta.preprocessing
        xyxy = det[:, 3:7] * np.array(
            [pre.input_width, pre.input_height, pre.input_width, pre.input_height], dtype=np.float32
        )
        aff = _affine(pre, frame_hw)
        return _to_detections(
            self.meta.labels, det[:, 1].astype(np.int64), det[:, 2], _boxes_to_frame(xyxy, aff, frame_hw)
        )


def _build_ssd(meta: IRMeta, shapes: Sequence[Shape]) -> PostProcessor:
    core = _squeeze_leading(shapes[0], 2) if len(shapes) == 1 else None
    if core is None or not _dim_is(core[1], 7):
        raise ModelError(
            "SSD detection IR must have one [1, 1, N, 7] DetectionOutput "
            f"(image_id, label, conf, x0, y0, x1, y1), found {_fmts(shapes)}"
        )
    return _Ssd(meta)


@dataclass(frozen=True, slots=True)
class _BoxesScoresLabels:
    meta: IRMeta

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        boxes = np.asarray(outputs[0], dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(outputs[1], dtype=np.float32).reshape(-1)
        labels = np.asarray(outputs[2]).reshape(-1).astype(np.int64)
        keep = scores >= self.meta.confidence_threshold
        if not keep.any():
            return []
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        order = np.argsort(-scores, kind="stable")[:MAX_DETECTIONS]
        aff = _affine(self.meta.preprocessing, frame_hw)
        return _to_detections(
            self.meta.labels, labels[order], scores[order], _boxes_to_frame(boxes[order], aff, frame_hw)
        )


def _build_boxes_scores_labels(meta: IRMeta, shapes: Sequence[Shape]) -> PostProcessor:
    ok = len(shapes) == 3
    if ok:
        boxes = _squeeze_leading(shapes[0], 2)
        scores = _squeeze_leading(shapes[1], 1)
        labels = _squeeze_leading(shapes[2], 1)
        ok = boxes is not None and _dim_is(boxes[1], 4) and scores is not None and labels is not None
    if not ok:
        raise ModelError(
            "torchvision-style detection IR must have three outputs in this order: boxes [N, 4] "
            f"(x0, y0, x1, y1 in input pixels), scores [N], labels [N]; found {_fmts(shapes)}"
        )
    return _BoxesScoresLabels(meta)


# --------------------------------------------------------------------------------------------
# segmentation and anomaly maps -> regions


def _map_affine(aff: _Affine, pre: Preprocessing, map_hw: tuple[int, int]) -> _Affine:
    """Compose map pixels -> input pixels -> frame pixels."""
    mh, mw = map_hw
    ux, uy = pre.input_width / mw, pre.input_height / mh
    x0, y0, x1, y1 = aff.valid
    return _Affine(aff.kx * ux, aff.ky * uy, aff.bx, aff.by, (x0 / ux, y0 / uy, x1 / ux, y1 / uy))


def _outside_valid(shape: tuple[int, int], maff: _Affine) -> npt.NDArray[np.bool_] | None:
    """Mask of map pixels outside the frame's image (letterbox padding); None when there are none."""
    mh, mw = shape
    x0, y0, x1, y1 = (round(v) for v in maff.valid)
    if x0 <= 0 and y0 <= 0 and x1 >= mw and y1 >= mh:
        return None
    mask = np.ones(shape, dtype=bool)
    mask[max(y0, 0) : min(y1, mh), max(x0, 0) : min(x1, mw)] = False
    return mask


def _regions(
    mask: npt.NDArray[np.bool_],
    score_map: FloatArray,
    label: str,
    maff: _Affine,
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
    boxes = _boxes_to_frame(xyxy, maff, frame_hw)
    px_area = np.maximum(np.rint(area * abs(maff.kx * maff.ky)), 1).astype(np.int64)
    ids = np.zeros(len(area), dtype=np.int64)
    return _to_detections((label,), ids, score.astype(np.float32), boxes, px_area)


@dataclass(frozen=True, slots=True)
class _Segmentation:
    meta: IRMeta
    background: frozenset[int]
    background_lut: npt.NDArray[np.bool_]  # index -> is background
    logits: bool

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        n_classes = len(self.meta.labels)
        map_hw = _plane(outputs[0])
        if self.logits:
            seg = np.asarray(outputs[0], dtype=np.float32).reshape(n_classes, *map_hw)
            top = seg.max(axis=0)
            # argmax over classes, plane by plane (3x faster than argmax(axis=0)); ties -> lowest
            cmap = np.zeros(map_hw, dtype=np.int32)
            for c in range(n_classes - 1, 0, -1):
                np.putmask(cmap, seg[c] == top, c)
            # softmax probability of the winner, 1 / sum_c exp(l_c - l_max), on defect pixels only
            prob = np.zeros(map_hw, dtype=np.float32)
            fg = ~self.background_lut[cmap]
            if fg.any():
                prob[fg] = 1.0 / np.exp(seg[:, fg] - top[fg]).sum(axis=0)
        else:
            cmap = np.rint(np.asarray(outputs[0]).reshape(map_hw)).astype(np.int64)
            prob = np.ones(map_hw, dtype=np.float32)
        maff = _map_affine(_affine(self.meta.preprocessing, frame_hw), self.meta.preprocessing, map_hw)
        outside = _outside_valid(map_hw, maff)
        present = np.bincount(cmap.ravel().clip(0, n_classes), minlength=n_classes + 1)
        found: list[Detection] = []
        for cid in np.flatnonzero(present[:n_classes]):
            if int(cid) in self.background:
                continue
            mask = cmap == cid
            if outside is not None:
                mask &= ~outside
            found.extend(_regions(mask, prob, self.meta.labels[int(cid)], maff, frame_hw, peak=False))
        if present[n_classes]:
            log.debug("class map holds indices outside the %d labels; ignored", n_classes)
        found.sort(key=lambda d: -(d.area or 0))
        return found


def _build_segmentation(meta: IRMeta, shapes: Sequence[Shape]) -> PostProcessor:
    n = len(meta.labels)
    logits = meta.output_layout is OutputLayout.SEG_LOGITS
    fits = False
    if len(shapes) == 1:
        if logits:
            core = _squeeze_leading(shapes[0], 3)
            fits = core is not None and _dim_is(core[0], n) and _spatial(core[1]) and _spatial(core[2])
        else:
            fits = _is_map(shapes[0])
    if not fits:
        want = f"[1, C, H, W] with C = len(labels) = {n}" if logits else "[1, H, W] or [1, 1, H, W]"
        raise ModelError(f"segmentation IR ({meta.output_layout}) must have one {want} output; found {_fmts(shapes)}")
    ok = meta.ok_labels or meta.labels[:1]
    background = frozenset(meta.labels.index(label) for label in ok)
    lut = np.zeros(n, dtype=bool)
    lut[list(background)] = True
    return _Segmentation(meta, background, lut, logits)


@dataclass(frozen=True, slots=True)
class _Anomaly:
    meta: IRMeta
    map_index: int | None
    score_index: int | None

    def __call__(self, outputs: Sequence[np.ndarray], frame_hw: tuple[int, int]) -> list[Detection]:
        threshold = self.meta.anomaly_threshold
        found: list[Detection] = []
        amap: FloatArray | None = None
        if self.map_index is not None:
            map_hw = _plane(outputs[self.map_index])
            amap = np.asarray(outputs[self.map_index], dtype=np.float32).reshape(map_hw)
            maff = _map_affine(_affine(self.meta.preprocessing, frame_hw), self.meta.preprocessing, map_hw)
            mask = amap >= threshold
            outside = _outside_valid(map_hw, maff)
            if outside is not None:
                mask &= ~outside
            found = _regions(mask, amap, ANOMALY_LABEL, maff, frame_hw, peak=True)
            found.sort(key=lambda d: -d.score)
        if self.score_index is not None:
            score = float(np.asarray(outputs[self.score_index]).reshape(-1)[0])
        else:
            score = float(amap.max()) if amap is not None else 0.0
        if not found and score >= threshold:
            found = [Detection(ANOMALY_LABEL, score, None)]
        return found


def _build_anomaly(meta: IRMeta, shapes: Sequence[Shape]) -> PostProcessor:
    layout = meta.output_layout
    scores = [i for i, s in enumerate(shapes) if _size_one(s)]
    maps = [i for i, s in enumerate(shapes) if _is_map(s)]
    map_index = score_index = None
    if layout is OutputLayout.ANOMALY_MAP_SCORE and len(shapes) == 2 and len(scores) == len(maps) == 1:
        map_index, score_index = maps[0], scores[0]
    elif layout is OutputLayout.ANOMALY_MAP and len(shapes) == 1 and maps:
        map_index = maps[0]
    elif layout is OutputLayout.ANOMALY_SCORE and len(shapes) == 1 and scores:
        score_index = scores[0]
    else:
        want = {
            OutputLayout.ANOMALY_MAP_SCORE: "two outputs: a [1, 1, H, W] map and a [1] score (any order)",
            OutputLayout.ANOMALY_MAP: "one [1, 1, H, W] map output",
            OutputLayout.ANOMALY_SCORE: "one [1] score output",
        }[layout]
        raise ModelError(f"anomaly IR ({layout}) must have {want}; found {_fmts(shapes)}")
    return _Anomaly(meta, map_index, score_index)


# --------------------------------------------------------------------------------------------
# registry


Builder = Callable[[IRMeta, Sequence[Shape]], PostProcessor]

DECODERS: dict[OutputLayout, Builder] = {
    OutputLayout.LOGITS: _build_classification,
    OutputLayout.PROBABILITIES: _build_classification,
    OutputLayout.YOLOV8: _build_yolov8,
    OutputLayout.SSD: _build_ssd,
    OutputLayout.BOXES_SCORES_LABELS: _build_boxes_scores_labels,
    OutputLayout.SEG_LOGITS: _build_segmentation,
    OutputLayout.CLASS_MAP: _build_segmentation,
    OutputLayout.ANOMALY_MAP_SCORE: _build_anomaly,
    OutputLayout.ANOMALY_MAP: _build_anomaly,
    OutputLayout.ANOMALY_SCORE: _build_anomaly,
}


def build_postprocessor(meta: IRMeta, output_shapes: Sequence[tuple[int, ...]]) -> PostProcessor:
    """Choose and configure the decoder for ``meta`` once, checking the model's output shapes.

    ``output_shapes`` are in output-index order; a dynamic dimension is -1 or 0 (see
    :func:`output_shapes`). Raises :class:`ModelError` naming the expected and found shapes.
    """
    shapes = [tuple(int(d) for d in s) for s in output_shapes]
    builder = DECODERS[meta.output_layout]
    decoder = builder(meta, shapes)
    log.debug("post-processing %s/%s for outputs %s", meta.task, meta.output_layout, _fmts(shapes))
    return decoder
