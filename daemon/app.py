"""The daemon: components wired together, started in order, stopped in the reverse order.

Threads (all named):

* ``camera-<id>``  one per camera (:mod:`daemon.capture`): source -> the camera's slot
* ``dispatch``     slots -> :meth:`Engine.submit` (round-robin, blocks on free requests)
* OpenVINO's own callback threads: copy outputs out of the request, hand off (:mod:`daemon.engine`)
* ``decide``       post-process, rules -> verdict -> draft; a batch of drafts -> :meth:`Delivery.submit`
* ``spool-writer`` numbers and stores the queued drafts in one transaction per batch (:mod:`daemon.delivery`)
* paho's network thread, ``mqtt-send`` (spool -> broker) and ``mqtt-acks`` (:mod:`daemon.publisher`)
* ``model-swap``   verify, compile and self-test a new model beside the running one (:mod:`daemon.swap`)
* ``evidence-writer`` draws and writes NG evidence images (:mod:`daemon.evidence`), when ``[evidence]`` is on
* ``mqtt-commands`` validates and runs MQTT v5 commands (:mod:`daemon.commands`), when ``[commands]`` is on

Shutdown drains the pipeline: cameras stop first, frames already captured are still inferred,
every result is stored, then we wait (bounded) for PUBACKs, then say ``stopped``; what is not
acknowledged stays in the spool for the next start.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import openvino as ov

from daemon.capture import CameraWorker
from daemon.commands import CommandContext, Commands
from daemon.config import DaemonConfig, load_config
from daemon.delivery import Delivery
from daemon.engine import Engine, InferenceDone
from daemon.evidence import EvidenceStore, EvidenceWriter
from daemon.inspect import InspectRequests
from daemon.preflight import ModelLoader, run_preflight
from daemon.publisher import Alarms, Publisher
from daemon.result import DefectOut, FrameOut, ModelOut, ResultDraft, TimingsOut, Verdict, utc_iso
from daemon.slots import FrameHub
from daemon.spool import Spool
from daemon.swap import ModelSwapper, install_sighup
from daemon.systemd import notify
from ovedge.errors import ConfigError, OvedgeError

log = logging.getLogger(__name__)

STATS_EVERY = 10.0
RELOADABLE = ("rules", "cameras[].rules", "logging.level")  # what a reload applies without a restart


class ReloadRefusedError(ConfigError):
    """A ``reload`` command that cannot be applied: the daemon keeps its running config."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"reload refused: {problem}")


class Daemon:
    def __init__(self, cfg: DaemonConfig, *, until_sources_end: bool = False, config_path: Path | None = None,
                 overrides: Sequence[str] = (), log_level_fixed: bool = False) -> None:
        self.cfg = cfg
        self.until_sources_end = until_sources_end
        self._config_path = config_path  # for the reload command
        self._overrides = tuple(overrides)
        self._log_level_fixed = log_level_fixed  # --log-level given: a reload leaves the level alone
        self._inspect = InspectRequests()
        self._commands = Commands(cfg) if cfg.commands.enabled else None
        self._evidence: EvidenceWriter | None = None
        self._loader: ModelLoader | None = None
        self._reload_lock = threading.Lock()
        self.started = time.time()
        self.verdicts: Counter[str] = Counter()
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
            }
        body: dict[str, Any] = {
            "started": utc_iso(self.started),
            "model": model,
            "swap": self._swapper.status() if self._swapper is not None else {},
            "cameras": [c.id for c in self.cfg.cameras],
        }
        if self._evidence is not None:
            body["evidence"] = self._evidence.stats()
        if self._commands is not None:
            body["commands"] = {"handled": self._commands.handled, "dropped": self._commands.dropped}
        return body

    # -- main -----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        cfg = self.cfg
        self._loader = loader = ModelLoader(cfg, ov.Core())
        # The broker is the publisher's to check: it connects below, and refuses to start when
        # mqtt.require_at_start and the broker does not answer.
        active = run_preflight(cfg, loader, broker=False, report=log.info)
        self._engine = engine = Engine(active)
        self._workers = workers = [
            CameraWorker(c, self._hub, self._stop_capture) for c in cfg.cameras
        ]
        alarms = Alarms()
        with contextlib.ExitStack() as stack:
            self._spool = spool = stack.enter_context(Spool(cfg.state_dir(), cfg.spool, on_alarm=alarms.raise_))
            self._publisher = publisher = stack.enter_context(
                Publisher(cfg, self.status, spool=spool, alarms=alarms,
                          health=("online", None) if spool.problem is None else ("degraded", spool.problem),
                          commands=self._commands))
            if cfg.evidence.enabled:
                evidence = EvidenceStore(cfg.state_dir(), cfg.evidence)
                spool.evidence = evidence  # the quota policy: evidence goes first
                self._evidence = stack.enter_context(
                    EvidenceWriter(cfg.evidence, evidence, space=spool, publish=publisher.publish_evidence))
            self._delivery = delivery = stack.enter_context(
                Delivery(spool, publisher, alarms, batch_max=cfg.spool.batch_max, batch_ms=cfg.spool.batch_ms,
                         listener=self._inspect.stored))
            decide = threading.Thread(target=self._decide_loop, args=(engine, delivery), name="decide", daemon=True)
            dispatch = threading.Thread(target=self._dispatch_loop, args=(engine,), name="dispatch", daemon=True)
            decide.start()
            stack.callback(self._stop_deciding, decide, engine)
            dispatch.start()
            stack.callback(self._stop_dispatch, dispatch)
            for w in workers:
                w.start()
            stack.callback(self._stop_cameras, workers)
            self._swapper = swapper = stack.enter_context(
                ModelSwapper(engine=engine, loader=loader, watch=cfg.model.version == "latest")
            )
            stack.callback(install_sighup(swapper))
            if self._commands is not None:
                self._commands.bind(CommandContext(
                    responder=publisher, spool=spool, swapper=swapper,
                    model=lambda: (engine.model.name, engine.model.version.version),
                    versions=loader.store.versions, cameras=tuple(c.id for c in cfg.cameras),
                    inspect=self._inspect, reload=self.reload_config))
                stack.enter_context(self._commands)  # stops first: no command runs while we stop
            notify("READY=1")
            log.info("running: %d camera(s), results on %s/%s/<camera>/result",
                     len(workers), cfg.station.topic_prefix, cfg.station.name)
            self._supervise(stop, workers)
            notify("STOPPING=1")
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

    def _supervise(self, stop: threading.Event, workers: list[CameraWorker]) -> None:
        next_stats = time.monotonic() + STATS_EVERY
        while not stop.wait(0.2):
            if self.until_sources_end and all(w.finished.is_set() for w in workers):
                log.info("every camera has ended")
                return
            if time.monotonic() >= next_stats:
                self._log_stats()
                next_stats += STATS_EVERY

    def _stop_cameras(self, workers: list[CameraWorker]) -> None:
        self._stop_capture.set()
        for w in workers:
            w.join(timeout=10)
            if w.alive:
                log.warning("camera %s did not stop within 10 s", w.cfg.id)
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
            # A frame taken from its slot is always submitted: wait for a free request, even
            # while stopping (the decide thread keeps freeing them until the very end).
            while not engine.submit(frame, camera_id, timeout=0.5):
                pass

    def _decide_loop(self, engine: Engine, delivery: Delivery) -> None:
        batch_max = self.cfg.spool.batch_max
        while True:
            item = engine.take(timeout=0.1)
            if item is None:
                if self._stop_decide.is_set():
                    return
                continue
            items = [item]  # and whatever else is finished already: one batch, one transaction
            while len(items) < batch_max and (more := engine.take(timeout=0)) is not None:
                items.append(more)
            drafts = []
            for done in items:
                try:
                    draft = self._inspect.claim(self.judge(done))  # a no-op unless an inspect request waits
                    if self._evidence is not None:
                        draft = self._evidence.offer(draft, done.frame.image)  # put_nowait, never waits
                    drafts.append(draft)
                except Exception:
                    log.exception("bug while judging frame %d of %s", done.frame.index, done.context)
            for draft in drafts:
                self.verdicts[draft.verdict.value] += 1
            delivery.submit(drafts)

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
            raise ReloadRefusedError("the daemon was started without a config file")
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
                    raise ReloadRefusedError(f"the rules do not fit model {active.label}: {exc}") from exc
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

    def judge(self, item: InferenceDone) -> ResultDraft:
        """The result of one finished inference (numbered later by the spool), judged by the rules of
        the model it ran on.

        Never raises for a bad frame: failed inference or outputs that cannot be post-processed
        give verdict ``ERROR`` with the reason (logged, rate-limited).
        """
        camera_id: str = item.context
        frame = item.frame
        verdict = Verdict.ERROR
        defects: list[DefectOut] = []
        error = item.error
        if item.outputs is not None:
            try:
                detections = item.model.loaded.postprocess(item.outputs, frame.image.shape[:2])
                verdict, counted = item.model.deciders[camera_id].decide(detections)
                defects = [
                    DefectOut(label=d.label, score=min(1.0, max(0.0, float(d.score))), box=d.box, area=d.area)
                    for d in counted
                ]
            except (OvedgeError, ValueError, IndexError) as exc:
                error = f"post-processing failed: {exc}"
        if error is not None:
            self._errors_logged += 1
            if self._errors_logged <= 10 or self._errors_logged % 1000 == 0:
                log.error("camera %s frame %d: ERROR verdict: %s (%d so far)",
                          camera_id, frame.index, error, self._errors_logged)
        now = time.time()
        h, w = frame.image.shape[:2]
        return ResultDraft(
            station=self.cfg.station.name,
            camera=camera_id,
            time=utc_iso(now),
            frame=FrameOut(index=frame.index, ref=frame.source_ref, captured=utc_iso(frame.timestamp),
                           width=w, height=h),
            model=ModelOut(name=item.model.name, version=item.model.version.version,
                           device=item.model.loaded.device.device),
            verdict=verdict,
            defects=tuple(defects),
            timings=TimingsOut(
                inference_ms=round(item.latency_ms, 3),
                capture_to_result_ms=round((time.monotonic() - frame.monotonic) * 1000.0, 3),
            ),
            error=error,
        )

    def _log_stats(self, *, final: bool = False) -> None:
        pub = self._publisher
        dropped = sum(self._hub.dropped().values())
        counters = pub.counters if pub else None
        spool = self._spool
        log.info(
            "%sresults OK %d, NG %d, ERROR %d (not stored %d); frames dropped (free-run) %d; camera failures %d; "
            "MQTT delivered %d, no subscriber %d, rejected %d, awaiting PUBACK %d; spool depth %d (high-water %d)",
            "final: " if final else "",
            self.verdicts["OK"], self.verdicts["NG"], self.verdicts["ERROR"],
            self._delivery.unstored if self._delivery else 0, dropped,
            sum(w.failures for w in self._workers),
            counters.delivered if counters else 0, counters.no_subscribers if counters else 0,
            counters.rejected if counters else 0, pub.outstanding() if pub else 0,
            spool.depth if spool else 0, spool.high_water if spool else 0,
        )
