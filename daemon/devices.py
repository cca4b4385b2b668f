"""OpenVINO device strings, the start-up device preflight, and compile properties.

* Device strings are parsed by :func:`daemon.config.device.parse_device` (no I/O), already when
  the config is validated. ``MULTI:a,b`` is accepted but deprecated: preflight warns and names
  AUTO's cumulative-throughput mode.
* :func:`preflight` checks the device against ``core.available_devices`` and returns the device to
  compile on: the requested one, or the first usable ``fallback`` (saying so), or raises a
  :class:`~ovedge.errors.ModelError` naming the device, what was found, and what to check.
* :func:`compile_properties` turns the config's performance settings into OpenVINO properties;
  :func:`execution_devices` reads where a compiled model actually runs.

Availability rules: ``GPU`` matches any GPU (``GPU``, ``GPU.0``, ...); ``GPU.0`` also matches a
lone ``GPU`` (OpenVINO drops the index when there is one GPU); ``AUTO`` and ``MULTI`` need at
least one of their candidates present (OpenVINO skips the absent ones), ``HETERO`` needs all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints
import openvino.properties.streams as ov_streams

from daemon.config import DeviceSpec, InferencePrecision, PerformanceHint, parse_device
from ovedge.errors import ModelError

__all__ = [
    "DeviceChoice",
    "compile_properties",
    "execution_devices",
    "preflight",
]

log = logging.getLogger(__name__)

MULTI_DEPRECATED = (
    'MULTI is deprecated by OpenVINO: use AUTO:{devices} with hint = "cumulative_throughput" '
    "(AUTO's CUMULATIVE_THROUGHPUT mode) instead"
)


@dataclass(frozen=True, slots=True)
class DeviceChoice:
    """The outcome of :func:`preflight`: where to compile, and why."""

    requested: str
    device: str  # the device string to pass to compile_model
    available: tuple[str, ...]  # core.available_devices at preflight
    fell_back: bool = False
    reason: str | None = None  # why it fell back (for logs, status and metrics)
    notes: tuple[str, ...] = ()  # warnings: deprecated MULTI, absent AUTO candidates


def _present(device: str, available: Sequence[str]) -> bool:
    if device in available:
        return True
    base, _, index = device.partition(".")
    if not index:
        return any(a == base or a.startswith(base + ".") for a in available)
    return index == "0" and base in available


def _usable(spec: DeviceSpec, available: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether ``spec`` can run here, and which of its candidates are absent."""
    missing = [c for c in spec.candidates if not _present(c, available)]
    if spec.kind in ("AUTO", "MULTI"):
        return (not spec.candidates or len(missing) < len(spec.candidates)) and bool(available), missing
    return not missing, missing


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


def preflight(
    core: Any, device: str, fallback: Sequence[str] = (), *, dev_root: Path = Path("/dev")
) -> DeviceChoice:
    """Check ``device`` against ``core.available_devices``; fall back in order when configured.

    Raises :class:`ModelError` when neither the device nor any fallback is usable, and
    :class:`ConfigError` for a device string that can never work (see :func:`parse_device`).
    """
    spec = parse_device(device)
    fallbacks = [parse_device(f) for f in fallback]
    available = tuple(str(d) for d in core.available_devices)
    found = ", ".join(available) or "no devices"
    ok, missing = _usable(spec, available)
    if ok:
        notes = []
        if spec.kind == "MULTI":
            notes.append(MULTI_DEPRECATED.format(devices=",".join(spec.candidates)))
        if missing:
            notes.append(f"{spec.text}: {', '.join(missing)} not present (found {found}); using the others")
        for note in notes:
            log.warning("%s", note)
        return DeviceChoice(spec.text, spec.text, available, notes=tuple(notes))
    absent = ", ".join(missing) if missing else spec.text
    why = f"device {spec.text} is not available: OpenVINO found {found}"
    for alt in fallbacks:
        alt_ok, _ = _usable(alt, available)
        if alt_ok:
            reason = f"{why} ({absent} missing); falling back to {alt.text}"
            log.warning("%s", reason)
            return DeviceChoice(spec.text, alt.text, available, fell_back=True, reason=reason)
    tried = f"; fallback {', '.join(f.text for f in fallbacks)} not available either" if fallbacks else ""
    advice = f"check {_what_to_check(missing or spec.candidates, dev_root)}"
    escape = "" if fallbacks else '; or set model.fallback = ["CPU"] to run on the CPU meanwhile'
    raise ModelError(f"{why}{tried}; {advice}{escape}")


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
