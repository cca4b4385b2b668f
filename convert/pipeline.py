"""The conversion chain: checkpoint -> OpenVINO model -> preprocessing -> precision -> proof -> store.

Every step is a small function; intermediates live in the store's staging folder, which is renamed
into ``<out>/<name>/<version>`` only after parity has passed, or removed on any failure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from convert.export import export_onnx, input_size, select_outputs, to_openvino
from convert.frames import image_files, iter_images, synthetic_frames
from convert.golden import write_golden
from convert.loaders import Loaded, load_checkpoint
from convert.normalization import Normalization, resolve_normalization
from convert.options import ConvertOptions, Precision
from convert.parity import ParityResult, compare, reference_runner
from convert.preprocess import embed, preprocessing_model
from convert.progress import Progress
from convert.tasks import resolve
from ovedge.errors import ConvertError
from ovedge.irmeta import IRMeta, Manifest, OutputLayout, Preprocessing, SourceInfo, Task, write_rt_info
from ovedge.layouts import Shape, label_count, output_shapes
from ovedge.store import MODEL_BIN, MODEL_XML, ModelStore, VersionDraft, check_name, sha256_file

log = logging.getLogger(__name__)
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@dataclass(frozen=True, slots=True)
class ConvertResult:
    path: Path
    manifest: Manifest
    parity: ParityResult


def convert(options: ConvertOptions, progress: Progress | None = None) -> ConvertResult:
    """Convert ``options.checkpoint`` into a new version in the store, or raise and write nothing."""
    progress = progress or Progress(enabled=False)
    check_name(options.name)
    parent = options.out / options.name
    existed = parent.exists()
    try:
        return _convert(options, progress)
    finally:
        if not existed and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()  # a failed first conversion leaves no empty model folder behind


def _convert(options: ConvertOptions, progress: Progress) -> ConvertResult:
    import openvino as ov

    if options.sign_key is not None:
        from ovedge.signing import load_private_key

        load_private_key(options.sign_key)  # a bad key fails before minutes of work

    with progress.step("load checkpoint"):
        loaded = load_checkpoint(options)
    norm = resolve_normalization(
        mean=options.mean, std=options.std, norm=options.norm, recorded=loaded.normalization, checkpoint=loaded.path
    )
    width, height = input_size(loaded, options.input_width, options.input_height)
    with progress.step("convert to OpenVINO"):
        model = to_openvino(loaded, width, height)
    model, kept = select_outputs(model)
    shapes = output_shapes(model)
    task, layout = resolve(shapes, options.task)
    meta = build_meta(options, task=task, layout=layout, shapes=shapes, width=width, height=height, norm=norm)
    model = embed(model, meta.preprocessing)
    write_rt_info(model, meta)

    core = ov.Core()
    frames = parity_frames(options, width, height)
    with progress.step("reference outputs"):
        reference_name, reference = reference_runner(loaded)
        prep = core.compile_model(preprocessing_model(meta.preprocessing), "CPU", F32)
        tensors = [np.asarray(prep(frame[None])[0]).copy() for frame in frames]
        refs = [reference(t) for t in progress.iterate(tensors, "reference", len(tensors))]
        refs = [[outs[i] for i in kept] for outs in refs]

    store = ModelStore(options.out)
    with store.staging(options.name) as staged:
        xml = staged / MODEL_XML
        int8_figures: dict[str, float] = {}
        if options.precision is Precision.INT8:
            from convert.quantize import quantize

            with progress.step("INT8 quantization"):
                model, int8_figures = quantize(model, options, core, progress)
        with progress.step("save IR"):
            ov.save_model(model, str(xml), compress_to_fp16=options.precision is Precision.FP16)
        with progress.step("parity"):
            compiled = core.compile_model(str(xml), "CPU", F32)
            irs = [_run(compiled, f) for f in progress.iterate(frames, "parity", len(frames))]
            parity = compare(
                meta,
                output_shapes(compiled),
                refs,
                irs,
                [frame.shape[:2] for frame in frames],
                reference=reference_name,
                threshold=options.agreement_threshold,
            )
            parity.extra.update(int8_figures)
        if not parity.passed:
            raise ConvertError(
                f"parity failed for {options.checkpoint}: {parity.metric} {parity.agreement:.2%} is below "
                f"{parity.threshold:.2%} for {options.precision.value} (max abs diff {parity.max_abs_diff:.3g}); "
                "nothing was written. Try a higher precision or give --calibration images"
            )
        with progress.step("golden sample"):
            golden = write_golden(core, xml, staged, precision=options.precision, width=width, height=height)
        if options.keep_onnx:
            with progress.step("ONNX export"):
                export_onnx(loaded, width, height, staged / "model.onnx")
        return _publish(store, staged, options=options, loaded=loaded, meta=meta, parity=parity, golden=golden)


def _run(compiled: Any, frame: np.ndarray) -> list[np.ndarray]:
    result = compiled(frame[None])
    return [np.asarray(result[out]).copy() for out in compiled.outputs]


def parity_frames(options: ConvertOptions, width: int, height: int) -> list[np.ndarray]:
    """Calibration images when given, else deterministic synthetic frames."""
    if options.calibration is not None:
        files = image_files(options.calibration, "--calibration")
        return list(iter_images(files, options.parity_samples))
    return synthetic_frames(options.parity_samples, width, height)


def build_meta(
    options: ConvertOptions,
    *,
    task: Task,
    layout: OutputLayout,
    shapes: Sequence[Shape],
    width: int,
    height: int,
    norm: Normalization,
) -> IRMeta:
    labels = options.labels
    expected = label_count(shapes, layout)
    if not labels:
        if task is Task.ANOMALY:
            labels = ("normal", "anomaly")
        elif expected is not None:
            raise ConvertError(
                f"the model has {expected} {task.value} classes: give their names with --labels FILE|a,b,c"
            )
        else:
            raise ConvertError(f"give the class names of this {task.value} model with --labels FILE|a,b,c")
    if expected is not None and len(labels) != expected:
        raise ConvertError(
            f"--labels gives {len(labels)} names ({', '.join(labels[:6])}) but the model's output has "
            f"{expected} classes (output shape {list(shapes[0])})"
        )
    unknown = [label for label in options.ok_labels if label not in labels]
    if unknown:
        raise ConvertError(f"--ok-labels {', '.join(unknown)} not among --labels {', '.join(labels)}")
    check_ok_labels(options, task, labels)
    try:
        pre = Preprocessing(
            input_width=width,
            input_height=height,
            color="BGR" if options.bgr else "RGB",
            mean=norm.mean,
            std=norm.std,
            normalization_source=norm.source,
            resize=options.resize,
            embedded=True,
        )
        return IRMeta(
            task=task,
            output_layout=layout,
            labels=labels,
            ok_labels=options.ok_labels,
            preprocessing=pre,
            confidence_threshold=options.confidence_threshold,
            iou_threshold=options.iou_threshold,
            anomaly_threshold=options.anomaly_threshold,
        )
    except ValidationError as exc:
        raise ConvertError(f"invalid metadata: {exc.errors()[0]['msg']}") from exc


class OkLabelMissingError(ConvertError):
    """A classifier converted without saying which class is a good part."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        super().__init__(
            f"which of the classes {', '.join(self.labels)} means a good part? give --ok-labels (e.g. "
            f"--ok-labels {self.labels[0]}), or --no-ok-label if every class is a defect; without it the "
            "daemon would call every part NG"
        )


def check_ok_labels(options: ConvertOptions, task: Task, labels: Sequence[str]) -> None:
    """A classifier needs an OK label, or the explicit ``--no-ok-label``; never both."""
    if options.no_ok_label and options.ok_labels:
        raise ConvertError(f"--no-ok-label and --ok-labels {', '.join(options.ok_labels)} contradict: give one")
    if task is Task.CLASSIFICATION and not options.ok_labels and not options.no_ok_label:
        raise OkLabelMissingError(labels)


def _tools() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("ovedge", "openvino", "torch", "onnx", "nncf", "onnxruntime"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def _publish(
    store: ModelStore,
    staged: Path,
    *,
    options: ConvertOptions,
    loaded: Loaded,
    meta: IRMeta,
    parity: ParityResult,
    golden: Any,
) -> ConvertResult:
    if not (staged / MODEL_XML).is_file() or not (staged / MODEL_BIN).is_file():
        raise ConvertError(f"the IR was not written to {staged}")
    source = SourceInfo(
        path=options.checkpoint.name,
        format=loaded.format.value,
        sha256=sha256_file(options.checkpoint),
        arch=loaded.arch,
    )
    draft = VersionDraft(
        meta=meta,
        precision=options.precision.value,
        source=source,
        tools=_tools(),
        parity=parity.to_dict(),
        golden=golden,
    )
    sign = None
    if options.sign_key is not None:
        from ovedge.signing import sign_manifest

        key = options.sign_key
        sign = lambda manifest: sign_manifest(manifest, key)  # noqa: E731 - one line, one use
    added = store.add_version(options.name, staged, draft, sign=sign)
    return ConvertResult(path=added.path, manifest=added.manifest, parity=parity)
