"""INT8: NNCF quantization through the embedded preprocessing, --max-drop, and benchmark_app."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from convert.frames import synthetic_frame

BENCHMARK_APP = Path(sys.executable).parent / "benchmark_app"


class Fragile(torch.nn.Module):
    """A classifier that INT8 cannot keep: one activation channel a million times larger than the
    three small ones that decide the class, all in one per-tensor quantized tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[0, :, 0, 0] = 1e6
            for c in range(3):
                self.conv.weight[c + 1, c, 0, 0] = 1.0
        self.fc = torch.nn.Linear(3, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(3) * 10)
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean((2, 3))
        out: torch.Tensor = self.fc(y[:, 1:])
        return out


@pytest.fixture(scope="module")
def int8_result(checkpoint, calibration_dir: Path, convert_zoo, tmp_path_factory: pytest.TempPathFactory):
    """The ResNet-style model quantized to INT8 on 20 calibration frames."""
    out = tmp_path_factory.mktemp("int8")
    return convert_zoo(checkpoint("resnet", "state_dict"), "resnet", out, precision="int8", calibration=calibration_dir)


@pytest.mark.slow
def test_int8_is_quantized_and_passes_parity(int8_result) -> None:
    """The INT8 IR holds FakeQuantize ops and agrees with PyTorch on the calibration frames (>= 98%)."""
    import openvino as ov

    model = ov.Core().read_model(str(int8_result.path / "model.xml"))
    assert sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops()) >= 5
    parity = int8_result.manifest.parity
    assert int8_result.manifest.precision == "int8"
    assert parity["threshold"] == 0.98 and parity["agreement"] >= 0.98
    assert parity["calibration_images"] == 20.0
    assert parity["samples"] == 16  # calibration images are the parity inputs when given


@pytest.mark.slow
def test_int8_ir_runs_in_benchmark_app(int8_result) -> None:
    """The produced IR (raw u8 frames of any size) runs in OpenVINO's benchmark_app."""
    done = subprocess.run(
        [
            str(BENCHMARK_APP),
            "-m",
            str(int8_result.path / "model.xml"),
            "-d",
            "CPU",
            "-niter",
            "5",
            "-data_shape",
            "[1,72,96,3]",
            "-hint",
            "latency",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Throughput:" in done.stdout


def _validation(folder: Path, model: torch.nn.Module, labels: tuple[str, ...], first: int = 900) -> Path:
    """Frames labelled by the FP32 model itself, so FP32 accuracy is 100% by construction."""
    for label in labels:
        (folder / label).mkdir(parents=True, exist_ok=True)
    for i in range(24):
        frame = synthetic_frame(first + i, 32, 32)
        frame[..., i % 3] = 255  # push each frame towards one class
        x = torch.from_numpy(np.ascontiguousarray(frame[..., ::-1]).transpose(2, 0, 1)[None].astype(np.float32))
        with torch.no_grad():
            label = labels[int(model(x / 255.0).argmax())]
        cv2.imwrite(str(folder / label / f"{i:03d}.png"), frame)
    return folder


@pytest.mark.slow
def test_max_drop_refuses_a_lossy_int8(calibration_dir: Path, convert_zoo, tmp_path: Path) -> None:
    """An INT8 model losing more than --max-drop on the validation folder is refused; nothing is written."""
    from ovedge.errors import ConvertError

    model = Fragile().eval()
    path = tmp_path / "fragile.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 32, 32)), str(path))
    labels = ("ok", "scratch", "dent")
    validation = _validation(tmp_path / "val", model, labels)
    store = tmp_path / "store"
    with pytest.raises(
        ConvertError, match=r"INT8 accuracy .* below FP32 100\.00% on 24 validation images, more than --max-drop 0\.01"
    ):
        convert_zoo(
            path,
            "fragile",
            store,
            labels=labels,
            input_width=32,
            input_height=32,
            mean=(0, 0, 0),
            std=(255, 255, 255),
            precision="int8",
            calibration=calibration_dir,
            validation=validation,
            max_drop=0.01,
        )
    assert not store.exists() or not any(store.rglob("*"))


@pytest.mark.slow
def test_max_drop_accepts_and_records(checkpoint, calibration_dir: Path, convert_zoo, tmp_path: Path) -> None:
    """Within --max-drop the INT8 model is written with FP32 and INT8 validation accuracy in the manifest."""
    model = torch.jit.load(str(checkpoint("resnet", "torchscript")))
    labels = ("ok", "scratch", "dent")
    folder = tmp_path / "val"
    for label in labels:
        (folder / label).mkdir(parents=True)
    for i in range(12):
        cv2.imwrite(str(folder / labels[i % 3] / f"{i}.png"), synthetic_frame(700 + i, 64, 64))
    result = convert_zoo(
        checkpoint("resnet", "torchscript"),
        "resnet",
        tmp_path / "s",
        precision="int8",
        calibration=calibration_dir,
        validation=folder,
        max_drop=1.0,
        arch=None,
    )
    parity = result.manifest.parity
    assert parity["validation_images"] == 12.0
    assert 0.0 <= parity["accuracy_int8"] <= 1.0 and 0.0 <= parity["accuracy_fp32"] <= 1.0
    assert parity["accuracy_drop"] == pytest.approx(parity["accuracy_fp32"] - parity["accuracy_int8"])
    assert model is not None and shutil.which(str(BENCHMARK_APP)) is not None


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ssd", "yolov8"])
def test_int8_detectors(model, checkpoint, calibration_dir: Path, convert_zoo, tmp_path: Path) -> None:
    """SSD-style and YOLOv8-style detectors quantize to INT8 with detection agreement >= 98%."""
    result = convert_zoo(
        checkpoint(model, "torchscript"), model, tmp_path, precision="int8", calibration=calibration_dir, arch=None
    )
    parity = result.manifest.parity
    assert parity["metric"] == "detection agreement"
    assert parity["agreement"] >= 0.98


@pytest.mark.slow
def test_accuracy_control_recovers_a_lossy_int8(convert_zoo, tmp_path: Path) -> None:
    """--accuracy-control reverts the ops INT8 breaks, so the model refused above is accepted within --max-drop."""
    model = Fragile().eval()
    path = tmp_path / "fragile.pt"
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 3, 32, 32)), str(path))
    labels = ("ok", "scratch", "dent")
    validation = _validation(tmp_path / "val", model, labels)
    calibration = _validation(tmp_path / "cal", model, labels, first=300)  # frames like the line's
    result = convert_zoo(
        path,
        "fragile",
        tmp_path / "store",
        labels=labels,
        input_width=32,
        input_height=32,
        mean=(0, 0, 0),
        std=(255, 255, 255),
        precision="int8",
        calibration=calibration,
        validation=validation,
        max_drop=0.01,
        accuracy_control=True,
        arch=None,
    )
    parity = result.manifest.parity
    assert parity["accuracy_control"] == 1.0
    assert parity["accuracy_fp32"] == 1.0
    assert parity["accuracy_drop"] <= 0.01
