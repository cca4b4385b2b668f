"""Turn a loaded checkpoint into an ``openvino.Model`` with a static ``[1,3,H,W]`` f32 input."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from convert.formats import SourceFormat
from convert.loaders import Loaded
from ovedge.errors import CheckpointError, ConvertError, ConvertOptionError, openvino_message

log = logging.getLogger(__name__)


def input_size(loaded: Loaded, width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) from ``--input-size`` or, failing that, the file's static input shape."""
    declared = loaded.input_shape
    if declared is not None and (len(declared) != 4 or declared[1] != 3):
        raise CheckpointError(
            what=loaded.path,
            detail=f"input shape {list(declared)} is not [1,3,H,W]",
            fix="ovedge takes 3-channel NCHW images",
        )
    if width is not None and height is not None:
        if declared is not None and (declared[2], declared[3]) != (height, width):
            raise ConvertOptionError(
                what=f"--input-size {width}x{height}",
                problem=f"differs from the model's fixed input {declared[3]}x{declared[2]} in {loaded.path}",
                detail=f"drop --input-size or give {declared[3]}x{declared[2]}",
            )
        return width, height
    if declared is not None:
        return declared[3], declared[2]
    raise CheckpointError(
        what=f"{loaded.path} ({loaded.format.value})",
        problem="does not fix its input size",
        detail="give --input-size WxH (the size the network was trained at)",
    )


def to_openvino(loaded: Loaded, width: int, height: int) -> Any:
    import openvino as ov

    shape = [1, 3, height, width]
    try:
        if loaded.format is SourceFormat.ONNX:
            model = ov.convert_model(str(loaded.onnx_path))
        elif loaded.format is SourceFormat.OPENVINO:
            model = loaded.ir.clone()
        elif loaded.format is SourceFormat.EXPORT:
            model = ov.convert_model(loaded.exported)
        else:
            import torch

            with torch.no_grad():
                model = ov.convert_model(loaded.module, example_input=torch.zeros(shape), input=[shape])
    except ConvertError:
        raise
    except Exception as exc:
        raise CheckpointError(
            what="OpenVINO",
            problem=f"cannot convert {loaded.path} ({loaded.format.value})",
            detail=openvino_message(exc),
        ) from exc
    if len(model.inputs) != 1:
        raise CheckpointError(
            what=loaded.path, detail=f"the model has {len(model.inputs)} inputs", fix="ovedge expects one image"
        )
    if model.inputs[0].get_partial_shape().is_dynamic:
        model.reshape({model.inputs[0]: shape})
    return model


ANOMALIB_EXTRA = ("pred_label", "pred_mask")


def select_outputs(model: Any) -> tuple[Any, list[int]]:
    """Drop Anomalib's derived outputs (``pred_label``, ``pred_mask``: thresholds baked in at 0.5)
    and keep ``anomaly_map`` (as ``[1,1,H,W]``) and ``pred_score`` (as ``[1]``); return the model
    and the indices of the original outputs kept, in order. Other models pass unchanged."""
    import openvino as ov
    import openvino.opset13 as ops

    names = [set(out.get_names()) for out in model.outputs]
    index = {name: i for i, found in enumerate(names) for name in found}
    if not ("anomaly_map" in index and "pred_score" in index):
        return model, list(range(len(model.outputs)))
    kept = [index["anomaly_map"], index["pred_score"]]
    results_in = model.get_results()
    amap, score = results_in[kept[0]].input_value(0), results_in[kept[1]].input_value(0)
    if amap.get_partial_shape().rank.get_length() == 3:
        amap = ops.unsqueeze(amap, ops.constant(np.array([1], np.int64))).output(0)
    score = ops.reshape(score, ops.constant(np.array([1], np.int64)), special_zero=False).output(0)
    results = [ops.result(amap), ops.result(score)]
    results[0].output(0).set_names({"anomaly_map"})
    results[1].output(0).set_names({"pred_score"})
    log.info("Anomalib outputs: keeping anomaly_map and pred_score, dropping %s", ", ".join(ANOMALIB_EXTRA))
    return ov.Model(results, model.get_parameters(), model.get_friendly_name()), kept


def export_onnx(loaded: Loaded, width: int, height: int, target: Path) -> None:
    """Write ``model.onnx`` (for ``--onnx``) with the legacy exporter: one self-contained file."""
    if loaded.format is SourceFormat.ONNX:
        assert loaded.onnx_path is not None
        target.write_bytes(loaded.onnx_path.read_bytes())
        return
    if loaded.format is SourceFormat.OPENVINO:
        raise ConvertOptionError(
            what="--onnx", detail=f"{loaded.path} is an OpenVINO IR", fix="there is no ONNX model to keep"
        )
    import torch

    example = torch.zeros(1, 3, height, width)
    module = loaded.module
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(module, (example,), str(target), dynamo=False, opset_version=17)
    except Exception as exc:
        raise CheckpointError(what="--onnx", detail=f"exporting {loaded.path} to ONNX failed: {exc}") from exc
