"""``--version`` of ``ovedged`` and ``ovedge-convert``: ovedge, OpenVINO and the devices it sees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest

from ovedge.about import device_lines, ovedge_version, version_text

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("prog", ["ovedged", "ovedge-convert"])
def test_version_of_both_clis(prog: str, repo_root: Path) -> None:
    """``<prog> --version`` exits 0 and prints the ovedge version, OpenVINO's version and a devices
    section (whatever this machine has), with nothing on stderr."""
    done = subprocess.run([str(BIN / prog), "--version"], capture_output=True, text=True, cwd=repo_root,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{prog} (ovedge) {ovedge_version()}"
    assert lines[1] == f"OpenVINO {ov.get_version()}"
    assert lines[2] in {"devices:", "devices: none"}
    assert all(line.startswith("  ") and ": " in line for line in lines[3:])


class FakeCore:
    """A stand-in for ``openvino.Core`` (a machine with a GPU plugin that fails to load, or with an
    iGPU, cannot be had here): only the two calls ``device_lines`` makes."""

    def __init__(self, listed: list[str] | None, by_plugin: dict[str, list[str] | str], names: dict[str, str]) -> None:
        self.listed, self.by_plugin, self.names = listed, by_plugin, names

    @property
    def available_devices(self) -> list[str]:
        if self.listed is None:
            raise RuntimeError("Cannot load library 'libopenvino_intel_gpu_plugin.so': libOpenCL.so.1: missing\nmore")
        return self.listed

    def get_property(self, device: str, key: str) -> object:
        if key == "AVAILABLE_DEVICES":
            got = self.by_plugin.get(device, [])
            if isinstance(got, str):
                raise RuntimeError(got)
            return got
        if device not in self.names:
            raise RuntimeError(f"{device} went away\nsecond line")
        return self.names[device]


def test_a_plugin_that_fails_to_load_does_not_hide_the_others() -> None:
    """When OpenVINO cannot list its devices because one plugin fails, each plugin is asked alone:
    the usable ones are listed, the failing one is named with its first error line."""
    core = FakeCore(None, {"CPU": [""], "GPU": "libOpenCL.so.1: cannot open shared object file", "NPU": ["0"]},
                    {"CPU": "Some CPU", "NPU.0": "Some NPU"})
    assert device_lines(core) == [
        "CPU: Some CPU",
        "NPU.0: Some NPU",
        "GPU: not usable (libOpenCL.so.1: cannot open shared object file)",
    ]


def test_a_listed_device_that_cannot_describe_itself_is_not_usable() -> None:
    """A listed device whose properties cannot be read is shown as not usable; the rest as usual."""
    core = FakeCore(["CPU", "GPU.0", "GPU.1"], {}, {"CPU": "Some CPU", "GPU.0": "iGPU"})
    assert device_lines(core) == ["CPU: Some CPU", "GPU.0: iGPU", "GPU.1: not usable (GPU.1 went away)"]


def test_version_text_with_no_device() -> None:
    """No device at all still gives a complete answer."""
    text = version_text("ovedged", FakeCore([], {}, {}))
    assert text.splitlines() == [f"ovedged (ovedge) {ovedge_version()}", f"OpenVINO {ov.get_version()}",
                                 "devices: none"]
