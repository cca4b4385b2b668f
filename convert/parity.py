"""Parity: the produced IR against the reference (PyTorch, or ONNX Runtime for ONNX) on the same inputs.

Both sides see exactly the same tensor: frames go through an IR that holds only the embedded
preprocessing, its output feeds the reference, and the raw frame feeds the produced IR. Both sides'
outputs are then decoded by the daemon's own decoder (:mod:`ovedge.layouts`), so parity compares
what the daemon will report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convert.formats import SourceFormat
from convert.loaders import Loaded
from ovedge.irmeta import IRMeta, OutputLayout, Task
from ovedge.layouts import Detection, Shape, build_postprocessor
from ovedge.layouts.anomaly import Anomaly
from ovedge.layouts.registry import UNORDERED_ROWS
from ovedge.layouts.segmentation import Segmentation

Runner = Callable[[np.ndarray], list[np.ndarray]]
TOP_K = 5  # detections compared per sample
TIE = 0.01  # scores this close to the last IR candidate's are candidates too


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
    meta: IRMeta,
    shapes: Sequence[Shape],
    refs: Sequence[list[np.ndarray]],
    irs: Sequence[list[np.ndarray]],
    frames_hw: Sequence[tuple[int, int]],
    *,
    reference: str,
    threshold: float,
) -> ParityResult:
    """Decode both sides with the daemon's own decoder for ``meta`` and compare what it reports.

    ``shapes`` are the IR's output shapes, ``frames_hw`` the size of each parity frame: the
    detections, regions and verdicts compared are exactly those the daemon would publish.
    """
    decode = build_postprocessor(meta, shapes)
    samples = list(zip(refs, irs, frames_hw, strict=True))
    max_diff = max((_max_abs_diff(meta.output_layout, r, o) for r, o, _ in samples), default=0.0)
    scores: list[float] = []
    extra: dict[str, float] = {}
    if isinstance(decode, Segmentation):
        metric = "mask IoU"
        scores = [_mask_iou(decode.class_map(r)[0], decode.class_map(o)[0]) for r, o, _ in samples]
    elif meta.task is Task.DETECTION:
        # the same decoder with the confidence threshold at 0: the best boxes are compared even on
        # frames where the model reports nothing (an untrained head, an unfamiliar scene)
        scan = build_postprocessor(meta.model_copy(update={"confidence_threshold": 0.0}), shapes)
        metric = "detection agreement"
        ious: list[float] = []
        reported = 0
        for r, o, hw in samples:
            ref_dets = scan(r, hw)
            agree, iou = _detections(ref_dets, scan(o, hw))
            scores.append(agree)
            ious.append(iou)
            reported += sum(d.score >= meta.confidence_threshold for d in ref_dets)
        extra["mean box IoU"] = float(np.mean(ious)) if ious else 1.0
        extra["reported detections"] = float(reported)
    elif isinstance(decode, Anomaly):
        metric = "decision agreement"
        scores = [float(bool(decode(r, hw)) == bool(decode(o, hw))) for r, o, hw in samples]
        diffs = [abs(decode.image_score(r) - decode.image_score(o)) for r, o, _ in samples]
        extra["max score diff"] = float(max(diffs, default=0.0))
    else:
        metric = "top-1 agreement"
        scores = [float(decode(r, hw)[0].label == decode(o, hw)[0].label) for r, o, hw in samples]
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


def _max_abs_diff(layout: OutputLayout, ref: list[np.ndarray], ir: list[np.ndarray]) -> float:
    """The largest element-wise difference of the raw outputs. Where rows are sorted by score
    (near-equal rows may swap between runtimes), each output's values are compared sorted."""
    worst = 0.0
    for r, o in zip(ref, ir, strict=True):
        if r.size != o.size:
            continue
        a, b = r.astype(np.float64).reshape(-1), o.astype(np.float64).reshape(-1)
        if layout in UNORDERED_ROWS:
            a, b = np.sort(a), np.sort(b)
        worst = max(worst, float(np.abs(a - b).max(initial=0.0)))
    return worst


def _mask_iou(ref_map: np.ndarray, ir_map: np.ndarray) -> float:
    """Mean IoU over the classes present in either class map."""
    ious = []
    for cls in np.union1d(np.unique(ref_map), np.unique(ir_map)):
        a, b = ref_map == cls, ir_map == cls
        ious.append(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))
    return float(np.mean(ious))


def _box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two x0,y0,x1,y1 boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 1.0


def _detections(ref: list[Detection], ir: list[Detection]) -> tuple[float, float]:
    """(agreement, mean IoU) over the reference's best detections.

    Both lists come from the daemon's decoder, best first. Each of the reference's ``TOP_K`` is
    matched to the best-overlapping IR detection of the same label among the IR's ``2 * TOP_K``,
    and the near-ties of the last of those (within ``TIE``): which of equal scores makes a cut is
    noise.
    """
    window = ir[: 2 * TOP_K]
    cut = window[-1].score - TIE if window else 0.0
    candidates = window + [o for o in ir[2 * TOP_K :] if o.score >= cut]
    agree, best_ious = [], []
    for det in ref[:TOP_K]:
        if det.box is None:
            continue
        same = [_box_iou(det.box, o.box) for o in candidates if o.label == det.label and o.box is not None]
        best = max(same, default=0.0)
        best_ious.append(best)
        agree.append(float(best >= 0.5))
    if not agree:
        return 1.0, 1.0
    return float(np.mean(agree)), float(np.mean(best_ious))
