"""MQTT v5 publisher: results from the spool at QoS 1, a retained status with a Last Will, alarms.

Results go out from the durable spool (:mod:`daemon.spool`): the ``mqtt-send`` thread reads
undelivered rows in sequence order and publishes them with at most ``mqtt.max_inflight``
unacknowledged at once, starting ``spool.replay_delay`` seconds after each (re)connect. Pacing:
every row stored while connected brings one send credit (live results are never held back), and
``spool.replay_rate`` credits per second come on top, so a backlog goes out at the production
rate plus at most ``replay_rate`` per second. A row is marked delivered only when its
PUBACK carries a success code; ``0x10`` (no matching subscribers) and failures (``0x87`` not
authorised raises an alarm) keep it for another attempt after ``spool.retry_interval``, a
reconnect or a restart. At-least-once: subscribers drop duplicates on ``(station, seq)``.

paho's network thread only hands off: ``on_publish``, ``on_connect`` and ``on_disconnect`` put
small tuples into a queue that our ``mqtt-acks`` thread drains; it records PUBACK outcomes in the
spool, one transaction per batch of acknowledgements, before the window frees their slots. Under
load it drains in batches (it pauses 20 ms after a batch of several), so a busy pipeline does not
cost a thread wake-up per PUBACK. PUBACK 0x10 is logged once, then counted and summarised at most
once per ``no_subscriber_log_every`` seconds.

:meth:`Publisher.publish_result` publishes a record directly (no spool): the path for ``ERROR``
results while the spool cannot store anything, tracked in memory and counted at shutdown.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from daemon.config import DaemonConfig
from daemon.result import STATUS_SCHEMA, Publishable, utc_iso
from daemon.security import configure_security
from daemon.spool import Row, RowState, Spool
from ovedge.errors import BrokerRefusedError, BrokerSilentError, BrokerUnreachableError

log = logging.getLogger(__name__)

NO_MATCHING_SUBSCRIBERS = 0x10
ALARM_SCHEMA = "ovedge.alarm/1"
CONTENT_TYPE = "application/json"
STATUS_EVERY = 10.0  # seconds between refreshes of the retained status (spool depth, rate)
PRUNE_EVERY = 10.0  # seconds between retention passes over delivered rows
SEND_CHUNK = 256  # most rows read from the spool at once
RATE_WINDOW = 10.0  # seconds over which the delivery rate is measured
ACK_POLL = 0.02  # s the mqtt-acks thread pauses after a batch of several events (load: let them gather)
DIRECT_HOLD = 1000  # most unspooled results held in memory for the broker; more are counted as lost
NO_SUBSCRIBER_LOG_EVERY = 60.0
"""Seconds between two summaries of PUBACK 0x10 (no matching subscribers)."""


class CommandInbox(Protocol):
    """Where paho's thread leaves command messages (:class:`daemon.commands.Commands`): never blocks."""

    def offer(self, msg: mqtt.MQTTMessage) -> None: ...


@dataclass
class PublishCounters:
    published: int = 0  # handed to the client (spool rows and direct results)
    delivered: int = 0  # PUBACK with a success code
    rejected: int = 0  # PUBACK with a failure code (not delivered)
    no_subscribers: int = 0  # PUBACK 0x10: accepted by nobody
    lost: int = 0  # unspooled results that could not even be held for the broker (DIRECT_HOLD)
    reconnects: int = 0  # successful connections after the first


class Alarms:
    """Active alarms by kind (thread-safe); each change goes to the listener (the publisher)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, str] = {}
        self.listener: Callable[[str, bool, str], None] | None = None

    def raise_(self, kind: str, reason: str) -> bool:
        """Raise (or update) an alarm; True when that changed anything. The caller logs."""
        with self._lock:
            if self._active.get(kind) == reason:
                return False
            self._active[kind] = reason
        if self.listener is not None:
            self.listener(kind, True, reason)
        return True

    def clear(self, kind: str) -> bool:
        with self._lock:
            reason = self._active.pop(kind, None)
        if reason is None:
            return False
        if self.listener is not None:
            self.listener(kind, False, reason)
        return True

    def active(self) -> dict[str, str]:
        with self._lock:
            return dict(self._active)

    def attach(self, listener: Callable[[str, bool, str], None]) -> None:
        """Send changes to ``listener`` from now on, starting with the alarms already raised."""
        self.listener = listener
        for kind, reason in self.active().items():
            listener(kind, True, reason)


class RateMeter:
    """Events per second over the last ``window`` seconds, counted in one-second buckets.

    Thread-safe: the mqtt-acks thread adds while any thread building a status (a camera's, the
    HTTP server's, the periodic one) reads; memory is one bucket per second of the window.
    """

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first

    def add(self, n: int) -> None:
        second = int(time.monotonic())
        with self._lock:
            if self._buckets and self._buckets[-1][0] == second:
                self._buckets[-1][1] += n
            else:
                self._buckets.append([second, n])

    def rate(self) -> float:
        now = time.monotonic()
        first = int(now) - int(self._window) + 1  # the window's whole seconds and the current one
        with self._lock:
            while self._buckets and self._buckets[0][0] < first:
                self._buckets.popleft()
            return sum(n for _, n in self._buckets) / max(now - first, 1.0)


class Publisher:
    """Context manager: connects on enter; on exit drains (bounded), says ``stopped``, disconnects."""

    def __init__(self, cfg: DaemonConfig, status: Callable[[], dict[str, Any]], *, spool: Spool | None = None,
                 alarms: Alarms | None = None, health: tuple[str, str | None] = ("online", None),
                 flush_timeout: float | None = None,
                 no_subscriber_log_every: float = NO_SUBSCRIBER_LOG_EVERY,
                 on_connected: Callable[[], None] | None = None,
                 commands: CommandInbox | None = None) -> None:
        self._no_sub_every = no_subscriber_log_every
        self._no_sub_logged = 0  # counters.no_subscribers at the last line logged about it
        self._no_sub_next = 0.0  # monotonic time of the next summary
        self._ever_connected = False
        self._cfg = cfg
        self._mqtt = cfg.mqtt
        self._status = status
        self._after_connect = on_connected or (lambda: None)  # after each (re)connect's status
        self._spool = spool
        self._flush_timeout = cfg.spool.drain_timeout if flush_timeout is None else flush_timeout
        self._prefix = prefix = f"{cfg.station.topic_prefix}/{cfg.station.name}"
        self.status_topic = f"{prefix}/status"
        self.alarm_topic = f"{prefix}/alarm"
        self._result_topics = {cam.id: f"{prefix}/{cam.id}/result" for cam in cfg.cameras}
        self.command_topic = f"{prefix}/cmd/+"
        self._commands = commands  # None = commands off: nothing subscribed
        self.counters = PublishCounters()
        self.alarms = alarms if alarms is not None else Alarms()
        self._health = health  # ("online" | "degraded", reason): what the retained status says
        self._events: queue.SimpleQueue[tuple[str, int, int, str]] = queue.SimpleQueue()
        self._lock = threading.Lock()  # held around publish() so a PUBACK cannot beat its mid
        self._pending: dict[int, int] = {}  # mid -> seq of results published directly
        self._inflight: dict[int, tuple[int, str]] = {}  # mid -> (seq, camera) of spool rows
        self._props: dict[tuple[str, str, int], Properties] = {}
        self._live_credits = 0  # rows stored while connected, not yet matched by a send (pacing)
        self._rate = RateMeter()
        self._connected = threading.Event()
        self._answered = threading.Event()  # first CONNACK, success or not
        self._connect_error: str | None = None
        self._stop = threading.Event()
        self._stop_send = threading.Event()
        self._wake = threading.Event()
        self._ack_wake = threading.Event()  # cuts the mqtt-acks pause short (connect, disconnect, stop)
        self._rewind = True  # start the next send pass from the oldest undelivered row
        self._send_after = 0.0  # monotonic time before which stored rows are held (replay_delay)
        self._idle = threading.Event()  # the sender found nothing to send and nothing is in flight
        self._closing = False  # we asked for the disconnect: not an outage
        self.waiting_at_exit: tuple[int, int | None, int] = (0, None, 0)  # rows left, oldest seq, last seq
        self._acks = threading.Thread(target=self._ack_loop, name="mqtt-acks", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-send", daemon=True)
        self.beats = 0  # turns of the mqtt-acks loop: the watchdog's sign that this publisher lives
        self._client = self._make_client()
        self.alarms.attach(self._publish_alarm)  # queued by paho until the first connect

    # -- set-up ---------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        c = self._mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._cfg.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_inflight_messages_set(c.max_inflight + 10)  # our window + status and alarms
        client.max_queued_messages_set(0)  # bounded by our window: the spool holds the rest
        self.security = configure_security(client, self._cfg)  # one line for the log, no secret in it
        # The Will is published by the broker whenever the connection dies: it carries no time
        # (the broker cannot put in the moment of death, and the connect time would be stale).
        will = {"schema": STATUS_SCHEMA, "state": "offline", "station": self._cfg.station.name,
                "reason": "connection lost"}
        client.will_set(self.status_topic, json.dumps(will).encode(), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        if self._commands is not None:
            client.on_message = self._on_message
        return client

    def _status_payload(self, state: str, reason: str | None = None) -> bytes:
        return json.dumps(self.status_document(state, reason)).encode()

    def status_document(self, state: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """The retained status message's body as it would be published now (also ``GET /status``);
        ``state`` None = the current health (``online`` or ``degraded`` with its reason)."""
        if state is None:
            state, reason = self._health
        body: dict[str, Any] = {
            "schema": STATUS_SCHEMA,
            "state": state,
            "station": self._cfg.station.name,
            "time": utc_iso(time.time()),
        }
        if reason:
            body["reason"] = reason
        if state in ("online", "degraded"):
            body.update(self._status())
        if self._spool is not None:
            body["spool"] = self._spool.stats().as_dict()
        body["delivery"] = {"rate_per_s": round(self._rate.rate(), 2), "delivered": self.counters.delivered,
                            "no_subscriber": self.counters.no_subscribers, "rejected": self.counters.rejected}
        body["alarms"] = [{"alarm": k, "reason": v} for k, v in sorted(self.alarms.active().items())]
        return body

    def _result_properties(self, camera: str, model: str, version: int) -> Properties:
        key = (camera, model, version)
        props = self._props.get(key)
        if props is None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho untyped
            props.ContentType = CONTENT_TYPE
            if self._cfg.spool.message_expiry:
                props.MessageExpiryInterval = self._cfg.spool.message_expiry
            props.UserProperty = [("station", self._cfg.station.name), ("camera", camera), ("model", model),
                                  ("model_version", str(version))]
            self._props[key] = props
        return props

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        c = self._mqtt
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
            raise BrokerUnreachableError(
                c.host, c.port, exc.strerror or exc, require_at_start=c.require_at_start
            ) from exc
        self._client.loop_start()
        if c.require_at_start and not (self._answered.wait(c.connect_timeout) and self._connected.is_set()):
            self._shutdown_client()
            reason = self._connect_error or f"no CONNACK within {c.connect_timeout:g} s"
            raise BrokerRefusedError(c.host, c.port, reason)
        if self._spool is not None:
            self._sender.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        deadline = time.monotonic() + self._flush_timeout
        with self._lock:  # the sender checks _rewind and sets _idle under it: never idle past this
            self._idle.clear()
            self._rewind = True  # one more attempt for every undelivered row, within the bound
        self._wake.set()
        while time.monotonic() < deadline and not self._settled():
            time.sleep(0.02)
        self._stop_send.set()
        if self._sender.is_alive():
            self._sender.join(timeout=5)
        info = self._client.publish(self.status_topic, self._status_payload("stopped", "shutdown"), qos=1,
                                    retain=True)
        end = time.monotonic() + min(2.0, max(0.0, deadline - time.monotonic()) + 0.5)
        while self._connected.is_set() and not info.is_published() and time.monotonic() < end:
            time.sleep(0.02)
        left = self.outstanding_seqs()
        if left or self.counters.lost:
            log.error("%d results that could not be stored were not acknowledged by the broker (%s): they are lost",
                      len(left) + self.counters.lost,
                      f"seq {min(left)}..{max(left)}" if left else "dropped while the broker was away")
        self._shutdown_client()
        self._summarise_no_subscribers(final=True)
        if self._spool is not None:
            stats = self._spool.stats()
            self.waiting_at_exit = (stats.depth, stats.oldest_seq, stats.next_seq - 1)

    def _settled(self) -> bool:
        with self._lock:
            if self._pending or self._inflight:
                return False
        return self._spool is None or self._idle.is_set() or not self._sender.is_alive()

    def _shutdown_client(self) -> None:
        self._closing = True
        self._stop_send.set()
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._stop.set()
            self._ack_wake.set()
            self._acks.join(timeout=5)

    # -- publishing -----------------------------------------------------------------------------

    def wake(self, stored: int = 0) -> None:
        """``stored`` new rows are in the spool (the spool writer, after a commit): one send credit each."""
        with self._lock:  # with the sender's idle check: new rows are never left behind an idle flag
            if stored and self._connected.is_set():
                self._live_credits += stored
            self._idle.clear()
        self._wake.set()

    def publish_results(self, records: Sequence[Publishable]) -> None:
        """:meth:`publish_result` for a batch (results that are not in the spool)."""
        for record in records:
            self.publish_result(record)

    def publish_result(self, record: Publishable) -> None:
        """Publish a result that is not in the spool (tracked in memory until its PUBACK)."""
        topic = self._result_topics[record.camera]
        props = self._result_properties(record.camera, record.model_name, record.model_version)
        with self._lock:
            if len(self._pending) >= DIRECT_HOLD:
                self.counters.lost += 1  # bounded memory while the broker is away: counted, reported at exit
                return
            info = self._client.publish(topic, record.to_json(), qos=self._mqtt.qos, properties=props)
            if self._mqtt.qos > 0 and info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                self._pending[info.mid] = record.seq
            self.counters.published += 1
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("result seq %d could not be queued for MQTT: %s", record.seq, mqtt.error_string(info.rc))

    def publish_status(self) -> None:
        """The retained status, now; not while disconnected (paho would resend a stale one later:
        the connect handler publishes a fresh one)."""
        if not self._connected.is_set():
            return
        state, reason = self._health
        self._client.publish(self.status_topic, self._status_payload(state, reason), qos=1, retain=True)

    def publish_camera_status(self, camera_id: str, body: dict[str, Any]) -> None:
        """``<prefix>/<station>/<camera>/status``, retained, QoS 1 (any thread)."""
        self._client.publish(f"{self._prefix}/{camera_id}/status", json.dumps(body).encode(), qos=1, retain=True)

    def publish_stats(self, body: dict[str, Any]) -> None:
        """``<prefix>/<station>/stats``, QoS 0, not retained: a periodic snapshot (any thread)."""
        self._client.publish(f"{self._prefix}/stats", json.dumps(body).encode(), qos=0, retain=False)

    def set_health(self, state: str, reason: str | None) -> None:
        """``online`` or ``degraded`` (with the reason): republishes the retained status."""
        self._health = (state, reason)
        self.publish_status()

    def _publish_alarm(self, kind: str, active: bool, reason: str) -> None:
        body = {"schema": ALARM_SCHEMA, "station": self._cfg.station.name, "alarm": kind, "active": active,
                "reason": reason, "time": utc_iso(time.time())}
        self._client.publish(self.alarm_topic, json.dumps(body).encode(), qos=1)
        self.publish_status()

    def outstanding(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._inflight)

    def lost(self) -> int:
        """Unspooled results neither acknowledged nor held any more (meaningful after exit)."""
        with self._lock:
            return len(self._pending) + self.counters.lost

    def outstanding_seqs(self) -> list[int]:
        """Sequence numbers of directly published (unspooled) results still awaiting their PUBACK."""
        with self._lock:
            return sorted(self._pending.values())

    @property
    def health(self) -> tuple[str, str | None]:
        """``("online", None)`` or ``("degraded", reason)``: whether results are being stored."""
        return self._health

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the hand-off lock for the ``with`` block, for tests and diagnostics: every hand-off
        to the publisher (a result, a spool row, a PUBACK) waits until the block ends."""
        with self._lock:
            yield

    # -- paho's thread: hand off only -----------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with contextlib.suppress(Exception):  # a paho callback must never raise
            self._events.put(("connect", 0, int(reason.value), str(reason)))
            self._ack_wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with contextlib.suppress(Exception):  # a paho callback must never raise
            self._events.put(("disconnect", 0, int(reason.value), str(reason)))
            self._ack_wake.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with contextlib.suppress(Exception):  # a paho callback must never raise
            self._events.put(("puback", mid, int(reason.value), str(reason)))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._commands is not None:
            with contextlib.suppress(Exception):  # a paho callback must never raise
                self._commands.offer(msg)  # put_nowait into a bounded queue: a full one drops and counts

    # -- answers, replays, evidence (any of our threads) ----------------------------------------

    def respond(self, topic: str, correlation: bytes | None, body: dict[str, Any]) -> None:
        """An MQTT v5 response: ``body`` as JSON on ``topic`` with the request's correlation data."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho untyped
        props.ContentType = CONTENT_TYPE
        if correlation is not None:
            props.CorrelationData = correlation
        self._client.publish(topic, json.dumps(body).encode(), qos=1, properties=props)

    def republish(self, row: Row) -> bool:
        """A stored result once more (replay requests): not tracked, its delivery state stays."""
        topic = self._result_topics.get(row.camera) or \
            f"{self._cfg.station.topic_prefix}/{self._cfg.station.name}/{row.camera}/result"
        props = self._result_properties(row.camera, row.model, row.version)
        info = self._client.publish(topic, row.payload, qos=self._mqtt.qos, properties=props)
        return info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)

    def publish_evidence(self, camera: str, name: str, jpeg: bytes) -> None:
        """An evidence image on ``<prefix>/<station>/<camera>/evidence`` (QoS 1, best effort: not spooled)."""
        if not self._connected.is_set():
            return  # not held for the broker: the file under the state folder is the record
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]  # paho untyped
        props.ContentType = "image/jpeg"
        props.UserProperty = [("station", self._cfg.station.name), ("camera", camera), ("evidence", name)]
        topic = f"{self._cfg.station.topic_prefix}/{self._cfg.station.name}/{camera}/evidence"
        self._client.publish(topic, jpeg, qos=1, properties=props)

    def status_payload(self) -> dict[str, Any]:
        """The body of the retained status as it would be published now (the ``status`` command)."""
        state, reason = self._health
        body: dict[str, Any] = json.loads(self._status_payload(state, reason))
        return body

    # -- mqtt-send: spool -> broker -------------------------------------------------------------

    def _send_loop(self) -> None:
        try:
            self._send()
        except Exception:
            log.exception("bug in the MQTT sender; stored results wait for the next start")

    def _send(self) -> None:
        assert self._spool is not None
        spool, cfg = self._spool, self._cfg.spool
        window = self._mqtt.max_inflight
        burst = max(1.0, min(float(window), cfg.replay_rate * 0.1))
        cursor = 0
        tokens, last = burst, time.monotonic()
        next_retry = last + cfg.retry_interval
        while not self._stop_send.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                live, self._live_credits = self._live_credits, 0
            if not self._connected.is_set():
                tokens, last = 0.0, now  # rows stored while away are backlog: no credit for them
                continue
            tokens, last = min(burst, tokens + (now - last) * cfg.replay_rate) + live, now
            if now < self._send_after:
                tokens = min(tokens, burst)
                continue
            if self._rewind or now >= next_retry:
                cursor, self._rewind, next_retry = 0, False, now + cfg.retry_interval
            with self._lock:
                room = window - len(self._inflight) - len(self._pending)
                skip = {seq for seq, _ in self._inflight.values()}
            n = min(room, int(tokens), SEND_CHUNK)
            if n <= 0:
                continue
            rows = spool.pending(cursor, n, skip)
            if not rows:
                with self._lock:  # atomic with wake() and __exit__, which clear it
                    if not skip and not self._rewind:
                        self._idle.set()
                continue
            self._idle.clear()
            for row in rows:
                if not self._publish_row(row):
                    break
                cursor = row.seq
                tokens -= 1
            tokens = min(tokens, burst + SEND_CHUNK)  # unused live credit does not pile up
            if len(rows) == n:
                self._wake.set()  # more may be waiting: go on as soon as window and rate allow

    def _publish_row(self, row: Row) -> bool:
        topic = self._result_topics.get(row.camera)
        if topic is None:  # a camera removed from the config since the row was stored
            prefix = f"{self._cfg.station.topic_prefix}/{self._cfg.station.name}"
            topic = f"{prefix}/{row.camera}/result"
        props = self._result_properties(row.camera, row.model, row.version)
        with self._lock:
            info = self._client.publish(topic, row.payload, qos=self._mqtt.qos, properties=props)
            ok = info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)
            if ok:
                self._inflight[info.mid] = (row.seq, row.camera)
                self.counters.published += 1
        return ok and info.rc == mqtt.MQTT_ERR_SUCCESS

    # -- mqtt-acks: our thread ------------------------------------------------------------------

    def _ack_loop(self) -> None:
        next_status = next_prune = time.monotonic() + STATUS_EVERY
        while not self._stop.is_set() or not self._events.empty():
            self.beats += 1
            batch: list[tuple[str, int, int, str]] = []
            with contextlib.suppress(queue.Empty):
                batch.append(self._events.get(timeout=0.1))
                while len(batch) < 1000:
                    batch.append(self._events.get_nowait())
            try:
                self._handle_batch(batch)
                if len(batch) > 1 and not self._stop.is_set():
                    # Several were waiting: the pipeline is busy; let the next ones gather (one
                    # wake-up per batch, not per result). CONNACK, disconnect and stop cut it short.
                    self._ack_wake.wait(ACK_POLL)
                    self._ack_wake.clear()
                self._summarise_no_subscribers()
                now = time.monotonic()
                if now >= next_status and self._connected.is_set():
                    next_status = now + STATUS_EVERY
                    self.publish_status()
                if now >= next_prune and self._spool is not None:
                    next_prune = now + PRUNE_EVERY
                    self._spool.prune()
            except Exception:
                log.exception("bug while handling MQTT events")

    def _handle_batch(self, batch: list[tuple[str, int, int, str]]) -> None:
        outcomes: list[tuple[int, RowState]] = []
        done: list[int] = []
        for kind, mid, code, text in batch:
            if kind == "puback":
                with self._lock:
                    spooled = self._inflight.get(mid)
                if spooled is not None:
                    outcomes.append((spooled[0], self._outcome(spooled, code, text)))
                    done.append(mid)
                else:
                    self._direct_puback(mid, code, text)
            else:
                self._handle(kind, code, text)
        if not outcomes:
            return
        if self._spool is not None:
            self._spool.mark(outcomes)  # recorded before the window slots are freed
        with self._lock:
            for mid in done:
                self._inflight.pop(mid, None)
        self._wake.set()

    def _outcome(self, spooled: tuple[int, str], code: int, text: str) -> RowState:
        seq, camera = spooled
        if code == NO_MATCHING_SUBSCRIBERS:
            self._no_subscriber(seq, f"kept in the spool and sent again every {self._cfg.spool.retry_interval:g} s")
            return RowState.NO_SUBSCRIBER
        if code >= 0x80:
            self.counters.rejected += 1
            reason = (f"broker refused results of camera {camera} ({text}, 0x{code:02x}, seq {seq}): they stay "
                      "in the spool; check the broker's ACL for this client")
            if f"rejected:{camera}" not in self.alarms.active() and self.alarms.raise_(f"rejected:{camera}", reason):
                log.error("alarm: %s", reason)
            return RowState.REJECTED
        self.counters.delivered += 1
        self._rate.add(1)
        if self.alarms.clear(f"rejected:{camera}"):
            log.warning("the broker accepts results of camera %s again", camera)
        return RowState.DELIVERED

    def _direct_puback(self, mid: int, code: int, text: str) -> None:
        with self._lock:
            seq = self._pending.pop(mid, None)
        if seq is None:
            return  # status and alarm messages are not tracked
        if code == NO_MATCHING_SUBSCRIBERS:
            self._no_subscriber(seq, "it was not stored: it is gone")
        elif code >= 0x80:
            self.counters.rejected += 1
            log.error("result seq %d rejected by the broker: %s (0x%02x)", seq, text, code)
        else:
            self.counters.delivered += 1
            self._rate.add(1)

    def _no_subscriber(self, seq: int, fate: str) -> None:
        """Count a PUBACK 0x10; the first is a WARNING, the rest go into periodic summaries."""
        self.counters.no_subscribers += 1
        if self.counters.no_subscribers == 1:
            self._no_sub_logged = 1
            self._no_sub_next = time.monotonic() + self._no_sub_every
            log.warning("result seq %d: the broker has no subscriber for it (PUBACK 0x10; %s); further ones are "
                        "counted and summarised every %g s", seq, fate, self._no_sub_every)

    def _summarise_no_subscribers(self, *, final: bool = False) -> None:
        """One INFO line for the PUBACK 0x10 since the last line, when due (or ``final``) and any came."""
        total = self.counters.no_subscribers
        if total == self._no_sub_logged or (not final and time.monotonic() < self._no_sub_next):
            return
        log.info("%d more results had no subscriber (PUBACK 0x10) since the last line; %d since start",
                 total - self._no_sub_logged, total)
        self._no_sub_logged = total
        self._no_sub_next = time.monotonic() + self._no_sub_every

    def _handle(self, kind: str, code: int, text: str) -> None:
        if kind == "connect":
            if code < 0x80:
                log.info("connected to MQTT broker %s:%d (%s)", self._mqtt.host, self._mqtt.port, self.security)
                if self._ever_connected:
                    self.counters.reconnects += 1
                self._ever_connected = True
                if self._commands is not None:
                    self._client.subscribe(self.command_topic, qos=1)
                self._connect_error = None
                backlog = self._spool is not None and self._spool.depth > 0
                # Only a backlog waits for subscribers to reconnect; with none, live results go at once.
                self._send_after = time.monotonic() + (self._cfg.spool.replay_delay if backlog else 0.0)
                self._rewind = True
                self._connected.set()
                try:
                    self.publish_status()  # before start-up goes on: the retained status is there first
                    self._after_connect()  # the cameras' retained statuses
                finally:
                    self._answered.set()
            else:
                self._connect_error = text
                self._answered.set()
                log.error("MQTT broker refused the connection: %s", text)
        elif kind == "disconnect":
            if self._connected.is_set() and not self._closing:
                log.warning("MQTT connection lost (%s); reconnecting", text)
            self._connected.clear()


def probe_broker(cfg: DaemonConfig) -> None:
    """Connect once as ``<client_id>-check`` and leave: no status, no Will, no session.

    Used by ``ovedged check-config`` so that checking never disturbs a running daemon (the same
    client id would take its connection over).
    """
    c = cfg.mqtt
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
        raise BrokerUnreachableError(c.host, c.port, exc.strerror or exc) from exc
    client.loop_start()
    try:
        if not answered.wait(c.connect_timeout):
            raise BrokerSilentError(c.host, c.port, c.connect_timeout)
        if outcome[0]:
            raise BrokerRefusedError(c.host, c.port, outcome[0])
    finally:
        client.disconnect()
        client.loop_stop()
