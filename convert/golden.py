"""The golden sample: a deterministic frame and the outputs the produced IR gives for it on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from convert.frames import synthetic_frame
from convert.options import Precision
from ovedge.errors import CheckpointError
from ovedge.irmeta import GoldenSample

GOLDEN_PNG = "golden.png"
GOLDEN_NPZ = "golden_outputs.npz"
# atol per unit of output magnitude: room for another device or precision hint re-running the IR
BASE_ATOL = {Precision.FP32: 1e-3, Precision.FP16: 1e-2, Precision.INT8: 5e-2}


def write_golden(core: Any, xml: Path, folder: Path, *, precision: Precision, width: int, height: int) -> GoldenSample:
    """Run the IR at ``xml`` on the golden frame; write the frame and outputs into ``folder``."""
    import cv2

    frame = synthetic_frame(999, width * 5 // 4 + 3, height * 5 // 4 + 1)
    exact = _run(core, xml, frame, {"INFERENCE_PRECISION_HINT": "f32"})
    default = _run(core, xml, frame, {})  # the CPU's default hint (bf16 on some CPUs)
    scale = max([1.0, *(float(np.abs(o).max(initial=0.0)) for o in exact)])
    drift = max([0.0, *(float(np.abs(a - b).max(initial=0.0)) for a, b in zip(exact, default, strict=True))])
    atol = max(BASE_ATOL[precision] * scale, 2.0 * drift)
    if not cv2.imwrite(str(folder / GOLDEN_PNG), frame):
        raise CheckpointError(what="the golden frame", problem=f"cannot be written to {folder / GOLDEN_PNG}")
    arrays: dict[str, Any] = {str(i): o for i, o in enumerate(exact)}
    np.savez(folder / GOLDEN_NPZ, **arrays)
    return GoldenSample(input=GOLDEN_PNG, outputs=GOLDEN_NPZ, atol=float(f"{atol:.3g}"))


def _run(core: Any, xml: Path, frame: np.ndarray, config: dict[str, str]) -> list[np.ndarray]:
    compiled = core.compile_model(str(xml), "CPU", config)
    result = compiled(frame[None])
    return [np.asarray(result[out]).copy() for out in compiled.outputs]
