"""The IR metadata schema: the one contract between the converter and the daemon.

The converter writes an :class:`IRMeta` into the IR twice over:

* into ``rt_info["model_info"]`` with the keys OpenVINO Model API and DL Streamer read
  (``model_type``, ``labels``, ``confidence_threshold``, ``iou_threshold``, ``mean_values``,
  ``scale_values``, ``reverse_input_channels``, ``resize_type``, ``embedded_processing``), so that
  other tools understand our IRs;
* into ``rt_info["ovedge"]["meta"]`` as JSON, exact and versioned, which is what the daemon reads.

``manifest.json`` beside the IR (see :class:`Manifest`) carries the same metadata plus hashes,
tool versions, parity figures, the golden sample and an optional signature.

This module imports neither torch nor OpenVINO: functions that touch an ``ov.Model`` take it as
an argument.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ovedge.errors import ModelError

SCHEMA_VERSION = 1
RT_SECTION = "ovedge"
RT_META_KEY = "meta"
MODEL_INFO = "model_info"


class Task(StrEnum):
    """What the model's outputs mean; chooses the post-processor at load time."""

    CLASSIFICATION = "classification"
    DETECTION = "detection"
    SEGMENTATION = "segmentation"
    ANOMALY = "anomaly"


class OutputLayout(StrEnum):
    """How the raw outputs of a task are laid out (chooses the decoder at load time)."""

    # classification: one [1, C] output
    LOGITS = "logits"  # raw scores, softmax applied by the daemon
    PROBABILITIES = "probabilities"  # already sum to one
    # detection
    YOLOV8 = "yolov8"  # [1, 4+C, N]: cx, cy, w, h, class scores; NMS by the daemon
    SSD = "ssd"  # [1, 1, N, 7]: image_id, label, conf, x0, y0, x1, y1 (normalised)
    BOXES_SCORES_LABELS = "boxes_scores_labels"  # torchvision style, three outputs
    # segmentation
    SEG_LOGITS = "seg_logits"  # [1, C, H, W] scores per class
    CLASS_MAP = "class_map"  # [1, H, W] or [1, 1, H, W] class indices
    # anomaly
    ANOMALY_MAP_SCORE = "anomaly_map_score"  # a [1,1,H,W] map and a [1] score
    ANOMALY_MAP = "anomaly_map"  # map only, score = max of map
    ANOMALY_SCORE = "anomaly_score"  # score only


TASK_LAYOUTS: dict[Task, frozenset[OutputLayout]] = {
    Task.CLASSIFICATION: frozenset({OutputLayout.LOGITS, OutputLayout.PROBABILITIES}),
    Task.DETECTION: frozenset(
        {OutputLayout.YOLOV8, OutputLayout.SSD, OutputLayout.BOXES_SCORES_LABELS}
    ),
    Task.SEGMENTATION: frozenset({OutputLayout.SEG_LOGITS, OutputLayout.CLASS_MAP}),
    Task.ANOMALY: frozenset(
        {OutputLayout.ANOMALY_MAP_SCORE, OutputLayout.ANOMALY_MAP, OutputLayout.ANOMALY_SCORE}
    ),
}

# The Model API ``model_type`` written for each of our layouts.
MODEL_API_TYPES: dict[OutputLayout, str] = {
    OutputLayout.LOGITS: "Classification",
    OutputLayout.PROBABILITIES: "Classification",
    OutputLayout.YOLOV8: "YOLOv8",
    OutputLayout.SSD: "SSD",
    OutputLayout.BOXES_SCORES_LABELS: "SSD",
    OutputLayout.SEG_LOGITS: "Segmentation",
    OutputLayout.CLASS_MAP: "Segmentation",
    OutputLayout.ANOMALY_MAP_SCORE: "AnomalyDetection",
    OutputLayout.ANOMALY_MAP: "AnomalyDetection",
    OutputLayout.ANOMALY_SCORE: "AnomalyDetection",
}


class ResizeMode(StrEnum):
    """How a frame of any size becomes the model's input size (inside the IR)."""

    STRETCH = "stretch"
    LETTERBOX = "letterbox"
    CROP = "crop"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Preprocessing(_Frozen):
    """What the IR does to a raw u8 BGR NHWC frame before the network sees it."""

    input_width: Annotated[int, Field(gt=0, description="network input width, pixels")]
    input_height: Annotated[int, Field(gt=0, description="network input height, pixels")]
    color: Literal["RGB", "BGR"] = Field(
        "RGB", description="channel order the network was trained on"
    )
    mean: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="per-channel mean, 0-255 pixel units, model channel order"
    )
    std: tuple[float, float, float] = Field(
        (255.0, 255.0, 255.0),
        description="per-channel std, 0-255 pixel units, model channel order",
    )
    normalization_source: str | None = Field(
        None,
        description="where mean/std came from: --mean/--std, --norm <preset>, or the checkpoint entry "
        "that records them (None in IRs made before this field existed)",
    )
    resize: ResizeMode = ResizeMode.STRETCH
    embedded: bool = Field(
        True, description="True when the IR takes raw u8 BGR NHWC frames of any size"
    )


class IRMeta(_Frozen):
    """Everything the daemon needs to know about an IR, besides the graph itself."""

    schema_version: int = SCHEMA_VERSION
    task: Task
    output_layout: OutputLayout
    labels: tuple[str, ...] = Field(description="class names, index order of the outputs")
    ok_labels: tuple[str, ...] = Field(
        (), description="labels that mean a good part (classification/segmentation)"
    )
    preprocessing: Preprocessing
    confidence_threshold: float = Field(0.5, ge=0.0, le=1.0)
    iou_threshold: float = Field(0.5, ge=0.0, le=1.0)
    anomaly_threshold: float = Field(
        0.5, description="score at which an anomaly model calls a part NG"
    )

    @model_validator(mode="after")
    def _consistent(self) -> IRMeta:
        if self.output_layout not in TASK_LAYOUTS[self.task]:
            allowed = ", ".join(sorted(TASK_LAYOUTS[self.task]))
            msg = f"output layout {self.output_layout!s} does not fit task {self.task!s} (use {allowed})"
            raise ValueError(msg)
        unknown = [label for label in self.ok_labels if label not in self.labels]
        if unknown:
            msg = f"ok_labels {unknown} are not among the labels {list(self.labels)}"
            raise ValueError(msg)
        return self

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str, *, source: str = "IR metadata") -> IRMeta:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ModelError(f"{source}: {_one_line(exc)}") from exc


def write_rt_info(model: Any, meta: IRMeta) -> None:
    """Write ``meta`` into an ``openvino.Model``'s rt_info (ours and Model API's keys)."""
    model.set_rt_info(meta.to_json(), [RT_SECTION, RT_META_KEY])
    model.set_rt_info(str(SCHEMA_VERSION), [RT_SECTION, "schema_version"])
    pre = meta.preprocessing
    model_info: dict[str, str] = {
        "model_type": MODEL_API_TYPES[meta.output_layout],
        # Model API stores lists space-separated; spaces inside a label become underscores.
        "labels": " ".join(label.replace(" ", "_") for label in meta.labels),
        "confidence_threshold": repr(meta.confidence_threshold),
        "iou_threshold": repr(meta.iou_threshold),
        "mean_values": " ".join(repr(v) for v in pre.mean),
        "scale_values": " ".join(repr(v) for v in pre.std),
        "reverse_input_channels": str(pre.color == "RGB"),
        "resize_type": {"stretch": "standard", "letterbox": "fit_to_window_letterbox", "crop": "crop"}[
            pre.resize.value
        ],
        "embedded_processing": str(pre.embedded),
        "orig_width": str(pre.input_width),
        "orig_height": str(pre.input_height),
    }
    if meta.task is Task.ANOMALY:
        model_info["image_threshold"] = repr(meta.anomaly_threshold)
    for key, value in model_info.items():
        model.set_rt_info(value, [MODEL_INFO, key])


def read_rt_info(model: Any, *, source: str = "IR") -> IRMeta:
    """Read our metadata back from an ``openvino.Model`` returned by ``Core.read_model``.

    rt_info is not readable from a compiled model: read it before compiling.
    """
    if not model.has_rt_info([RT_SECTION, RT_META_KEY]):
        raise ModelError(
            f"{source} carries no ovedge metadata (rt_info/{RT_SECTION}/{RT_META_KEY}); "
            "convert it with `ovedge-convert`, which embeds preprocessing and labels"
        )
    text = model.get_rt_info([RT_SECTION, RT_META_KEY]).astype(str)
    return IRMeta.from_json(text, source=source)


def read_model_info(model: Any) -> dict[str, str]:
    """Return the raw ``rt_info/model_info`` keys of any IR (ours or a foreign one)."""
    if not model.has_rt_info([MODEL_INFO]):
        return {}
    section = model.get_rt_info()[MODEL_INFO]
    return {str(key): str(section[key].astype(str)) for key in section}


class FileDigest(_Frozen):
    sha256: str
    size: int


class SourceInfo(_Frozen):
    path: str = Field(description="file name of the checkpoint the IR was made from")
    format: str = Field(description="torchscript, export, state_dict, lightning, onnx, ...")
    sha256: str
    arch: str | None = None


class GoldenSample(_Frozen):
    """A frame and the outputs the converter saw for it: the self-test of a model swap."""

    input: str = Field(description="file name of the u8 BGR frame (PNG) in the version folder")
    outputs: str = Field(description="file name of the .npz of expected outputs, by output index")
    atol: float = Field(description="max abs difference accepted when re-running the sample")


class Signature(_Frozen):
    algorithm: Literal["ed25519"] = "ed25519"
    key_id: str = Field(description="hex SHA-256 of the raw public key, first 16 characters")
    value: str = Field(description="base64 signature over Manifest.signed_payload()")


class Manifest(_Frozen):
    """``manifest.json`` of one model version. Written once, never changed in place."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: int = Field(ge=1)
    created_utc: str
    precision: Literal["fp32", "fp16", "int8"]
    meta: IRMeta
    files: dict[str, FileDigest] = Field(description="model.xml, model.bin and any sidecar files")
    source: SourceInfo | None = None
    tools: dict[str, str] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    golden: GoldenSample | None = None
    signature: Signature | None = None

    def signed_payload(self) -> bytes:
        """The bytes a signature covers: name, version and the hashes of every file."""
        body = {
            "name": self.name,
            "version": self.version,
            "files": {k: v.sha256 for k, v in sorted(self.files.items())},
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Manifest:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ModelError(f"{source}: {_one_line(exc)}") from exc


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
