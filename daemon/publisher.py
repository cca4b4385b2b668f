"""MQTT v5 publisher: results at QoS 1, a retained status with a Last Will, PUBACKs checked.

Results arrive in batches from the decide thread (:meth:`Publisher.publish_results`: one call and
one lock round trip per batch). paho's network thread only hands off: ``on_publish`` and
``on_connect`` put small tuples into a queue that our ``mqtt-acks`` thread drains, so no callback
blocks or raises; under load it drains in batches (it pauses 20 ms after a batch of several), so a
busy pipeline does not cost a thread wake-up per PUBACK. A PUBACK whose reason code is a failure
(0x87 not authorised, 0x10 no matching subscribers, ...) is not a delivery: it is counted and
logged with the result's sequence number, except 0x10: with nobody subscribed (normal while a
line is commissioned) every result would log a line, so the first one is logged as a WARNING and
the rest are counted and summarised at most once per ``no_subscriber_log_every`` seconds, only
when the count moved.

The durable spool will sit in front of this class; until then a result that is still
unacknowledged at shutdown is reported by count and sequence range, never dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from daemon.config import DaemonConfig
from daemon.result import STATUS_SCHEMA, Publishable, utc_iso
from ovedge.errors import PublishError

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10
ACK_POLL = 0.02  # s the mqtt-acks thread pauses after a batch of several events (load: let them gather)
NO_SUBSCRIBER_LOG_EVERY = 60.0
"""Seconds between two summaries of PUBACK 0x10 (no matching subscribers)."""


@dataclass
class PublishCounters:
    published: int = 0  # handed to the client
    delivered: int = 0  # PUBACK with a success code
    rejected: int = 0  # PUBACK with a failure code (not delivered)
    no_subscribers: int = 0  # PUBACK 0x10: accepted by nobody
    reconnects: int = 0  # successful connections after the first


class Publisher:
    """Context manager: connects on enter; on exit says offline, waits for PUBACKs, disconnects."""

    def __init__(
        self,
        cfg: DaemonConfig,
        status: Callable[[], dict[str, Any]],
        *,
        flush_timeout: float = 10.0,
        no_subscriber_log_every: float = NO_SUBSCRIBER_LOG_EVERY,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._mqtt = cfg.mqtt
        self._status = status
        self._after_connect = on_connected or (lambda: None)  # after each (re)connect's status
        self._flush_timeout = flush_timeout
        self._prefix = prefix = f"{cfg.station.topic_prefix}/{cfg.station.name}"
        self.status_topic = f"{prefix}/status"
        self._result_topics = {cam.id: f"{prefix}/{cam.id}/result" for cam in cfg.cameras}
        self.counters = PublishCounters()
        self._no_sub_every = no_subscriber_log_every
        self._no_sub_logged = 0  # counters.no_subscribers at the last line logged about it
        self._no_sub_next = 0.0  # monotonic time of the next summary
        self._events: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()  # kind, mid, ReasonCode
        self._lock = threading.Lock()  # held around publish() so a PUBACK cannot beat its mid
        self._pending: dict[int, int] = {}  # mid -> seq
        self._connected = threading.Event()
        self._answered = threading.Event()  # first CONNACK, success or not
        self._connect_error: str | None = None
        self._ever_connected = False
        self._stop = threading.Event()
        self._wake = threading.Event()  # CONNACK, disconnect or stop: handle at once, not at the next poll
        self._closing = False  # we asked for the disconnect: not an outage
        self._acks = threading.Thread(target=self._ack_loop, name="mqtt-acks", daemon=True)
        self.beats = 0  # turns of the mqtt-acks loop: the watchdog's sign that this publisher lives
        self._client = self._make_client()

    # -- set-up ---------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        c = self._mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._cfg.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_inflight_messages_set(c.max_inflight)
        client.max_queued_messages_set(0)  # unbounded in memory until the spool lands: never drop
        configure_security(client, self._cfg)
        client.will_set(self.status_topic, self._status_payload("offline", "connection lost"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _status_payload(self, state: str, reason: str | None = None) -> bytes:
        return json.dumps(self.status_document(state, reason)).encode()

    def status_document(self, state: str = "online", reason: str | None = None) -> dict[str, Any]:
        """The retained status message's body, as it would be published now (also ``GET /status``)."""
        body: dict[str, Any] = {
            "schema": STATUS_SCHEMA,
            "state": state,
            "station": self._cfg.station.name,
            "time": utc_iso(time.time()),
        }
        if reason:
            body["reason"] = reason
        if state == "online":
            body.update(self._status())
        return body

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        c = self._mqtt
        where = f"MQTT broker {c.host}:{c.port}"
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho untyped
        props.SessionExpiryInterval = c.session_expiry
        self._acks.start()
        try:
            if c.require_at_start:
                self._client.connect(c.host, c.port, keepalive=c.keepalive, clean_start=False, properties=props)
            else:
                self._client.connect_async(c.host, c.port, keepalive=c.keepalive, clean_start=False, properties=props)
        except (OSError, socket.gaierror) as exc:
            self._stop.set()
            self._wake.set()
            raise PublishError(
                f"{where} is unreachable ({exc.strerror or exc}); start the broker or fix [mqtt] host/port "
                "in the config (set mqtt.require_at_start = false to start without it)"
            ) from exc
        self._client.loop_start()
        if c.require_at_start and not (self._answered.wait(c.connect_timeout) and self._connected.is_set()):
            self._shutdown_client()
            reason = self._connect_error or f"no CONNACK within {c.connect_timeout:g} s"
            raise PublishError(f"{where} refused the connection: {reason}; check [mqtt] credentials and TLS")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        info = self._client.publish(
            self.status_topic, self._status_payload("offline", "shutdown"), qos=1, retain=True
        )
        deadline = time.monotonic() + self._flush_timeout
        while time.monotonic() < deadline and (self.outstanding() or not info.is_published()):
            if not self._connected.is_set() and time.monotonic() > deadline - self._flush_timeout / 2:
                break
            time.sleep(0.02)
        left = self.outstanding_seqs()
        if left:
            log.error(
                "%d results not acknowledged by the broker at shutdown (seq %d..%d)", len(left), min(left), max(left)
            )
        self._shutdown_client()

    def _shutdown_client(self) -> None:
        self._closing = True
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._stop.set()
            self._wake.set()
            self._acks.join(timeout=2)
            self._summarise_no_subscribers(final=True)

    # -- publishing -----------------------------------------------------------------------------

    def publish_result(self, record: Publishable) -> None:
        self.publish_results([record])

    def publish_results(self, records: Sequence[Publishable]) -> None:
        """Queue a batch of results for the broker (the decide thread's one call per batch).

        Serialised before the lock; one lock round trip for the whole batch.
        """
        qos = self._mqtt.qos
        topics = self._result_topics
        payloads = [(topics[r.camera], r.to_json(), r.seq) for r in records]
        failed: list[tuple[int, int]] = []
        publish = self._client.publish
        with self._lock:
            for topic, payload, seq in payloads:
                info = publish(topic, payload, qos=qos)
                if qos > 0:
                    self._pending[info.mid] = seq
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    failed.append((seq, info.rc))
            self.counters.published += len(payloads)
        for seq, rc in failed:
            log.error("result seq %d could not be queued for MQTT: %s", seq, mqtt.error_string(rc))

    def publish_status(self) -> None:
        self._client.publish(self.status_topic, self._status_payload("online"), qos=1, retain=True)

    def publish_camera_status(self, camera_id: str, body: dict[str, Any]) -> None:
        """``<prefix>/<station>/<camera>/status``, retained, QoS 1 (any thread)."""
        self._client.publish(f"{self._prefix}/{camera_id}/status", json.dumps(body).encode(), qos=1, retain=True)

    def publish_stats(self, body: dict[str, Any]) -> None:
        """``<prefix>/<station>/stats``, QoS 0, not retained: a periodic snapshot (any thread)."""
        self._client.publish(f"{self._prefix}/stats", json.dumps(body).encode(), qos=0, retain=False)

    def outstanding(self) -> int:
        with self._lock:
            return len(self._pending)

    def outstanding_seqs(self) -> list[int]:
        with self._lock:
            return sorted(self._pending.values())

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- paho's thread: hand off only -----------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with contextlib.suppress(Exception):  # a paho callback must never raise
            self._events.put(("connect", 0, reason))
            self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with contextlib.suppress(Exception):  # a paho callback must never raise
            self._events.put(("disconnect", 0, reason))
            self._wake.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with contextlib.suppress(Exception):  # a paho callback must never raise
            self._events.put(("puback", mid, reason))  # read in our thread

    # -- our thread -----------------------------------------------------------------------------

    def _ack_loop(self) -> None:
        # Acknowledgements are bookkeeping (counters, logs, what is outstanding). A lone event is
        # handled when it comes (a slow camera costs one wake-up per result, as before); when
        # several were waiting, the pipeline is busy, so the thread then pauses ACK_POLL s to let
        # the next ones gather: under load it wakes per batch, not per result. CONNACK,
        # disconnect and stop cut the pause short. paho's thread has stopped before _stop is set.
        while True:
            self.beats += 1
            self._summarise_no_subscribers()
            try:
                first = self._events.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
            for kind, mid, reason in batch:
                try:
                    self._handle(kind, mid, int(reason.value), str(reason))
                except Exception:
                    log.exception("bug while handling MQTT %s", kind)
            if len(batch) > 1 and not self._stop.is_set():
                self._wake.wait(ACK_POLL)
                self._wake.clear()

    def _on_connected(self) -> None:
        log.info("connected to MQTT broker %s:%d", self._mqtt.host, self._mqtt.port)
        if self._ever_connected:
            self.counters.reconnects += 1
        self._ever_connected = True
        self._connect_error = None
        self._connected.set()
        try:
            self.publish_status()  # queued before start-up goes on: the first status is retained
            self._after_connect()  # the cameras' retained statuses
        finally:
            self._answered.set()

    def _handle(self, kind: str, mid: int, code: int, text: str) -> None:
        if kind == "connect":
            if code < 0x80:
                self._on_connected()
            else:
                self._connect_error = text
                self._answered.set()
                log.error("MQTT broker refused the connection: %s", text)
        elif kind == "disconnect":
            if self._connected.is_set() and not self._closing:
                log.warning("MQTT connection lost (%s); reconnecting", text)
            self._connected.clear()
        elif kind == "puback":
            with self._lock:
                seq = self._pending.pop(mid, None)
            if seq is None:
                return  # status messages are not tracked
            if code == NO_MATCHING_SUBSCRIBERS:
                self.counters.no_subscribers += 1
                if self.counters.no_subscribers == 1:
                    self._no_sub_logged = 1
                    self._no_sub_next = time.monotonic() + self._no_sub_every
                    log.warning(
                        "result seq %d: the broker has no subscriber for it (PUBACK 0x10); further ones are "
                        "counted and summarised every %g s",
                        seq,
                        self._no_sub_every,
                    )
            elif code >= 0x80:
                self.counters.rejected += 1
                log.error("result seq %d rejected by the broker: %s (0x%02x)", seq, text, code)
            else:
                self.counters.delivered += 1

    def _summarise_no_subscribers(self, *, final: bool = False) -> None:
        """One INFO line for the PUBACK 0x10 since the last line, when due (or ``final``) and any came."""
        total = self.counters.no_subscribers
        if total == self._no_sub_logged or (not final and time.monotonic() < self._no_sub_next):
            return
        log.info(
            "%d more results had no subscriber (PUBACK 0x10) since the last line; %d since start",
            total - self._no_sub_logged,
            total,
        )
        self._no_sub_logged = total
        self._no_sub_next = time.monotonic() + self._no_sub_every


def probe_broker(cfg: DaemonConfig) -> None:
    """Connect once as ``<client_id>-check`` and leave: no status, no Will, no session.

    Used by ``ovedged check-config`` so that checking never disturbs a running daemon (the same
    client id would take its connection over).
    """
    c = cfg.mqtt
    where = f"MQTT broker {c.host}:{c.port}"
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        outcome.append("" if int(reason.value) < 0x80 else str(reason))
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cfg.client_id}-check",
                         protocol=MQTTProtocolVersion.MQTTv5)
    configure_security(client, cfg)
    client.on_connect = on_connect
    try:
        client.connect(c.host, c.port, keepalive=c.keepalive)
    except OSError as exc:
        raise PublishError(f"{where} is unreachable ({exc.strerror or exc}); start the broker or fix "
                           "[mqtt] host/port") from exc
    client.loop_start()
    try:
        if not answered.wait(c.connect_timeout):
            raise PublishError(f"{where} did not answer within {c.connect_timeout:g} s")
        if outcome[0]:
            raise PublishError(f"{where} refused the connection: {outcome[0]}; check [mqtt] credentials")
    finally:
        client.disconnect()
        client.loop_stop()


def configure_security(client: mqtt.Client, cfg: DaemonConfig) -> None:
    """Credentials and TLS from ``[mqtt]`` (the password file is read here, at start-up)."""
    c = cfg.mqtt
    if c.username is not None:
        password: str | None = None
        if c.password is not None:
            password = c.password.get_secret_value()
        elif c.password_file is not None:
            path = c.password_file
            try:
                password = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PublishError(f"mqtt.password_file {path} cannot be read: {exc.strerror}") from exc
        client.username_pw_set(c.username, password)
    if c.tls is not None:
        t = c.tls
        client.tls_set(
            ca_certs=str(t.ca_file) if t.ca_file else None,
            certfile=str(t.cert_file) if t.cert_file else None,
            keyfile=str(t.key_file) if t.key_file else None,
        )
        client.tls_insecure_set(t.insecure)
