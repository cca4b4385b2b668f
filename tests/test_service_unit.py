"""deploy/systemd/ovedged.service and ``ovedged install-service``, checked with systemd's own tools.

``systemd-analyze verify`` exits 0 on many errors (an unknown key, a bad ``Type=``), so any output
on stderr fails. ``ExecStart`` must name an existing executable, so the unit checked is the one
``install-service --root`` writes, pointing at this venv's ``ovedged``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.app import CAMERA_STOP_TIMEOUT
from daemon.config.spool import SpoolConfig
from daemon.install import TEMPLATE_EXEC

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "ovedged.service"
MAX_EXPOSURE = 2.0


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is not installed: apt-get install -y systemd (.ci/run does this)")
    return found


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ovedged"), "install-service", "--root", str(root), *args],
                          capture_output=True, text=True, check=False, cwd=ROOT)


def _keys(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def _seconds(value: str) -> float:
    units = {"s": 1, "min": 60, "ms": 0.001, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(min|ms|s|h)?", value):
        total += float(number) * units[unit or "s"]
    return total


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ovedged install-service --root DIR --no-user``: the unit as a machine would get it."""
    root = tmp_path_factory.mktemp("root")
    done = _install(root, "--no-user")
    assert done.returncode == 0, done.stderr
    return root


def test_installed_unit_verifies_without_a_word(installed: Path) -> None:
    """systemd-analyze verify on the installed unit: exit 0 and nothing on stderr or stdout."""
    unit = installed / "etc/systemd/system/ovedged.service"
    done = subprocess.run([_analyze(), "verify", str(unit)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr + done.stdout


def test_verify_catches_what_the_test_relies_on(tmp_path: Path) -> None:
    """The check above has teeth: a unit with an unknown key or a missing ExecStart binary produces stderr."""
    bad = tmp_path / "ovedged.service"
    bad.write_text(UNIT.read_text().replace("RestartSec=5s", "RestartSecs=5s"))  # typo; ExecStart path missing
    done = subprocess.run([_analyze(), "verify", str(bad)], capture_output=True, text=True, check=False)
    assert "RestartSecs" in done.stderr and TEMPLATE_EXEC in done.stderr, done.stderr


def test_security_exposure_is_at_most_2(installed: Path) -> None:
    """systemd-analyze security --offline=true scores the unit <= 2.0 (parsed from its last line)."""
    unit = installed / "etc/systemd/system/ovedged.service"
    done = subprocess.run([_analyze(), "security", "--offline=true", "--no-pager", str(unit)],
                          capture_output=True, text=True, check=False)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout[-500:] + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, done.stdout


def test_unit_keeps_devices_and_network_reachable_and_bounds_start_and_stop() -> None:
    """Type=notify with a watchdog and restart on failure; cameras, iGPU and NPU allowed behind
    DevicePolicy=closed; IP sockets allowed; the stop timeout covers the daemon's drain bound (camera
    threads joined, PUBACKs awaited) twice over; the state, cache and config folders are systemd's."""
    keys = _keys(UNIT.read_text())
    assert keys["Type"] == ["notify"]
    assert keys["Restart"] == ["on-failure"]
    assert _seconds(keys["WatchdogSec"][0]) > 0
    assert keys["DevicePolicy"] == ["closed"]
    assert {v.split()[0] for v in keys["DeviceAllow"]} == {"char-video4linux", "char-drm", "char-accel"}
    assert set(keys["SupplementaryGroups"][0].split()) == {"video", "render"}
    assert "PrivateDevices" not in keys and "PrivateNetwork" not in keys
    assert {"AF_INET", "AF_INET6"} <= set(keys["RestrictAddressFamilies"][0].split())
    assert keys["User"] == ["ovedge"]
    for key in ("StateDirectory", "CacheDirectory", "ConfigurationDirectory"):
        assert keys[key] == ["ovedge"]
    flush = SpoolConfig().drain_timeout  # the publisher's drain bound (PUBACKs awaited, spool rows retried)
    assert _seconds(keys["TimeoutStopSec"][0]) >= 2 * (CAMERA_STOP_TIMEOUT + flush)
    assert _seconds(keys["TimeoutStartSec"][0]) >= 60  # the rest of a long compile is EXTEND_TIMEOUT_USEC


def test_install_service_writes_unit_and_config_and_never_overwrites_a_config(tmp_path: Path) -> None:
    """install-service --root: the unit runs the installed ovedged, the example config is valid and
    keeps its models in the state folder; a second run keeps an edited config; --dry-run writes nothing."""
    dry = _install(tmp_path / "dry", "--no-user", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would write" in dry.stdout and not (tmp_path / "dry").exists()

    root = tmp_path / "root"
    assert _install(root, "--no-user").returncode == 0
    unit = (root / "etc/systemd/system/ovedged.service").read_text()
    assert f"ExecStart={BIN / 'ovedged'} run --config /etc/ovedge/config.toml" in unit
    config = root / "etc/ovedge/config.toml"
    assert 'store = "/var/lib/ovedge/models"' in config.read_text()
    check = subprocess.run([str(BIN / "ovedged"), "check-config", "--syntax-only", "--config", str(config)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr

    config.write_text(config.read_text() + "# edited by the operator\n")
    again = _install(root, "--no-user")
    assert again.returncode == 0, again.stderr
    assert config.read_text().endswith("# edited by the operator\n")
    assert f"keep {config}" in again.stdout
    assert "render" in again.stdout and "video" in again.stdout  # what GPU/NPU need


def test_instances_share_one_template_unit_each_with_its_config_state_and_cache(tmp_path: Path) -> None:
    """install-service --instance, once per station: one template ovedged@.service whose instances verify
    without a word and score <= 2.0 like the single unit, with the config, state and cache folders of
    the instance; one valid /etc/ovedge/NAME.toml per station naming it; a name that cannot be a unit
    instance, a file and a topic level is refused in one line."""
    root = tmp_path / "root"
    for station in ("station2", "line-b"):
        done = _install(root, "--no-user", "--instance", station)
        assert done.returncode == 0, done.stderr
        assert f"systemctl enable --now ovedged@{station}" in done.stdout
    units = root / "etc/systemd/system"
    assert sorted(p.name for p in units.iterdir()) == ["ovedged@.service"]
    keys = _keys((units / "ovedged@.service").read_text())
    assert keys["ExecStart"] == [f"{BIN / 'ovedged'} run --config /etc/ovedge/%i.toml"]
    assert keys["StateDirectory"] == ["ovedge/%i"] and keys["CacheDirectory"] == ["ovedge/%i"]
    # the rest is the single unit's, hardening included
    single = _keys(UNIT.read_text())
    for key in ("User", "WatchdogSec", "ProtectSystem", "SystemCallFilter", "DeviceAllow", "Type"):
        assert keys[key] == single[key], key

    (units / "ovedged@station2.service").symlink_to("ovedged@.service")  # how systemd names an instance
    instance = units / "ovedged@station2.service"
    verify = subprocess.run([_analyze(), "verify", str(instance)], capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and verify.stderr == "" and verify.stdout == "", verify.stderr + verify.stdout
    security = subprocess.run([_analyze(), "security", "--offline=true", "--no-pager", str(instance)],
                              capture_output=True, text=True, check=False)
    found = re.search(r"Overall exposure level for ovedged@station2\.service: (\d+\.\d+)", security.stdout)
    assert found and float(found.group(1)) <= MAX_EXPOSURE, security.stdout[-500:] + security.stderr

    for station in ("station2", "line-b"):
        config = root / f"etc/ovedge/{station}.toml"
        assert f'name = "{station}"' in config.read_text()
        check = subprocess.run([str(BIN / "ovedged"), "check-config", "--syntax-only", "--config", str(config)],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stderr

    bad = _install(root, "--no-user", "--instance", "line/b")
    assert bad.returncode != 0
    assert bad.stderr.splitlines() == [
        "ovedged: error: install-service: --instance 'line/b' is not a usable station name; use 1-64 letters, "
        "digits, '-' or '_' (it names the unit ovedged@NAME, /etc/ovedge/NAME.toml and the MQTT topic level)"
    ]


def test_install_service_refuses_a_missing_ovedged_in_one_line(tmp_path: Path) -> None:
    """--ovedged naming nothing: exit non-zero, one `ovedged: error:` line naming the path, no traceback."""
    done = _install(tmp_path, "--no-user", "--ovedged", str(tmp_path / "nope"))
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        f"ovedged: error: install-service: {tmp_path / 'nope'} is not an executable; "
        "pass --ovedged with the path of the installed ovedged"
    ]



def test_install_service_without_root_says_sudo_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Run by an ordinary user onto the real / (no --root, no --dry-run): exit non-zero with one
    `ovedged: error:` line that says to use sudo, --dry-run or --root.
    (The user id is faked: this machine's venv cannot be run by another user.)"""
    from daemon.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["install-service"]) != 0
    assert capsys.readouterr().err.splitlines() == [
        "ovedged: error: install-service: writing /etc and creating a system user needs root; "
        "run it with sudo, or --dry-run to see what it would do, or --root DIR"
    ]


def _syscall_group(name: str) -> set[str]:
    """A systemd syscall group (``@system-service``), groups inside it expanded."""
    done = subprocess.run([_analyze(), "syscall-filter", "--no-pager", name], capture_output=True, text=True,
                          check=True)
    found: set[str] = set()
    for raw in done.stdout.splitlines()[1:]:
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        found |= _syscall_group(item) if item.startswith("@") else {item}
    return found


def _allowed_syscalls(unit_text: str) -> set[str]:
    """What the unit's SystemCallFilter= lines let through (an allow list, then ~ removals)."""
    allowed: set[str] = set()
    for value in _keys(unit_text)["SystemCallFilter"]:
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= _syscall_group(item) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


def test_a_whole_daemon_run_uses_only_syscalls_the_unit_allows(demo_store: Path, broker, tmp_path: Path) -> None:
    """`ovedged run` traced with strace -f from start to exit (model compile and self-test on CPU,
    camera, inference, MQTT, state folder, drain): every system call it makes is in the unit's
    SystemCallFilter, so the filter (EPERM for the rest) does not break the daemon."""
    from tests.configs import write_config

    strace = shutil.which("strace")
    if strace is None:
        pytest.fail("strace is not installed: apt-get install -y strace (.ci/run does this)")
    cfg = write_config(
        tmp_path,
        station={"name": "st", "topic_prefix": "ovt"},
        model={"store": demo_store, "name": "demo", "cache_dir": tmp_path / "cache"},
        cameras=[{"id": "cam0", "mode": "every-frame", "source": {"type": "synthetic", "seed": 1, "fps": 0,
                                                                     "count": 30}}],
        mqtt={"port": broker.port},
        state={"dir": tmp_path / "state"},
    )
    summary = tmp_path / "strace.txt"
    done = subprocess.run([strace, "-f", "-qq", "-c", "-o", str(summary), str(BIN / "ovedged"), "run",
                           "--config", str(cfg), "--until-sources-end"], capture_output=True, text=True,
                          check=False, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "final: results OK" in done.stderr
    rows = [line.split() for line in summary.read_text().splitlines()[2:]]
    used = {row[-1] for row in rows if row and not row[0].startswith("-") and row[-1] != "total"}
    assert {"openat", "mmap", "futex", "connect"} <= used, used  # the summary was parsed
    allowed = _allowed_syscalls(UNIT.read_text())
    # SQLite (the spool) fchown()s its WAL and journal files to the database's owner only when it runs
    # as root (this test does; the unit runs as user ovedge) and ignores a failure: EPERM is harmless.
    root_only = {"fchown"}
    refused = used - allowed - root_only
    assert refused == set(), f"the unit's SystemCallFilter would refuse {sorted(refused)}"
