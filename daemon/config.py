"""The daemon's configuration: ``config.toml`` parsed once into frozen, typed objects.

Every key is declared here with its description; that is the configuration's documentation
(``config.toml`` at the repository root shows the defaults). Unknown keys and wrong types are
refused with the key path. Validators do no I/O: whether the model exists, the device is there,
the camera opens and the broker answers is checked by :mod:`daemon.preflight`.

Relative paths are taken from the folder of the config file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from camera.config import SourceConfig
from ovedge.errors import ConfigError

_TOPIC_LEVEL = re.compile(r"^[^/#+\s]+$")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _topic_level(value: str, what: str) -> str:
    if not _TOPIC_LEVEL.match(value):
        raise ValueError(f"{what} {value!r} must be one MQTT topic level: no '/', '+', '#' or spaces")
    return value


class StationConfig(_Section):
    """Who we are on the line: the first levels of every MQTT topic."""

    name: str = Field("station1", description="station name, one MQTT topic level")
    topic_prefix: str = Field("ovedge", description="first MQTT topic level of every topic")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _topic_level(v, "station.name")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _topic_level(v, "station.topic_prefix")


class PerformanceHint(StrEnum):
    LATENCY = "latency"
    THROUGHPUT = "throughput"
    CUMULATIVE_THROUGHPUT = "cumulative_throughput"


class ModelConfig(_Section):
    """Which IR to run and where."""

    store: Path = Field(Path("ir_models"), description="model store folder (ir_models/<name>/<version>/)")
    name: str = Field("demo", description="model name in the store")
    version: int | Literal["latest"] = Field("latest", description="integer version or \"latest\"")
    device: str = Field("CPU", description="CPU, GPU, GPU.1, NPU, AUTO, AUTO:NPU,GPU,CPU, HETERO:..., MULTI:...")
    fallback: tuple[str, ...] = Field((), description="devices to use when `device` is not present, e.g. [\"CPU\"]")
    hint: PerformanceHint = Field(PerformanceHint.LATENCY, description="OpenVINO performance hint")
    num_requests: int = Field(
        0, ge=0,
        description="infer requests in flight; 0 = the device's optimal number plus one queued per stream "
        "(+1 for the latency hint, x2 for the throughput hints)",
    )
    streams: int | None = Field(None, ge=1, description="inference streams; unset = chosen by the hint")
    threads: int | None = Field(None, ge=1, description="CPU inference threads; unset = all cores")
    inference_precision: Literal["f32", "f16", "bf16"] | None = Field(
        None, description="execution precision hint; unset = device default"
    )
    cache: bool = Field(True, description="cache compiled blobs (faster starts)")
    cache_dir: Path | None = Field(
        None,
        description="compiled-model cache; unset = $CACHE_DIRECTORY/ovedge or ~/.cache/ovedge, never the working dir",
    )
    verify_hashes: bool = Field(True, description="check model.xml/bin against manifest.json before loading")
    trusted_keys: tuple[Path, ...] = Field(
        (), description="Ed25519 public keys (PEM); when set, only models signed by one of them load"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("model.device must not be empty (e.g. \"CPU\")")
        return v


class Rules(_Section):
    """How detections become a verdict. Per-camera rules replace these defaults key by key."""

    ok_labels: tuple[str, ...] | None = Field(
        None, description="labels that mean a good part; unset = the ok labels recorded in the IR"
    )
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="score from which a defect counts")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="per-label min_score, e.g. {scratch = 0.7}"
    )
    min_area: int = Field(0, ge=0, description="smallest defect region that counts, in pixels")
    ignore_labels: tuple[str, ...] = Field((), description="labels reported but never NG")
    rois: tuple[tuple[int, int, int, int], ...] = Field(
        (), description="regions of interest [[x0, y0, x1, y1], ...]: only defects centred inside one count; "
        "empty = the whole frame"
    )
    ignore_mask: Path | None = Field(
        None, description="image the size of the frame: defects centred on a non-zero pixel never count"
    )

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: t for k, t in v.items() if not 0.0 <= t <= 1.0}
        if bad:
            raise ValueError(f"thresholds must be between 0 and 1: {bad}")
        return v

    @field_validator("rois")
    @classmethod
    def _rois(cls, v: tuple[tuple[int, int, int, int], ...]) -> tuple[tuple[int, int, int, int], ...]:
        for r in v:
            if not (r[0] < r[2] and r[1] < r[3]):
                raise ValueError(f"each roi is [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {list(r)}")
        return v


class CameraMode(StrEnum):
    FREE_RUN = "free-run"  # latest frame wins: a slow model drops frames (counted), never lags
    EVERY_FRAME = "every-frame"  # back-pressure: the camera waits, no frame skipped


class CameraConfig(_Section):
    """One camera: where frames come from and how they are judged."""

    id: str = Field(description="camera id, one MQTT topic level")
    source: SourceConfig
    mode: CameraMode = Field(CameraMode.FREE_RUN, description="free-run (latest wins) or every-frame")
    rules: Rules | None = Field(None, description="overrides [rules] for this camera")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _topic_level(v, "cameras.id")


class TlsConfig(_Section):
    ca_file: Path | None = Field(None, description="CA bundle; unset = system CAs")
    cert_file: Path | None = Field(None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(None, description="client key (mutual TLS)")
    insecure: bool = Field(False, description="skip host-name check (never on a real line)")


class MqttConfig(_Section):
    """The broker results go to (MQTT v5)."""

    host: str = Field("127.0.0.1", description="broker host")
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    client_id: str = Field("", description="client id; empty = ovedge-<station>")
    username: str | None = Field(None, description="user name")
    password: SecretStr | None = Field(None, description="password (prefer password_file)")
    password_file: Path | None = Field(None, description="file holding the password")
    tls: TlsConfig | None = Field(None, description="TLS settings; unset = plain TCP")
    qos: Literal[0, 1, 2] = Field(1, description="QoS of result messages")
    keepalive: int = Field(15, ge=5, le=3600, description="seconds; a dead broker is noticed after ~2x")
    session_expiry: int = Field(3600, ge=0, description="seconds the broker keeps our session")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for the broker at start-up")
    require_at_start: bool = Field(
        True, description="refuse to start when the broker does not answer within connect_timeout"
    )
    max_inflight: int = Field(
        100, ge=1, le=65535, description="unacknowledged results at once: the window the spool is sent through"
    )

    @model_validator(mode="after")
    def _one_password(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give mqtt.password or mqtt.password_file, not both")
        return self


class StateConfig(_Section):
    dir: Path | None = Field(
        None,
        description="state folder (the result spool); unset = $STATE_DIRECTORY or ~/.local/state/ovedge",
    )


MIB = 1024 * 1024


class SpoolConfig(_Section):
    """Delivery: the durable result spool in the state folder, replay pacing, retention, quota."""

    quota_bytes: int = Field(
        512 * MIB, ge=1024,
        description="most bytes the spool may hold (payload + 100 B per row); when full, evidence goes first, "
        "then delivered rows; undelivered verdicts are never dropped: the daemon turns degraded instead",
    )
    retention: float = Field(86400.0, ge=0, description="seconds a delivered result is kept for replay")
    retention_bytes: int = Field(64 * MIB, ge=0, description="most bytes of delivered results kept for replay")
    batch_max: int = Field(64, ge=1, le=10000, description="most results stored in one transaction")
    batch_ms: float = Field(5.0, ge=0, le=1000, description="longest wait (ms) for more results to join a batch")
    synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite synchronous: full survives a power cut; normal only a crash of the daemon"
    )
    replay_rate: float = Field(
        500.0, gt=0, description="most results per second sent to the broker (live and backlog); must exceed "
        "the production rate or a backlog never shrinks",
    )
    replay_delay: float = Field(
        2.0, ge=0, description="seconds after a (re)connect before stored results go out, so that subscribers "
        "can reconnect first",
    )
    retry_interval: float = Field(
        30.0, gt=0, description="seconds between new attempts for results the broker answered with 'no matching "
        "subscribers' (0x10) or refused (e.g. 0x87)",
    )
    drain_timeout: float = Field(
        10.0, ge=0, description="seconds a clean stop waits for PUBACKs; what is left waits in the spool"
    )
    message_expiry: int = Field(
        0, ge=0, description="MQTT v5 message expiry of results in seconds; 0 = never expire"
    )


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class DaemonConfig(_Section):
    """The whole of ``config.toml``."""

    station: StationConfig = StationConfig()
    model: ModelConfig = ModelConfig()
    rules: Rules = Rules()
    cameras: Annotated[tuple[CameraConfig, ...], Field(min_length=1)]
    mqtt: MqttConfig = MqttConfig()
    state: StateConfig = StateConfig()
    spool: SpoolConfig = SpoolConfig()
    logging: LoggingConfig = LoggingConfig()
    base_dir: Path = Field(Path(), description="(set by the loader) folder of the config file")

    @model_validator(mode="after")
    def _unique_cameras(self) -> DaemonConfig:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique, repeated: {dupes}")
        return self

    def path(self, p: Path) -> Path:
        """A configured path, made absolute against the config file's folder."""
        p = p.expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def rules_for(self, camera: CameraConfig) -> Rules:
        if camera.rules is None:
            return self.rules
        overrides = camera.rules.model_dump(exclude_unset=True)
        return self.rules.model_copy(update=overrides)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"ovedge-{self.station.name}"

    def state_dir(self) -> Path:
        if self.state.dir is not None:
            return self.path(self.state.dir)
        env = os.environ.get("STATE_DIRECTORY")
        if env:
            return Path(env.split(":")[0])
        return Path.home() / ".local" / "state" / "ovedge"

    def cache_dir(self) -> Path:
        if self.model.cache_dir is not None:
            return self.path(self.model.cache_dir)
        env = os.environ.get("CACHE_DIRECTORY")
        if env:
            return Path(env.split(":")[0]) / "ovedge"
        xdg = os.environ.get("XDG_CACHE_HOME")
        return (Path(xdg) if xdg else Path.home() / ".cache") / "ovedge"


def load_config(path: Path, overrides: Sequence[str] = ()) -> DaemonConfig:
    """Read and validate ``path``; every problem becomes one :class:`ConfigError` line.

    ``overrides`` are ``key.path=value`` strings (value in TOML syntax, bare words taken as
    strings), e.g. ``mqtt.port=18830`` or ``cameras[0].source.fps=0``, applied before validation.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found; pass --config PATH") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for item in overrides:
        apply_override(raw, item)
    if "base_dir" in raw:
        raise ConfigError(f"{path}: base_dir is set by the loader, remove it from the file")
    raw["base_dir"] = path.resolve().parent
    try:
        return DaemonConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc


def apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: write it as key.path=value, e.g. mqtt.port=1884")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string
    parts = [p for p in re.split(r"\.|\[(\d+)\]", key.strip()) if p]
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        index: int | str = int(part) if part.isdigit() else part
        try:
            if last:
                node[index] = value
            elif isinstance(index, str):
                node = node.setdefault(index, {})
            else:
                node = node[index]
        except (IndexError, TypeError, KeyError) as exc:
            raise ConfigError(f"--set {item!r}: {key} does not exist in the config file") from exc


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the key path as written in TOML."""
    problems = []
    for err in exc.errors():
        loc = _key_path(err["loc"])
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {loc}")
        elif err["type"] == "missing":
            problems.append(f"missing key {loc}")
        else:
            problems.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(problems)


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"synthetic", "video", "folder", "stream", "usb"} and out.endswith("source"):
            continue  # the discriminated union's tag, not a key the user wrote
        else:
            out += ("." if out else "") + part
    return out
