"""Embed preprocessing into the IR with ``PrePostProcessor``: raw u8 BGR NHWC frames of any size in."""

from __future__ import annotations

from typing import Any

import numpy as np

from ovedge.irmeta import Preprocessing, ResizeMode


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


def _resizer(pre: Preprocessing) -> Any:
    """A PPP custom step for letterbox / centre crop on a dynamic NHWC f32 frame."""
    import openvino as ov
    import openvino.opset13 as ops

    out_h, out_w = pre.input_height, pre.input_width

    def i64(*values: int) -> Any:
        return ops.constant(np.array(values, np.int64))

    def step(node: Any) -> Any:
        shape = ops.convert(ops.shape_of(node), ov.Type.f32)  # [N, H, W, C]
        h = ops.gather(shape, i64(1), ops.constant(np.int64(0)))
        w = ops.gather(shape, i64(2), ops.constant(np.int64(0)))
        ratio_h = ops.divide(ops.constant(np.array([out_h], np.float32)), h)
        ratio_w = ops.divide(ops.constant(np.array([out_w], np.float32)), w)
        pick = ops.minimum if pre.resize is ResizeMode.LETTERBOX else ops.maximum
        ratio = pick(ratio_h, ratio_w)
        new_h = ops.convert(ops.round(ops.multiply(h, ratio), "half_to_even"), ov.Type.i64)
        new_w = ops.convert(ops.round(ops.multiply(w, ratio), "half_to_even"), ov.Type.i64)
        if pre.resize is ResizeMode.LETTERBOX:
            new_h = ops.minimum(new_h, i64(out_h))
            new_w = ops.minimum(new_w, i64(out_w))
        else:
            new_h = ops.maximum(new_h, i64(out_h))
            new_w = ops.maximum(new_w, i64(out_w))
        sizes = ops.concat([new_h, new_w], 0)
        resized = ops.interpolate(
            node,
            sizes,
            mode="linear",
            shape_calculation_mode="sizes",
            axes=i64(1, 2),
        )
        if pre.resize is ResizeMode.LETTERBOX:
            pad_h = ops.subtract(i64(out_h), new_h)
            pad_w = ops.subtract(i64(out_w), new_w)
            two = i64(2)
            top, left = ops.divide(pad_h, two), ops.divide(pad_w, two)
            bottom, right = ops.subtract(pad_h, top), ops.subtract(pad_w, left)
            zero = i64(0)
            begin = ops.concat([zero, top, left, zero], 0)
            end = ops.concat([zero, bottom, right, zero], 0)
            # pad with grey 114 (the YOLO convention), in pixel units before mean/scale
            framed = ops.pad(resized, begin, end, "constant", ops.constant(np.float32(114.0)))
        else:
            off_h = ops.divide(ops.subtract(new_h, i64(out_h)), i64(2))
            off_w = ops.divide(ops.subtract(new_w, i64(out_w)), i64(2))
            start = ops.concat([off_h, off_w], 0)
            stop = ops.add(start, i64(out_h, out_w))
            framed = ops.slice(resized, start, stop, i64(1, 1), i64(1, 2))
        # the size is known: say so, so the network and its outputs keep static shapes
        return ops.reshape(framed, i64(1, out_h, out_w, 3), special_zero=False).output(0)

    return step
