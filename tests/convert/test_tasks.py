"""Every task and output layout of the zoo converts with --task auto and task-level parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convert.frames import synthetic_frame
from convert.options import TaskChoice
from convert.tasks import resolve
from ovedge.errors import ConvertError
from ovedge.irmeta import OutputLayout, Task, read_model_info, read_rt_info

CASES = [
    ("mobilenet", "export", Task.CLASSIFICATION, OutputLayout.LOGITS, "top-1 agreement"),
    ("yolov8", "torchscript", Task.DETECTION, OutputLayout.YOLOV8, "detection agreement"),
    ("yolov8", "onnx", Task.DETECTION, OutputLayout.YOLOV8, "detection agreement"),
    ("ssd", "state_dict", Task.DETECTION, OutputLayout.SSD, "detection agreement"),
    ("ssd", "export", Task.DETECTION, OutputLayout.SSD, "detection agreement"),
    ("tv_detector", "torchscript", Task.DETECTION, OutputLayout.BOXES_SCORES_LABELS, "detection agreement"),
    ("tv_detector", "export", Task.DETECTION, OutputLayout.BOXES_SCORES_LABELS, "detection agreement"),
    ("unet", "onnx", Task.SEGMENTATION, OutputLayout.SEG_LOGITS, "mask IoU"),
    ("unet", "state_dict", Task.SEGMENTATION, OutputLayout.SEG_LOGITS, "mask IoU"),
    ("anomaly", "export", Task.ANOMALY, OutputLayout.ANOMALY_MAP_SCORE, "decision agreement"),
    ("anomaly", "torchscript", Task.ANOMALY, OutputLayout.ANOMALY_MAP_SCORE, "decision agreement"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "fmt", "task", "layout", "metric"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_zoo_task_auto(model, fmt, task, layout, metric, checkpoint, convert_zoo, tmp_path: Path) -> None:
    """--task auto finds the task and layout from the outputs; parity passes at FP16 with its task metric."""
    import openvino as ov

    result = convert_zoo(checkpoint(model, fmt), model, tmp_path)
    meta = result.manifest.meta
    assert (meta.task, meta.output_layout) == (task, layout)
    assert result.manifest.parity["metric"] == metric
    assert result.manifest.parity["agreement"] >= 0.995
    ir = ov.Core().read_model(str(result.path / "model.xml"))
    assert read_rt_info(ir) == meta
    info = read_model_info(ir)
    assert info["model_type"] and info["mean_values"] == "123.675 116.28 103.53"
    assert info["reverse_input_channels"] == "True"
    if task is Task.ANOMALY:
        assert meta.labels == ("normal", "anomaly")
        assert info["image_threshold"] == "0.5"


@pytest.mark.slow
def test_golden_sample_reproduces(checkpoint, convert_zoo, run_ir, tmp_path: Path) -> None:
    """golden.png run through the IR gives golden_outputs.npz within the manifest's atol."""
    import cv2

    result = convert_zoo(checkpoint("yolov8", "torchscript"), "yolov8", tmp_path)
    golden = result.manifest.golden
    assert golden is not None and golden.atol > 0
    frame = cv2.imread(str(result.path / golden.input), cv2.IMREAD_COLOR)
    assert frame.shape[:2] != (64, 64), "the golden frame exercises the in-graph resize"
    expected = np.load(result.path / golden.outputs)
    got = run_ir(result.path / "model.xml", frame)
    assert sorted(expected.files) == [str(i) for i in range(len(got))]
    for i, out in enumerate(got):
        np.testing.assert_allclose(out, expected[str(i)], atol=golden.atol)


@pytest.mark.slow
def test_explicit_task_for_one_channel_map(convert_zoo, tmp_path: Path) -> None:
    """A lone [1,1,H,W] map is ambiguous for auto; --task anomaly takes it as an anomaly map."""
    import torch

    class MapOnly(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(x.mean(1, keepdim=True))

    path = tmp_path / "map.pt"
    torch.jit.save(torch.jit.trace(MapOnly(), torch.zeros(1, 3, 32, 32)), str(path))
    with pytest.raises(ConvertError, match=r"could be anomaly or segmentation: say which with --task"):
        convert_zoo(path, "map", tmp_path / "a", input_width=32, input_height=32)
    result = convert_zoo(path, "map", tmp_path / "b", input_width=32, input_height=32, task="anomaly")
    assert result.manifest.meta.output_layout is OutputLayout.ANOMALY_MAP
    assert result.parity.passed


def test_resolve_refuses_unknown_shapes() -> None:
    """Output shapes that fit no task are refused with the shapes and what was expected."""
    with pytest.raises(ConvertError, match=r"cannot tell the task from the output shapes \[2,3\]"):
        resolve([(2, 3)], TaskChoice.AUTO)
    with pytest.raises(ConvertError, match=r"--task segmentation does not fit the model's output shapes \[1,4\]"):
        resolve([(1, 4)], TaskChoice.SEGMENTATION)


def test_frames_are_deterministic() -> None:
    """Synthetic parity frames are the same on every call (the parity figures are reproducible)."""
    assert np.array_equal(synthetic_frame(3, 50, 40), synthetic_frame(3, 50, 40))
    assert not np.array_equal(synthetic_frame(3, 50, 40), synthetic_frame(4, 50, 40))


@pytest.mark.slow
@pytest.mark.parametrize("resize", ["letterbox", "crop"])
def test_letterbox_and_crop_keep_static_outputs(resize, checkpoint, convert_zoo, tmp_path: Path) -> None:
    """With --resize letterbox/crop the IR still takes any frame size and its outputs stay static."""
    import openvino as ov

    result = convert_zoo(checkpoint("yolov8", "torchscript"), "yolov8", tmp_path, resize=resize)
    model = ov.Core().read_model(str(result.path / "model.xml"))
    assert str(model.inputs[0].get_partial_shape()) == "[1,?,?,3]"
    assert list(model.outputs[0].get_shape()) == [1, 6, 64]
    assert result.manifest.meta.preprocessing.resize.value == resize
    assert result.parity.passed
