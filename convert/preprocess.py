"""Embed preprocessing into the IR with ``PrePostProcessor``: raw u8 BGR NHWC frames of any size in."""

from __future__ import annotations

from typing import Any

import numpy as np

from ovedge.irmeta import Preprocessing, ResizeMode
from ovedge.layouts.geometry import fit


def embed(model: Any, pre: Preprocessing) -> Any:
    """Return ``model`` (static ``[1,3,H,W]`` f32 input) taking u8 BGR NHWC frames of any size."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm

    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR)
    tensor.set_spatial_dynamic_shape()
    steps = ppp.input().preprocess()
    steps.convert_element_type(ov.Type.f32)
    if pre.color == "RGB":
        steps.convert_color(ColorFormat.RGB)
    if pre.resize is ResizeMode.STRETCH:
        steps.resize(ResizeAlgorithm.RESIZE_LINEAR)
    else:
        steps.custom(_resizer(pre))
    steps.mean(list(pre.mean)).scale(list(pre.std))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    return ppp.build()


def preprocessing_model(pre: Preprocessing) -> Any:
    """An IR that only preprocesses: u8 BGR NHWC frame in, the network's f32 NCHW input out.

    The parity check feeds its output to PyTorch, so both sides see exactly the same tensor.
    """
    import openvino as ov
    import openvino.opset13 as ops

    param = ops.parameter([1, 3, pre.input_height, pre.input_width], ov.Type.f32, name="x")
    same = ops.add(param, ops.constant(np.zeros((1,), np.float32)))
    return embed(ov.Model([same], [param], "preprocess"), pre)


class _GraphArithmetic:
    """:class:`ovedge.layouts.geometry.Arithmetic` on OpenVINO graph nodes (float32 and int64)."""

    def __init__(self) -> None:
        import openvino.opset13 as ops

        self.ops = ops

    def const(self, value: int) -> Any:
        return self.ops.constant(np.array([value], np.int64))

    def ratio(self, target: int, size: Any) -> Any:
        return self.ops.divide(self.ops.constant(np.array([target], np.float32)), size)

    def scale(self, size: Any, ratio: Any) -> Any:
        return self.ops.convert(self.ops.round(self.ops.multiply(size, ratio), "half_to_even"), "i64")

    def minimum(self, a: Any, b: Any) -> Any:
        return self.ops.minimum(a, b)

    def maximum(self, a: Any, b: Any) -> Any:
        return self.ops.maximum(a, b)

    def sub(self, a: Any, b: Any) -> Any:
        return self.ops.subtract(a, b)

    def half(self, a: Any) -> Any:
        return self.ops.divide(a, self.const(2))


def _resizer(pre: Preprocessing) -> Any:
    """A PPP custom step for letterbox / centre crop on a dynamic NHWC f32 frame.

    The sizes and offsets come from :func:`ovedge.layouts.geometry.fit`, evaluated on graph nodes:
    the same function the daemon evaluates on numbers to map boxes back to the frame.
    """
    import openvino as ov
    import openvino.opset13 as ops

    out_h, out_w = pre.input_height, pre.input_width
    graph = _GraphArithmetic()

    def i64(*values: int) -> Any:
        return ops.constant(np.array(values, np.int64))

    def step(node: Any) -> Any:
        shape = ops.convert(ops.shape_of(node), ov.Type.f32)  # [N, H, W, C]
        h = ops.gather(shape, i64(1), ops.constant(np.int64(0)))
        w = ops.gather(shape, i64(2), ops.constant(np.int64(0)))
        f = fit(w, h, pre, graph)
        resized = ops.interpolate(
            node,
            ops.concat([f.new_h, f.new_w], 0),
            mode="linear",
            shape_calculation_mode="sizes",
            axes=i64(1, 2),
        )
        zero = i64(0)
        if pre.resize is ResizeMode.LETTERBOX:
            begin = ops.concat([zero, f.top, f.left, zero], 0)
            end = ops.concat([zero, f.bottom, f.right, zero], 0)
            # pad with grey 114 (the YOLO convention), in pixel units before mean/scale
            framed = ops.pad(resized, begin, end, "constant", ops.constant(np.float32(114.0)))
        else:
            start = ops.concat([f.top, f.left], 0)
            stop = ops.add(start, i64(out_h, out_w))
            framed = ops.slice(resized, start, stop, i64(1, 1), i64(1, 2))
        # the size is known: say so, so the network and its outputs keep static shapes
        return ops.reshape(framed, i64(1, out_h, out_w, 3), special_zero=False).output(0)

    return step
