"""The converter's options: one frozen object, parsed once from the command line or built in code."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from convert.normalization import NormPreset
from ovedge.errors import ConvertError
from ovedge.irmeta import ResizeMode


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class TaskChoice(StrEnum):
    """``--task``: a task, or ``auto`` to infer it from the output shapes."""

    AUTO = "auto"
    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
    ANOMALY = "anomaly"


# Parity thresholds: the fraction of samples whose task-level result must agree with the
# reference (PyTorch, or ONNX Runtime for ONNX inputs), per precision.
DEFAULT_MIN_AGREEMENT: dict[Precision, float] = {
    Precision.FP32: 1.0,
    Precision.FP16: 0.995,
    Precision.INT8: 0.98,
}


class ConvertOptions(BaseModel):
    """Everything one conversion needs; validated once, never mutated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint: Path = Field(description="the file the training code saved")
    name: str = Field(description="model name in the store (folder name)")
    out: Path = Field(Path("ir_models"), description="root of the model store")
    arch: str | None = Field(None, description="package.module:ClassName for a state_dict")
    arch_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of --arch")
    arch_path: Path | None = Field(None, description="extra folder to import --arch from")
    trust_pickle: bool = Field(False, description="allow a fully pickled nn.Module (runs its code)")
    task: TaskChoice = TaskChoice.AUTO
    labels: tuple[str, ...] = ()
    ok_labels: tuple[str, ...] = ()
    no_ok_label: bool = Field(False, description="a classifier with no OK label: every class is a defect")
    input_width: Annotated[int, Field(gt=0)] | None = None
    input_height: Annotated[int, Field(gt=0)] | None = None
    mean: tuple[float, float, float] | None = Field(None, description="0-255 units, model channel order")
    std: tuple[float, float, float] | None = Field(None, description="0-255 units, model channel order")
    norm: NormPreset | None = Field(None, description="a named normalisation instead of mean/std")
    bgr: bool = Field(False, description="the network was trained on BGR (default RGB)")
    resize: ResizeMode = ResizeMode.STRETCH
    precision: Precision = Precision.FP16
    calibration: Path | None = Field(None, description="folder of images for INT8 calibration")
    validation: Path | None = Field(None, description="folder of labelled images for --max-drop")
    max_drop: float | None = Field(None, ge=0.0, le=1.0, description="max INT8 accuracy drop vs FP32")
    accuracy_control: bool = Field(
        False, description="NNCF accuracy-controlled INT8: revert ops to float until within --max-drop"
    )
    calibration_samples: Annotated[int, Field(gt=0)] = 300
    parity_samples: Annotated[int, Field(gt=0)] = 16
    min_agreement: float | None = Field(None, ge=0.0, le=1.0, description="override the parity threshold")
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.5, ge=0.0, le=1.0)
    anomaly_threshold: float = 0.5
    keep_onnx: bool = Field(False, description="keep model.onnx beside the IR")
    sign_key: Path | None = Field(None, description="Ed25519 private key PEM: sign the manifest")
    progress: bool = True

    @property
    def agreement_threshold(self) -> float:
        if self.min_agreement is not None:
            return self.min_agreement
        return DEFAULT_MIN_AGREEMENT[self.precision]


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` -> (width, height)."""
    try:
        width_s, height_s = text.lower().split("x")
        width, height = int(width_s), int(height_s)
    except ValueError as exc:
        raise ConvertError(f"--input-size {text!r} is not WxH (e.g. 224x224)") from exc
    if width <= 0 or height <= 0:
        raise ConvertError(f"--input-size {text!r}: width and height must be positive")
    return width, height


def parse_triple(text: str, flag: str) -> tuple[float, float, float]:
    """``r,g,b`` -> three floats."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise ConvertError(f"{flag} {text!r} is not three numbers r,g,b (0-255 pixel units)") from exc
    if len(values) != 3:
        raise ConvertError(f"{flag} {text!r} has {len(values)} values; give three: r,g,b")
    return values[0], values[1], values[2]


def parse_labels(text: str) -> tuple[str, ...]:
    """A labels file (one label a line) or a comma-separated list."""
    path = Path(text)
    if path.is_file():
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        labels = tuple(line for line in lines if line and not line.startswith("#"))
        if not labels:
            raise ConvertError(f"--labels file {path} holds no labels (one label a line)")
        return labels
    if "," not in text and (path.suffix in {".txt", ".names", ".labels"} or "/" in text):
        raise ConvertError(f"--labels file {path} does not exist (give a file or a list a,b,c)")
    labels = tuple(part.strip() for part in text.split(",") if part.strip())
    if not labels:
        raise ConvertError("--labels is empty: give a file (one label a line) or a list a,b,c")
    return labels


def parse_kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConvertError(f"--arch-kwargs is not valid JSON ({exc.msg} at {exc.pos}): {text!r}") from exc
    if not isinstance(value, dict):
        raise ConvertError(f"--arch-kwargs must be a JSON object like '{{\"num_classes\": 3}}', got {text!r}")
    return value
