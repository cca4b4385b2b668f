"""``ovedged``: the inspection daemon (camera frames -> OpenVINO -> verdict -> MQTT).

The package's face; each name lives in one small module:

* configuration: :class:`DaemonConfig`, :func:`load_config` (``daemon.config``);
* before serving: :class:`ModelLoader`, :func:`run_preflight`, :func:`self_test` (``daemon.preflight``),
  the device choice :func:`choose_device` / :class:`DeviceChoice` (``daemon.devices``);
* serving: :class:`Daemon` (``daemon.app``), :class:`Engine`, :class:`ActiveModel`,
  :class:`LoadedModel`, :class:`InferenceDone` (``daemon.engine``), :class:`Decider`
  (``daemon.decision``), :class:`ModelSwapper` (``daemon.swap``), :class:`Publisher` and
  :func:`probe_broker` (``daemon.publisher``), :class:`ResultRecord` (the payload's schema),
  :class:`Result` (what the daemon builds per frame) and :class:`Verdict` (``daemon.result``);
* the HTTP API: :func:`create_app`, :class:`HttpServer` (``daemon.http``); CVAT auto-annotation:
  :class:`CvatDetector` (``daemon.cvat``, also what ``ovedge-nuclio``'s function runs);
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
    from daemon.cvat import CvatDetector
    from daemon.decision import Decider
    from daemon.devices import DeviceChoice, choose_device
    from daemon.engine import ActiveModel, Engine, InferenceDone, LoadedModel
    from daemon.http import HttpServer, create_app
    from daemon.preflight import ModelLoader, run_preflight, self_test
    from daemon.publisher import Publisher, probe_broker
    from daemon.result import Result, ResultRecord, Verdict
    from daemon.swap import ModelSwapper, SwapOutcome

_HOMES = {
    "ActiveModel": "daemon.engine",
    "CvatDetector": "daemon.cvat",
    "Daemon": "daemon.app",
    "DaemonConfig": "daemon.config",
    "Decider": "daemon.decision",
    "DeviceChoice": "daemon.devices",
    "Engine": "daemon.engine",
    "HttpServer": "daemon.http",
    "InferenceDone": "daemon.engine",
    "LoadedModel": "daemon.engine",
    "ModelLoader": "daemon.preflight",
    "ModelSwapper": "daemon.swap",
    "Publisher": "daemon.publisher",
    "Result": "daemon.result",
    "ResultRecord": "daemon.result",
    "SwapOutcome": "daemon.swap",
    "Verdict": "daemon.result",
    "choose_device": "daemon.devices",
    "create_app": "daemon.http",
    "load_config": "daemon.config",
    "main": "daemon.cli",
    "probe_broker": "daemon.publisher",
    "run_preflight": "daemon.preflight",
    "self_test": "daemon.preflight",
}

__all__ = [
    "ActiveModel",
    "CvatDetector",
    "Daemon",
    "DaemonConfig",
    "Decider",
    "DeviceChoice",
    "Engine",
    "HttpServer",
    "InferenceDone",
    "LoadedModel",
    "ModelLoader",
    "ModelSwapper",
    "Publisher",
    "Result",
    "ResultRecord",
    "SwapOutcome",
    "Verdict",
    "choose_device",
    "create_app",
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
