"""The demo model's conversion recipe, written once (torch-free, so anything may import it).

``python -m convert.demo_recipe`` prints the ``ovedge-convert`` arguments (everything but the
checkpoint and ``--out``), one shell word each, for the Makefile; Python callers (tests, tools,
benchmarks) use :func:`convert_args` or the constants. :mod:`convert.demo_model` trains and runs
the network with the same ``MEAN``/``STD``/``INPUT_SIZE``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

__all__ = ["ARCH", "CHECKPOINT", "INPUT_SIZE", "LABELS_FILE", "MEAN", "NAME", "OK_LABELS", "STD", "convert_args"]

ROOT: Final = Path(__file__).resolve().parent.parent
NAME: Final = "demo"
ARCH: Final = "convert.demo_model:DefectNet"
CHECKPOINT: Final = ROOT / "models/demo/defectnet.pt"
LABELS_FILE: Final = ROOT / "models/demo/labels.txt"
"""Class names in output order: ok, scratch, spot, crack."""
OK_LABELS: Final = ("ok",)
MEAN: Final = (123.675, 116.28, 103.53)
"""Per-channel mean, RGB, 0-255 units."""
STD: Final = (58.395, 57.12, 57.375)
"""Per-channel standard deviation, RGB, 0-255 units."""
INPUT_SIZE: Final = (128, 128)
"""Height, width the network is trained at."""


def _csv(values: tuple[float, ...] | tuple[str, ...]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def convert_args(labels: Path = LABELS_FILE) -> list[str]:
    """``ovedge-convert`` arguments for the demo checkpoint (add the checkpoint and ``--out``)."""
    height, width = INPUT_SIZE
    return [
        "--name", NAME, "--arch", ARCH, "--labels", str(labels), "--ok-labels", _csv(OK_LABELS),
        "--input-size", f"{width}x{height}", "--mean", _csv(MEAN), "--std", _csv(STD),
    ]  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:] not in ([], ["--convert-args"]):
        sys.exit("usage: python -m convert.demo_recipe [--convert-args]")
    print(" ".join(convert_args()))
