"""The configuration: the root config.toml is valid, and bad files fail with the key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import CameraMode, load_config
from ovedge.errors import ConfigError

BIN = Path(sys.executable).parent


def test_root_config_is_valid_and_documented_defaults(repo_root: Path) -> None:
    """The shipped config.toml parses into frozen objects with the documented defaults."""
    cfg = load_config(repo_root / "config.toml")
    assert cfg.model.name == "demo"
    assert cfg.model.device == "CPU"
    assert cfg.mqtt.qos == 1
    assert cfg.cameras[0].source.type == "synthetic"
    assert cfg.cameras[0].mode is CameraMode.EVERY_FRAME
    assert cfg.path(cfg.model.store) == repo_root / "ir_models"
    with pytest.raises(ValueError, match="frozen"):
        cfg.mqtt.port = 1  # type: ignore[misc]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(body, encoding="utf-8")
    return path


CAM = '[[cameras]]\nid = "c"\n[cameras.source]\ntype = "synthetic"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (CAM + "[mqtt]\nprot = 1\n", "unknown key mqtt.prot"),
        (CAM + "[mqtt]\nport = \"x\"\n", "mqtt.port: Input should be a valid integer"),
        (CAM + "fps = -1\n", "cameras[0].source.fps: Input should be greater than or equal to 0"),
        ('[[cameras]]\nid = "c"\n[cameras.source]\ntype = "webcam"\n', "cameras[0].source"),
        ("[station]\nname = \"a/b\"\n" + CAM, "station.name"),
        ("", "missing key cameras"),
        (CAM + CAM, "camera ids must be unique"),
        (CAM + "[model]\nversion = \"newest\"\n", "model.version"),
        ("[mqtt\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, body: str, message: str) -> None:
    """Each malformed config is refused with a message naming the offending key."""
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, body))
    assert message in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    """A missing file says so and how to pass another one."""
    with pytest.raises(ConfigError, match="not found; pass --config"):
        load_config(tmp_path / "nope.toml")


def test_overrides_apply_before_validation(repo_root: Path) -> None:
    """--set key=value overrides reach nested tables and camera list items, and are validated."""
    cfg = load_config(repo_root / "config.toml", ["mqtt.port=18830", "cameras[0].source.fps=0", "state.dir=/tmp/x"])
    assert cfg.mqtt.port == 18830
    assert cfg.cameras[0].source.fps == 0
    assert cfg.state_dir() == Path("/tmp/x")
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_config(repo_root / "config.toml", ["mqtt.port=0"])


def test_camera_rules_override_defaults(tmp_path: Path) -> None:
    """A camera's [cameras.rules] replaces only the keys it sets."""
    cfg = load_config(_write(tmp_path, "[rules]\nmin_score = 0.4\nmin_area = 9\n" + CAM +
                             "[cameras.rules]\nmin_score = 0.8\n"))
    rules = cfg.rules_for(cfg.cameras[0])
    assert rules.min_score == 0.8
    assert rules.min_area == 9


def test_check_config_reports_unknown_key_without_starting(tmp_path: Path) -> None:
    """`ovedged check-config` exits 2 with one line naming the unknown key, no traceback."""
    path = _write(tmp_path, CAM + "[mqtt]\nprot = 1\n")
    done = subprocess.run([str(BIN / "ovedged"), "check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"ovedged: error: {path}: unknown key mqtt.prot"]


def test_check_config_syntax_only_on_root_config(repo_root: Path) -> None:
    """The shipped config passes `check-config --syntax-only`."""
    done = subprocess.run([str(BIN / "ovedged"), "check-config", "--syntax-only", "--config",
                           str(repo_root / "config.toml")], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


def test_result_schema_doc_is_current(repo_root: Path) -> None:
    """docs/result.schema.json is exactly what daemon.result generates (run tools/gen_schemas.py)."""
    from tools.gen_schemas import result_schema_text

    assert (repo_root / "docs" / "result.schema.json").read_text(encoding="utf-8") == result_schema_text()
