"""Turn a loaded checkpoint into an ``openvino.Model`` with a static ``[1,3,H,W]`` f32 input."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from convert.formats import SourceFormat
from convert.loaders import Loaded
from ovedge.errors import ConvertError

log = logging.getLogger(__name__)


def input_size(loaded: Loaded, width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) from ``--input-size`` or, failing that, the file's static input shape."""
    declared = loaded.input_shape
    if declared is not None and (len(declared) != 4 or declared[1] != 3):
        raise ConvertError(
            f"{loaded.path}: input shape {list(declared)} is not [1,3,H,W]; ovedge takes 3-channel NCHW images"
        )
    if width is not None and height is not None:
        if declared is not None and (declared[2], declared[3]) != (height, width):
            raise ConvertError(
                f"--input-size {width}x{height} differs from the model's fixed input "
                f"{declared[3]}x{declared[2]} in {loaded.path}: drop --input-size or give {declared[3]}x{declared[2]}"
            )
        return width, height
    if declared is not None:
        return declared[3], declared[2]
    raise ConvertError(
        f"{loaded.path} ({loaded.format.value}) does not fix its input size: give --input-size WxH "
        "(the size the network was trained at)"
    )


def to_openvino(loaded: Loaded, width: int, height: int) -> Any:
    import openvino as ov

    shape = [1, 3, height, width]
    try:
        if loaded.format is SourceFormat.ONNX:
            model = ov.convert_model(str(loaded.onnx_path))
        elif loaded.format is SourceFormat.EXPORT:
            model = ov.convert_model(loaded.exported)
        else:
            import torch

            with torch.no_grad():
                model = ov.convert_model(loaded.module, example_input=torch.zeros(shape), input=[shape])
    except ConvertError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()
        raise ConvertError(
            f"OpenVINO cannot convert {loaded.path} ({loaded.format.value}): {first[0] if first else exc!r}"
        ) from exc
    if len(model.inputs) != 1:
        raise ConvertError(f"{loaded.path}: the model has {len(model.inputs)} inputs; ovedge expects one image")
    if model.inputs[0].get_partial_shape().is_dynamic:
        model.reshape({model.inputs[0]: shape})
    return model


def export_onnx(loaded: Loaded, width: int, height: int, target: Path) -> None:
    """Write ``model.onnx`` (for ``--onnx``) with the legacy exporter: one self-contained file."""
    if loaded.format is SourceFormat.ONNX:
        assert loaded.onnx_path is not None
        target.write_bytes(loaded.onnx_path.read_bytes())
        return
    import torch

    example = torch.zeros(1, 3, height, width)
    module = loaded.module
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            torch.onnx.export(module, (example,), str(target), dynamo=False, opset_version=17)
    except Exception as exc:
        raise ConvertError(f"--onnx: exporting {loaded.path} to ONNX failed: {exc}") from exc
