"""The configuration: the root config.toml is valid, bad files fail with the key path (one line per
problem), paths come out absolute, device strings and enums are checked when the file is parsed."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from camera.config import SOURCE_CONFIGS, SOURCE_TYPES
from daemon.config import (
    CameraMode,
    ConfigInvalidError,
    DaemonConfig,
    InferencePrecision,
    ModelConfig,
    PerformanceHint,
    load_config,
)
from ovedge.errors import ConfigError
from tests.configs import SYNTHETIC_CAMERA, toml_text

BIN = Path(sys.executable).parent
Writer = Callable[..., Path]


def _paths(obj: object) -> Iterator[tuple[str, Path]]:
    """Every Path held anywhere in a config object, with where it is."""
    if isinstance(obj, Path):
        yield "", obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            for where, path in _paths(getattr(obj, name)):
                yield f".{name}{where}", path
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            for where, path in _paths(item):
                yield f"[{i}]{where}", path


def _problems(path: Path, overrides: tuple[str, ...] = ()) -> tuple[str, ...]:
    with pytest.raises(ConfigInvalidError) as err:
        load_config(path, overrides)
    return err.value.problems


def _check_config(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ovedged"), "check-config", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_root_config_is_valid_and_documented_defaults(repo_root: Path) -> None:
    """The shipped config.toml parses into frozen objects with the documented defaults."""
    cfg = load_config(repo_root / "config.toml")
    assert cfg.model.name == "demo"
    assert cfg.model.device == "CPU"
    assert cfg.mqtt.qos == 1
    assert cfg.cameras[0].source.type == "synthetic"
    assert cfg.cameras[0].mode is CameraMode.EVERY_FRAME
    assert cfg.model.store == repo_root / "ir_models"
    with pytest.raises(ValueError, match="frozen"):
        cfg.mqtt.port = 1  # type: ignore[misc]


def _keys(model: type[BaseModel], prefix: str) -> Iterator[str]:
    """Every key path of a section, into its sub-tables (``Rules | None``, ``tuple[CameraConfig, ...]``)."""
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}"
        inner = {sub for kind in typing.get_args(field.annotation) for sub in (kind, *typing.get_args(kind))}
        for sub in sorted(inner | {field.annotation}, key=str):
            if isinstance(sub, type) and issubclass(sub, BaseModel) and sub.__module__.startswith("daemon."):
                yield from _keys(sub, f"{prefix}{name}.")


def test_root_config_documents_every_key(repo_root: Path) -> None:
    """Every key of every table (and of every camera source type) appears in config.toml, set or commented."""
    text = (repo_root / "config.toml").read_text(encoding="utf-8")
    written = set(re.findall(r"([A-Za-z_]+)\s*=", text))
    headers = re.findall(r"^#?\s*\[+([a-z_.]+)\]+", text, re.MULTILINE)  # [mqtt], [[cameras]], # [mqtt.tls]
    written |= {part for header in headers for part in header.split(".")}
    missing = [key for key in _keys(DaemonConfig, "") if key.rsplit(".", 1)[-1] not in written]
    missing += [f"source {c.__name__}.{name}" for c in SOURCE_CONFIGS for name in c.model_fields if name not in written]
    assert missing == []


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"mqtt": {"prot": 1}}, "unknown key mqtt.prot"),
        ({"mqtt": {"port": "x"}}, "mqtt.port: Input should be a valid integer"),
        ({"cameras": [{"id": "c", "source": {"type": "synthetic", "fps": -1}}]},
         "cameras[0].source.fps: Input should be greater than or equal to 0"),
        ({"station": {"name": "a/b"}}, "station.name: 'a/b' must be one MQTT topic level"),
        ({"cameras": None}, "missing key cameras"),
        ({"cameras": []}, "cameras: at least one camera is required: add a [[cameras]] table"),
        ({"cameras": [SYNTHETIC_CAMERA, SYNTHETIC_CAMERA]}, "camera ids must be unique, repeated: ['cam0']"),
        ({"model": {"version": "newest"}}, "model.version: 'newest' is not a version: give an integer version"),
        ({"base_dir": "/etc"}, "unknown key base_dir"),
    ],
)
def test_bad_config_names_the_key(write_config: Writer, sections: dict[str, Any], message: str) -> None:
    """Each malformed config is refused with one problem naming the offending key."""
    problems = _problems(write_config(**sections))
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    """A file that is not TOML at all is refused naming the file (the parser's own detail follows)."""
    path = tmp_path / "broken.toml"
    path.write_text("[mqtt\n", encoding="utf-8")  # deliberately not TOML: no config writer can produce it
    with pytest.raises(ConfigError, match=r"^config file .*broken\.toml is not valid TOML: "):
        load_config(path)


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


@pytest.mark.parametrize(
    ("item", "message"),
    [("mqtt.port", "write it as key.path=value"), ("cameras[3].id=x", "cameras[3].id does not exist")],
)
def test_bad_override_is_one_line(repo_root: Path, item: str, message: str) -> None:
    """A --set without '=' or pointing past the camera list names the item and the fix."""
    with pytest.raises(ConfigError) as err:
        load_config(repo_root / "config.toml", [item])
    assert str(err.value).startswith(f"--set {item!r}: ")
    assert message in str(err.value)


def test_camera_rules_override_defaults(write_config: Writer) -> None:
    """A camera's [cameras.rules] replaces only the keys it sets."""
    camera = {**SYNTHETIC_CAMERA, "rules": {"min_score": 0.8}}
    cfg = load_config(write_config(rules={"min_score": 0.4, "min_area": 9}, cameras=[camera]))
    rules = cfg.rules_for(cfg.cameras[0])
    assert rules.min_score == 0.8
    assert rules.min_area == 9


# -- finding 10: one problem, one message --------------------------------------------------------


def test_unknown_source_type_is_one_message(write_config: Writer) -> None:
    """An unknown camera source `type` gives exactly one problem: the key, the value and the known types
    (no derived 'cameras: too short' after it)."""
    path = write_config(cameras=[{"id": "c", "source": {"type": "webcam"}}])
    assert _problems(path) == (f"cameras[0].source.type: unknown type 'webcam'; use one of {', '.join(SOURCE_TYPES)}",)


def test_a_failing_camera_among_good_ones_is_reported_alone(write_config: Writer) -> None:
    """One bad camera (missing type, then a bad id) next to a good one: one problem each, nothing derived."""
    cameras = [SYNTHETIC_CAMERA, {"id": "c1", "source": {"fps": 1}}, {"id": "a b", "source": {"type": "synthetic"}}]
    problems = _problems(write_config(cameras=cameras))
    assert problems == (
        f"missing key cameras[1].source.type (one of {', '.join(SOURCE_TYPES)})",
        "cameras[2].id: 'a b' must be one MQTT topic level: no '/', '+', '#' or spaces",
    )


def test_a_value_fitting_no_member_of_a_union_is_one_problem(write_config: Writer) -> None:
    """A USB `device` that is neither a string nor an index: one problem at the key the user wrote, not one per
    member of `str | int` and no pydantic member label in the key path."""
    path = write_config(cameras=[{"id": "c", "source": {"type": "usb", "device": [1]}}])
    (problem,) = _problems(path)
    assert problem.startswith("cameras[0].source.device: [1] fits none of the accepted forms (")


def test_check_config_reports_unknown_source_type_in_one_line(write_config: Writer) -> None:
    """`ovedged check-config --syntax-only` on an unknown source type: exit 2, one stderr line, no traceback."""
    path = write_config(cameras=[{"id": "c", "source": {"type": "webcam"}}])
    done = _check_config(path, "--syntax-only")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"ovedged: error: {path}: cameras[0].source.type: unknown type 'webcam'; use one of {', '.join(SOURCE_TYPES)}"
    ]


# -- finding 2: device strings checked when the config is parsed ---------------------------------


def test_device_and_fallback_strings_are_checked_at_parse_time(write_config: Writer) -> None:
    """A removed device and a misspelt fallback: one problem each, naming the key (with the list index)."""
    path = write_config(model={"device": "MYRIAD", "fallback": ["CPU", "GPUU"]})
    assert _problems(path) == (
        "model.device: MYRIAD (Myriad VPU) was removed from OpenVINO in 2023.0; "
        "use NPU on Core Ultra or stay on 2022.3 LTS",
        "model.fallback[1]: unknown device 'GPUU' "
        "(use CPU, GPU, GPU.N, NPU, AUTO, AUTO:a,b,..., HETERO:a,b, MULTI:a,b)",
    )


def test_config_parsing_needs_no_openvino(repo_root: Path) -> None:
    """Loading a config (device strings included) does not import OpenVINO: device strings are parsed as text."""
    code = ("import sys; from pathlib import Path; from daemon.config import load_config; "
            "load_config(Path('config.toml'), ['model.device=AUTO:GPU,CPU']); "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'openvino']; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_device_strings_are_stored_normalised(write_config: Writer) -> None:
    """Accepted device strings are kept in their normal form, the one preflight and the status report."""
    cfg = load_config(write_config(model={"device": "auto: gpu,cpu", "fallback": ["cpu"]}))
    assert cfg.model.device == "AUTO:GPU,CPU"
    assert cfg.model.fallback == ("CPU",)


def test_check_config_syntax_only_refuses_bad_devices(repo_root: Path) -> None:
    """The issue's command: `check-config --syntax-only --set model.device=MYRIAD --set model.fallback=["GPUU"]`
    exits 2 with one `ovedged: error:` line per bad device and never says "valid"."""
    config = repo_root / "config.toml"
    done = _check_config(config, "--syntax-only", "--set", "model.device=MYRIAD", "--set", 'model.fallback=["GPUU"]')
    assert done.returncode == 2
    assert "valid" not in done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(f"ovedged: error: {config}: model.device: MYRIAD (Myriad VPU) was removed")
    assert lines[1].startswith(f"ovedged: error: {config}: model.fallback[0]: unknown device 'GPUU'")


# -- enums pass on as enums ----------------------------------------------------------------------


def test_hint_and_precision_are_enums_after_loading(write_config: Writer) -> None:
    """The performance hint and the precision come out as enums; a value outside them is refused at parse time."""
    cfg = load_config(write_config(model={"hint": "throughput", "inference_precision": "f16"}))
    assert cfg.model.hint is PerformanceHint.THROUGHPUT
    assert cfg.model.inference_precision is InferencePrecision.F16
    problems = _problems(write_config(model={"hint": "fast", "inference_precision": "int8"}))
    assert [p.split(":")[0] for p in problems] == ["model.hint", "model.inference_precision"]


# -- paths: resolved once, at load ---------------------------------------------------------------


def _every_path_section(tmp_path: Path, value: str) -> dict[str, Any]:
    return {
        "model": {"store": f"{value}/store", "cache_dir": f"{value}/cache", "trusted_keys": [f"{value}/k.pem"]},
        "rules": {"ignore_mask": f"{value}/mask.png"},
        "cameras": [
            {"id": "v", "source": {"type": "video", "path": f"{value}/line.mp4"}, "rules": {"ignore_mask": "m.png"}},
            {"id": "f", "source": {"type": "folder", "path": f"{value}/parts"}},
        ],
        "mqtt": {"username": "u", "password_file": f"{value}/pw",
                 "tls": {"ca_file": f"{value}/ca.pem", "cert_file": f"{value}/c.pem", "key_file": f"{value}/c.key"}},
        "state": {"dir": f"{value}/state"},
    }


def test_relative_paths_are_taken_from_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every relative path in the file, in every section and source, becomes absolute under the file's folder
    (not the working directory); there is no Path left relative."""
    folder = tmp_path / "etc" / "ovedge"
    folder.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    path = folder / "config.toml"
    path.write_text(toml_text(_every_path_section(tmp_path, "sub")), encoding="utf-8")
    cfg = load_config(Path("etc/ovedge/config.toml"))  # a relative --config too
    found = dict(_paths(cfg))
    assert len(found) == 12, sorted(found)
    assert all(p.is_absolute() for p in found.values()), found
    assert cfg.model.store == folder / "sub" / "store"
    assert cfg.model.trusted_keys == (folder / "sub" / "k.pem",)
    assert cfg.cameras[0].source.path == folder / "sub" / "line.mp4"  # type: ignore[union-attr]
    assert cfg.rules_for(cfg.cameras[0]).ignore_mask == folder / "m.png"
    assert cfg.mqtt.tls is not None and cfg.mqtt.tls.key_file == folder / "sub" / "c.key"
    assert cfg.state_dir() == folder / "sub" / "state"


def test_home_paths_are_expanded(write_config: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`~/...` is the user's home folder, in every path field."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    cfg = load_config(write_config(**_every_path_section(tmp_path, "~")))
    assert cfg.model.store == home / "store"
    assert cfg.cameras[1].source.path == home / "parts"  # type: ignore[union-attr]
    assert cfg.mqtt.password_file == home / "pw"
    assert cfg.cache_dir() == home / "cache"
    assert all(p.is_relative_to(home) for where, p in _paths(cfg) if where != ".cameras[0].rules.ignore_mask")


def test_absolute_paths_are_kept(write_config: Writer, tmp_path: Path) -> None:
    """An absolute path is used as written."""
    elsewhere = tmp_path / "elsewhere"
    cfg = load_config(write_config(**_every_path_section(tmp_path, str(elsewhere))))
    assert cfg.model.store == elsewhere / "store"
    assert cfg.cameras[0].source.path == elsewhere / "line.mp4"  # type: ignore[union-attr]
    assert cfg.state_dir() == elsewhere / "state"


def test_overridden_paths_are_taken_from_the_config_folder_too(write_config: Writer, tmp_path: Path) -> None:
    """A relative path given with --set is resolved like one written in the file."""
    cfg = load_config(write_config(), ["model.store=models", "cameras[0].source={type = 'folder', path = 'p'}"])
    assert cfg.model.store == tmp_path / "models"
    assert cfg.cameras[0].source.path == tmp_path / "p"  # type: ignore[union-attr]


def test_state_and_cache_folders_decided_at_load(write_config: Writer, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """Unset state.dir / model.cache_dir: systemd's $STATE_DIRECTORY / $CACHE_DIRECTORY (first entry), else the
    XDG folders under home; decided once when the config is loaded."""
    path = write_config()
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/ovedge:/var/lib/other")
    monkeypatch.setenv("CACHE_DIRECTORY", "/var/cache/x")
    cfg = load_config(path)
    assert (cfg.state.dir, cfg.model.cache_dir) == (Path("/var/lib/ovedge"), Path("/var/cache/x/ovedge"))
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.delenv("CACHE_DIRECTORY")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cfg.state_dir() == Path("/var/lib/ovedge"), "decided at load, not per call"
    cfg = load_config(path)
    assert cfg.state_dir() == tmp_path / "home" / ".local" / "state" / "ovedge"
    assert cfg.cache_dir() == tmp_path / "home" / ".cache" / "ovedge"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_config(path).cache_dir() == tmp_path / "xdg" / "ovedge"


def test_objects_built_in_code_resolve_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a config file (benchmarks, tests), relative paths are taken from the working directory."""
    monkeypatch.chdir(tmp_path)
    assert ModelConfig().store == tmp_path / "ir_models"
    cfg = DaemonConfig.model_validate({"cameras": [SYNTHETIC_CAMERA], "rules": {"ignore_mask": "m.png"}})
    assert cfg.rules.ignore_mask == tmp_path / "m.png"


# -- the CLI -------------------------------------------------------------------------------------


def test_check_config_reports_unknown_key_without_starting(write_config: Writer) -> None:
    """`ovedged check-config` exits 2 with one line naming the unknown key, no traceback."""
    path = write_config(mqtt={"prot": 1})
    done = _check_config(path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"ovedged: error: {path}: unknown key mqtt.prot"]


def test_check_config_syntax_only_on_root_config(repo_root: Path) -> None:
    """The shipped config passes `check-config --syntax-only`."""
    done = _check_config(repo_root / "config.toml", "--syntax-only")
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


def test_result_schema_doc_is_current(repo_root: Path) -> None:
    """docs/result.schema.json is exactly what daemon.result generates (run tools/gen_schemas.py)."""
    from tools.gen_schemas import result_schema_text

    assert (repo_root / "docs" / "result.schema.json").read_text(encoding="utf-8") == result_schema_text()
