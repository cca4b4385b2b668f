"""Commands over MQTT v5 request/response: ``<prefix>/<station>/cmd/<verb>``.

Off unless ``[commands] enabled``. The publisher subscribes to ``<prefix>/<station>/cmd/+`` on
every connect; paho's thread only calls :meth:`Commands.offer`, which copies what it needs out of
the message and ``put_nowait``s it into a bounded queue (``[commands] queue``; when full the
command is **dropped and counted**, logged once per episode by our thread, and gets no answer).
The ``mqtt-commands`` thread validates each request (pydantic, unknown keys refused), runs it and
answers on the request's **response topic** with its **correlation data** (a request without a
response topic is still run; its outcome is only logged).

Verbs (the payload is a JSON object; an empty payload is ``{}``):

* ``inspect {"camera": "cam0", "part_id": "A-123"}``: a triggered camera is triggered
  (:meth:`daemon.app.Daemon.trigger`) and that trigger's result is the answer; a free-running
  camera's next judged frame is the answer (``frame.ref`` and ``part_id`` = ``part_id``); either
  way ``result`` is the full result record; see :mod:`daemon.inspect`
  for what "next frame" means until the triggered camera mode lands.
* ``model {"version": 3}`` or ``{"version": "latest"}`` (optional ``"name"``, which must be the
  running model's): a version present in the store, switched through the hot swap with its
  golden self-test (:mod:`daemon.swap`); the answer comes after the swap was accepted or
  rejected. Versions are numbers looked up in the store: no paths.
* ``reload {}``: read the config file again; an invalid file is refused (the answer lists the
  problems) and the daemon keeps running on the old one. What a reload can change without a
  restart is in :meth:`daemon.app.Daemon.reload_config`; the answer lists what it applied and what
  needs a restart.
* ``replay {"since": SEQ, "limit": N}``: the stored results above ``SEQ`` (delivered or not, within
  the spool's retention) are published again on their result topics, paced at ``[spool]
  replay_rate`` per second (a burst would overflow subscribers' broker queues: the gap would open
  again); the answer, sent when all are handed to the client, gives the count and the range, and
  ``more`` when further results are stored (ask again from ``last``). Other commands wait meanwhile.
* ``status {}``: the status body, as in the retained status.

Who asked: MQTT v5 gives the receiver of a PUBLISH no client id of its sender (Mosquitto 2.0 adds
none), so each command is logged with the response topic, the correlation data and the
``client_id`` user property when the requester sets one (declared by it, not verified by the
broker). With the ACL in ``deploy/mosquitto/`` a requester can only read responses under
``<prefix>/<station>/reply/<its client id>/``, which ties the response topic to a client the
broker authenticated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon.config import CommandsConfig, DaemonConfig, validation_problems
from daemon.inspect import InspectRequests
from daemon.spool import Row
from daemon.swap import SwapOutcome
from ovedge.errors import ConfigError

__all__ = ["RESPONSE_SCHEMA", "CommandContext", "Commands"]

log = logging.getLogger(__name__)

RESPONSE_SCHEMA = "ovedge.response/1"
PART_ID_MAX = 128
REPLAY_BURST = 10  # results a replay sends at once before pacing at [spool] replay_rate

Reply = Callable[[dict[str, Any]], None]


# -- the requests -------------------------------------------------------------------------------

class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InspectRequest(_Request):
    camera: str | None = Field(None, description="camera id; may be left out when there is one camera")
    part_id: str | None = Field(None, min_length=1, max_length=PART_ID_MAX, pattern=r"^[\x20-\x7e]+$",
                                description="printable ASCII; becomes the result's frame.ref")


class ModelRequest(_Request):
    version: int | Literal["latest"] = Field(description="a version number in the store, or latest")
    name: str | None = Field(None, description="the running model's name (a swap stays within it)")


class ReloadRequest(_Request):
    pass


class ReplayRequest(_Request):
    since: int = Field(ge=0, description="results with a seq above this one")
    limit: int | None = Field(None, ge=1, description="most results (capped by [commands] replay_max)")


class StatusRequest(_Request):
    pass


REQUESTS: dict[str, type[_Request]] = {
    "inspect": InspectRequest, "model": ModelRequest, "reload": ReloadRequest, "replay": ReplayRequest,
    "status": StatusRequest,
}


# -- what the commands act on -------------------------------------------------------------------

class Responder(Protocol):
    """The publisher's side: answers, re-published rows, the status body."""

    def respond(self, topic: str, correlation: bytes | None, body: dict[str, Any]) -> None: ...

    def republish(self, row: Row) -> bool: ...

    def status_payload(self) -> dict[str, Any]: ...


class Swapper(Protocol):
    def request(self, version: int | Literal["latest"] = "latest", *, trigger: str = "request",
                done: Callable[[SwapOutcome | None], None] | None = None) -> None: ...


class Replayer(Protocol):
    def since(self, seq: int, limit: int = 1000) -> list[Row]: ...


@dataclass(frozen=True)
class CommandContext:
    """Everything the commands touch; given to :meth:`Commands.bind` once the daemon has built it."""

    responder: Responder
    spool: Replayer | None
    swapper: Swapper | None
    model: Callable[[], tuple[str, int]]  # the running model's name and version
    versions: Callable[[str], list[int]]  # versions of a model present in the store
    cameras: tuple[str, ...]
    inspect: InspectRequests
    reload: Callable[[], dict[str, Any]]  # raises ConfigError when the file is refused
    trigger: Callable[[str, str | None], str] | None = None  # Daemon.trigger: (camera, part_id) -> trigger id
    triggered: frozenset[str] = frozenset()  # cameras in triggered mode: inspect triggers them


@dataclass(frozen=True, slots=True)
class _Message:
    verb: str
    payload: bytes
    response_topic: str | None
    correlation: bytes | None
    client_id: str | None  # a user property the requester chose to set (not verified)


class Commands:
    """The bounded command inbox and the ``mqtt-commands`` thread (a context manager)."""

    def __init__(self, cfg: DaemonConfig) -> None:
        self._cfg: CommandsConfig = cfg.commands
        self._station = cfg.station.name
        self._prefix = f"{cfg.station.topic_prefix}/{cfg.station.name}/cmd/"
        self._replay_rate = cfg.spool.replay_rate  # a replay is paced like a backlog: subscribers' queues
        self._queue: queue.Queue[_Message] = queue.Queue(maxsize=self._cfg.queue)
        self._ctx: CommandContext | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-commands", daemon=True)
        self.dropped = 0  # commands refused because the queue was full (counted in paho's thread)
        self._dropped_said = 0
        self.handled = 0

    def bind(self, ctx: CommandContext) -> None:
        self._ctx = ctx

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    # -- paho's thread: copy out and hand off ---------------------------------------------------

    def offer(self, msg: mqtt.MQTTMessage) -> None:
        props = msg.properties
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        correlation = getattr(props, "CorrelationData", None) if props is not None else None
        users = dict(getattr(props, "UserProperty", None) or []) if props is not None else {}
        item = _Message(msg.topic.removeprefix(self._prefix), bytes(msg.payload), response or None,
                        bytes(correlation) if correlation is not None else None, users.get("client_id"))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    # -- mqtt-commands --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                item = None
            try:
                if self._ctx is not None:
                    self._ctx.inspect.expire()
                if self.dropped != self._dropped_said:
                    log.warning("%d MQTT commands dropped unanswered: the command queue ([commands] queue = %d) "
                                "was full", self.dropped - self._dropped_said, self._cfg.queue)
                    self._dropped_said = self.dropped
                if item is not None:
                    self.handle(item)
            except Exception:
                log.exception("bug while handling an MQTT command")

    def handle(self, item: _Message) -> None:
        who = _who(item)
        reply = self._replier(item, who)
        ctx = self._ctx
        if ctx is None:
            reply({"ok": False, "error": "the daemon is still starting; try again"})
            return
        if item.verb not in REQUESTS:
            reply({"ok": False, "error": f"unknown command {item.verb!r}; use one of {', '.join(REQUESTS)}"})
            return
        if item.verb not in self._cfg.verbs:
            reply({"ok": False, "error": f"command {item.verb!r} is not enabled here ([commands] verbs)"})
            return
        try:
            raw = json.loads(item.payload or b"{}")
            request = REQUESTS[item.verb].model_validate(raw)
        except json.JSONDecodeError as exc:
            reply({"ok": False, "error": f"the payload is not JSON ({exc.msg} at {exc.pos})"})
            return
        except ValidationError as exc:
            reply({"ok": False, "error": "; ".join(validation_problems(exc))})
            return
        self.handled += 1
        getattr(self, f"_{item.verb}")(ctx, request, reply)

    def _replier(self, item: _Message, who: str) -> Reply:
        """The answer to ``item``: logged with who asked, published on its response topic (any thread)."""

        def reply(body: dict[str, Any]) -> None:
            outcome = "ok" if body.get("ok") else f"refused: {body.get('error')}"
            log.info("command %s from %s: %s", item.verb, who, outcome)
            ctx = self._ctx
            if item.response_topic is None or ctx is None:
                return
            full = {"schema": RESPONSE_SCHEMA, "station": self._station, "verb": item.verb, **body}
            with contextlib.suppress(ValueError):  # paho refuses a malformed topic: logged above
                ctx.responder.respond(item.response_topic, item.correlation, full)

        return reply

    # -- the verbs ------------------------------------------------------------------------------

    def _status(self, ctx: CommandContext, request: StatusRequest, reply: Reply) -> None:
        reply({"ok": True, "status": ctx.responder.status_payload()})

    def _replay(self, ctx: CommandContext, request: ReplayRequest, reply: Reply) -> None:
        if ctx.spool is None:
            reply({"ok": False, "error": "no spool: nothing stored to replay"})
            return
        limit = min(request.limit or self._cfg.replay_max, self._cfg.replay_max)
        rows = ctx.spool.since(request.since, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        sent = 0
        gap = 1.0 / self._replay_rate
        due = time.monotonic()
        for i, row in enumerate(rows):
            if i >= REPLAY_BURST:  # paced: a burst would overflow the subscribers' broker queues
                due += gap
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break  # stopping: the answer says how many went out
            sent += ctx.responder.republish(row)
        reply({"ok": sent == len(rows), "count": sent, "first": rows[0].seq if rows else None,
               "last": rows[-1].seq if rows else None, "more": more,
               **({} if sent == len(rows) else {"error": f"{len(rows) - sent} could not be queued for MQTT"})})

    def _model(self, ctx: CommandContext, request: ModelRequest, reply: Reply) -> None:
        if ctx.swapper is None:
            reply({"ok": False, "error": "model swaps are not available yet; try again"})
            return
        name, running = ctx.model()
        if request.name is not None and request.name != name:
            reply({"ok": False, "error": f"model {request.name!r} is not the running model; a swap stays "
                                         f"within {name!r}"})
            return
        available = ctx.versions(name)
        if request.version != "latest" and request.version not in available:
            reply({"ok": False, "error": f"{name} v{request.version} is not in the model store; present: "
                                         f"{', '.join(map(str, available)) or 'none'}"})
            return

        def done(outcome: SwapOutcome | None) -> None:
            if outcome is None:
                reply({"ok": True, "model": name, "version": ctx.model()[1], "swapped": False,
                       "note": "already running"})
            elif outcome.accepted:
                reply({"ok": True, "model": name, "version": outcome.version, "swapped": True,
                       "previous": running, "seconds": round(outcome.seconds, 3)})
            else:
                reply({"ok": False, "model": name, "version": outcome.version, "swapped": False,
                       "error": outcome.reason, "running": ctx.model()[1]})

        ctx.swapper.request(request.version, trigger="mqtt", done=done)

    def _reload(self, ctx: CommandContext, request: ReloadRequest, reply: Reply) -> None:
        try:
            outcome = ctx.reload()
        except ConfigError as exc:
            problems = str(exc).splitlines()
            reply({"ok": False, "error": f"the config was refused, the daemon keeps running on the old one: "
                                         f"{'; '.join(problems)}", "problems": problems})
            return
        reply({"ok": True, **outcome})

    def _inspect(self, ctx: CommandContext, request: InspectRequest, reply: Reply) -> None:
        camera = request.camera
        if camera is None:
            if len(ctx.cameras) != 1:
                reply({"ok": False, "error": f"name the camera: one of {', '.join(ctx.cameras)}"})
                return
            camera = ctx.cameras[0]
        if camera not in ctx.cameras:
            reply({"ok": False, "error": f"unknown camera {camera!r}; use one of {', '.join(ctx.cameras)}"})
            return
        if ctx.trigger is not None and camera in ctx.triggered:
            ctx.inspect.triggered(camera, request.part_id, reply, self._cfg.inspect_timeout, ctx.trigger)
            return
        ctx.inspect.request(camera, request.part_id, reply, self._cfg.inspect_timeout)


def _who(item: _Message) -> str:
    parts = []
    if item.client_id:
        parts.append(f"client_id {item.client_id!r} (declared)")
    parts.append(f"response topic {item.response_topic!r}" if item.response_topic else "no response topic")
    if item.correlation is not None:
        parts.append(f"correlation {item.correlation[:32].hex()}")
    return ", ".join(parts)


