"""Every bad input gets one line `ovedge-convert: error: ...` naming the problem and the fix."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

BASE = ["--name", "m", "--input-size", "64x64", "--labels", "ok,scratch,dent", "--ok-labels", "ok", "--norm", "unit",
        "--quiet"]


def test_missing_file(cli_error, tmp_path: Path) -> None:
    """A checkpoint path that does not exist is named."""
    line = cli_error(tmp_path / "nope.pt", *BASE, "--out", tmp_path)
    assert "nope.pt does not exist" in line


def test_empty_and_garbage_files(cli_error, tmp_path: Path) -> None:
    """An empty file, a text file called .pt and a zip that PyTorch did not write are each refused."""
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in cli_error(empty, *BASE, "--out", tmp_path)
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am not a checkpoint\n")
    assert "is not a format ovedge-convert reads" in cli_error(text, *BASE, "--out", tmp_path)
    other = tmp_path / "other.pt"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "x")
    assert "not one PyTorch writes" in cli_error(other, *BASE, "--out", tmp_path)


def test_file_claiming_onnx(cli_error, tmp_path: Path) -> None:
    """A .onnx file that is not an ONNX model says so."""
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x08\x07garbage-that-is-not-protobuf\xff\xff\xff")
    assert "is not a readable ONNX model" in cli_error(fake, *BASE, "--out", tmp_path)


def test_pickled_module_refused_by_default(cli_error, checkpoint, tmp_path: Path) -> None:
    """A pickled nn.Module is refused (weights_only) with why and the --trust-pickle flag."""
    line = cli_error(checkpoint("resnet", "pickle"), *BASE, "--out", tmp_path)
    assert "pickled Python object (convert.zoo.ResNetTiny)" in line
    assert "would run code from the file" in line and "--trust-pickle" in line


def test_state_dict_needs_arch(cli_error, checkpoint, tmp_path: Path) -> None:
    """A state_dict without --arch asks for --arch package.module:ClassName."""
    line = cli_error(checkpoint("resnet", "state_dict"), *BASE, "--out", tmp_path)
    assert "is a state_dict" in line and "--arch package.module:ClassName" in line


def test_key_mismatches_named(cli_error, checkpoint, tmp_path: Path) -> None:
    """Missing, unexpected and mismatched keys are reported by name with their counts."""
    line = cli_error(
        checkpoint("resnet", "state_dict"),
        *BASE,
        "--out",
        tmp_path,
        "--arch",
        "convert.zoo:MobileNetTiny",
    )
    assert "does not fit the architecture MobileNetTiny" in line
    assert "missing (features.0.0.weight" in line and "unexpected (stem.0.weight" in line
    line = cli_error(
        checkpoint("resnet", "state_dict"),
        *BASE,
        "--out",
        tmp_path,
        "--arch",
        "convert.zoo:ResNetTiny",
        "--arch-kwargs",
        '{"num_classes": 5}',
    )
    assert "2 shape mismatch (fc.weight (3, 32) vs (5, 32), fc.bias (3,) vs (5,))" in line


def test_arch_reference_errors(cli_error, checkpoint, tmp_path: Path) -> None:
    """Malformed, unimportable and missing --arch references and bad --arch-kwargs are named."""
    ckpt = checkpoint("resnet", "state_dict")
    common = [ckpt, *BASE, "--out", tmp_path]
    assert "is not package.module:ClassName" in cli_error(*common, "--arch", "convert.zoo.ResNetTiny")
    assert "cannot import 'no_such_pkg.nets'" in cli_error(*common, "--arch", "no_such_pkg.nets:Net")
    assert "has no class or function 'Nope'" in cli_error(*common, "--arch", "convert.zoo:Nope")
    line = cli_error(*common, "--arch", "convert.zoo:ResNetTiny", "--arch-kwargs", "{num_classes: 3}")
    assert "--arch-kwargs is not valid JSON" in line
    line = cli_error(*common, "--arch", "convert.zoo:ResNetTiny", "--arch-kwargs", '{"depth": 3}')
    assert "unexpected keyword argument 'depth'" in line


def test_torchvision_not_installed(cli_error, checkpoint, tmp_path: Path) -> None:
    """torchvision:<name> without torchvision installed says so and how to get it."""
    line = cli_error(
        checkpoint("resnet", "state_dict"), *BASE, "--out", tmp_path, "--arch", "torchvision:resnet18"
    )
    assert "needs torchvision, which is not installed here" in line


def test_option_values(cli_error, checkpoint, tmp_path: Path) -> None:
    """Malformed --input-size, --mean, label counts, --ok-labels and a missing input size are refused."""
    ts = checkpoint("resnet", "torchscript")
    assert "is not WxH" in cli_error(ts, "--name", "m", "--input-size", "64", "--out", tmp_path)
    line = cli_error(ts, *BASE, "--out", tmp_path, "--mean", "1,2")
    assert "--mean '1,2' has 2 values" in line
    line = cli_error(ts, "--name", "m", "--input-size", "64x64", "--labels", "a,b", "--norm", "unit", "--quiet",
                   "--out", tmp_path)
    assert "--labels gives 2 names (a, b) but the model's output has 3 classes" in line
    line = cli_error(ts, *BASE, "--out", tmp_path, "--ok-labels", "good")
    assert "--ok-labels good not among --labels" in line
    line = cli_error(ts, "--name", "m", "--labels", "a,b,c", "--norm", "unit", "--quiet", "--out", tmp_path)
    assert "does not fix its input size: give --input-size WxH" in line
    assert "model name '../x' is not usable" in cli_error(ts, *BASE[2:], "--name", "../x", "--out", tmp_path)
    assert not any(tmp_path.glob("m*")), "failed conversions leave nothing in the store"


def test_int8_needs_calibration(cli_error, checkpoint, tmp_path: Path) -> None:
    """--precision int8 without --calibration asks for a folder of frames."""
    line = cli_error(checkpoint("resnet", "torchscript"), *BASE, "--out", tmp_path, "--precision", "int8")
    assert "--precision int8 needs --calibration DIR" in line
    assert not (tmp_path / "m").exists()


def test_onnx_external_data_outside_folder(cli_error, tmp_path: Path) -> None:
    """An ONNX model whose external data points outside its folder is refused."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "12")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
        [weight],
    )
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    line = cli_error(path, *BASE, "--out", tmp_path / "store")
    assert "keeps its data in '../secret.bin', outside the model's folder" in line


def test_parity_failure_writes_nothing(cli_error, tmp_path: Path) -> None:
    """A model whose IR disagrees with PyTorch fails parity, and no version folder is left behind."""

    class Noisy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean((2, 3)) * 0 + torch.rand(1, 3) * 10

    path = tmp_path / "noisy.pt"
    torch.jit.save(torch.jit.trace(Noisy(), torch.zeros(1, 3, 16, 16), check_trace=False), str(path))
    store = tmp_path / "store"
    line = cli_error(path, *BASE, "--out", store, "--precision", "fp32")
    assert "parity failed" in line and "is below 100.00% for fp32" in line and "nothing was written" in line
    assert not store.exists() or not any(store.rglob("*"))
