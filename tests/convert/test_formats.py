"""Every checkpoint format converts, with parity proven against its own reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from convert import zoo
from convert.frames import synthetic_frame
from ovedge.store import ModelStore


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["state_dict", "nested", "lightning", "torchscript", "export", "onnx"])
def test_resnet_in_every_format(fmt, checkpoint, convert_zoo, run_ir, tmp_path: Path) -> None:
    """The ResNet-style classifier converts from each format; the manifest proves 100% top-1 parity."""
    result = convert_zoo(checkpoint("resnet", fmt), "resnet", tmp_path, precision="fp32")
    manifest = result.manifest
    expected_format = {"nested": "state_dict"}.get(fmt, fmt)
    assert manifest.source is not None and manifest.source.format == expected_format
    assert manifest.parity["passed"] is True
    assert manifest.parity["agreement"] == 1.0
    assert manifest.parity["metric"] == "top-1 agreement"
    assert manifest.parity["max_abs_diff"] < 1e-3
    assert manifest.parity["reference"].startswith("onnxruntime" if fmt == "onnx" else "pytorch")
    # the IR takes a raw BGR frame of another size and agrees with PyTorch on the same frame
    frame = synthetic_frame(42, 100, 80)
    out = run_ir(result.path / "model.xml", frame)[0]
    assert out.shape == (1, 3)


@pytest.mark.slow
def test_lightning_hyper_parameters_and_prefix(checkpoint, convert_zoo, tmp_path: Path) -> None:
    """A Lightning .ckpt loads through its `model.` prefix and passes hyper-parameters the class accepts."""
    result = convert_zoo(checkpoint("resnet", "lightning"), "resnet", tmp_path)
    assert result.manifest.source is not None
    assert result.manifest.source.format == "lightning"
    assert result.manifest.source.arch == "convert.zoo:ResNetTiny"


@pytest.mark.slow
def test_pickled_module_with_trust_pickle(checkpoint, convert_zoo, tmp_path: Path) -> None:
    """A fully pickled nn.Module converts only with --trust-pickle, recorded as its own format."""
    result = convert_zoo(checkpoint("resnet", "pickle"), "resnet", tmp_path, trust_pickle=True, arch=None)
    assert result.manifest.source is not None
    assert result.manifest.source.format == "pickled_module"
    assert result.parity.passed


@pytest.mark.slow
def test_ir_matches_pytorch_on_a_raw_frame(checkpoint, convert_zoo, run_ir, tmp_path: Path) -> None:
    """The IR on a raw BGR frame equals PyTorch on the same frame resized, RGB-ordered and normalised."""
    import cv2

    result = convert_zoo(checkpoint("mobilenet", "state_dict"), "mobilenet", tmp_path, precision="fp32")
    frame = synthetic_frame(7, 64, 64)  # the input size: the resize is the identity on both sides
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32)
    x = (rgb - np.array([123.675, 116.28, 103.53], np.float32)) / np.array([58.395, 57.12, 57.375], np.float32)
    with torch.no_grad():
        expected = zoo.build("mobilenet")(torch.from_numpy(x.transpose(2, 0, 1)[None].copy())).numpy()
    got = run_ir(result.path / "model.xml", frame)[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.slow
def test_onnx_kept_beside_the_ir(checkpoint, convert_zoo, tmp_path: Path) -> None:
    """--onnx writes model.onnx into the version folder and lists it with its hash in the manifest."""
    result = convert_zoo(checkpoint("resnet", "torchscript"), "resnet", tmp_path, keep_onnx=True)
    assert (result.path / "model.onnx").is_file()
    assert "model.onnx" in result.manifest.files
    ModelStore(tmp_path).resolve("resnet").verify_files()
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["files"]["model.onnx"]["size"] == (result.path / "model.onnx").stat().st_size


@pytest.mark.slow
def test_arch_from_arch_path(convert_zoo, tmp_path: Path) -> None:
    """--arch-path makes an architecture importable from a folder outside the project."""
    folder = tmp_path / "training_code"
    folder.mkdir()
    (folder / "my_nets.py").write_text(
        "import torch\n"
        "class Small(torch.nn.Module):\n"
        "    def __init__(self, classes=2):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 4, 3)\n"
        "        self.head = torch.nn.Linear(4, classes)\n"
        "    def forward(self, x):\n"
        "        return self.head(self.conv(x).mean((2, 3)))\n"
    )
    torch.manual_seed(1)
    conv, head = torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2)
    state = {f"conv.{k}": v for k, v in conv.state_dict().items()} | {
        f"head.{k}": v for k, v in head.state_dict().items()
    }
    torch.save(state, tmp_path / "small.pth")
    result = convert_zoo(
        tmp_path / "small.pth",
        "small",
        tmp_path / "store",
        arch="my_nets:Small",
        arch_path=folder,
        labels=("ok", "ng"),
        input_width=32,
        input_height=32,
        precision="fp32",
    )
    assert result.manifest.source is not None and result.manifest.source.arch == "my_nets:Small"
    assert result.parity.agreement == 1.0
