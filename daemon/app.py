"""The daemon: components wired together, started in order, stopped in the reverse order.

Threads (all named):

* ``camera-<id>``  one per camera (:mod:`daemon.capture`): source -> the camera's slot
* ``dispatch``     slots -> :meth:`Engine.submit` (round-robin, blocks on free requests)
* OpenVINO's own callback threads: copy outputs out of the request, hand off (:mod:`daemon.engine`)
* ``static-shape`` once per new frame size: compile and check a static-shape copy of the model
  (``model.static_shapes``; :meth:`Engine._specialise`)
* ``decide``       every finished request at once (:meth:`Engine.take_batch`): post-process, rules ->
                   verdict, :class:`Result` each (seq 0); the batch -> :meth:`Delivery.submit` in one call
* ``spool-writer`` numbers and stores the queued results in one transaction per batch (:mod:`daemon.delivery`)
* paho's network thread, ``mqtt-send`` (spool -> broker) and ``mqtt-acks`` (:mod:`daemon.publisher`)
* ``model-swap``   verify, compile and self-test a new model beside the running one (:mod:`daemon.swap`)
* ``trigger-folder`` when a camera has a ``trigger_folder``: each file there is a :meth:`Daemon.trigger`

Triggers (:mod:`daemon.triggers`) enter through :meth:`Daemon.trigger` only. A trigger the camera
does not serve becomes an ERROR result through ``_answers``, drained by the decide thread.
Cameras with ``crops`` have each frame cut by the dispatcher and put back together by the decide
thread (:mod:`daemon.crops`). Each camera's health is published retained on
``<prefix>/<station>/<camera>/status`` when its state changes, and every ``mqtt.stats_interval``
seconds on ``<prefix>/<station>/stats`` with every camera's counters.
* ``http``         the HTTP API when ``[http] enabled`` (:mod:`daemon.http`): uvicorn's event loop;
  ad-hoc inferences run in its worker threads on the engine's compiled model (own infer requests)
* ``evidence-writer`` draws and writes NG evidence images (:mod:`daemon.evidence`), when ``[evidence]`` is on
* ``mqtt-commands`` validates and runs MQTT v5 commands (:mod:`daemon.commands`), when ``[commands]`` is on

Shutdown drains the pipeline: cameras stop first, frames already captured are still inferred,
every result is stored, then we wait (bounded) for PUBACKs, then say ``stopped``; what is not
acknowledged stays in the spool for the next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import openvino as ov

from camera.frame import Frame
from daemon.capture import CameraWorker
from daemon.commands import CommandContext, Commands
from daemon.config import CameraMode, DaemonConfig, load_config
from daemon.crops import CropGroup, CropPart, camera_of, cut, detections
from daemon.delivery import Delivery
from daemon.engine import Engine, InferenceDone, shape_text
from daemon.evidence import EvidenceStore, EvidenceWriter, Review
from daemon.http import HttpServer, create_app, resolve_token
from daemon.http_view import LiveView
from daemon.inspect import InspectRequests
from daemon.metrics import CameraTally
from daemon.preflight import ModelLoader, run_preflight
from daemon.publisher import Alarms, Publisher
from daemon.result import DefectData, Result, Verdict, utc_iso
from daemon.slots import FrameHub
from daemon.spool import Spool
from daemon.swap import ModelSwapper, install_sighup
from daemon.systemd import Notifier
from daemon.triggers import CameraNotTriggeredError, Trigger, TriggerFolder, UnknownCameraError, trigger_of
from daemon.triggers import unanswered_frame as unanswered
from daemon.watchdog import Counters, Progress
from ovedge.errors import ConfigError, OvedgeError

log = logging.getLogger(__name__)

STATS_EVERY = 10.0
CAMERA_STOP_TIMEOUT = 10.0  # seconds a camera thread gets to stop (the drain bound; the unit's TimeoutStopSec)
STATUS_EVERY = 10.0  # seconds between progress checks (and STATUS=) when systemd asks for no watchdog
CAMERA_STATUS_SCHEMA = "ovedge.camera-status/1"
STATS_SCHEMA = "ovedge.stats/1"
RELOADABLE = ("rules", "cameras[].rules", "logging.level")  # what a reload applies without a restart


class ReloadRefusedError(ConfigError):
    """A ``reload`` command that cannot be applied: the daemon keeps its running config."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"reload refused: {problem}")


class ReloadWithoutFileError(ReloadRefusedError):
    """``reload`` in a daemon built without ``config_path``: there is no file to read again."""

    def __init__(self) -> None:
        super().__init__("the daemon was started without a config file")


class ReloadRulesError(ReloadRefusedError):
    """The reloaded rules do not fit the running model (``cause`` says how); the old rules stay."""

    def __init__(self, model: str, cause: OvedgeError) -> None:
        self.model = model
        self.cause = cause
        super().__init__(f"the rules do not fit model {model}: {cause}")


class Daemon:
    def __init__(
        self,
        cfg: DaemonConfig,
        *,
        until_sources_end: bool = False,
        notifier: Notifier | None = None,
        config_path: Path | None = None,
        overrides: Sequence[str] = (),
        log_level_fixed: bool = False,
    ) -> None:
        self.cfg = cfg
        self.until_sources_end = until_sources_end
        self.notifier = notifier if notifier is not None else Notifier()
        self._config_path = config_path  # for the reload command
        self._overrides = tuple(overrides)
        self._log_level_fixed = log_level_fixed  # --log-level given: a reload leaves the level alone
        self._inspect = InspectRequests()
        self._commands = Commands(cfg) if cfg.commands.enabled else None
        self._evidence: EvidenceWriter | None = None
        # Frames kept for re-labelling (decided per frame only when set; a change needs a restart, like [evidence])
        self._uncertain_margin = cfg.evidence.uncertain_margin if cfg.evidence.enabled else 0.0
        self._loader: ModelLoader | None = None
        self._reload_lock = threading.Lock()
        self.started = time.time()
        self.verdicts: Counter[Verdict] = Counter()
        self._stop_capture = threading.Event()
        self._capture_done = threading.Event()
        self._stop_decide = threading.Event()
        self._hub: FrameHub[str] = FrameHub()
        self._swapper: ModelSwapper | None = None
        self._engine: Engine | None = None
        self._workers: list[CameraWorker] = []
        self._publisher: Publisher | None = None
        self._spool: Spool | None = None
        self._delivery: Delivery | None = None
        self._errors_logged = 0
        self._by_id: dict[str, CameraWorker] = {}
        self.ready = threading.Event()  # set once every component runs (READY=1): triggers are taken
        # Triggers answered without a frame (refused, timed out, camera down): the decide thread
        # turns each into an ERROR result. Unbounded on purpose: an answer is never dropped, and
        # each costs a few hundred bytes for the moments until the decide thread takes it.
        self._answers: queue.SimpleQueue[Frame] = queue.SimpleQueue()
        self._crops = {c.id: c.crops for c in cfg.cameras if c.crops}
        self._tallies = {c.id: CameraTally() for c in cfg.cameras}  # written by the spool writer only
        # Monotonic counters for the watchdog (daemon/watchdog.py), each written by one thread.
        self._submitted = 0  # dispatch: frames started on the engine
        self._judged = 0  # decide: finished inferences taken from the engine
        self._decided = 0  # decide: results produced (handed on: Delivery.handed)
        self._fps = 0.0  # results per second over the last status period

    @property
    def publisher(self) -> Publisher | None:
        """The running publisher, None before :meth:`run` starts it."""
        return self._publisher

    # -- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        model: dict[str, Any] = {}
        if self._engine is not None:
            m = self._engine.model.loaded
            model = {
                "name": m.name,
                "version": m.version.version,
                "device": m.device.device,
                "requested_device": self.cfg.model.device,
                "fell_back": m.device.fell_back,
                "execution_devices": list(m.execution_devices),
                "static_shapes": [shape_text(shape) for shape in self._engine.static_shapes],
            }
        body: dict[str, Any] = {
            "started": utc_iso(self.started),
            "model": model,
            "swap": self._swapper.status() if self._swapper is not None else {},
            "cameras": [c.id for c in self.cfg.cameras],
            "camera_state": {w.cfg.id: w.state for w in self._workers},
            "camera_health": self._camera_health(),
        }
        if self._evidence is not None:
            body["evidence"] = self._evidence.stats()
        if self._commands is not None:
            body["commands"] = {"handled": self._commands.handled, "dropped": self._commands.dropped}
        return body

    def _status_changed(self, *_what: object) -> None:
        """Republish the retained status (a swap outcome, a camera's state): what it says changed."""
        pub = self._publisher
        if pub is not None and pub.connected:  # on (re)connect the publisher sends it anyway
            pub.publish_status()

    def _camera_health(self) -> dict[str, dict[str, Any]]:
        dropped = self._hub.dropped()
        return {w.cfg.id: {**w.snapshot(), "dropped": dropped.get(w.cfg.id, 0)} for w in self._workers}

    def _camera_status(self, worker: CameraWorker) -> dict[str, Any]:
        return {
            "schema": CAMERA_STATUS_SCHEMA,
            "station": self.cfg.station.name,
            "camera": worker.cfg.id,
            "time": utc_iso(time.time()),
            **worker.snapshot(),
            "dropped": self._hub.dropped().get(worker.cfg.id, 0),
        }

    def _camera_changed(self, camera_id: str) -> None:
        """A camera's state changed (its thread): its retained status and the station status say so."""
        pub = self._publisher
        worker = self._by_id.get(camera_id)
        if pub is not None and worker is not None and pub.connected:  # on (re)connect: sent anyway
            pub.publish_camera_status(worker.cfg.id, self._camera_status(worker))
            pub.publish_status()

    def _publish_camera_statuses(self) -> None:
        pub = self._publisher
        if pub is not None:
            for w in self._workers:
                pub.publish_camera_status(w.cfg.id, self._camera_status(w))

    def stats(self) -> dict[str, Any]:
        """The periodic ``<prefix>/<station>/stats`` body: results so far and every camera's counters."""
        pub = self._publisher
        counters = pub.counters if pub else None
        return {
            "schema": STATS_SCHEMA,
            "station": self.cfg.station.name,
            "time": utc_iso(time.time()),
            "uptime_s": round(time.time() - self.started, 1),
            "results": {v.value: self.verdicts[v] for v in Verdict},
            "cameras": self._camera_health(),
            "mqtt": {} if counters is None else {
                "published": counters.published, "delivered": counters.delivered,
                "no_subscribers": counters.no_subscribers, "rejected": counters.rejected,
                "awaiting_puback": pub.outstanding() if pub else 0,
            },
        }

    # -- triggers -------------------------------------------------------------------------------

    def trigger(self, camera_id: str, part_id: str | None = None) -> str:
        """Ask a triggered camera for one inspection; returns the trigger id its result will carry.

        Thread-safe and non-blocking: the trigger is queued for the camera's thread. Every trigger
        ends in exactly one result with this id and ``part_id``: the inspected frame, or ERROR
        with the reason (queue full, no frame within ``trigger_timeout``, camera down, stopping).
        Raises :class:`UnknownCameraError` / :class:`CameraNotTriggeredError` for a camera that
        cannot be triggered at all (nothing is queued then).
        """
        cam = next((c for c in self.cfg.cameras if c.id == camera_id), None)
        if cam is None:
            raise UnknownCameraError(camera_id, tuple(c.id for c in self.cfg.cameras))
        if cam.mode is not CameraMode.TRIGGERED:
            raise CameraNotTriggeredError(camera_id, cam.mode.value)
        trigger = Trigger.new(camera_id, part_id, cam.trigger_timeout)
        worker = self._by_id.get(camera_id)
        refused = "the daemon is not running" if worker is None else worker.offer(trigger)
        if refused is not None:
            self._answer(trigger, refused)
        return trigger.id

    def _answer(self, trigger: Trigger, reason: str) -> None:
        """A trigger not served: its ERROR result (any thread; the decide thread publishes it)."""
        self._answers.put(unanswered(trigger, reason))

    # -- main -----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        cfg = self.cfg
        self._loader = loader = ModelLoader(cfg, ov.Core())
        m = cfg.model
        # The broker is the publisher's to check: it connects below, and refuses to start when
        # mqtt.require_at_start and the broker does not answer. A long compile (a first GPU/NPU
        # compile takes minutes) keeps extending systemd's start timeout.
        with self.notifier.extending(f"starting: model {m.name} (version {m.version}) on {m.device}: "
                                     "verifying, compiling, self-testing"):
            active = run_preflight(cfg, loader, broker=False, report=log.info)
        token = resolve_token(cfg.http) if cfg.http.enabled else None
        self._engine = engine = Engine(active, static_shapes=cfg.model.static_shapes, on_static=self._status_changed)
        self._workers = workers = []
        for c in cfg.cameras:
            changed = functools.partial(self._camera_changed, c.id)
            workers.append(CameraWorker(c, self._hub, self._stop_capture, answer=self._answer, on_change=changed))
        self._by_id = {w.cfg.id: w for w in workers}
        alarms = Alarms()
        with contextlib.ExitStack() as stack:
            self._spool = spool = stack.enter_context(Spool(cfg.state_dir(), cfg.spool, on_alarm=alarms.raise_))
            self._publisher = publisher = stack.enter_context(
                Publisher(cfg, self.status, spool=spool, alarms=alarms,
                          health=("online", None) if spool.problem is None else ("degraded", spool.problem),
                          on_connected=self._publish_camera_statuses, commands=self._commands)
            )
            if cfg.evidence.enabled:
                evidence = EvidenceStore(cfg.state_dir(), cfg.evidence)
                spool.evidence = evidence  # the quota policy: evidence goes first
                self._evidence = stack.enter_context(
                    EvidenceWriter(cfg.evidence, evidence, space=spool, publish=publisher.publish_evidence))
            self._delivery = delivery = stack.enter_context(
                Delivery(spool, publisher, alarms, batch_max=cfg.spool.batch_max, batch_ms=cfg.spool.batch_ms,
                         on_result=self._note, listener=self._inspect.stored))
            if cfg.http.enabled:
                stack.enter_context(HttpServer(create_app(self._http_view(), cfg.http, token=token), cfg.http))
            decide = threading.Thread(target=self._decide_loop, args=(engine, delivery), name="decide", daemon=True)
            dispatch = threading.Thread(target=self._dispatch_loop, args=(engine,), name="dispatch", daemon=True)
            decide.start()
            stack.callback(self._stop_deciding, decide, engine)
            dispatch.start()
            stack.callback(self._stop_dispatch, dispatch)
            for w in workers:
                w.start()
            stack.callback(self._stop_cameras, workers)
            folders = {c.id: c.trigger_folder for c in cfg.cameras if c.trigger_folder is not None}
            stack.enter_context(TriggerFolder(folders, self.trigger))
            self._swapper = swapper = stack.enter_context(
                ModelSwapper(
                    engine=engine,
                    loader=loader,
                    watch=cfg.model.version == "latest",
                    on_change=self._status_changed,
                )
            )
            stack.callback(install_sighup(swapper, started=self._reloading, finished=self._reloaded))
            if self._commands is not None:
                self._commands.bind(CommandContext(
                    responder=publisher, spool=spool, swapper=swapper,
                    model=lambda: (engine.model.name, engine.model.version.version),
                    versions=loader.store.versions, cameras=tuple(c.id for c in cfg.cameras),
                    inspect=self._inspect, reload=self.reload_config, trigger=self.trigger,
                    triggered=frozenset(c.id for c in cfg.cameras if c.mode is CameraMode.TRIGGERED)))
                stack.enter_context(self._commands)  # stops first: no command runs while we stop
            progress = Progress(self._counters)
            progress.check()  # the baseline
            self.notifier.ready(self._status_line(None))
            self.ready.set()
            log.info("running: %d camera(s), results on %s/%s/<camera>/result",
                     len(workers), cfg.station.topic_prefix, cfg.station.name)
            self._supervise(stop, workers, progress)
            self.notifier.stopping("stopping: draining the pipeline")
            log.info("stopping: draining the pipeline")
        self._log_stats(final=True)
        return self._final_word(publisher)

    def _final_word(self, publisher: Publisher) -> int:
        """The last log line says what waits in the spool; exit 0 only when nothing was lost."""
        lost = publisher.lost()
        if lost:
            log.error("%d results could be neither stored nor delivered: exit code 1", lost)
        waiting, oldest, last = publisher.waiting_at_exit
        if waiting:
            log.warning("stopped: %d results wait in the spool (oldest seq %s, last seq %d); they go out after "
                        "the next start", waiting, oldest, last)
        else:
            log.info("stopped: every stored result was acknowledged by the broker, nothing waits in the spool "
                     "(last seq %d)", last)
        return 1 if lost else 0

    def _supervise(self, stop: threading.Event, workers: list[CameraWorker], progress: Progress) -> None:
        """The main thread until stop: stats, ``STATUS=``, ``WATCHDOG=1`` while the pipeline moves, and
        the periodic ``stats`` message."""
        interval = self.notifier.watchdog_interval or STATUS_EVERY
        now = time.monotonic()
        next_stats, next_check = now + STATS_EVERY, now + interval
        every = self.cfg.mqtt.stats_interval
        next_publish = now + every
        last_judged, stuck = self._judged, None
        while not stop.wait(min(0.2, interval / 4)):
            if self.until_sources_end and all(w.finished.is_set() for w in workers):
                log.info("every camera has ended")
                return
            now = time.monotonic()
            if now >= next_check:
                self._fps = (self._judged - last_judged) / (interval + now - next_check)
                last_judged = self._judged
                next_check = now + interval
                was, stuck = stuck, progress.check()
                if stuck is None:
                    self.notifier.watchdog()
                    if was is not None:
                        log.warning("the pipeline moves again")
                elif was is None:
                    log.error("pipeline stalled: %s; systemd's watchdog restarts the daemon if it stays so", stuck)
                self.notifier.status(self._status_line(stuck))
            if now >= next_stats:
                self._log_stats()
                next_stats += STATS_EVERY
            pub = self._publisher
            if every > 0 and now >= next_publish:
                next_publish = now + every
                if pub is not None and pub.connected:
                    pub.publish_stats(self.stats())

    def _counters(self) -> Counters:
        """Upstream first (see daemon/watchdog.py)."""
        pub = self._publisher
        return Counters(
            waiting=not self._hub.is_empty(),
            submitted=self._submitted,
            judged=self._judged,
            decided=self._decided,
            handed=self._delivery.handed if self._delivery is not None else 0,
            publisher_beats=pub.beats if pub is not None else 0,
        )

    def _status_line(self, stuck: str | None) -> str:
        """What ``systemctl status`` shows: state, cameras, rate, model, and what is wrong."""
        problems: list[str] = []
        if stuck is not None:
            problems.append(stuck)
        pub = self._publisher
        if pub is not None and not pub.connected:
            waiting = pub.outstanding()
            problems.append(f"MQTT broker {self.cfg.mqtt.host}:{self.cfg.mqtt.port} not connected"
                            + (f" ({waiting} results waiting)" if waiting else ""))
        health, problem = pub.health if pub is not None else ("online", None)  # one read: the spool writer sets it
        if health == "degraded":
            problems.append(f"results not stored: {problem}")
        problems += [f"camera {w.cfg.id}: {w.last_error}" for w in self._workers if w.last_error is not None]
        engine = self._engine
        model = ""
        if engine is not None:
            m = engine.model.loaded
            model = f", model {m.label} on {m.device.device}"
            if m.device.fell_back:
                problems.append(f"fell back: {m.device.reason or self.cfg.model.device + ' not available'}")
        state = "stalled" if stuck is not None else "degraded" if problems else "inspecting"
        n = len(self._workers)
        line = f"{state}: {n} camera{'s' if n != 1 else ''}, {self._fps:.1f} fps{model}"
        return line + "".join(f"; {p}" for p in problems)

    def _reloading(self) -> None:
        """SIGHUP (main thread): tell systemd a reload runs until :meth:`_reloaded`."""
        self.notifier.reloading("reloading: looking for a new model version")

    def _reloaded(self) -> None:
        """The model check SIGHUP asked for is over (``model-swap`` thread): ready again."""
        self.notifier.ready(self._status_line(None))

    def _stop_cameras(self, workers: list[CameraWorker]) -> None:
        self._stop_capture.set()
        for w in workers:
            w.interrupt()  # a source waiting for a file or a trigger returns at once
        for w in workers:
            w.join(timeout=CAMERA_STOP_TIMEOUT)
            if w.alive:
                log.warning("camera %s did not stop within %g s", w.cfg.id, CAMERA_STOP_TIMEOUT)
        self._capture_done.set()

    def _stop_dispatch(self, dispatch: threading.Thread) -> None:
        self._hub.close()
        dispatch.join()

    def _stop_deciding(self, decide: threading.Thread, engine: Engine) -> None:
        engine.drain()
        self._stop_decide.set()
        decide.join()

    # -- threads --------------------------------------------------------------------------------

    def _dispatch_loop(self, engine: Engine) -> None:
        while True:
            got = self._hub.get(timeout=0.1)
            if got is None:
                if self._capture_done.is_set() and self._hub.is_empty():
                    return  # cameras stopped and every captured frame was submitted
                continue
            camera_id, frame = got
            crops = self._crops.get(camera_id)
            jobs: list[tuple[Frame, Any]] = [(frame, camera_id)]
            if crops and frame.error is None:
                parts = cut(frame, crops)
                if isinstance(parts, str):
                    jobs = [(dataclasses.replace(frame, error=parts), camera_id)]
                else:
                    group = CropGroup(frame, camera_id, crops)
                    jobs = [(part, CropPart(group, i)) for i, part in enumerate(parts)]
            # A frame taken from its slot is always submitted: wait for a free request, even
            # while stopping (the decide thread keeps freeing them until the very end).
            for job, context in jobs:
                while not engine.submit(job, context, timeout=0.5):
                    pass
                self._submitted += 1

    def _decide_loop(self, engine: Engine, delivery: Delivery) -> None:
        """Judge every finished request waiting, then hand the batch to the spool in one call."""
        verdicts = self.verdicts
        while True:
            ready: list[InferenceDone] = []
            while not self._answers.empty():  # unserved triggers: ERROR results, no inference
                frame = self._answers.get()
                trigger = trigger_of(frame)
                ready.append(InferenceDone(frame, trigger.camera if trigger else "?", engine.model, None, 0.0,
                                           frame.error))
            items = engine.take_batch(timeout=0.01 if ready else 0.1)
            if not items and not ready:
                if self._stop_decide.is_set() and self._answers.empty():
                    return
                continue
            self._judged += len(items)
            for item in items:
                if isinstance(item.context, CropPart):  # one crop of a frame: the whole once all are back
                    whole = item.context.group.add(item.context.index, item)
                    if whole is not None:
                        ready.append(whole)
                else:
                    ready.append(item)
            if not ready:
                continue
            results = [self._extras(*self.assess(item), item) for item in ready]
            for result in results:
                verdicts[result.verdict] += 1
            # One call per batch: numbered and stored in one transaction; the cameras' tallies are
            # noted by the spool writer with the numbered result (what subscribers receive).
            delivery.submit(results, [(i.frame.image, i.latency_ms if i.outputs is not None else None) for i in ready])
            self._decided += len(results)

    def _extras(self, result: Result, review: Review | None, item: InferenceDone) -> Result:
        """The inspect request waiting for this camera claims it; an evidence image (and a frame kept
        for re-labelling, with ``review``) is queued for it.

        Both are no-ops costing a look-up unless a request waits or ``[evidence]`` is on; a bug in
        either keeps the result as judged (logged), never loses it.
        """
        try:
            result = self._inspect.claim(result)
            if self._evidence is not None:
                result = self._evidence.offer(result, item.frame.image, review)  # put_nowait, never waits
        except Exception:
            log.exception("bug while tagging the result of frame %d of %s", item.frame.index, item.context)
        return result

    def _note(self, record: Result, note: tuple[Any, float | None]) -> None:
        """A stored (or unstorable ERROR) result, numbered, into its camera's tally (spool-writer thread)."""
        image, latency_ms = note
        self._tallies[record.camera].note(image, record, record.verdict, latency_ms)

    def reload_config(self) -> dict[str, Any]:
        """The ``reload`` command: read the config file again and apply what can change while running.

        Applied at once: ``[rules]`` and each camera's ``[cameras.rules]`` (deciders rebuilt for the
        running model and checked against its labels, switched in between two frames like a model
        swap; later swaps use them too) and ``[logging] level`` (unless ``--log-level`` was given).
        Everything else (station, model, cameras and their sources, mqtt, state, spool, commands,
        evidence) needs a restart: those sections are named in the answer and **not** applied. An
        invalid file, or rules the running model cannot use, raise :class:`ConfigError`: nothing
        changes.
        """
        if self._config_path is None:
            raise ReloadWithoutFileError
        new = load_config(self._config_path, self._overrides)
        with self._reload_lock:
            return self._apply(new)

    def _apply(self, new: DaemonConfig) -> dict[str, Any]:
        old = self.cfg
        restart = [name for name in type(old).model_fields
                   if name not in ("rules", "cameras", "logging") and getattr(new, name) != getattr(old, name)]
        strip = {"rules"}
        if [c.model_dump(exclude=strip) for c in new.cameras] != [c.model_dump(exclude=strip) for c in old.cameras]:
            restart.append("cameras")
        by_id = {c.id: c for c in new.cameras}
        cameras = tuple(c.model_copy(update={"rules": by_id[c.id].rules}) if c.id in by_id else c
                        for c in old.cameras)
        applied_cfg = old.model_copy(update={"rules": new.rules, "cameras": cameras, "logging": new.logging})
        applied: list[str] = []
        if [applied_cfg.rules_for(c) for c in cameras] != [old.rules_for(c) for c in old.cameras]:
            engine, loader = self._engine, self._loader
            if engine is not None and loader is not None:
                loader.use_rules(applied_cfg)
                active = engine.model
                try:
                    deciders = loader.rules(active.loaded)
                except OvedgeError as exc:
                    loader.use_rules(old)
                    raise ReloadRulesError(active.label, exc) from exc
                engine.swap(replace(active, deciders=deciders))  # between two frames, like a model swap
            applied.append("rules")
        if new.logging != old.logging:
            if self._log_level_fixed:
                restart.append("logging (--log-level given on the command line)")
            else:
                logging.getLogger().setLevel(new.logging.level)
                applied.append("logging")
        self.cfg = applied_cfg
        log.info("config reloaded from %s: applied %s; needs a restart: %s", self._config_path,
                 ", ".join(applied) or "nothing (no change)", ", ".join(restart) or "nothing")
        return {"applied": applied, "restart_needed": restart, "reloadable": list(RELOADABLE)}

    def _http_view(self) -> LiveView:
        return LiveView(
            self.cfg, workers=self._workers, hub=self._hub, tallies=self._tallies,
            engine=lambda: self._engine, publisher=lambda: self._publisher, status=self.status,
        )

    def judge(self, item: InferenceDone) -> Result:
        """The result of one finished inference, judged by the rules of the model it ran on; its
        ``seq`` is 0 until the spool numbers it.

        Never raises: failed inference or outputs that cannot be post-processed give verdict
        ``ERROR`` with the reason (logged, rate-limited); a bug while judging gives an ``ERROR``
        saying so (with its traceback in the log), so every frame still has its one result.
        """
        return self.assess(item)[0]

    def assess(self, item: InferenceDone) -> tuple[Result, Review | None]:
        """:meth:`judge`, and a :class:`Review` when ``[evidence] uncertain_margin`` is set and a score
        on the frame lies that close to its label's threshold (the frame is kept for re-labelling)."""
        try:
            return self._judge(item)
        except Exception:
            log.exception("bug while judging frame %d of %s", item.frame.index, item.context)
            return self._judge(item._replace(outputs=None, error="internal error while judging (see the log)"))

    def _judge(self, item: InferenceDone) -> tuple[Result, Review | None]:
        camera_id = camera_of(item.context)
        frame = item.frame
        model = item.model
        trigger = trigger_of(frame)
        verdict = Verdict.ERROR
        defects: tuple[DefectData, ...] = ()
        error = item.error
        h, w = frame.image.shape[:2]
        review: Review | None = None
        if item.outputs is not None:
            try:
                found = detections(item)
                decider = model.deciders[camera_id]
                verdict, counted = decider.decide(found)
                defects = tuple(
                    DefectData(d.label, min(1.0, max(0.0, float(d.score))), d.box, d.area) for d in counted
                )
                if self._uncertain_margin and decider.near_threshold(found, self._uncertain_margin):
                    review = Review(tuple(found), model.loaded.meta.labels, model.label)
            except (OvedgeError, ValueError, IndexError) as exc:
                error = f"post-processing failed: {exc}"
        if error is not None:
            self._errors_logged += 1
            if self._errors_logged <= 10 or self._errors_logged % 1000 == 0:
                log.error("camera %s frame %d: ERROR verdict: %s (%d so far)",
                          camera_id, frame.index, error, self._errors_logged)
        result = Result(
            seq=0,  # numbered by the spool
            station=self.cfg.station.name,
            camera=camera_id,
            time=time.time(),
            frame_index=frame.index,
            frame_ref=frame.source_ref,
            captured=frame.timestamp,
            width=w,
            height=h,
            model_name=model.name,
            model_version=model.version.version,
            device=model.loaded.device.device,
            verdict=verdict,
            defects=defects,
            inference_ms=round(item.latency_ms, 3),
            capture_to_result_ms=round((time.monotonic() - frame.monotonic) * 1000.0, 3),
            trigger_to_result_ms=None if trigger is None else round((time.monotonic() - trigger.monotonic) * 1e3, 3),
            error=error,
            part_id=None if trigger is None else trigger.part_id,
            trigger_id=None if trigger is None else trigger.id,
        )
        return result, review

    def _log_stats(self, *, final: bool = False) -> None:
        pub = self._publisher
        dropped = sum(self._hub.dropped().values())
        counters = pub.counters if pub else None
        spool = self._spool
        log.info(
            "%sresults OK %d, NG %d, ERROR %d (not stored %d); frames dropped (free-run) %d; camera failures %d; "
            "MQTT delivered %d, no subscriber %d, rejected %d, awaiting PUBACK %d; spool depth %d (high-water %d)",
            "final: " if final else "",
            self.verdicts[Verdict.OK], self.verdicts[Verdict.NG], self.verdicts[Verdict.ERROR],
            self._delivery.unstored if self._delivery else 0, dropped,
            sum(w.failures for w in self._workers),
            counters.delivered if counters else 0, counters.no_subscribers if counters else 0,
            counters.rejected if counters else 0, pub.outstanding() if pub else 0,
            spool.depth if spool else 0, spool.high_water if spool else 0,
        )
