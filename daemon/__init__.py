"""``ovedged``: the inspection daemon (camera frames -> OpenVINO -> verdict -> MQTT).

The package's face; each name lives in one small module:

* configuration: :class:`DaemonConfig`, :func:`load_config` (``daemon.config``);
* before serving: :class:`ModelLoader`, :func:`run_preflight`, :func:`self_test` (``daemon.preflight``),
  the device choice :func:`choose_device` / :class:`DeviceChoice` (``daemon.devices``);
* serving: :class:`Daemon` (``daemon.app``), :class:`Engine`, :class:`ActiveModel`,
  :class:`LoadedModel`, :class:`InferenceDone` (``daemon.engine``), :class:`Decider`
  (``daemon.decision``), :class:`ModelSwapper` (``daemon.swap``), :class:`Publisher` and
  :func:`probe_broker` (``daemon.publisher``), :class:`ResultRecord` and :class:`Verdict`
  (``daemon.result``);
* the command line: :func:`main` (``daemon.cli``).

The names are imported on first use, from the explicit table below, so that ``ovedged --help`` and
``check-config --syntax-only`` do not load OpenVINO, OpenCV and paho; type checkers see the
imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.app import Daemon
    from daemon.cli import main
    from daemon.config import DaemonConfig, load_config
    from daemon.decision import Decider
    from daemon.devices import DeviceChoice, choose_device
    from daemon.engine import ActiveModel, Engine, InferenceDone, LoadedModel
    from daemon.preflight import ModelLoader, run_preflight, self_test
    from daemon.publisher import Publisher, probe_broker
    from daemon.result import ResultRecord, Verdict
    from daemon.swap import ModelSwapper, SwapOutcome

_HOMES = {
    "ActiveModel": "daemon.engine",
    "Daemon": "daemon.app",
    "DaemonConfig": "daemon.config",
    "Decider": "daemon.decision",
    "DeviceChoice": "daemon.devices",
    "Engine": "daemon.engine",
    "InferenceDone": "daemon.engine",
    "LoadedModel": "daemon.engine",
    "ModelLoader": "daemon.preflight",
    "ModelSwapper": "daemon.swap",
    "Publisher": "daemon.publisher",
    "ResultRecord": "daemon.result",
    "SwapOutcome": "daemon.swap",
    "Verdict": "daemon.result",
    "choose_device": "daemon.devices",
    "load_config": "daemon.config",
    "main": "daemon.cli",
    "probe_broker": "daemon.publisher",
    "run_preflight": "daemon.preflight",
    "self_test": "daemon.preflight",
}

__all__ = [
    "ActiveModel",
    "Daemon",
    "DaemonConfig",
    "Decider",
    "DeviceChoice",
    "Engine",
    "InferenceDone",
    "LoadedModel",
    "ModelLoader",
    "ModelSwapper",
    "Publisher",
    "ResultRecord",
    "SwapOutcome",
    "Verdict",
    "choose_device",
    "load_config",
    "main",
    "probe_broker",
    "run_preflight",
    "self_test",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'daemon' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
