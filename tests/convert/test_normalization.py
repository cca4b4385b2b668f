"""The converter never guesses the normalisation nor the OK class: each refusal and each source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from convert import zoo
from convert.cli import main
from convert.normalization import recorded_normalization
from ovedge.errors import ConvertError

SIZE = ["--input-size", "64x64"]
LABELS = ["--labels", "ok,scratch,dent"]
ARCH = ["--arch", "convert.zoo:ResNetTiny"]
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


def _manifest(out: Path, name: str) -> dict:
    return json.loads((out / name / "1" / "manifest.json").read_text(encoding="utf-8"))


# -- refusals: one line each, naming the fix ---------------------------------------------------------


def test_no_normalisation_is_refused(cli_error, checkpoint, tmp_path: Path) -> None:
    """The README's old example (no --mean/--std/--norm, nothing recorded in the state_dict) is refused,
    naming the three ways to give it; nothing is written."""
    line = cli_error(checkpoint("resnet", "state_dict"), "--name", "m", *ARCH, *LABELS, "--ok-labels", "ok",
                   *SIZE, "--out", tmp_path, "--quiet")
    assert "the input normalisation is not known and is not guessed" in line
    assert "--mean r,g,b --std r,g,b" in line and "--norm imagenet|unit" in line
    assert not (tmp_path / "m").exists()


def test_no_normalisation_is_refused_for_formats_that_cannot_record_it(cli_error, checkpoint, tmp_path: Path) -> None:
    """TorchScript and ONNX files carry no normalisation: without the options they are refused too."""
    for fmt in ("torchscript", "onnx"):
        line = cli_error(checkpoint("resnet", fmt), "--name", "m", *LABELS, "--ok-labels", "ok", *SIZE,
                       "--out", tmp_path, "--quiet")
        assert "the input normalisation is not known and is not guessed" in line


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--mean", "1,2,3"], "--mean without --std"),
        (["--std", "1,2,3"], "--std without --mean"),
        (["--norm", "unit", "--mean", "1,2,3", "--std", "4,5,6"], "--norm unit and --mean/--std both given"),
    ],
)
def test_half_or_twice_given_normalisation_is_refused(cli_error, checkpoint, tmp_path: Path, extra, problem) -> None:
    """Half of mean/std, or a preset as well as mean/std, is refused naming the clash."""
    line = cli_error(checkpoint("resnet", "torchscript"), "--name", "m", *LABELS, "--ok-labels", "ok", *SIZE,
                   *extra, "--out", tmp_path, "--quiet")
    assert f"{problem}: give either --mean and --std together, or --norm imagenet|unit" in line


def test_classifier_without_ok_label_is_refused(cli_error, checkpoint, tmp_path: Path) -> None:
    """A classifier with no --ok-labels and no --no-ok-label is refused, listing its classes."""
    line = cli_error(checkpoint("resnet", "torchscript"), "--name", "m", *LABELS, *SIZE, "--norm", "imagenet",
                   "--out", tmp_path, "--quiet")
    assert "which of the classes ok, scratch, dent means a good part? give --ok-labels (e.g. --ok-labels ok)" in line
    assert "or --no-ok-label if every class is a defect" in line
    assert not (tmp_path / "m").exists()


def test_ok_labels_and_no_ok_label_together_are_refused(cli_error, checkpoint, tmp_path: Path) -> None:
    """--no-ok-label contradicts --ok-labels."""
    line = cli_error(checkpoint("resnet", "torchscript"), "--name", "m", *LABELS, *SIZE, "--norm", "imagenet",
                   "--ok-labels", "ok", "--no-ok-label", "--out", tmp_path, "--quiet")
    assert "--no-ok-label and --ok-labels ok contradict: give one" in line


def test_unreadable_recorded_normalisation_is_refused(cli_error, tmp_path: Path) -> None:
    """A checkpoint recording a normalisation that is neither a preset nor three numbers is refused."""
    ckpt = tmp_path / "bad.pt"
    torch.save({"model": zoo.ResNetTiny().state_dict(), "normalization": "sepia"}, ckpt)
    line = cli_error(ckpt, "--name", "m", *ARCH, *LABELS, "--ok-labels", "ok", *SIZE, "--out", tmp_path,
                   "--quiet")
    assert "normalization = 'sepia' is not a preset name or three numbers per mean/std" in line


# -- where it comes from: the summary and the manifest say it -----------------------------------------


def test_lightning_hyper_parameters_in_0_1_units(capsys, tmp_path: Path) -> None:
    """Lightning hyper_parameters mean/std in 0-1 units are used x255; the summary and the manifest
    name the source; the OK labels are shown."""
    ckpt = tmp_path / "model.ckpt"
    state = {f"model.{k}": v for k, v in zoo.ResNetTiny().state_dict().items()}
    torch.save({"pytorch-lightning_version": "2.4.0", "state_dict": state,
                "hyper_parameters": {"num_classes": 3, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
               ckpt)
    assert main([str(ckpt), "--name", "light", *ARCH, *LABELS, "--ok-labels", "ok", *SIZE, "--out", str(tmp_path),
                 "--quiet", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    source = "checkpoint hyper_parameters.mean/hyper_parameters.std (0-1 units, x255)"
    assert "OK labels: ok\n" in out
    assert f"from {source}\n" in out
    pre = _manifest(tmp_path, "light")["meta"]["preprocessing"]
    assert pre["normalization_source"] == source
    assert pre["mean"] == pytest.approx(IMAGENET_MEAN)
    assert pre["std"] == pytest.approx(IMAGENET_STD)


def test_norm_unit_and_no_ok_label(capsys, checkpoint, tmp_path: Path) -> None:
    """--norm unit embeds mean 0 / std 255; --no-ok-label converts a classifier with no OK class and the
    summary says every class is a defect."""
    assert main([str(checkpoint("resnet", "torchscript")), "--name", "unit", *LABELS, *SIZE, "--norm", "unit",
                 "--no-ok-label", "--out", str(tmp_path), "--quiet", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "OK labels: none (--no-ok-label: every class is a defect)\n" in out
    assert "normalisation: mean 0,0,0 std 255,255,255 (0-255 units, RGB) from --norm unit\n" in out
    manifest = _manifest(tmp_path, "unit")
    assert manifest["meta"]["ok_labels"] == []
    assert manifest["meta"]["preprocessing"]["normalization_source"] == "--norm unit"


def test_recorded_entries_beside_the_state_dict() -> None:
    """A `normalization` mapping or preset name, or `mean`/`std` beside a nested state_dict, are read
    (tensors too); keys of a bare state_dict are the network's own and are never read as one."""
    here = Path("c.pt")
    got = recorded_normalization({"normalization": {"mean": [1, 2, 3], "std": torch.tensor([4.0, 5.0, 6.0])}}, {},
                                 nested=True, checkpoint=here)
    assert got is not None
    assert (got.mean, got.std, got.source) == ((1, 2, 3), (4, 5, 6), "checkpoint normalization")
    got = recorded_normalization({"normalization": "ImageNet"}, {}, nested=True, checkpoint=here)
    assert got is not None
    assert got.mean == pytest.approx(IMAGENET_MEAN)
    assert got.source == "checkpoint normalization (imagenet)"
    got = recorded_normalization({"mean": 0.5, "std": 0.25}, {}, nested=True, checkpoint=here)
    assert got is not None
    assert (got.mean, got.std) == ((127.5,) * 3, (63.75,) * 3)
    assert got.source == "checkpoint mean/std (0-1 units, x255)"
    assert recorded_normalization({"mean": torch.zeros(3), "std": torch.ones(3)}, {}, nested=False,
                                  checkpoint=here) is None
    with pytest.raises(ConvertError, match=r"std = .* is not a preset name"):
        recorded_normalization({"mean": [1, 2, 3], "std": [0, 1, 1]}, {}, nested=True, checkpoint=here)
