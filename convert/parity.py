"""Parity: the produced IR against the reference (PyTorch, or ONNX Runtime for ONNX) on the same inputs.

Both sides see exactly the same tensor: frames go through an IR that holds only the embedded
preprocessing, its output feeds the reference, and the raw frame feeds the produced IR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convert.formats import SourceFormat
from convert.loaders import Loaded
from ovedge.irmeta import OutputLayout, Task

Runner = Callable[[np.ndarray], list[np.ndarray]]
TOP_K = 5  # detections compared per sample


@dataclass
class ParityResult:
    samples: int
    reference: str
    max_abs_diff: float
    agreement: float  # task-level, 0..1
    metric: str  # what agreement measures
    threshold: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.agreement >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "reference": self.reference,
            "max_abs_diff": self.max_abs_diff,
            "metric": self.metric,
            "agreement": self.agreement,
            "threshold": self.threshold,
            "passed": self.passed,
            **self.extra,
        }

    def table(self) -> str:
        rows = [
            ("reference", self.reference),
            ("samples", str(self.samples)),
            ("max abs diff", f"{self.max_abs_diff:.3g}"),
            (self.metric, f"{self.agreement * 100:.2f} %"),
            ("threshold", f"{self.threshold * 100:.2f} %"),
            *((k, f"{v:.4g}") for k, v in self.extra.items()),
            ("result", "PASS" if self.passed else "FAIL"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def reference_runner(loaded: Loaded) -> tuple[str, Runner]:
    """A function f32 NCHW -> list of outputs, from the checkpoint itself."""
    if loaded.format is SourceFormat.OPENVINO:
        import openvino as ov

        original = ov.Core().compile_model(loaded.ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

        def run_ir(x: np.ndarray) -> list[np.ndarray]:
            result = original(x)
            return [np.asarray(result[out]).copy() for out in original.outputs]

        return "openvino (the source IR, f32)", run_ir
    if loaded.format is SourceFormat.ONNX:
        import onnxruntime as ort

        session = ort.InferenceSession(str(loaded.onnx_path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run_onnx(x: np.ndarray) -> list[np.ndarray]:
            return [np.asarray(o) for o in session.run(None, {name: x})]

        return "onnxruntime", run_onnx
    import torch

    module = loaded.module

    def run_torch(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        return [t.detach().cpu().numpy() for t in _flatten(out)]

    return f"pytorch {torch.__version__.split('+')[0]}", run_torch


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flatten(v)]
    if isinstance(out, list | tuple):
        return [t for v in out for t in _flatten(v)]
    return [out]


def compare(
    task: Task,
    layout: OutputLayout,
    refs: Sequence[list[np.ndarray]],
    irs: Sequence[list[np.ndarray]],
    *,
    reference: str,
    threshold: float,
    anomaly_threshold: float = 0.5,
) -> ParityResult:
    max_diff = 0.0
    for ref, ir in zip(refs, irs, strict=True):
        pairs = zip(ref, ir, strict=True)
        if layout in (OutputLayout.BOXES_SCORES_LABELS, OutputLayout.SSD):
            # rows of near-equal score may come in any order: compare the sorted scores
            pairs = zip([_sorted_detections(layout, ref)[1]], [_sorted_detections(layout, ir)[1]], strict=True)
        for r, o in pairs:
            if r.size == o.size:
                diff = np.abs(r.astype(np.float64).reshape(o.shape) - o.astype(np.float64))
                max_diff = max(max_diff, float(diff.max(initial=0.0)))
    scores: list[float] = []
    extra: dict[str, float] = {}
    if layout in (OutputLayout.LOGITS, OutputLayout.PROBABILITIES):
        metric = "top-1 agreement"
        scores = [float(np.argmax(r[0]) == np.argmax(o[0])) for r, o in zip(refs, irs, strict=True)]
    elif task is Task.DETECTION:
        metric = "detection agreement"
        ious: list[float] = []
        for ref_outs, ir_outs in zip(refs, irs, strict=True):
            agree, iou = _detections(layout, ref_outs, ir_outs)
            scores.append(agree)
            ious.append(iou)
        extra["mean box IoU"] = float(np.mean(ious)) if ious else 1.0
    elif task is Task.SEGMENTATION:
        metric = "mask IoU"
        scores = [_mask_iou(layout, r[0], o[0]) for r, o in zip(refs, irs, strict=True)]
    else:
        metric = "decision agreement"
        scores = [
            float((_anomaly_score(layout, r) >= anomaly_threshold) == (_anomaly_score(layout, o) >= anomaly_threshold))
            for r, o in zip(refs, irs, strict=True)
        ]
        diffs = [abs(_anomaly_score(layout, r) - _anomaly_score(layout, o)) for r, o in zip(refs, irs, strict=True)]
        extra["max score diff"] = float(max(diffs, default=0.0))
    agreement = float(np.mean(scores)) if scores else 1.0
    return ParityResult(
        samples=len(refs),
        reference=reference,
        max_abs_diff=max_diff,
        agreement=agreement,
        metric=metric,
        threshold=threshold,
        extra=extra,
    )


def _scores_then_labels(flat: list[np.ndarray]) -> list[np.ndarray]:
    """Order (scores, labels): labels are the integer output when the dtypes tell them apart."""
    return sorted(flat, key=lambda x: bool(np.issubdtype(x.dtype, np.integer)))


def _anomaly_score(layout: OutputLayout, outs: list[np.ndarray]) -> float:
    if layout is OutputLayout.ANOMALY_MAP:
        return float(outs[0].max())
    if layout is OutputLayout.ANOMALY_SCORE:
        return float(outs[0].reshape(-1)[0])
    score = next(o for o in outs if o.size == 1)
    return float(score.reshape(-1)[0])


def _mask_iou(layout: OutputLayout, ref: np.ndarray, ir: np.ndarray) -> float:
    if layout is OutputLayout.SEG_LOGITS:
        ref_map, ir_map = ref[0].argmax(0), ir[0].argmax(0)
    else:
        ref_map, ir_map = np.rint(ref).astype(np.int64).reshape(-1), np.rint(ir).astype(np.int64).reshape(-1)
    ious = []
    for cls in np.union1d(np.unique(ref_map), np.unique(ir_map)):
        a, b = ref_map == cls, ir_map == cls
        ious.append(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))
    return float(np.mean(ious))


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two x0,y0,x1,y1 boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 1.0


def _detections(layout: OutputLayout, ref: list[np.ndarray], ir: list[np.ndarray]) -> tuple[float, float]:
    """(agreement, mean IoU) over the reference's top detections.

    YOLOv8 anchors have fixed slots, compared slot by slot. SSD / torchvision rows are sorted by
    score, so rows of near-equal score may swap: each reference detection is matched to the
    best-overlapping IR detection of the same label among the IR's top ``2 * TOP_K``.
    """
    if layout is OutputLayout.YOLOV8:
        r, o = ref[0][0], ir[0][0]  # [4+C, N]
        order = np.argsort(-r[4:].max(0))[:TOP_K]

        def xyxy(p: np.ndarray) -> np.ndarray:
            cx, cy, w, h = p[:4]
            return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

        pairs = [(xyxy(r[:, i]), xyxy(o[:, i]), r[4:, i].argmax(), o[4:, i].argmax()) for i in order]
        if not pairs:
            return 1.0, 1.0
        ious = [_box_iou(a, b) for a, b, _, _ in pairs]
        agree = [float(la == lb and iou >= 0.5) for (_, _, la, lb), iou in zip(pairs, ious, strict=True)]
        return float(np.mean(agree)), float(np.mean(ious))
    ref_boxes, _, ref_labels = _sorted_detections(layout, ref)
    ir_boxes, _, ir_labels = _sorted_detections(layout, ir)
    ir_boxes, ir_labels = ir_boxes[: 2 * TOP_K], ir_labels[: 2 * TOP_K]
    agree, best_ious = [], []
    for box, label in zip(ref_boxes[:TOP_K], ref_labels[:TOP_K], strict=True):
        same = [_box_iou(box, other) for other, lab in zip(ir_boxes, ir_labels, strict=True) if lab == label]
        best = max(same, default=0.0)
        best_ious.append(best)
        agree.append(float(best >= 0.5))
    if not agree:
        return 1.0, 1.0
    return float(np.mean(agree)), float(np.mean(best_ious))


def _sorted_detections(layout: OutputLayout, outs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes x0,y0,x1,y1, scores, labels), highest score first."""
    if layout is OutputLayout.SSD:
        rows = outs[0].reshape(-1, 7)
        boxes, scores, labels = rows[:, 3:7], rows[:, 2], np.rint(rows[:, 1]).astype(np.int64)
    else:
        boxes = next(x for x in outs if x.shape[-1] == 4).reshape(-1, 4)
        flat = _scores_then_labels([x.reshape(-1) for x in outs if x.shape[-1] != 4])
        scores, labels = flat[0], np.rint(flat[1]).astype(np.int64)
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order], labels[order]
