"""The README's "Running it as a service" commands, run exactly as written, each in a fresh venv
holding only the documented install: ``pip install .`` for the daemon (no torch), ``pip install -c
constraints.txt ".[convert]"`` for the converter. The inputs are the committed demo network saved
in each format a training script writes; ``ovedged`` runs against a real Mosquitto.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.subscriber import Subscriber

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DAEMON_PROGRAMS = {"ovedged"}
CONVERT_PROGRAMS = {"ovedge-convert"}
LIGHTNING_MEAN = [0.485, 0.456, 0.406]  # 0-1 units, as a Lightning module would record them
LIGHTNING_STD = [0.229, 0.224, 0.225]


def readme_commands() -> list[list[str]]:
    """The commands of the README's service section (its first code block), comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Running it as a service") :]
    block = section.split("```", 2)[1]
    return [argv for line in block.splitlines() if (argv := shlex.split(line, comments=True))]


@dataclass(frozen=True)
class Installs:
    checkout: Path  # a copy of the repository: the README's working folder
    daemon: Path  # venv with `pip install .`
    convert: Path  # venv with `pip install -c constraints.txt ".[convert]"`
    state: Path

    def env(self, venv: Path) -> dict[str, str]:
        """The caller's environment without anything pointing at the development tree or venv."""
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
        env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env["STATE_DIRECTORY"] = str(self.state / "state")
        env["CACHE_DIRECTORY"] = str(self.state / "cache")
        env.pop("JOURNAL_STREAM", None)
        return env

    def venv_for(self, argv: list[str]) -> Path:
        if argv[0] == "pip":
            return self.convert if any("[convert]" in a for a in argv) else self.daemon
        if argv[0] in DAEMON_PROGRAMS:
            return self.daemon
        assert argv[0] in CONVERT_PROGRAMS, f"README command {argv[0]!r} is not run by this test: add it"
        return self.convert

    def run(self, argv: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run a README command as written, with its program taken from the right venv."""
        venv = self.venv_for(argv)
        done = subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], cwd=self.checkout, env=self.env(venv),
                              capture_output=True, text=True, timeout=timeout, check=False)
        assert "Traceback" not in done.stderr, f"{shlex.join(argv)}:\n{done.stderr}"
        assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done


def _copy_checkout(target: Path) -> Path:
    """The repository's files, without venvs, caches, build output or converted models."""
    skip = {".git", ".venv", "build", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".demo", ".bench", ".state",
            "__pycache__"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        dropped = {n for n in names if n in skip or n.endswith(".egg-info")}
        if Path(folder).name == "ir_models":
            dropped |= {n for n in names if (Path(folder) / n).is_dir()}
        return dropped

    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def _save_inputs(folder: Path) -> None:
    """The demo network saved the five ways the README converts, plus its labels and a package."""
    import torch

    from convert.demo_model import load_checkpoint
    from convert.demo_recipe import CHECKPOINT, INPUT_SIZE, LABELS_FILE

    model = load_checkpoint(CHECKPOINT)
    example = torch.zeros(1, 3, *INPUT_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, example), str(folder / "traced.pt"))
        torch.export.save(torch.export.export(model, (example,)), str(folder / "model.pt2"))
        torch.onnx.export(model, (example,), str(folder / "model.onnx"), dynamo=False, opset_version=17)
    torch.save(model.state_dict(), folder / "weights.pt")
    torch.save(
        {
            "pytorch-lightning_version": "2.4.0",
            "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
            "hyper_parameters": {"num_classes": 4, "mean": LIGHTNING_MEAN, "std": LIGHTNING_STD},
            "epoch": 11,
        },
        folder / "last.ckpt",
    )
    shutil.copy(LABELS_FILE, folder / "labels.txt")
    (folder / "mypkg").mkdir()
    (folder / "mypkg" / "__init__.py").write_text("", encoding="utf-8")
    (folder / "mypkg" / "nets.py").write_text(
        '"""The training project\'s network (here: the demo\'s)."""\n\n'
        "from convert.demo_model import DefectNet as Net\n\n__all__ = ['Net']\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> Installs:
    """Both venvs made and filled by the README's own pip lines (once for this module)."""
    base = tmp_path_factory.mktemp("fresh")
    found = Installs(checkout=_copy_checkout(base / "checkout"), daemon=base / "daemon", convert=base / "convert",
                     state=base / "state")
    for venv in (found.daemon, found.convert):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pips = [argv for argv in readme_commands() if argv[0] == "pip"]
    assert {found.venv_for(a) for a in pips} == {found.daemon, found.convert}, "one pip line per install"
    for argv in pips:
        found.run(argv, timeout=1800)
    return found


@pytest.fixture(scope="module")
def converted(installs: Installs) -> list[dict]:
    """Every README conversion run in the converter venv; the manifests of the versions made."""
    _save_inputs(installs.checkout)
    lines = [argv for argv in readme_commands() if argv[0] in CONVERT_PROGRAMS]
    for argv in lines:
        installs.run(argv)
    folder = installs.checkout / "ir_models" / "mymodel"
    return [json.loads((folder / str(v) / "manifest.json").read_text(encoding="utf-8"))
            for v in range(1, len(lines) + 1)]


def test_daemon_install_has_no_torch_and_its_cli_answers(installs: Installs) -> None:
    """`pip install .` brings no torch (nor onnx/nncf); `ovedged --help` and `--version` work there."""
    py = str(installs.daemon / "bin" / "python")
    for banned in ("torch", "onnx", "nncf"):
        probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({banned!r}) is not None)"
        assert subprocess.run([py, "-c", probe], env=installs.env(installs.daemon), check=False).returncode == 0, (
            f"{banned} is installed by `pip install .`"
        )
    assert "check-config" in installs.run(["ovedged", "--help"]).stdout
    assert installs.run(["ovedged", "--version"]).stdout.startswith("ovedged (ovedge) ")


def test_readme_conversions_make_one_version_per_format(converted: list[dict]) -> None:
    """Each README conversion succeeds with only the `convert` extra and makes the next version; every
    version carries the OK label and the demo's normalisation, named by where it came from."""
    formats = [m["source"]["format"] for m in converted]
    assert formats == ["torchscript", "export", "onnx", "state_dict", "lightning"]
    for manifest in converted:
        pre = manifest["meta"]["preprocessing"]
        assert manifest["meta"]["ok_labels"] == ["ok"]
        assert pre["mean"] == pytest.approx([123.675, 116.28, 103.53])
        assert pre["std"] == pytest.approx([58.395, 57.12, 57.375])
        assert manifest["parity"]["passed"] is True
    sources = [m["meta"]["preprocessing"]["normalization_source"] for m in converted]
    assert sources[:4] == ["--norm imagenet"] * 3 + ["--mean/--std"]
    assert sources[4] == "checkpoint hyper_parameters.mean/hyper_parameters.std (0-1 units, x255)"
    assert converted[2]["parity"]["reference"] == "onnxruntime"


def test_readme_daemon_commands_against_a_real_broker(installs: Installs, converted: list[dict], broker) -> None:
    """With the repository's config.toml (model `mymodel`, the test broker's port), `ovedged
    check-config` passes every check and `ovedged run` publishes results of the latest version until
    SIGTERM, then exits 0; no command prints a traceback."""
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    assert 'name = "demo"' in config and "port = 1883" in config
    config = config.replace('name = "demo"', 'name = "mymodel"', 1).replace("port = 1883", f"port = {broker.port}", 1)
    (installs.checkout / "config.toml").write_text(config, encoding="utf-8")
    daemon_lines = [argv for argv in readme_commands() if argv[0] in DAEMON_PROGRAMS]
    assert [a[1] for a in daemon_lines] == ["--version", "check-config", "run"]
    for argv in daemon_lines[:-1]:
        out = installs.run(argv).stdout
    assert "all checks passed" in out
    with Subscriber(broker.port, ["ovedge/station1/+/result"]) as sub:
        argv = daemon_lines[-1]
        proc = subprocess.Popen([str(installs.daemon / "bin" / argv[0]), *argv[1:]], cwd=installs.checkout,
                                env=installs.env(installs.daemon), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            deadline = time.monotonic() + 180  # a hang guard, not a speed requirement
            while sub.messages.empty() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=120)
        results = [json.loads(p) for _t, p, _r in sub.drain()]
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    assert results, err
    assert {r["model"]["name"] for r in results} == {"mymodel"}
    assert {r["model"]["version"] for r in results} == {len(converted)}
