"""The daemon: components wired together, started in order, stopped in the reverse order.

Threads (all named):

* ``camera-<id>``  one per camera (:mod:`daemon.capture`): source -> the camera's slot
* ``dispatch``     slots -> :meth:`Engine.submit` (round-robin, blocks on free requests)
* OpenVINO's own callback threads: copy outputs out of the request, hand off (:mod:`daemon.engine`)
* ``decide``       post-process, rules -> verdict -> draft; a batch of drafts -> :meth:`Delivery.submit`
* ``spool-writer`` numbers and stores the queued drafts in one transaction per batch (:mod:`daemon.delivery`)
* paho's network thread, ``mqtt-send`` (spool -> broker) and ``mqtt-acks`` (:mod:`daemon.publisher`)
* ``model-swap``   verify, compile and self-test a new model beside the running one (:mod:`daemon.swap`)
* ``http``         the HTTP API when ``[http] enabled`` (:mod:`daemon.http`): uvicorn's event loop;
  ad-hoc inferences run in its worker threads on the engine's compiled model (own infer requests)

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
from typing import Any

import openvino as ov

from daemon.capture import CameraWorker
from daemon.config import DaemonConfig
from daemon.delivery import Delivery
from daemon.engine import Engine, InferenceDone
from daemon.http import HttpServer, create_app, resolve_token
from daemon.http_view import LiveView
from daemon.metrics import CameraTally
from daemon.preflight import ModelLoader, run_preflight
from daemon.publisher import Alarms, Publisher
from daemon.result import DefectOut, FrameOut, ModelOut, ResultDraft, TimingsOut, Verdict, utc_iso
from daemon.slots import FrameHub
from daemon.spool import Spool
from daemon.swap import ModelSwapper, install_sighup
from daemon.systemd import notify
from ovedge.errors import OvedgeError

log = logging.getLogger(__name__)

STATS_EVERY = 10.0


class Daemon:
    def __init__(self, cfg: DaemonConfig, *, until_sources_end: bool = False) -> None:
        self.cfg = cfg
        self.until_sources_end = until_sources_end
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
        self._tallies = {c.id: CameraTally() for c in cfg.cameras}  # written by the decide thread only

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
        return {
            "started": utc_iso(self.started),
            "model": model,
            "swap": self._swapper.status() if self._swapper is not None else {},
            "cameras": [c.id for c in self.cfg.cameras],
            "camera_state": {w.cfg.id: w.state for w in self._workers},
        }

    def _status_changed(self, *_what: object) -> None:
        """Republish the retained status (a swap outcome, a camera's state): what it says changed."""
        pub = self._publisher
        if pub is not None and pub.connected:  # on (re)connect the publisher sends it anyway
            pub.publish_status()

    # -- main -----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        cfg = self.cfg
        loader = ModelLoader(cfg, ov.Core())
        # The broker is the publisher's to check: it connects below, and refuses to start when
        # mqtt.require_at_start and the broker does not answer.
        active = run_preflight(cfg, loader, broker=False, report=log.info)
        token = resolve_token(cfg.http) if cfg.http.enabled else None
        self._engine = engine = Engine(active)
        self._workers = workers = [
            CameraWorker(c, self._hub, self._stop_capture, on_change=self._status_changed) for c in cfg.cameras
        ]
        alarms = Alarms()
        with contextlib.ExitStack() as stack:
            self._spool = spool = stack.enter_context(Spool(cfg.state_dir(), cfg.spool, on_alarm=alarms.raise_))
            self._publisher = publisher = stack.enter_context(
                Publisher(cfg, self.status, spool=spool, alarms=alarms,
                          health=("online", None) if spool.problem is None else ("degraded", spool.problem)))
            self._delivery = delivery = stack.enter_context(
                Delivery(spool, publisher, alarms, batch_max=cfg.spool.batch_max, batch_ms=cfg.spool.batch_ms))
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
            self._swapper = swapper = stack.enter_context(
                ModelSwapper(
                    engine=engine,
                    loader=loader,
                    watch=cfg.model.version == "latest",
                    on_change=self._status_changed,
                )
            )
            stack.callback(install_sighup(swapper))
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
                    draft = self.judge(done)
                except Exception:
                    log.exception("bug while judging frame %d of %s", done.frame.index, done.context)
                    continue
                drafts.append(draft)
                self.verdicts[draft.verdict.value] += 1
                self._tallies[draft.camera].note(
                    done.frame.image, draft, draft.verdict.value, done.latency_ms if done.outputs is not None else None
                )
            delivery.submit(drafts)

    def _http_view(self) -> LiveView:
        return LiveView(
            self.cfg, workers=self._workers, hub=self._hub, tallies=self._tallies,
            engine=lambda: self._engine, publisher=lambda: self._publisher, status=self.status,
        )

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
