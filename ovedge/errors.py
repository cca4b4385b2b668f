"""The project's exception hierarchy.

Every error a user can fix is an :class:`OvedgeError`. Its message names the thing that is
wrong and the fix; the command-line entry points print it as one line and exit non-zero.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class OvedgeError(Exception):
    """Root of every user-fixable error in ovedge."""

    exit_code: int = 1


class ConfigError(OvedgeError):
    """The configuration file is missing, malformed, or names something that does not exist."""

    exit_code = 2


class CameraError(OvedgeError):
    """A frame source cannot be opened or has failed for good."""


class ModelError(OvedgeError):
    """A model cannot be found, read, compiled, verified or run on the requested device."""


class ConvertError(OvedgeError):
    """A checkpoint cannot be converted: wrong format, wrong shapes, failed parity."""


class PublishError(OvedgeError):
    """Results cannot be delivered: the broker is unreachable or refuses us."""


def describe(what: object, problem: str = "", detail: object = "", fix: str = "") -> str:
    """``"{what} {problem}: {detail}; {fix}"`` with empty parts and their separators left out.

    The one wording of :class:`DescribedError`, also used by errors that are not user errors but
    end up in front of one (a rejected frame's reason, :class:`camera.errors.FrameRejectedError`).
    """
    text = str(what)
    if problem:
        text += f" {problem}"
    if detail != "":
        text += f": {detail}"
    if fix:
        text += f"; {fix}"
    return text


class BrokerUnreachableError(PublishError):
    """No connection to the MQTT broker could be made (refused, no route, unknown host)."""

    def __init__(self, host: str, port: int, reason: object, *, require_at_start: bool = False) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        self.require_at_start = require_at_start
        text = f"MQTT broker {host}:{port} is unreachable ({reason}); start the broker or fix [mqtt] host/port"
        if require_at_start:
            text += " (or set mqtt.require_at_start = false to start without it)"
        super().__init__(text)


class BrokerRefusedError(PublishError):
    """The MQTT broker answered but refused the connection (``reason``: its reason code, or no CONNACK)."""

    def __init__(self, host: str, port: int, reason: object) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(
            f"MQTT broker {host}:{port} refused the connection: {reason}; check [mqtt] credentials and TLS"
        )


class BrokerSilentError(PublishError):
    """A connection to the MQTT broker was made but no CONNACK came within ``seconds``."""

    def __init__(self, host: str, port: int, seconds: float) -> None:
        self.host = host
        self.port = port
        self.seconds = seconds
        super().__init__(
            f"MQTT broker {host}:{port} did not answer within {seconds:g} s; check that it is an MQTT broker "
            "and whether it expects TLS ([mqtt.tls]), or raise mqtt.connect_timeout"
        )


class DescribedError(OvedgeError):
    """Mixin for the long tail of errors: the thing it is about, what is wrong, the fix; all as fields.

    The message reads ``"{what} {problem}: {detail}; {fix}"`` (empty parts and their separators
    left out), so a raise site passes data, never a finished sentence. Mixed in first, before the
    root it specialises (``class CheckpointError(DescribedError, ConvertError)``).
    """

    def __init__(self, *, what: object, problem: str = "", detail: object = "", fix: str = "") -> None:
        self.what = what
        self.problem = problem
        self.detail = detail
        self.fix = fix
        super().__init__(describe(what, problem, detail, fix))


class ModelFileError(DescribedError, ModelError):
    """A model's file or folder (IR, manifest, golden sample, metadata) is missing, wrong or unreadable."""


class CheckpointError(DescribedError, ConvertError):
    """The file given to ovedge-convert cannot be read as one network (``what`` names it and its path)."""


class ConvertOptionError(DescribedError, ConvertError):
    """An ovedge-convert option is malformed or contradicts the model (``what`` is the flag and value)."""


class KeyFileError(DescribedError, ConfigError):
    """A signing or trusted key file is missing, unreadable or not an Ed25519 key."""


class SignatureError(DescribedError, ModelError):
    """A model version's signature is missing, by an untrusted key, or does not match its files."""


class ModelOutputError(DescribedError, ModelError):
    """At run time a model's output does not have the size its layout needs (a dynamic dimension)."""


class ModelNotFoundError(ModelError):
    """The store has no version of the configured model; says how to make one without guessing."""

    def __init__(self, name: str, store: Path, models: Sequence[str]) -> None:
        self.name = name
        self.store = store
        self.models = tuple(models)
        if name == "demo":
            how = "build the demo model with `make demo` (from the repository root)"
        else:
            how = (
                "convert it with ovedge-convert, giving the input size, mean/std and OK labels used in "
                "training (docs/CONVERTER.md has the full recipe)"
            )
        found = ", ".join(self.models) or "none"
        super().__init__(f"model {name!r} not found in the store {store} (models there: {found}); {how}")


class ModelCompileError(ModelError):
    """OpenVINO cannot compile a model for the device chosen (``reason``: OpenVINO's own line)."""

    def __init__(self, model: str, device: str, reason: str) -> None:
        self.model = model
        self.device = device
        self.reason = reason
        super().__init__(f"{model} failed to compile on {device}: {reason}")


class DeviceUnavailableError(ModelError):
    """Neither the configured device nor any fallback can run here (see :mod:`daemon.devices`)."""

    def __init__(
        self,
        device: str,
        available: Sequence[str],
        *,
        absent: Sequence[tuple[str, str | None]],
        fallbacks: Sequence[str] = (),
        advice: str = "",
    ) -> None:
        self.device = device
        self.available = tuple(available)
        self.absent = tuple(absent)  # (device, why its plugin cannot be used; None = simply not present)
        self.fallbacks = tuple(fallbacks)
        self.advice = advice
        found = ", ".join(self.available) or "no devices"
        why = "; ".join(f"{name}: {reason}" for name, reason in self.absent if reason)
        parts = [f"device {device} is not available: OpenVINO found {found}"]
        if why:
            parts[0] += f" ({why})"
        if self.fallbacks:
            parts.append(f"fallback {', '.join(self.fallbacks)} not available either")
        if advice:
            parts.append(f"check {advice}")
        if not self.fallbacks:
            parts.append('or set model.fallback = ["CPU"] to run on the CPU meanwhile')
        super().__init__("; ".join(parts))


class StateError(OvedgeError):
    """The daemon's state folder (the result spool) cannot be read or written at run time."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}; {fix}")


_OPENVINO_NOISE = ("Exception from ", "Check '")


def openvino_message(exc: BaseException) -> str:
    """The one line of an OpenVINO (or OpenCV, torch) exception that says what went wrong.

    OpenVINO wraps its message in source locations (``Exception from src/...cpp:77:``, ``Check
    'x' failed at ...``); those lines are skipped. Falls back to the first line, then the type name.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    for line in lines:
        if not line.startswith(_OPENVINO_NOISE):
            return line
    return lines[0] if lines else type(exc).__name__
