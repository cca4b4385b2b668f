"""Models exported elsewhere: an Anomalib-style ONNX and OpenVINO IR (four outputs, thresholds baked in)."""

from __future__ import annotations

import warnings
from pathlib import Path

import openvino as ov
import pytest
import torch

from convert import zoo
from ovedge.irmeta import OutputLayout, Task
from tests.factories import tiny_ir


class AnomalibLike(torch.nn.Module):
    """Anomalib's exported shape: input in 0..1 normalised inside, outputs pred_score [1], pred_label [1],
    anomaly_map [1,1,H,W], pred_mask [1,1,H,W], scores normalised so that 0.5 is the threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.net = zoo.build("anomaly")
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        amap, score = self.net((x - self.mean) / self.std)
        return score, score > 0.5, amap, amap > 0.5


@pytest.fixture(scope="module")
def anomalib_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same Anomalib-like model as ONNX (named outputs) and as an OpenVINO IR made from it."""
    folder = tmp_path_factory.mktemp("anomalib")
    onnx_path = folder / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            AnomalibLike().eval(),
            (torch.zeros(1, 3, 64, 64),),
            str(onnx_path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["pred_score", "pred_label", "anomaly_map", "pred_mask"],
        )
    xml = folder / "ir" / "model.xml"
    xml.parent.mkdir()
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml))
    return onnx_path, xml


@pytest.mark.slow
@pytest.mark.parametrize("which", ["onnx", "ir"])
def test_anomalib_export_converts(which, anomalib_files, convert_zoo, tmp_path: Path) -> None:
    """An Anomalib-style export becomes map + score (pred_label/pred_mask dropped) with parity vs its source."""
    path = anomalib_files[0] if which == "onnx" else anomalib_files[1]
    result = convert_zoo(path, "anomalib", tmp_path, mean=(0, 0, 0), std=(255, 255, 255), arch=None)
    meta = result.manifest.meta
    assert (meta.task, meta.output_layout) == (Task.ANOMALY, OutputLayout.ANOMALY_MAP_SCORE)
    assert meta.anomaly_threshold == 0.5
    assert result.manifest.source is not None
    assert result.manifest.source.format == ("onnx" if which == "onnx" else "openvino_ir")
    assert result.parity.reference == ("onnxruntime" if which == "onnx" else "openvino (the source IR, f32)")
    assert result.parity.passed and result.parity.max_abs_diff < 1e-3
    model = ov.Core().read_model(str(result.path / "model.xml"))
    assert [list(o.get_shape()) for o in model.outputs] == [[1, 1, 64, 64], [1]]
    assert model.outputs[0].get_names() == {"anomaly_map"}


def test_ir_without_bin_and_with_raw_input(tmp_path: Path, capsys) -> None:
    """A foreign IR without its .bin, or one that already takes u8 frames, is refused with the reason."""
    from convert.cli import main

    tiny_ir(tmp_path / "raw.xml", lambda x: [x], input_shape=(1, 64, 64, 3))  # u8 frame in, f32 out
    assert main([str(tmp_path / "raw.xml"), "--name", "x", "--out", str(tmp_path / "s"), "--quiet"]) == 1
    assert "takes u8 [1,64,64,3]; expected an f32 [1,3,H,W] image input" in capsys.readouterr().err
    (tmp_path / "raw.bin").unlink(missing_ok=True)
    (tmp_path / "lone.xml").write_text((tmp_path / "raw.xml").read_text())
    assert main([str(tmp_path / "lone.xml"), "--name", "x", "--out", str(tmp_path / "s"), "--quiet"]) == 1
    assert "has no weights file lone.bin beside it" in capsys.readouterr().err
