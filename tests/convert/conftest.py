"""Fixtures of the converter tests: the zoo saved in every format, calibration images, runners."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from convert import zoo
from convert.cli import main
from convert.options import ConvertOptions
from convert.pipeline import ConvertResult, convert
from convert.zoo import tinted_frame

SIZE = 64  # zoo input size (square)
LABELS = {
    "resnet": ("ok", "scratch", "dent"),
    "mobilenet": ("ok", "scratch", "dent"),
    "yolov8": ("screw", "nut"),
    "ssd": ("screw", "nut"),
    "tv_detector": ("screw", "nut"),
    "unet": ("background", "scratch", "dent"),
    "anomaly": (),
}
FORMATS = ("state_dict", "nested", "lightning", "torchscript", "export", "onnx", "pickle")
SUFFIX = {
    "state_dict": ".pt",
    "nested": ".pth",
    "lightning": ".ckpt",
    "torchscript": ".pt",
    "export": ".pt2",
    "onnx": ".onnx",
    "pickle": ".pt",
}


def save(model: torch.nn.Module, fmt: str, path: Path) -> Path:
    """Save ``model`` the way a training script would, in format ``fmt``."""
    example = torch.zeros(1, 3, SIZE, SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "state_dict":
            torch.save(model.state_dict(), path)
        elif fmt == "nested":
            torch.save({"epoch": 7, "model": model.state_dict(), "optimizer": {"lr": 0.1}}, path)
        elif fmt == "lightning":
            state = {f"model.{k}": v for k, v in model.state_dict().items()}
            torch.save(
                {
                    "pytorch-lightning_version": "2.4.0",
                    "state_dict": state,
                    "hyper_parameters": {"num_classes": 3, "lr": 0.01},
                    "epoch": 3,
                },
                path,
            )
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(model, example), str(path))
        elif fmt == "export":
            torch.export.save(torch.export.export(model, (example,)), str(path))
        elif fmt == "onnx":
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17)
        elif fmt == "pickle":
            torch.save(model, path)
        else:
            raise ValueError(fmt)
    return path


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def checkpoint(zoo_dir: Path) -> Callable[[str, str], Path]:
    """``checkpoint(model, format)`` -> the zoo model saved in that format (made once per session)."""

    def make(name: str, fmt: str) -> Path:
        path = zoo_dir / f"{name}-{fmt}{SUFFIX[fmt]}"
        if not path.exists():
            save(zoo.build(name), fmt, path)
        return path

    return make


@pytest.fixture(scope="session")
def calibration_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 deterministic in-distribution frames of assorted sizes: INT8 calibration and parity inputs."""
    folder = tmp_path_factory.mktemp("calibration")
    for i in range(20):
        cv2.imwrite(str(folder / f"{i:03d}.png"), tinted_frame(500 + i, 80 + i, 72))
    return folder


def options(path: Path, name: str, out: Path, **kwargs: object) -> ConvertOptions:
    """ConvertOptions for a zoo model with its labels, 64x64 input, no progress output."""
    model = name.split("-", maxsplit=1)[0]
    defaults: dict[str, object] = {
        "checkpoint": path,
        "name": name,
        "out": out,
        "labels": LABELS.get(model, ()),
        "input_width": SIZE,
        "input_height": SIZE,
        "mean": (123.675, 116.28, 103.53),
        "std": (58.395, 57.12, 57.375),
        "progress": False,
    }
    if model in zoo.ZOO:
        defaults["arch"] = f"convert.zoo:{zoo.ZOO[model].__name__}"
    defaults.update(kwargs)
    if "ok_labels" not in kwargs and "no_ok_label" not in kwargs:
        # the good class is `ok` where there is one; otherwise every class is a defect (said explicitly)
        if "ok" in tuple(defaults["labels"]):
            defaults["ok_labels"] = ("ok",)
        else:
            defaults["no_ok_label"] = True
    return ConvertOptions.model_validate(defaults)


def run(path: Path, name: str, out: Path, **kwargs: object) -> ConvertResult:
    return convert(options(path, name, out, **kwargs))


def infer(xml: Path, frame: np.ndarray) -> list[np.ndarray]:
    """Run an IR on one raw u8 BGR frame on CPU (f32) and return its outputs by index."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(frame[None])
    return [np.asarray(result[o]) for o in compiled.outputs]


@pytest.fixture(scope="session")
def convert_zoo() -> Callable[..., ConvertResult]:
    """``convert_zoo(path, name, out, **options)``: convert with the zoo defaults."""
    return run


@pytest.fixture(scope="session")
def make_options() -> Callable[..., ConvertOptions]:
    return options


@pytest.fixture(scope="session")
def run_ir() -> Callable[[Path, np.ndarray], list[np.ndarray]]:
    return infer


@pytest.fixture
def cli_error(capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """``cli_error(*argv)``: run the ``ovedge-convert`` CLI in-process; assert a non-zero exit and exactly
    one stderr line ``ovedge-convert: error: ...`` (no traceback); return that line."""

    def run(*argv: object) -> str:
        code = main([str(a) for a in argv])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code != 0
        assert len(lines) == 1, err
        assert lines[0].startswith("ovedge-convert: error: ")
        assert "Traceback" not in err
        return lines[0]

    return run
