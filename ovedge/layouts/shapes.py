"""Output shapes: read from a model once, checked against a layout at load time.

A dynamic dimension is -1 (or 0 from ``get_min_shape``) and matches any size; it is then checked
per frame by the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Shape = tuple[int, ...]


def output_shapes(model: Any) -> list[Shape]:
    """The output shapes of an ``ov.Model`` or ``ov.CompiledModel``; dynamic dimensions are -1."""
    shapes = []
    for port in model.outputs:
        pshape = port.get_partial_shape()
        shapes.append(tuple(d.get_length() if d.is_static else -1 for d in pshape))
    return shapes


def fmt(shape: Shape) -> str:
    """``[1, ?, 64]``: a shape as the error messages print it."""
    return "[" + ", ".join("?" if d <= 0 else str(d) for d in shape) + "]"


def fmts(shapes: Sequence[Shape]) -> str:
    return ", ".join(fmt(s) for s in shapes) or "no outputs"


def dim_is(dim: int, value: int) -> bool:
    return dim <= 0 or dim == value  # -1 (or 0 from get_min_shape) is a dynamic dimension


def squeeze_leading(shape: Shape, keep: int) -> Shape | None:
    """Drop leading 1 (or dynamic) dims until ``keep`` remain; None if a real dim is in the way."""
    shape = tuple(shape)
    while len(shape) > keep:
        if not dim_is(shape[0], 1):
            return None
        shape = shape[1:]
    return shape if len(shape) == keep else None


def size_one(shape: Shape) -> bool:
    return all(d == 1 for d in shape)  # a score: static, one element


def spatial(dim: int) -> bool:
    return dim <= 0 or dim > 1  # dynamic, or a real extent


def is_map(shape: Shape) -> bool:
    """``[H, W]``, ``[1, H, W]`` or ``[1, 1, H, W]`` (H, W > 1 or dynamic: read per frame)."""
    core = squeeze_leading(shape, 2)
    return core is not None and all(spatial(d) for d in core)


def plane(output: np.ndarray) -> tuple[int, int]:
    """The ``(H, W)`` of a map output, read per frame."""
    h, w = output.shape[-2:]
    return int(h), int(w)
