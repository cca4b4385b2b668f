"""An MQTT v5 requester for ovedged's commands: publish on ``cmd/<verb>`` with a response topic and
correlation data, wait for the answer. What a line's MES or an operator tool does.

    python -m tools.request --port 1883 --station station1 status
    python -m tools.request --station station1 replay '{"since": 1200}'
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import uuid
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Requester:
    """``with Requester(port, station=...) as r: r.ask("status")`` -> the answer as a dict."""

    def __init__(self, port: int, *, station: str = "station1", prefix: str = "ovedge", host: str = "127.0.0.1",
                 client_id: str = "", username: str | None = None, password: str | None = None) -> None:
        self.client_id = client_id or f"requester-{uuid.uuid4().hex[:8]}"
        self.cmd = f"{prefix}/{station}/cmd"
        self.reply_topic = f"{prefix}/{station}/reply/{self.client_id}"
        self.answers: queue.Queue[tuple[bytes | None, dict[str, Any]]] = queue.Queue()
        self.pubacks: queue.Queue[tuple[int, int]] = queue.Queue()  # (mid, reason code)
        self._subscribed = threading.Event()
        self._host, self._port = host, port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(self.reply_topic + "/#", qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.pubacks.put((mid, int(reason.value)))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        correlation = getattr(msg.properties, "CorrelationData", None)
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"raw": msg.payload.decode(errors="replace")}
        self.answers.put((correlation, body))

    def __enter__(self) -> Self:
        self.client.connect(self._host, self._port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the reply subscription was not acknowledged within 10 s")
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, verb: str, body: dict[str, Any] | bytes | None = None, *, respond: bool = True) -> tuple[bytes, int]:
        """Publish a request; returns (correlation data, mid)."""
        correlation = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if respond:
            props.ResponseTopic = self.reply_topic
            props.CorrelationData = correlation
        props.UserProperty = [("client_id", self.client_id)]
        payload = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        info = self.client.publish(f"{self.cmd}/{verb}", payload, qos=1, properties=props)
        return correlation, info.mid

    def ask(self, verb: str, body: dict[str, Any] | bytes | None = None, *, timeout: float = 30.0) -> dict[str, Any]:
        """Send and wait for the answer carrying this request's correlation data."""
        correlation, _ = self.send(verb, body)
        while True:
            got, answer = self.answers.get(timeout=timeout)
            if got == correlation:
                return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.request", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--station", default="station1")
    parser.add_argument("--prefix", default="ovedge")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("verb")
    parser.add_argument("body", nargs="?", default="{}")
    args = parser.parse_args(argv)
    with Requester(args.port, station=args.station, prefix=args.prefix, host=args.host) as r:
        try:
            print(json.dumps(r.ask(args.verb, json.loads(args.body), timeout=args.timeout), indent=2))
        except queue.Empty:
            print(f"no answer within {args.timeout:g} s", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
