"""Where a frame's pixels land in the network input, and back: one home for the resize geometry.

The IR resizes a frame of any size to ``input_width x input_height`` inside the graph
(``Preprocessing.resize``). :func:`fit` is the ONE statement of the sizes and offsets:
``convert.preprocess`` evaluates it on OpenVINO graph nodes to build the in-graph resize, and the
daemon evaluates it on numbers (:data:`NUMERIC`, float32 like the graph) to map boxes and maps back
with one affine map per axis, ``frame = input * k + b``:

* ``stretch``: each axis scaled on its own, ``k = frame / input`` (OpenVINO's own linear resize);
* ``letterbox``: ``s = min(in_w / f_w, in_h / f_h)``, the frame resized to ``round(f * s)``
  (half to even, clamped to the input) and centred, ``pad = (input - resized) // 2`` before;
  map pixels that fall in the padding are ignored;
* ``crop``: ``s = max(in_w / f_w, in_h / f_h)``, resized to ``round(f * s)`` (at least the
  input), the centre kept (``(resized - input) // 2`` cut before).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from ovedge.irmeta import Preprocessing, ResizeMode

N = TypeVar("N")


class Arithmetic(Protocol[N]):
    """The few operations :func:`fit` needs, on numbers or on graph nodes."""

    def const(self, value: int) -> N:
        """An integer constant."""
        ...

    def ratio(self, target: int, size: N) -> N:
        """``target / size`` as a real number (float32)."""
        ...

    def scale(self, size: N, ratio: N) -> N:
        """``size * ratio`` rounded half to even, as an integer."""
        ...

    def minimum(self, a: N, b: N) -> N: ...

    def maximum(self, a: N, b: N) -> N: ...

    def sub(self, a: N, b: N) -> N: ...

    def half(self, a: N) -> N:
        """``a // 2`` of a non-negative integer."""
        ...


@dataclass(frozen=True, slots=True)
class Fit(Generic[N]):
    """A letterbox or crop: the frame is resized to ``new_w x new_h``, then padded (letterbox) or
    cut (crop) by ``left, top`` before and ``right, bottom`` after to become the input size."""

    new_w: N
    new_h: N
    left: N
    top: N
    right: N
    bottom: N


def fit(frame_w: N, frame_h: N, pre: Preprocessing, a: Arithmetic[N]) -> Fit[N]:
    """The resized size and the padding (letterbox) or cut (crop) for a frame, for ``pre.resize``.

    ``stretch`` needs no fit (each axis is scaled on its own); it is given as a zero-padding fit of
    the input size.
    """
    in_w, in_h = a.const(pre.input_width), a.const(pre.input_height)
    if pre.resize is ResizeMode.STRETCH:
        zero = a.const(0)
        return Fit(in_w, in_h, zero, zero, zero, zero)
    letterbox = pre.resize is ResizeMode.LETTERBOX
    pick = a.minimum if letterbox else a.maximum  # the whole frame fits, or the whole input is covered
    ratio = pick(a.ratio(pre.input_width, frame_w), a.ratio(pre.input_height, frame_h))
    new_w, new_h = pick(a.scale(frame_w, ratio), in_w), pick(a.scale(frame_h, ratio), in_h)
    extra_w = a.sub(in_w, new_w) if letterbox else a.sub(new_w, in_w)
    extra_h = a.sub(in_h, new_h) if letterbox else a.sub(new_h, in_h)
    left, top = a.half(extra_w), a.half(extra_h)
    return Fit(new_w, new_h, left, top, a.sub(extra_w, left), a.sub(extra_h, top))


class _Numeric:
    """:class:`Arithmetic` on Python numbers, in float32 where the graph computes in float32."""

    def const(self, value: int) -> float:
        return value

    def ratio(self, target: int, size: float) -> float:
        return float(np.float32(target) / np.float32(size))

    def scale(self, size: float, ratio: float) -> float:
        return int(np.rint(np.float32(size) * np.float32(ratio)))

    def minimum(self, a: float, b: float) -> float:
        return min(a, b)

    def maximum(self, a: float, b: float) -> float:
        return max(a, b)

    def sub(self, a: float, b: float) -> float:
        return a - b

    def half(self, a: float) -> float:
        return a // 2


NUMERIC: Arithmetic[float] = _Numeric()


@dataclass(frozen=True, slots=True)
class Affine:
    """``frame_x = x * kx + bx``, ``frame_y = y * ky + by`` (input pixels -> frame pixels)."""

    kx: float
    ky: float
    bx: float
    by: float
    valid: tuple[float, float, float, float]  # x0, y0, x1, y1 of the frame's image in input pixels


def affine(pre: Preprocessing, frame_hw: tuple[int, int]) -> Affine:
    """The map from network-input pixels to the pixels of a ``frame_hw`` frame."""
    fh, fw = frame_hw
    iw, ih = pre.input_width, pre.input_height
    if pre.resize is ResizeMode.STRETCH:
        return Affine(fw / iw, fh / ih, 0.0, 0.0, (0.0, 0.0, float(iw), float(ih)))
    f = fit(fw, fh, pre, NUMERIC)
    sign = 1 if pre.resize is ResizeMode.LETTERBOX else -1  # padding shifts right, a cut shifts left
    left, top = sign * f.left, sign * f.top
    sx, sy = f.new_w / fw, f.new_h / fh  # input pixels per frame pixel
    valid = (float(max(left, 0)), float(max(top, 0)), float(min(left + f.new_w, iw)), float(min(top + f.new_h, ih)))
    return Affine(1 / sx, 1 / sy, -left / sx, -top / sy, valid)


def input_to_frame(pre: Preprocessing, frame_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(kx, ky, bx, by)`` mapping network-input pixels to frame pixels for ``pre.resize``."""
    aff = affine(pre, frame_hw)
    return aff.kx, aff.ky, aff.bx, aff.by


def map_affine(aff: Affine, pre: Preprocessing, map_hw: tuple[int, int]) -> Affine:
    """Compose map pixels -> input pixels -> frame pixels (a map may be smaller than the input)."""
    mh, mw = map_hw
    ux, uy = pre.input_width / mw, pre.input_height / mh
    x0, y0, x1, y1 = aff.valid
    return Affine(aff.kx * ux, aff.ky * uy, aff.bx, aff.by, (x0 / ux, y0 / uy, x1 / ux, y1 / uy))


def boxes_to_frame(
    boxes: npt.NDArray[np.floating[Any]], aff: Affine, frame_hw: tuple[int, int]
) -> npt.NDArray[np.int64]:
    """``[N, 4]`` xyxy boxes in input pixels -> rounded, clipped xyxy in frame pixels."""
    fh, fw = frame_hw
    out = np.empty(boxes.shape, dtype=np.float64)
    out[:, 0::2] = boxes[:, 0::2] * aff.kx + aff.bx
    out[:, 1::2] = boxes[:, 1::2] * aff.ky + aff.by
    np.clip(out[:, 0::2], 0, fw, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, fh, out=out[:, 1::2])
    return np.rint(out).astype(np.int64)


def outside_valid(shape: tuple[int, int], maff: Affine) -> npt.NDArray[np.bool_] | None:
    """Mask of map pixels outside the frame's image (letterbox padding); None when there are none."""
    mh, mw = shape
    x0, y0, x1, y1 = (round(v) for v in maff.valid)
    if x0 <= 0 and y0 <= 0 and x1 >= mw and y1 >= mh:
        return None
    mask = np.ones(shape, dtype=bool)
    mask[max(y0, 0) : min(y1, mh), max(x0, 0) : min(x1, mw)] = False
    return mask
