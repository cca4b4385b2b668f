"""``--version`` of both command-line tools: ovedge, OpenVINO, and the devices OpenVINO sees.

A device whose plugin cannot be loaded (e.g. the GPU plugin on a machine without the OpenCL
loader) is reported as not usable, with OpenVINO's first line, instead of failing ``--version``.
OpenVINO is imported only when the text is built.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["VersionAction", "version_text"]

PROBED = ("CPU", "GPU", "NPU")
"""Devices asked for one by one when OpenVINO cannot list its devices as a whole."""


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def ovedge_version() -> str:
    try:
        return version("ovedge")
    except PackageNotFoundError:  # running from a checkout that is not installed
        from ovedge import __version__

        return __version__


def device_lines(core: Any) -> list[str]:
    """One line per device OpenVINO sees (``CPU: AMD EPYC``) or could not load (``GPU: not usable (...)``)."""
    try:
        names: Sequence[str] = list(core.available_devices)
        problems: dict[str, str] = {}
    except RuntimeError:
        names, problems = [], {}
        for plugin in PROBED:  # one failing plugin must not hide the others
            try:
                found = core.get_property(plugin, "AVAILABLE_DEVICES")
            except RuntimeError as exc:
                problems[plugin] = _first_line(exc)
                continue
            ids = [str(i) for i in found if str(i)]
            names.extend([f"{plugin}.{i}" for i in ids] if ids else [plugin] if list(found) else [])
    lines = []
    for name in names:
        try:
            full = str(core.get_property(name, "FULL_DEVICE_NAME"))
        except RuntimeError as exc:
            lines.append(f"{name}: not usable ({_first_line(exc)})")
            continue
        lines.append(f"{name}: {full}")
    lines.extend(f"{name}: not usable ({problem})" for name, problem in problems.items())
    return lines


def version_text(prog: str, core: Any = None) -> str:
    """The ``--version`` text of ``prog``; ``core`` defaults to a new ``openvino.Core()``."""
    out = [f"{prog} (ovedge) {ovedge_version()}"]
    try:
        import openvino as ov

        out.append(f"OpenVINO {ov.get_version()}")
        if core is None:
            core = ov.Core()
    except (ImportError, RuntimeError) as exc:
        out.append(f"OpenVINO: not usable ({_first_line(exc)})")
        return "\n".join(out)
    devices = device_lines(core)
    out.append("devices:" if devices else "devices: none")
    out.extend(f"  {line}" for line in devices)
    return "\n".join(out)


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit 0 (built only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show ovedge's and OpenVINO's versions and the devices OpenVINO sees, then exit")
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(version_text(parser.prog.split()[0]))
        parser.exit(0)
