"""``ovedged install-service``: the systemd unit, an example config, the service user.

What it does (``--dry-run`` prints the same lines without doing anything):

1. writes ``<root>/etc/systemd/system/ovedged.service`` from ``deploy/systemd/ovedged.service`` with
   ``ExecStart`` pointing at the ``ovedged`` being run (or ``--ovedged PATH``);
2. copies the documented ``config.toml`` to ``<root>/etc/ovedge/config.toml`` with the model store
   in the state folder (``/var/lib/ovedge/models``); an existing config is never overwritten;
3. creates the system user ``ovedge`` (``useradd --system``) unless it exists or ``--no-user``;
4. prints what is left to do: ``systemctl daemon-reload``, ``enable --now``, and for GPU/NPU the
   ``render``/``video`` groups and drivers.

``--instance NAME`` installs one of several daemons on the PC instead (one per station, behind
``deploy/nginx/ovedge.conf``): the template unit ``ovedged@.service`` (config
``/etc/ovedge/%i.toml``, state ``/var/lib/ovedge/%i``, cache ``/var/cache/ovedge/%i``) and
``/etc/ovedge/NAME.toml`` with ``[station] name = NAME``; ``systemctl enable --now ovedged@NAME``.
Run it once per station; the model store ``/var/lib/ovedge/models`` is shared.

``--root DIR`` installs into another root (an image being built, the tests); it implies no
``systemctl`` and does not need root. Without it, root is required.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ovedge.errors import OvedgeError

__all__ = ["InstallError", "install_service", "source_files"]

UNIT_NAME = "ovedged.service"
INSTANCE_UNIT_NAME = "ovedged@.service"
INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a unit instance, a file name and an MQTT topic level
STATION_LINE = 'name = "station1"'
USER = "ovedge"
TEMPLATE_EXEC = "/opt/ovedge/venv/bin/ovedged"
STORE_LINE = 'store = "ir_models"'
INSTALLED_STORE_LINE = 'store = "/var/lib/ovedge/models"'
HIDDEN_BY_PROTECT_HOME = (Path("/home"), Path("/root"), Path("/run/user"))


class InstallError(OvedgeError):
    """The service cannot be installed as asked; the message says what to do."""

    def __init__(self, *, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"install-service: {problem}; {fix}")


@dataclass(frozen=True, slots=True)
class SourceFiles:
    unit: Path
    config: Path


def source_files() -> SourceFiles:
    """The unit template and the example config: in a source checkout, else in ``<prefix>/share/ovedge``."""
    checkout = Path(__file__).resolve().parent.parent
    shared = Path(sys.prefix) / "share" / "ovedge"
    candidates = [
        SourceFiles(checkout / "deploy" / "systemd" / UNIT_NAME, checkout / "config.toml"),
        SourceFiles(shared / UNIT_NAME, shared / "config.toml"),
    ]
    for files in candidates:
        if files.unit.is_file() and files.config.is_file():
            return files
    raise InstallError(
        problem=f"the unit template {UNIT_NAME} and config.toml are not found (looked in {checkout} and "
        f"{shared})",
        fix="install ovedge from its source checkout or a wheel that ships share/ovedge",
    )


def default_ovedged() -> Path:
    """The ``ovedged`` script of the running installation (next to the interpreter), else argv[0]."""
    beside = Path(sys.executable).parent / "ovedged"
    return beside if beside.is_file() else Path(sys.argv[0]).resolve()


def render_unit(template: str, ovedged: Path) -> str:
    """The unit text with ``ExecStart`` running ``ovedged``."""
    if TEMPLATE_EXEC not in template:
        raise InstallError(
            problem=f"the unit template has no ExecStart with {TEMPLATE_EXEC}",
            fix="restore deploy/systemd",
        )
    return template.replace(TEMPLATE_EXEC, str(ovedged))


# What makes the unit a template: (what the single unit says, what an instance's says).
_INSTANCE_EDITS = (
    ("--config /etc/ovedge/config.toml", "--config /etc/ovedge/%i.toml"),
    ("\nStateDirectory=ovedge\n", "\nStateDirectory=ovedge/%i\n"),
    ("\nCacheDirectory=ovedge\n", "\nCacheDirectory=ovedge/%i\n"),
    ("\nDescription=ovedge OpenVINO defect-inspection daemon\n",
     "\nDescription=ovedge OpenVINO defect-inspection daemon, station %i\n"),
)


def render_instance_unit(unit: str) -> str:
    """The (rendered) unit as the template ``ovedged@.service``: config, state and cache per instance."""
    for single, per_instance in _INSTANCE_EDITS:
        if unit.count(single) != 1:
            raise InstallError(
                problem=f"the unit template does not have exactly one {single.strip()!r}",
                fix="restore deploy/systemd",
            )
        unit = unit.replace(single, per_instance)
    return unit


def check_instance(name: str) -> str:
    """``name`` when it can be a unit instance, a config file name and a station (an MQTT topic level)."""
    if not INSTANCE_NAME.match(name):
        raise InstallError(
            problem=f"--instance {name!r} is not a usable station name",
            fix="use 1-64 letters, digits, '-' or '_' (it names the unit ovedged@NAME, /etc/ovedge/NAME.toml "
            "and the MQTT topic level)",
        )
    return name


def render_config(example: str, station: str | None = None) -> str:
    """The example config with the model store under the service's state folder (and, for an
    instance, its station name)."""
    for line in (STORE_LINE, *((STATION_LINE,) if station is not None else ())):
        if line not in example:
            raise InstallError(
                problem=f"config.toml has no line {line!r}",
                fix="restore the documented config.toml",
            )
    text = example.replace(STORE_LINE, INSTALLED_STORE_LINE + "  # ovedge-convert ... --out /var/lib/ovedge/models", 1)
    if station is not None:
        text = text.replace(STATION_LINE, f'name = "{station}"', 1)
    return text


def install_service(
    *,
    root: Path | None,
    dry_run: bool,
    create_user: bool,
    ovedged: Path | None,
    instance: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Install the unit, the example config and the user (see the module docstring)."""
    if instance is not None:
        check_instance(instance)
    if root is None and not dry_run and os.geteuid() != 0:
        raise InstallError(problem="writing /etc and creating a system user needs root",
                           fix="run it with sudo, or --dry-run to see what it would do, or --root DIR")
    base = root if root is not None else Path("/")
    files = source_files()
    exe = (ovedged or default_ovedged()).absolute()
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise InstallError(
            problem=f"{exe} is not an executable",
            fix="pass --ovedged with the path of the installed ovedged",
        )
    config_name = f"{instance}.toml" if instance is not None else "config.toml"
    unit_path = base / "etc" / "systemd" / "system" / (INSTANCE_UNIT_NAME if instance is not None else UNIT_NAME)
    config_path = base / "etc" / "ovedge" / config_name
    act = "would " if dry_run else ""
    unit_text = render_unit(files.unit.read_text(encoding="utf-8"), exe)
    if instance is not None:
        unit_text = render_instance_unit(unit_text)

    exec_config = "/etc/ovedge/%i.toml" if instance is not None else "/etc/ovedge/config.toml"
    say(f"{act}write {unit_path} (ExecStart={exe} run --config {exec_config})")
    if not dry_run:
        unit_path.parent.mkdir(parents=True, exist_ok=True)
        unit_path.write_text(unit_text, encoding="utf-8")
        unit_path.chmod(0o644)
    if config_path.exists():
        say(f"keep {config_path} (it exists; compare it with {files.config} for new keys)")
    else:
        edit = "[model], [[cameras]], [mqtt]" + (", and [http] port: one of its own" if instance else "")
        say(f"{act}write {config_path} (the documented example"
            f"{f', station {instance!r}' if instance else ''}; edit [station], {edit})")
        if not dry_run:
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(render_config(files.config.read_text(encoding="utf-8"), instance),
                                   encoding="utf-8")
            config_path.chmod(0o644)
    _user(base, root, dry_run=dry_run, create=create_user, say=say)
    # The venv's interpreter may live elsewhere (pyenv under /root): both must stay visible.
    for needed in (exe, Path(sys.base_prefix)):
        if any(needed.is_relative_to(p) for p in HIDDEN_BY_PROTECT_HOME):
            say(f"warning: {needed} is under a home folder, which ProtectHome=yes hides from the service; "
                "install Python and ovedge under /usr or /opt (e.g. a venv in /opt/ovedge/venv made with "
                "the system python3) and run install-service from there")
    for line in _next_steps(root, instance):
        say(line)


def _user(base: Path, root: Path | None, *, dry_run: bool, create: bool, say: Callable[[str], None]) -> None:
    if not create:
        say(f"skip the user {USER!r} (--no-user): create it with useradd --system before starting the service")
        return
    if root is None and _exists(pwd.getpwnam, USER):
        say(f"keep the user {USER!r} (it exists)")
        return
    argv = ["useradd", "--system", "--user-group", "--home-dir", "/var/lib/ovedge", "--no-create-home",
            "--shell", "/usr/sbin/nologin", "--comment", "ovedge inspection daemon"]
    if root is not None:
        argv += ["--root", str(base.absolute())]
    argv.append(USER)
    say(f"{'would run' if dry_run else 'run'}: {' '.join(argv)}")
    if dry_run:
        return
    if shutil.which("useradd") is None:
        raise InstallError(
            problem="useradd is not installed",
            fix="install the Debian package passwd, or use --no-user",
        )
    done = subprocess.run(argv, capture_output=True, encoding="utf-8", errors="replace", check=False)
    if done.returncode != 0:
        raise InstallError(
            problem=f"useradd failed: {done.stderr.strip()}",
            fix="create the user by hand or use --no-user",
        )


def _exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def _next_steps(root: Path | None, instance: str | None) -> list[str]:
    unit = f"ovedged@{instance}" if instance is not None else "ovedged"
    config = f"/etc/ovedge/{instance}.toml" if instance is not None else "/etc/ovedge/config.toml"
    lines = ["", "next:"]
    if root is None:
        lines += ["  systemctl daemon-reload",
                  f"  sudo -u ovedge ovedged check-config --config {config}",
                  f"  systemctl enable --now {unit}",
                  f"  journalctl -u {unit} -f        (journalctl -u {unit} -p warning: problems only)"]
    else:
        lines.append(f"  the files are under {root}; on the target: "
                     f"systemctl daemon-reload && systemctl enable --now {unit}")
    if instance is not None:
        lines += ["  several stations on this PC: run install-service --instance once per station, give each",
                  "  its own [http] port and put deploy/nginx/ovedge.conf in front (docs/HTTP.md)"]
    lines += [
        "",
        "GPU / NPU:",
        "  the unit runs as user ovedge with SupplementaryGroups=video render and DeviceAllow= for",
        "  /dev/video* (cameras), /dev/dri/renderD* (iGPU) and /dev/accel/* (NPU); nothing else is reachable.",
        "  iGPU: Intel's compute runtime (Debian: intel-opencl-icd) and the i915/xe kernel driver;",
        "        ls -l /dev/dri/renderD* shows group render.",
        "  NPU:  the intel_vpu kernel driver and Intel's linux-npu-driver user-space package;",
        "        /dev/accel/accel0 must belong to group render (a udev rule: SUBSYSTEM==\"accel\", GROUP=\"render\").",
        "  then set model.device = \"GPU\" or \"NPU\" (fallback = [\"CPU\"]) and run check-config as user ovedge.",
    ]
    if root is None:
        lines += [f"  warning: group {g!r} does not exist here; create it (groupadd --system {g}) or the unit will "
                  "not start" for g in ("video", "render") if not _exists(grp.getgrnam, g)]
    return lines
