"""A small MQTT v5 subscriber that collects messages: what a line's MES client would do."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Subscriber:
    def __init__(self, port: int, topics: list[str], *, host: str = "127.0.0.1", client_id: str = "",
                 session_expiry: int = 0, on_message: Callable[[str, bytes, bool], None] | None = None) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.properties: queue.Queue[tuple[str, Any]] = queue.Queue()  # (topic, MQTT v5 properties)
        self._topics = topics
        self._subscribed = threading.Event()
        self._callback = on_message
        self._host, self._port = host, port
        self._session_expiry = session_expiry
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = (msg.topic, bytes(msg.payload), bool(msg.retain))
        self.messages.put(item)
        self.properties.put((msg.topic, msg.properties))
        if self._callback is not None:
            with contextlib.suppress(Exception):  # never raise into paho
                self._callback(*item)

    def __enter__(self) -> Self:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho untyped
        props.SessionExpiryInterval = self._session_expiry
        self.client.connect(self._host, self._port, keepalive=10,
                            clean_start=self._session_expiry == 0, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged within 10 s")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def drain(self) -> list[tuple[str, bytes, bool]]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out
