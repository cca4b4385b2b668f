"""The command inbox without a daemon: off unless configured, the bounded queue's drop policy."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from daemon.commands import Commands
from daemon.config import load_config
from daemon.publisher import Publisher
from tests.configs import write_config
from tools.mosquitto import Mosquitto
from tools.request import Requester


def test_commands_are_off_unless_configured(broker: Mosquitto, tmp_path: Path) -> None:
    """Without [commands] enabled the daemon subscribes to nothing: a command gets PUBACK 0x10 (no matching
    subscribers) from the broker, so nobody acts on it."""
    cfg = load_config(write_config(tmp_path, station={"name": "station1"}, mqtt={"port": broker.port}))
    assert cfg.commands.enabled is False
    with Publisher(cfg, dict) as pub, Requester(broker.port, station="station1") as req:
        assert pub.connected
        time.sleep(0.5)  # let a (wrong) subscription settle if there were one; not a speed requirement
        _, mid = req.send("status")
        got_mid, code = req.pubacks.get(timeout=10)
    assert got_mid == mid and code == 0x10


def _message(verb: str) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=f"ovedge/station1/cmd/{verb}".encode())
    msg.payload = b"{}"
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "ovedge/station1/reply/x"
    props.CorrelationData = b"\x01\x02"
    msg.properties = props
    return msg


def test_a_full_command_queue_drops_new_commands_and_counts_them(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Drop policy: with [commands] queue = 2 and the command thread not yet running, the third and fourth
    commands are dropped and counted; the thread says so once in the log when it runs."""
    cfg = load_config(write_config(tmp_path, commands={"enabled": True, "queue": 2}))
    commands = Commands(cfg)
    for verb in ("status", "status", "replay", "status"):
        commands.offer(_message(verb))  # what paho's thread calls: never blocks
    assert commands.dropped == 2
    caplog.set_level(logging.INFO)
    with commands:
        deadline = time.monotonic() + 10  # a hang guard
        while "dropped unanswered" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if "dropped unanswered" in r.getMessage()]
    assert lines == ["2 MQTT commands dropped unanswered: the command queue ([commands] queue = 2) was full"]
