"""The command line: versions in the store, list, inspect, signing, import-light --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from convert.cli import main
from ovedge.signing import generate_keypair, verify_version
from ovedge.store import ModelStore

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--input-size", "64x64", "--labels", "ok,scratch,dent", "--ok-labels", "ok", "--norm", "imagenet"]


@pytest.fixture(scope="module")
def store(checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions of the ResNet (state_dict at fp16, then TorchScript at fp32) made by the CLI."""
    out = tmp_path_factory.mktemp("store")
    sd = checkpoint("resnet", "state_dict")
    assert main([str(sd), "--name", "resnet", "--arch", "convert.zoo:ResNetTiny", *ARGS, "--out", str(out)]) == 0
    ts = checkpoint("resnet", "torchscript")
    assert main([str(ts), "--name", "resnet", *ARGS, "--precision", "fp32", "--out", str(out), "--quiet"]) == 0
    return out


def test_versions_increment_and_never_overwrite(store: Path) -> None:
    """Each conversion takes the next integer version; both stay, with no staging folder left."""
    models = ModelStore(store)
    assert models.versions("resnet") == [1, 2]
    assert models.resolve("resnet", 1).manifest.precision == "fp16"
    assert models.resolve("resnet").manifest.precision == "fp32"
    assert [p.name for p in (store / "resnet").iterdir() if p.name.startswith(".")] == []
    for version in (1, 2):
        models.resolve("resnet", version).verify_files()


def test_convert_prints_parity_table(checkpoint, tmp_path: Path, capsys) -> None:
    """A conversion prints its steps and the parity table on stdout, nothing on stderr."""
    code = main([str(checkpoint("resnet", "torchscript")), "--name", "r", *ARGS, "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 0
    assert "convert to OpenVINO ...\n" in out.out and "convert to OpenVINO: done in" in out.out
    assert "top-1 agreement  100.00 %" in out.out and "result           PASS" in out.out
    assert f"wrote {tmp_path / 'r' / '1'} (version 1, classification)" in out.out
    assert out.err == ""


def test_list(store: Path, capsys) -> None:
    """`list` shows name, version, precision, task and parity of every version."""
    assert main(["list", "--out", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "version", "precision", "task", "parity", "created"]
    assert lines[1].split()[:5] == ["resnet", "1", "fp16", "classification", "100.00%"]
    assert lines[2].split()[:3] == ["resnet", "2", "fp32"]


def test_inspect_our_ir(store: Path, capsys) -> None:
    """`inspect` of a model folder shows the latest version's ports, metadata and parity."""
    assert main(["inspect", str(store / "resnet")]) == 0
    out = capsys.readouterr().out
    assert "input 0" in out and "[1,?,?,3] u8" in out
    assert "task      classification (logits)" in out
    assert "labels    ok, scratch, dent  (ok: ok)" in out
    assert "resnet v2, fp32" in out and '"agreement": 1.0' in out and "source    resnet-torchscript.pt" in out


def test_inspect_foreign_ir(tmp_path: Path, capsys) -> None:
    """`inspect` of an IR without ovedge metadata shows its ports and model_info keys."""
    import openvino as ov
    import openvino.opset13 as ops

    from tests.factories import tiny_model

    model = tiny_model(lambda x: [ops.relu(x)], input_shape=(1, 3, 8, 8), input_type=ov.Type.f32, name="foreign")
    model.set_rt_info("Classification", ["model_info", "model_type"])
    ov.save_model(model, str(tmp_path / "foreign.xml"))
    assert main(["inspect", str(tmp_path / "foreign.xml")]) == 0
    out = capsys.readouterr().out
    assert "no ovedge metadata" in out and "model_info.model_type = Classification" in out


def test_inspect_and_list_errors(tmp_path: Path, capsys) -> None:
    """`inspect` of a path without an IR is a one-line error; `list` of an empty store says so."""
    assert main(["inspect", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith("ovedge-convert: error: ")
    assert main(["list", "--out", str(tmp_path / "none")]) == 0
    assert "no models in" in capsys.readouterr().out


def test_sign(checkpoint, tmp_path: Path) -> None:
    """--sign KEY writes an Ed25519 signature that ovedge.signing verifies against the public key."""
    private, public = generate_keypair(tmp_path / "keys")
    out = tmp_path / "store"
    ts = checkpoint("resnet", "torchscript")
    assert main([str(ts), "--name", "s", *ARGS, "--out", str(out), "--sign", str(private), "--quiet"]) == 0
    version = ModelStore(out).resolve("s")
    assert version.manifest.signature is not None
    verify_version(version, [public])


def test_help_is_import_light() -> None:
    """`--help` and `list` run without importing torch, onnx, nncf or OpenVINO."""
    code = (
        "import sys, contextlib, io\n"
        "from convert.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['list', '--out', '/nonexistent'])\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'onnx', 'nncf', 'openvino') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_real_process_exit_code(tmp_path: Path) -> None:
    """Run as a process, a user error exits 1 with one stderr line and no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "convert.cli", str(tmp_path / "missing.pt"), "--name", "x", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"ovedge-convert: error: checkpoint {tmp_path / 'missing.pt'} does not exist"
    ]
