"""LiveView, the daemon's side of the HTTP API, over real camera workers, a real frame hub and a
real compiled model: readiness reasons, counters read from the pipeline, the ad-hoc model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from daemon.capture import CameraWorker
from daemon.config import load_config
from daemon.config.http import HttpConfig
from daemon.decision import Decider
from daemon.engine import ActiveModel, Engine
from daemon.http_view import LiveView
from daemon.metrics import CameraTally
from daemon.slots import FrameHub
from tests.daemon.http_parts import load_demo
from tests.racing import interleave
from tests.waiting import wait_until


def test_readiness_and_metrics_from_the_running_parts(demo_store: Path, tmp_path: Path,
                                                      write_config: Callable[..., Path]) -> None:
    """A free-run camera with nobody taking its frames counts captured and dropped frames; a
    camera whose file is missing is 'reconnecting' with its error and counts reconnects; readiness
    lists every reason (no model, no broker, the failing camera); once an engine runs, the model
    and the [rules] decider are what ad-hoc inspection gets."""
    cfg = load_config(write_config(
        cameras=[
            {"id": "good", "mode": "free-run", "source": {"type": "synthetic", "fps": 100, "width": 64, "height": 64}},
            {"id": "gone", "source": {"type": "video", "path": str(tmp_path / "missing.mp4")}},
        ],
        http={"enabled": True},
    ))
    hub: FrameHub[str] = FrameHub()
    stop = threading.Event()
    workers = [CameraWorker(c, hub, stop) for c in cfg.cameras]
    tallies = {c.id: CameraTally() for c in cfg.cameras}
    engine: list[Engine] = []
    view = LiveView(cfg, workers=workers, hub=hub, tallies=tallies, engine=lambda: engine[0] if engine else None,
                    publisher=lambda: None, status=lambda: {"cameras": ["good", "gone"]})
    for w in workers:
        w.start()
    try:
        assert wait_until(lambda: workers[1].last_error is not None and workers[0].frames >= 3)
        ready = view.readiness()
        assert ready.ready is False
        assert ready.model is None
        assert ready.reasons[:2] == ("the model is not loaded yet", "not connected to the MQTT broker")
        assert ready.reasons[2].startswith("camera gone: ")
        states = {c.id: c.state for c in ready.cameras}
        assert states == {"good": "running", "gone": "reconnecting"}
        assert view.adhoc_model() is None
        assert view.status() == {"state": "starting", "station": "station1", "cameras": ["good", "gone"]}
        assert wait_until(lambda: sum(hub.dropped().values()) >= 2)

        snap = view.metrics()
        by_id = {c.id: c for c in snap.cameras}
        assert by_id["good"].captured >= 3
        assert by_id["good"].dropped >= 2  # free-run: nobody took them, the latest won
        assert by_id["gone"].captured == 0
        assert by_id["gone"].reconnects >= 1
        assert snap.mqtt is None
        assert snap.model is None

        model = load_demo(demo_store)
        adhoc = Decider.build(cfg.rules, model.meta, camera="http")
        engine.append(Engine(ActiveModel(model, {}, golden_diff=0.0, adhoc=adhoc)))
        got = view.adhoc_model()
        assert got is not None
        assert got.model is model
        assert got.decider is adhoc
        assert view.readiness().model == "demo v1 on CPU"
        assert view.metrics().model is not None
        assert view.latest("good") is None
    finally:
        stop.set()
        for w in workers:
            w.join(10)


def test_http_decider_is_built_only_when_the_api_is_on(demo_store: Path, write_config: Callable[..., Path]) -> None:
    """ModelLoader gives the ActiveModel a [rules] decider for ad-hoc images only with [http] enabled."""
    import openvino as ov

    from daemon.preflight import ModelLoader

    off = load_config(write_config(model={"store": demo_store, "cache": False}))
    on = load_config(write_config(model={"store": demo_store, "cache": False}, http={"enabled": True}))
    assert ModelLoader(off, ov.Core()).load("latest").adhoc is None
    active = ModelLoader(on, ov.Core()).load("latest")
    assert active.adhoc is not None
    assert active.adhoc.default_threshold == on.rules.min_score
    assert HttpConfig().enabled is False


def test_recent_not_ok_merges_the_cameras_newest_first(tmp_path: Path, write_config: Callable[..., Path]) -> None:
    """LiveView.recent_not_ok merges every camera's kept NG/ERROR records, newest (highest station
    seq) first; OK results are not among them."""
    from daemon.result import Result, Verdict

    cfg = load_config(write_config(cameras=[
        {"id": c, "source": {"type": "synthetic", "fps": 1, "width": 32, "height": 32}} for c in ("a", "b")
    ]))
    tallies = {c.id: CameraTally() for c in cfg.cameras}
    view = LiveView(cfg, workers=[], hub=FrameHub(), tallies=tallies, engine=lambda: None, publisher=lambda: None,
                    status=dict)
    for seq, (camera, verdict) in enumerate(
        [("a", Verdict.NG), ("b", Verdict.OK), ("b", Verdict.ERROR), ("a", Verdict.OK), ("b", Verdict.NG)], start=1
    ):
        record = Result(
            seq=seq, station="s", camera=camera, time=1764460800.0, frame_index=seq, frame_ref=None,
            captured=1764460800.0, width=32, height=32, model_name="demo", model_version=1, device="CPU",
            verdict=verdict, defects=(), inference_ms=1.0, capture_to_result_ms=1.0,
            error="x" if verdict is Verdict.ERROR else None,
        )
        tallies[camera].note(None, record, verdict.value, 1.0)
    assert [(r.seq, r.camera, r.verdict) for r in view.recent_not_ok()] == [
        (5, "b", Verdict.NG), (3, "b", Verdict.ERROR), (1, "a", Verdict.NG),
    ]


def test_readiness_says_when_results_cannot_be_stored(write_config: Callable[..., Path]) -> None:
    """A publisher whose health is degraded (the spool cannot store) makes /readyz not ready, with
    the reason; its status document says degraded too."""
    from daemon.publisher import Publisher

    cfg = load_config(write_config(http={"enabled": True}))
    pub = Publisher(cfg, dict, health=("degraded", "disk full under /var/lib/ovedge"))  # never connected
    view = LiveView(cfg, workers=[], hub=FrameHub(), tallies={}, engine=lambda: None, publisher=lambda: pub,
                    status=dict)
    ready = view.readiness()
    assert ready.ready is False
    assert "results cannot be stored: disk full under /var/lib/ovedge" in ready.reasons
    doc = view.status()
    assert (doc["state"], doc["reason"]) == ("degraded", "disk full under /var/lib/ovedge")


def test_readiness_names_the_storage_problem_it_saw_while_the_health_changes(
        write_config: Callable[..., Path]) -> None:
    """The spool writer turns the publisher's health degraded (with the reason) and online again
    while /readyz is answered in an HTTP thread: a reason is only ever the one that was set, never
    "results cannot be stored: None" from a health that turned online between two reads. The
    switch interval is cut so that the writer interleaves with the readers inside ``readiness`` (tests/racing.py)."""
    from daemon.publisher import Publisher

    cfg = load_config(write_config(http={"enabled": True}))
    pub = Publisher(cfg, dict)  # never connected: set_health only records (nothing to publish to)
    view = LiveView(cfg, workers=[], hub=FrameHub(), tallies={}, engine=lambda: None, publisher=lambda: pub,
                    status=dict)
    expected = {"the model is not loaded yet", "not connected to the MQTT broker",
                "results cannot be stored: disk full"}

    def storage() -> None:
        pub.set_health("degraded", "disk full")
        pub.set_health("online", None)

    def read() -> None:
        reasons = set(view.readiness().reasons)
        assert reasons <= expected, reasons

    assert interleave([storage], read) == []
