"""The daemon: components wired together, started in order, stopped in the reverse order.

Threads (all named):

* ``camera-<id>``  one per camera (:mod:`daemon.capture`): source -> the camera's slot
* ``dispatch``     slots -> :meth:`Engine.submit` (round-robin, blocks on free requests)
* OpenVINO's own callback threads: copy outputs out of the request, hand off (:mod:`daemon.engine`)
* ``decide``       every finished request at once (:meth:`Engine.take_batch`): post-process, rules ->
                   verdict, :class:`Result` each (seq 0); the batch -> :meth:`Delivery.submit` in one call
* ``spool-writer`` numbers and stores the queued results in one transaction per batch (:mod:`daemon.delivery`)
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
from daemon.result import DefectData, Result, Verdict, utc_iso
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
        self._tallies = {c.id: CameraTally() for c in cfg.cameras}  # written by the spool writer only

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
                Delivery(spool, publisher, alarms, batch_max=cfg.spool.batch_max, batch_ms=cfg.spool.batch_ms,
                         on_result=self._note))
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
        """Judge every finished request waiting, then hand the batch to the spool in one call."""
        verdicts = self.verdicts
        while True:
            items = engine.take_batch(timeout=0.1)
            if not items:
                if self._stop_decide.is_set():
                    return
                continue
            results = [self.judge(item) for item in items]
            for result in results:
                verdicts[result.verdict] += 1
            # One call per batch: numbered and stored in one transaction; the cameras' tallies are
            # noted by the spool writer with the numbered result (what subscribers receive).
            delivery.submit(results, [(i.frame.image, i.latency_ms if i.outputs is not None else None) for i in items])

    def _note(self, record: Result, note: tuple[Any, float | None]) -> None:
        """A stored (or unstorable ERROR) result, numbered, into its camera's tally (spool-writer thread)."""
        image, latency_ms = note
        self._tallies[record.camera].note(image, record, record.verdict, latency_ms)

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
        try:
            return self._judge(item)
        except Exception:
            log.exception("bug while judging frame %d of %s", item.frame.index, item.context)
            return self._judge(item._replace(outputs=None, error="internal error while judging (see the log)"))

    def _judge(self, item: InferenceDone) -> Result:
        camera_id: str = item.context
        frame = item.frame
        model = item.model
        verdict = Verdict.ERROR
        defects: tuple[DefectData, ...] = ()
        error = item.error
        h, w = frame.image.shape[:2]
        if item.outputs is not None:
            try:
                detections = model.loaded.postprocess(item.outputs, (h, w))
                verdict, counted = model.deciders[camera_id].decide(detections)
                defects = tuple(
                    DefectData(d.label, min(1.0, max(0.0, float(d.score))), d.box, d.area) for d in counted
                )
            except (OvedgeError, ValueError, IndexError) as exc:
                error = f"post-processing failed: {exc}"
        if error is not None:
            self._errors_logged += 1
            if self._errors_logged <= 10 or self._errors_logged % 1000 == 0:
                log.error("camera %s frame %d: ERROR verdict: %s (%d so far)",
                          camera_id, frame.index, error, self._errors_logged)
        return Result(
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
            self.verdicts[Verdict.OK], self.verdicts[Verdict.NG], self.verdicts[Verdict.ERROR],
            self._delivery.unstored if self._delivery else 0, dropped,
            sum(w.failures for w in self._workers),
            counters.delivered if counters else 0, counters.no_subscribers if counters else 0,
            counters.rejected if counters else 0, pub.outstanding() if pub else 0,
            spool.depth if spool else 0, spool.high_water if spool else 0,
        )
