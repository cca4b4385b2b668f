"""`ovedged check-config` runs the daemon's own preflight: model, device, self-test, cameras, broker.

Real parts: the demo IR converted by the real converter, the real OpenVINO core, real synthetic
and folder sources, a real Mosquitto.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.configs import write_config
from tools.mosquitto import Mosquitto, free_port

BIN = Path(sys.executable).parent


def _config(tmp_path: Path, store: Path, port: int, *, name: str = "demo", source: dict | None = None) -> Path:
    return write_config(
        tmp_path,
        model={"store": store, "name": name, "cache": False},
        cameras=[{"id": "cam0", "source": source or {"type": "synthetic"}}],
        mqtt={"port": port, "connect_timeout": 5},
        state={"dir": tmp_path / "state"},
    )


def _check(config: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ovedged"), "check-config", "--config", str(config), *extra],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )


def test_no_broker_checks_everything_but_the_broker(demo_store: Path, tmp_path: Path, repo_root: Path) -> None:
    """With nothing listening on the broker port, `check-config --no-broker` still resolves, verifies,
    compiles and self-tests the model and opens the camera, then passes; without the flag the same
    config fails on the broker, after the same steps passed."""
    port = free_port()
    config = _config(tmp_path, demo_store, port)
    done = _check(config, "--no-broker", cwd=repo_root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"config {config}: valid (1 camera(s))"
    assert lines[1].startswith("state: state folder ") and " writable, " in lines[1]
    assert lines[2].startswith(f"model: demo v1 at {demo_store / 'demo' / '1'} (verified: hashes)")
    assert lines[3].startswith("device: CPU")
    assert lines[4].startswith("self-test: demo v1 reproduces its golden sample within ")
    assert lines[5] == "cameras: cam0 open"
    assert lines[-1] == "all checks passed (broker not checked: --no-broker)"
    assert not any(line.startswith("mqtt:") for line in lines)

    with_broker = _check(config, cwd=repo_root)
    assert with_broker.returncode == 1
    assert with_broker.stdout.splitlines()[2:6] == lines[2:6]
    assert with_broker.stderr.strip().splitlines() == [
        f"ovedged: error: MQTT broker 127.0.0.1:{port} is unreachable (Connection refused); "
        "start the broker or fix [mqtt] host/port"
    ]


def test_full_check_passes_with_a_live_broker(demo_store: Path, tmp_path: Path, repo_root: Path) -> None:
    """All six steps against a real broker: the last line before the verdict is the broker's."""
    with Mosquitto() as broker:
        done = _check(_config(tmp_path, demo_store, broker.port), cwd=repo_root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        f"mqtt: broker 127.0.0.1:{broker.port} accepted a connection",
        "all checks passed",
    ]


def test_auto_with_an_absent_or_unloadable_gpu_starts(demo_store: Path, tmp_path: Path, repo_root: Path) -> None:
    """`device = "AUTO:GPU,CPU"` (use the iGPU when it is there) passes the whole model check on any
    machine: with a GPU it compiles on AUTO:GPU,CPU, without one (or without the GPU runtime) on
    AUTO:CPU, saying why GPU was left out."""
    config = _config(tmp_path, demo_store, free_port())
    done = _check(config, "--no-broker", "--set", "model.device=AUTO:GPU,CPU", cwd=repo_root)
    assert done.returncode == 0, done.stderr
    device_line = next(line for line in done.stdout.splitlines() if line.startswith("device: "))
    assert device_line.startswith(("device: AUTO:GPU,CPU (", "device: AUTO:CPU ("))
    if device_line.startswith("device: AUTO:CPU ("):  # the warning says what was left out and why
        assert "WARNING daemon.devices: AUTO:GPU,CPU: compiling AUTO:CPU (GPU" in done.stderr


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("demo", "build the demo model with `make demo` (from the repository root)"),
        (
            "widget",
            "convert it with ovedge-convert, giving the input size, mean/std and OK labels used in training "
            "(docs/CONVERTER.md has the full recipe)",
        ),
    ],
)
def test_model_not_found_points_to_make_demo_or_the_recipe(
    tmp_path: Path, repo_root: Path, name: str, hint: str
) -> None:
    """An empty store: one line naming the model and the store, pointing to `make demo` for the demo and to
    docs/CONVERTER.md otherwise, never to a converter command line that would guess the normalisation."""
    store = tmp_path / "empty"
    done = _check(_config(tmp_path, store, free_port(), name=name), "--no-broker", cwd=repo_root)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"ovedged: error: model {name!r} not found in the store {store} (models there: none); {hint}"
    ]
    assert "CHECKPOINT" not in done.stderr


def test_a_camera_that_does_not_open_fails_after_the_model(demo_store: Path, tmp_path: Path, repo_root: Path) -> None:
    """The cameras are checked after the model: the model lines are printed, then one error line
    naming the camera."""
    missing = tmp_path / "nothing-here"
    config = _config(tmp_path, demo_store, free_port(), source={"type": "folder", "path": missing})
    done = _check(config, "--no-broker", cwd=repo_root)
    assert done.returncode == 1
    assert done.stdout.splitlines()[4].startswith("self-test: demo v1")
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("ovedged: error: camera 'cam0': ")
