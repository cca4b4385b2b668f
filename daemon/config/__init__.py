"""The daemon's configuration: ``config.toml`` parsed once into frozen, typed objects.

One module per section (:mod:`~daemon.config.station`, :mod:`~daemon.config.model`,
:mod:`~daemon.config.rules`, :mod:`~daemon.config.cameras`, :mod:`~daemon.config.mqtt`,
:mod:`~daemon.config.state`, :mod:`~daemon.config.spool`, :mod:`~daemon.config.logs`,
:mod:`~daemon.config.http`, :mod:`~daemon.config.commands`, :mod:`~daemon.config.evidence`; the root object in
:mod:`~daemon.config.root`). Every key is declared there with its description: that is the
configuration's documentation (``config.toml`` at the repository root shows the defaults).
Camera sources are declared in :mod:`camera.config`.

:mod:`~daemon.config.loader` reads the TOML, applies ``--set`` overrides and turns validation
errors into one line per problem naming the key path. Decided at load, once: relative paths
(against the config file's folder, ``~`` expanded; :mod:`ovedge.paths`), the state and cache
folders (:mod:`~daemon.config.dirs`), device strings (:mod:`~daemon.config.device`), enums.

Validators do no I/O: whether the model exists, the device is present, the camera opens and
the broker answers is checked by :mod:`daemon.preflight` when the daemon starts (and by
``ovedged check-config``).
"""

from daemon.config.cameras import CameraConfig, CameraMode, Crop
from daemon.config.commands import VERBS, CommandsConfig, Verb
from daemon.config.device import DeviceSpec, DeviceString, InvalidDeviceError, parse_device
from daemon.config.evidence import EvidenceConfig
from daemon.config.http import HttpConfig
from daemon.config.loader import (
    ConfigFileError,
    ConfigInvalidError,
    OverrideError,
    apply_override,
    load_config,
    validation_problems,
)
from daemon.config.logs import LoggingConfig
from daemon.config.model import InferencePrecision, ModelConfig, PerformanceHint
from daemon.config.mqtt import MqttConfig, TlsConfig
from daemon.config.root import DaemonConfig
from daemon.config.rules import Rules
from daemon.config.spool import SpoolConfig
from daemon.config.state import StateConfig
from daemon.config.station import StationConfig

__all__ = [
    "VERBS",
    "CameraConfig",
    "CameraMode",
    "CommandsConfig",
    "ConfigFileError",
    "ConfigInvalidError",
    "Crop",
    "DaemonConfig",
    "DeviceSpec",
    "DeviceString",
    "EvidenceConfig",
    "HttpConfig",
    "InferencePrecision",
    "InvalidDeviceError",
    "LoggingConfig",
    "ModelConfig",
    "MqttConfig",
    "OverrideError",
    "PerformanceHint",
    "Rules",
    "SpoolConfig",
    "StateConfig",
    "StationConfig",
    "TlsConfig",
    "Verb",
    "apply_override",
    "load_config",
    "parse_device",
    "validation_problems",
]
