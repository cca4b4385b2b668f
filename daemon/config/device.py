"""OpenVINO device strings, parsed without touching OpenVINO (no I/O, no openvino import).

Forms: ``CPU``, ``GPU``, ``GPU.N``, ``NPU``, ``AUTO`` / ``AUTO:a,b,...``, ``HETERO:a,b``,
``MULTI:a,b``. ``VPU`` and ``MYRIAD`` are refused with what to use instead. The config schema
validates ``model.device`` and ``model.fallback`` with :func:`parse_device` (type
:data:`DeviceString`), so a string that can never work fails when the config is parsed;
whether the device is present is :mod:`daemon.devices`' job at model load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Final

from pydantic import AfterValidator

from ovedge.errors import ConfigError

__all__ = [
    "PHYSICAL",
    "REMOVED",
    "VIRTUAL",
    "DeviceProblem",
    "DeviceSpec",
    "DeviceString",
    "InvalidDeviceError",
    "parse_device",
]

PHYSICAL: Final = ("CPU", "GPU", "NPU")
VIRTUAL: Final = ("AUTO", "HETERO", "MULTI")
REMOVED: Final = ("VPU", "MYRIAD", "HDDL", "VPUX")
_PHYSICAL_RE: Final = re.compile(r"^(CPU|GPU|NPU)(?:\.(\d+))?$")
FORMS: Final = "CPU, GPU, GPU.N, NPU, AUTO, AUTO:a,b,..., HETERO:a,b, MULTI:a,b"


class DeviceProblem(StrEnum):
    """Why a device string can never work."""

    EMPTY = "empty"
    NEEDS_LIST = "needs-list"
    REPEATED = "repeated"
    NO_LIST = "no-list"
    REMOVED = "removed"
    NESTED = "nested"
    UNKNOWN = "unknown"


_REASONS: Final = {
    DeviceProblem.EMPTY: 'no device given (e.g. "CPU")',
    DeviceProblem.NEEDS_LIST: "{part} needs a device list, e.g. {part}:GPU,CPU",
    DeviceProblem.REPEATED: "{part} is named twice",
    DeviceProblem.NO_LIST: "only AUTO, HETERO and MULTI take a device list (use {forms})",
    DeviceProblem.REMOVED: (
        "{part} (Myriad VPU) was removed from OpenVINO in 2023.0; use NPU on Core Ultra or stay on 2022.3 LTS"
    ),
    DeviceProblem.NESTED: "{part} cannot be nested inside another device list",
    DeviceProblem.UNKNOWN: "unknown device {part!r} (use {forms})",
}


class InvalidDeviceError(ConfigError):
    """A device string that can never work: ``device`` as written, the ``problem``, the offending ``part``."""

    def __init__(self, device: str, problem: DeviceProblem, part: str = "") -> None:
        self.device = device
        self.problem = problem
        self.part = part
        self.reason = _REASONS[problem].format(part=part, forms=FORMS)
        super().__init__(f"device {device!r}: {self.reason}")


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A parsed device string: a physical device, or a virtual one over candidates."""

    text: str  # normalised, e.g. "AUTO:GPU,CPU"
    kind: str  # CPU, GPU, NPU, AUTO, HETERO or MULTI
    candidates: tuple[str, ...]  # physical devices named (the device itself when physical)

    @property
    def virtual(self) -> bool:
        return self.kind in VIRTUAL


def parse_device(text: str) -> DeviceSpec:
    """Parse and normalise a device string (no I/O); :class:`InvalidDeviceError` when it cannot work."""
    raw = text.strip()
    if not raw:
        raise InvalidDeviceError(text, DeviceProblem.EMPTY)
    name, sep, rest = raw.partition(":")
    name = name.strip().upper()
    if name in VIRTUAL:
        candidates = tuple(_physical(part, raw) for part in rest.split(",") if part.strip()) if sep else ()
        if name != "AUTO" and not candidates:
            raise InvalidDeviceError(raw, DeviceProblem.NEEDS_LIST, name)
        repeated = sorted({c for c in candidates if candidates.count(c) > 1})
        if repeated:
            raise InvalidDeviceError(raw, DeviceProblem.REPEATED, ", ".join(repeated))
        normal = f"{name}:{','.join(candidates)}" if candidates else name
        return DeviceSpec(normal, name, candidates)
    if sep:
        raise InvalidDeviceError(raw, DeviceProblem.NO_LIST)
    single = _physical(raw, raw)
    return DeviceSpec(single, single.partition(".")[0], (single,))


def _physical(part: str, whole: str) -> str:
    name = part.strip().upper()
    if name.partition(".")[0] in REMOVED:
        raise InvalidDeviceError(whole, DeviceProblem.REMOVED, name)
    if name in VIRTUAL:
        raise InvalidDeviceError(whole, DeviceProblem.NESTED, name)
    if not _PHYSICAL_RE.match(name):
        raise InvalidDeviceError(whole, DeviceProblem.UNKNOWN, part.strip())
    return name


def _normalised(text: str) -> str:
    try:
        return parse_device(text).text
    except InvalidDeviceError as exc:
        raise ValueError(exc.reason) from exc


DeviceString = Annotated[str, AfterValidator(_normalised)]
"""A config field holding a device string: checked by :func:`parse_device`, stored normalised."""
