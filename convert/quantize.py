"""INT8 post-training quantization with NNCF, calibrated through the embedded preprocessing.

The model handed in already takes raw u8 BGR frames (``PrePostProcessor`` applied), so the
calibration images are fed exactly as the daemon will feed camera frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from convert.frames import image_files, read_image
from convert.options import ConvertOptions
from convert.progress import Progress
from ovedge.errors import ConvertError, openvino_message

log = logging.getLogger(__name__)


def quantize(model: Any, options: ConvertOptions, core: Any, progress: Progress) -> tuple[Any, dict[str, float]]:
    """The INT8 model and its figures; refused when ``--max-drop`` is given and it loses more than that."""
    import nncf

    if options.calibration is None:
        raise ConvertError("--precision int8 needs --calibration DIR: a folder of typical frames (100-300 images)")
    files = image_files(options.calibration, "--calibration")[: options.calibration_samples]
    frames = [read_image(p)[None] for p in files]
    log.info("calibrating on %s images from %s", len(frames), options.calibration)
    figures: dict[str, float] = {"calibration_images": float(len(frames))}
    try:
        if options.accuracy_control:
            quantized = _accuracy_controlled(model, frames, options)
            figures["accuracy_control"] = 1.0
        else:
            quantized = nncf.quantize(
                model,
                nncf.Dataset(frames),
                subset_size=len(frames),
                preset=nncf.QuantizationPreset.MIXED,
            )
    except ConvertError:
        raise
    except Exception as exc:
        raise ConvertError(f"INT8 quantization failed: {openvino_message(exc)}") from exc
    figures["fake_quantize_ops"] = float(sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops()))
    if options.max_drop is not None:
        figures.update(check_drop(model, quantized, options, core, progress, max_drop=options.max_drop))
    return quantized, figures


def _accuracy_controlled(model: Any, frames: list[np.ndarray], options: ConvertOptions) -> Any:
    """NNCF's accuracy-controlled quantization: ops whose quantization costs accuracy on the
    validation folder are reverted to floating point until the drop is within ``--max-drop``."""
    import nncf

    from ovedge.irmeta import read_rt_info

    if options.validation is None or options.max_drop is None:
        raise ConvertError("--accuracy-control needs --validation DIR and --max-drop")
    items = labelled_images(options.validation, read_rt_info(model).labels)
    data = [(read_image(path)[None], label) for path, label in items]

    def validate(compiled: Any, batch: Any) -> float:
        hits = sum(
            int(np.argmax(np.asarray(compiled(x)[compiled.outputs[0]]).reshape(-1)) == label) for x, label in batch
        )
        return hits / len(data)

    return nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(frames),
        nncf.Dataset(data),
        validation_fn=validate,
        max_drop=options.max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=len(frames),
        preset=nncf.QuantizationPreset.MIXED,
    )


def labelled_images(folder: Path, labels: tuple[str, ...]) -> list[tuple[Path, int]]:
    """``folder/<label>/*.png`` -> (image, class index); sub-folders must be labels."""
    if not folder.is_dir():
        raise ConvertError(f"--validation {folder} is not a folder (expected one sub-folder per label)")
    items: list[tuple[Path, int]] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name not in labels:
            raise ConvertError(f"--validation {folder}: sub-folder {sub.name!r} is not a label ({', '.join(labels)})")
        items += [(p, labels.index(sub.name)) for p in image_files(sub, "--validation")]
    if not items:
        raise ConvertError(f"--validation {folder} holds no labelled images (expected <label>/<image> files)")
    return items


def accuracy(compiled: Any, items: list[tuple[Path, int]]) -> float:
    hits = 0
    for path, label in items:
        logits = np.asarray(compiled(read_image(path)[None])[compiled.outputs[0]])
        hits += int(np.argmax(logits.reshape(-1)) == label)
    return hits / len(items)


def check_drop(
    fp32: Any, int8: Any, options: ConvertOptions, core: Any, progress: Progress, *, max_drop: float
) -> dict[str, float]:
    """Refuse the INT8 model when its validation accuracy drops more than ``--max-drop`` below FP32."""
    from ovedge.irmeta import read_rt_info

    if options.validation is None:
        raise ConvertError("--max-drop needs --validation DIR: one sub-folder of images per label")
    meta = read_rt_info(fp32)
    if meta.task.value != "classification":
        raise ConvertError(f"--max-drop is measured as classification accuracy; this model is {meta.task.value}")
    items = labelled_images(options.validation, meta.labels)
    with progress.step(f"validation accuracy on {len(items)} images"):
        base = accuracy(core.compile_model(fp32, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)
        quant = accuracy(core.compile_model(int8, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), items)
    drop = round(base - quant, 9)  # 3/300 - 0/300 is 0.01, not 0.010000000000000009
    log.info("validation accuracy fp32 %.4f int8 %.4f (drop %.4f)", base, quant, drop)
    if drop > max_drop:
        raise ConvertError(
            f"INT8 accuracy {quant:.2%} is {drop:.2%} below FP32 {base:.2%} on {len(items)} validation images, "
            f"more than --max-drop {max_drop}; nothing was written (keep fp16, try --accuracy-control, "
            "or give more/better --calibration images)"
        )
    return {
        "validation_images": float(len(items)),
        "accuracy_fp32": base,
        "accuracy_int8": quant,
        "accuracy_drop": drop,
    }
