"""OpenVINO device strings, the device choice, and compile properties.

* Device strings are parsed by :func:`daemon.config.device.parse_device` (no I/O), already when
  the config is validated. ``MULTI:a,b`` is accepted but deprecated: :func:`choose_device` warns
  and names AUTO's cumulative-throughput mode.
* :func:`choose_device` checks the device against ``core.available_devices`` and returns the device
  string to compile on: the requested one with only its usable candidates (``AUTO:GPU,CPU``
  compiles as ``AUTO:CPU`` where there is no GPU, saying why GPU was skipped), or the first usable
  ``fallback`` (saying so), or raises :class:`~ovedge.errors.DeviceUnavailableError` naming the device,
  what was found, and what to check. A device whose OpenVINO plugin cannot be loaded counts as
  absent, and the message names the missing library and the Debian package that provides it.
* :func:`compile_properties` turns the config's performance settings into OpenVINO properties;
  :func:`execution_devices` reads where a compiled model actually runs.

Availability rules: ``GPU`` matches any GPU (``GPU``, ``GPU.0``, ...); ``GPU.0`` also matches a
lone ``GPU`` (OpenVINO drops the index when there is one GPU); ``AUTO`` and ``MULTI`` need at
least one of their candidates present and are compiled on those only, ``HETERO`` needs all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints
import openvino.properties.streams as ov_streams

from daemon.config import DeviceSpec, InferencePrecision, PerformanceHint, parse_device
from ovedge.errors import DeviceUnavailableError, openvino_message

__all__ = [
    "DeviceChoice",
    "Skipped",
    "choose_device",
    "compile_properties",
    "execution_devices",
    "plugin_problem",
]

log = logging.getLogger(__name__)

MULTI_DEPRECATED = (
    'MULTI is deprecated by OpenVINO: use AUTO:{devices} with hint = "cumulative_throughput" '
    "(AUTO's CUMULATIVE_THROUGHPUT mode) instead"
)


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """The outcome of :func:`choose_device`: where to compile, and why."""

    requested: str
    device: str  # the device string to pass to compile_model
    available: tuple[str, ...]  # core.available_devices when chosen
    fell_back: bool = False
    reason: str | None = None  # why it fell back (for logs, status and metrics)
    notes: tuple[str, ...] = ()  # warnings: deprecated MULTI, candidates left out of AUTO/MULTI
    skipped: tuple[Skipped, ...] = ()  # devices named in the config that were left out, and why


def _present(device: str, available: Sequence[str]) -> bool:
    if device in available:
        return True
    base, _, index = device.partition(".")
    if not index:
        return any(a == base or a.startswith(base + ".") for a in available)
    return index == "0" and base in available


# Shared libraries a device plugin needs, and the Debian package that provides each.
LIBRARY_PACKAGES = {"libOpenCL.so.1": "ocl-icd-libopencl1", "libze_loader.so.1": "libze1"}
# What else a device needs once its plugin loads (said alongside a missing library).
RUNTIME_PACKAGES = {"GPU": "intel-opencl-icd, the Intel GPU compute runtime"}
_MISSING_LIBRARY = re.compile(r"([\w.+-]+\.so(?:\.\d+)*): cannot open shared object file")


def plugin_problem(base: str, exc: BaseException) -> str:
    """Why the ``base`` device's plugin cannot be loaded, naming the missing library and its package."""
    missing = _MISSING_LIBRARY.search(str(exc))
    if missing is None:
        return f"its OpenVINO plugin cannot be loaded: {openvino_message(exc)}"
    library = missing.group(1)
    package = LIBRARY_PACKAGES.get(library)
    fix = f"install the Debian package {package}" if package else "install the package that provides it"
    runtime = RUNTIME_PACKAGES.get(base)
    also = f" (and {runtime})" if runtime else ""
    return f"its OpenVINO plugin cannot be loaded because {library} is missing: {fix}{also}"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A device named in the config that cannot be used here, and why."""

    device: str
    plugin_error: str | None  # why its plugin cannot be loaded; None: the plugin loads, the device is absent

    def describe(self) -> str:
        return f"{self.device} not present" if self.plugin_error is None else f"{self.device}: {self.plugin_error}"


class _Probe:
    """What one core can run: its devices, and why a plugin does not load (asked once per plugin).

    A device whose plugin cannot be loaded (e.g. the GPU plugin without ``libOpenCL.so.1``) is
    absent: OpenVINO leaves it out of ``available_devices``, but naming it in ``AUTO:GPU,CPU`` would
    still make ``compile_model`` load the plugin and fail.
    """

    def __init__(self, core: Any) -> None:
        self._core = core
        self.available = tuple(str(d) for d in core.available_devices)
        self._plugin_errors: dict[str, str | None] = {}

    def skipped(self, device: str) -> Skipped | None:
        if _present(device, self.available):
            return None
        base = device.partition(".")[0]
        if base not in self._plugin_errors:
            try:
                self._core.get_versions(base)
            except RuntimeError as exc:
                self._plugin_errors[base] = plugin_problem(base, exc)
            else:
                self._plugin_errors[base] = None
        return Skipped(device, self._plugin_errors[base])


def _usable(spec: DeviceSpec, probe: _Probe) -> tuple[str | None, tuple[Skipped, ...]]:
    """The device string to compile ``spec`` on here (None: it cannot run), and its candidates left out.

    AUTO and MULTI keep only their present candidates (OpenVINO would load every named plugin and
    fail on one that cannot be loaded); HETERO needs every candidate; a bare AUTO needs any device.
    """
    skipped = tuple(s for c in spec.candidates if (s := probe.skipped(c)) is not None)
    if spec.kind in ("AUTO", "MULTI"):
        if not spec.candidates:
            return (spec.text if probe.available else None), ()
        gone = {s.device for s in skipped}
        present = [c for c in spec.candidates if c not in gone]
        return (f"{spec.kind}:{','.join(present)}" if present else None), skipped
    return (None if skipped else spec.text), skipped


def _what_to_check(missing: Sequence[str], dev_root: Path) -> str:
    hints = []
    bases = {m.partition(".")[0] for m in missing}
    if "GPU" in bases:
        state = "" if (dev_root / "dri").is_dir() else f" ({dev_root / 'dri'} is absent here)"
        hints.append(
            "for GPU: the Intel GPU compute runtime (intel-opencl-icd, level-zero) is installed, "
            f"{dev_root / 'dri'}/renderD* exists{state}, and the service user is in the 'render' "
            "and 'video' groups"
        )
    if "NPU" in bases:
        state = "" if (dev_root / "accel").is_dir() else f" ({dev_root / 'accel'} is absent here)"
        hints.append(
            "for NPU: the Intel NPU driver (linux-npu-driver, intel-driver-compiler-npu) is installed, "
            f"{dev_root / 'accel'}/accel0 exists{state}, and the service user is in the 'render' group"
        )
    if "CPU" in bases:
        hints.append("for CPU: the OpenVINO installation is broken; reinstall the openvino package")
    return "; ".join(hints)


def _spec(device: str | DeviceSpec) -> DeviceSpec:
    return device if isinstance(device, DeviceSpec) else parse_device(device)


def choose_device(
    core: Any,
    device: str | DeviceSpec,
    fallback: Sequence[str | DeviceSpec] = (),
    *,
    dev_root: Path = Path("/dev"),
) -> DeviceChoice:
    """The device string to compile on: ``device`` with only its usable candidates, or a fallback.

    ``core`` is an ``openvino.Core`` (only ``available_devices`` and ``get_versions`` are used).
    Raises :class:`~ovedge.errors.DeviceUnavailableError` when neither the device nor any fallback can
    run, and :class:`~daemon.config.InvalidDeviceError` for a device string that can never work.
    """
    spec = _spec(device)
    fallbacks = [_spec(f) for f in fallback]
    probe = _Probe(core)
    available = probe.available
    target, skipped = _usable(spec, probe)
    if target is not None:
        notes = []
        if spec.kind == "MULTI":
            notes.append(MULTI_DEPRECATED.format(devices=",".join(spec.candidates)))
        if skipped:
            left_out = "; ".join(s.describe() for s in skipped)
            notes.append(f"{spec.text}: compiling {target} ({left_out})")
        for note in notes:
            log.warning("%s", note)
        return DeviceChoice(spec.text, target, available, notes=tuple(notes), skipped=skipped)
    found = ", ".join(available) or "no devices"
    absent = "; ".join(s.describe() for s in skipped) if skipped else f"{spec.text} unusable"
    for alt in fallbacks:
        alt_target, alt_skipped = _usable(alt, probe)
        if alt_target is not None:
            reason = (
                f"device {spec.text} is not available: OpenVINO found {found} ({absent}); "
                f"falling back to {alt_target}"
            )
            log.warning("%s", reason)
            return DeviceChoice(
                spec.text, alt_target, available, fell_back=True, reason=reason, skipped=skipped + alt_skipped
            )
    missing = [s.device for s in skipped] or list(spec.candidates)
    raise DeviceUnavailableError(
        spec.text,
        available,
        absent=[(s.device, s.plugin_error) for s in skipped],
        fallbacks=[f.text for f in fallbacks],
        advice=_what_to_check(missing, dev_root),
    )


_MODES = {
    PerformanceHint.LATENCY: hints.PerformanceMode.LATENCY,
    PerformanceHint.THROUGHPUT: hints.PerformanceMode.THROUGHPUT,
    PerformanceHint.CUMULATIVE_THROUGHPUT: hints.PerformanceMode.CUMULATIVE_THROUGHPUT,
}
_PRECISIONS = {
    InferencePrecision.F32: ov.Type.f32,
    InferencePrecision.F16: ov.Type.f16,
    InferencePrecision.BF16: ov.Type.bf16,
}


def compile_properties(
    *,
    hint: PerformanceHint,
    num_requests: int | None = None,
    streams: int | None = None,
    threads: int | None = None,
    inference_precision: InferencePrecision | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """OpenVINO compile properties for the performance settings (unset ones are left to the device).

    The enums come validated from the config; ``cache_dir`` turns model caching on (compile from
    the XML path to profit from it).
    """
    out: dict[str, Any] = {hints.performance_mode(): _MODES[hint]}
    if num_requests is not None:
        out[hints.num_requests()] = int(num_requests)
    if streams is not None:
        out[ov_streams.num()] = int(streams)
    if threads is not None:
        out[props.inference_num_threads()] = int(threads)
    if inference_precision is not None:
        out[hints.inference_precision()] = _PRECISIONS[inference_precision]
    if cache_dir is not None:
        out[props.cache_dir()] = str(cache_dir)
    return out


def execution_devices(compiled: Any) -> tuple[str, ...]:
    """The devices a compiled model actually runs on (e.g. ``('CPU',)`` under ``AUTO``)."""
    try:
        return tuple(str(d) for d in compiled.get_property(props.execution_devices()))
    except RuntimeError as exc:
        log.debug("execution devices not reported: %s", exc)
        return ()
