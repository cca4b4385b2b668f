"""Triggered inspection end to end: a real daemon (in this process), the demo IR, a real Mosquitto.

The daemon runs in the test's main thread (it installs its SIGHUP handler there); a driver thread
triggers, collects the results from the broker and stops it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PYLON_CAMEMU", "2")  # before pylon's transport layers are first enumerated

from daemon.app import Daemon
from daemon.config import load_config
from daemon.result import ResultRecord, Verdict
from daemon.triggers import CameraNotTriggeredError, UnknownCameraError
from tests.configs import write_config
from tests.daemon.in_process import run_beside
from tools.request import Requester
from tools.subscriber import Subscriber

HANG_GUARD = 120.0  # seconds: only against a hung test, never a speed threshold


def run_daemon(cfg_path: Path, drive: Callable[[Daemon], None]) -> None:
    """Run ``Daemon.run`` here; ``drive(daemon)`` in a thread once it is ready, then stop it."""
    run_beside(Daemon(load_config(cfg_path)), drive)


def results_until(sub: Subscriber, pred: Callable[[list[ResultRecord]], bool], got: list[ResultRecord]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        got += [ResultRecord.model_validate_json(p) for t, p, _ in sub.drain() if t.endswith("/result")]
        if pred(got):
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting; {len(got)} results so far")


@pytest.fixture
def config(tmp_path: Path, demo_store: Path, broker: Any) -> Callable[..., Path]:
    def make(cameras: list[dict[str, Any]], **extra: Any) -> Path:
        return write_config(
            tmp_path,
            station={"name": "st-trig", "topic_prefix": "ovt"},
            model={"store": demo_store, "name": "demo", "cache_dir": tmp_path / "cache"},
            cameras=cameras,
            mqtt={"port": broker.port, "connect_timeout": 5, "stats_interval": 0.5},
            state={"dir": tmp_path / "state"},
            **extra,
        )

    return make


@pytest.fixture
def sub(broker: Any) -> Iterator[Subscriber]:
    with Subscriber(broker.port, ["ovt/st-trig/#"]) as s:
        yield s


def test_100_triggers_give_100_results_with_their_part_ids(config, sub: Subscriber, tmp_path: Path) -> None:
    """50 triggers through Daemon.trigger and 50 trigger files: exactly one judged result per trigger,
    carrying its part id and trigger id; nothing is inspected before the first trigger."""
    folder = tmp_path / "triggers"
    cfg = config([{"id": "cam", "mode": "triggered", "trigger_folder": folder, "trigger_queue": 200,
                   "trigger_timeout": 60, "source": {"type": "synthetic", "seed": 4, "fps": 0}}])
    got: list[ResultRecord] = []
    ids: dict[str, str] = {}

    def drive(daemon: Daemon) -> None:
        time.sleep(1.0)
        assert [p for t, p, _ in sub.drain() if t.endswith("/result")] == []  # no trigger, no inspection
        for i in range(50):
            ids[daemon.trigger("cam", f"api-{i:03d}")] = f"api-{i:03d}"
        for i in range(50):
            (folder / f".f{i:03d}").write_text(f"  file-{i:03d}\n", encoding="utf-8")
            (folder / f".f{i:03d}").rename(folder / f"f{i:03d}.trg")
        results_until(sub, lambda r: len(r) >= 100, got)
        time.sleep(1.0)  # a duplicate would arrive now
        results_until(sub, lambda r: True, got)

    run_daemon(cfg, drive)
    parts = [r.part_id for r in got]
    assert len(got) == 100 and len(set(parts)) == 100
    assert set(parts) == {f"api-{i:03d}" for i in range(50)} | {f"file-{i:03d}" for i in range(50)}
    assert all(ids[r.trigger_id] == r.part_id for r in got if r.part_id and r.part_id.startswith("api-"))
    assert len({r.trigger_id for r in got}) == 100
    assert all(r.verdict in (Verdict.OK, Verdict.NG) and r.frame.ref == r.part_id for r in got)
    assert len({r.frame.index for r in got}) == 100  # one frame per trigger
    assert all(r.timings.trigger_to_result_ms is not None for r in got)
    assert list(folder.iterdir()) == []  # every trigger file taken


def test_inspect_command_triggers_a_triggered_camera(config, sub: Subscriber, broker: Any) -> None:
    """cmd/inspect on a triggered camera goes through Daemon.trigger: the answer is that trigger's result
    (trigger id, part id, frame.ref = part id), the same result (same seq and trigger id) is published on
    the result topic, and nothing else is inspected."""
    cfg = config([{"id": "cam", "mode": "triggered", "trigger_timeout": 60,
                   "source": {"type": "synthetic", "seed": 5, "fps": 0}}],
                 commands={"enabled": True, "inspect_timeout": 60})
    answers: list[dict[str, Any]] = []
    got: list[ResultRecord] = []

    def drive(daemon: Daemon) -> None:
        with Requester(broker.port, station="st-trig", prefix="ovt") as req:
            answers.append(req.ask("inspect", {"camera": "cam", "part_id": "cmd-1"}, timeout=HANG_GUARD))
        results_until(sub, lambda r: len(r) >= 1, got)
        time.sleep(1.0)  # a second (wrong) inspection would arrive now
        results_until(sub, lambda r: True, got)

    run_daemon(cfg, drive)
    assert answers[0]["ok"] is True, answers[0]
    answered = ResultRecord.model_validate(answers[0]["result"])
    assert answered.trigger_id is not None and answered.part_id == "cmd-1" and answered.frame.ref == "cmd-1"
    assert answered.verdict in (Verdict.OK, Verdict.NG)
    assert [(r.seq, r.trigger_id, r.part_id) for r in got] == [(answered.seq, answered.trigger_id, "cmd-1")]


def test_emulated_basler_software_trigger_among_other_cameras(config, sub: Subscriber, tmp_path: Path) -> None:
    """A pylon-emulated Basler in triggered mode (ExecuteSoftwareTrigger) and a simulated GenICam camera in
    triggered mode without a software trigger (its next frame), beside a free-running synthetic camera and an
    image folder: each trigger is one result with its part id; the other cameras run on."""
    import genicam

    parts = tmp_path / "parts"
    parts.mkdir()
    import cv2

    from camera.synthetic import DefectGenerator

    for i in range(3):
        cv2.imwrite(str(parts / f"p{i}.png"), DefectGenerator(2, 128, 128, 0.5).render(i)[0])
    cfg = config([
        {"id": "basler", "mode": "triggered", "trigger_timeout": 10,
         "source": {"type": "basler", "software_trigger": True, "roi": [0, 0, 320, 240]}},
        {"id": "synthetic", "source": {"type": "synthetic", "seed": 3, "fps": 10}},
        {"id": "folder", "mode": "every-frame", "source": {"type": "folder", "path": parts}},
        {"id": "genicam", "mode": "triggered", "trigger_timeout": 10,
         "source": {"type": "genicam", "cti": Path(genicam.__file__).parent / "viky.cti", "index": 1}},
    ])
    got: list[ResultRecord] = []
    sent: dict[str, str] = {}
    gsent: dict[str, str] = {}

    def drive(daemon: Daemon) -> None:
        results_until(sub, lambda r: sum(x.camera == "synthetic" for x in r) >= 5, got)
        assert not [r for r in got if r.camera == "basler"]  # nothing before a trigger
        for i in range(20):
            sent[daemon.trigger("basler", f"part-{i}")] = f"part-{i}"
            if i % 4 == 0:
                gsent[daemon.trigger("genicam", f"g-{i}")] = f"g-{i}"
            time.sleep(0.02)
        results_until(sub, lambda r: sum(x.camera == "basler" for x in r) >= 20
                      and sum(x.camera == "genicam" for x in r) >= 5
                      and sum(x.camera == "folder" for x in r) >= 3, got)
        time.sleep(0.5)
        results_until(sub, lambda r: True, got)

    run_daemon(cfg, drive)
    basler = [r for r in got if r.camera == "basler"]
    assert sorted(r.part_id or "" for r in basler) == sorted(sent.values())
    assert all(sent[r.trigger_id or ""] == r.part_id for r in basler)
    assert all(r.verdict is not Verdict.ERROR and (r.frame.width, r.frame.height) == (320, 240) for r in basler)
    gen = [r for r in got if r.camera == "genicam"]
    assert {r.trigger_id: r.part_id for r in gen} == gsent
    assert all(r.verdict is not Verdict.ERROR and (r.frame.width, r.frame.height) == (400, 400) for r in gen)
    assert sum(r.camera == "folder" for r in got) == 3
    assert all(r.part_id is None and r.trigger_id is None for r in got if r.camera in ("synthetic", "folder"))


def test_triggers_the_camera_cannot_serve_are_error_results(config, sub: Subscriber) -> None:
    """A Basler waiting for a hardware line that never fires: each trigger ends as ERROR with its part id,
    either refused at once (queue full) or after trigger_timeout; unknown or untriggered cameras are refused."""
    cfg = config([
        {"id": "line", "mode": "triggered", "trigger_timeout": 1.0, "trigger_queue": 2,
         "source": {"type": "basler", "nodes": {"TriggerSelector": "FrameStart", "TriggerMode": "On",
                                                "TriggerSource": "Line1"}}},
        {"id": "free", "source": {"type": "synthetic", "fps": 5}},
    ])
    got: list[ResultRecord] = []

    def drive(daemon: Daemon) -> None:
        with pytest.raises(UnknownCameraError) as unknown:
            daemon.trigger("nope", "x")
        assert unknown.value.camera == "nope" and "line" in unknown.value.known
        with pytest.raises(CameraNotTriggeredError):
            daemon.trigger("free", "x")
        for i in range(6):
            daemon.trigger("line", f"p{i}")
        results_until(sub, lambda r: sum(x.camera == "line" for x in r) >= 6, got)

    run_daemon(cfg, drive)
    line = [r for r in got if r.camera == "line"]
    assert sorted(r.part_id or "" for r in line) == [f"p{i}" for i in range(6)]
    assert all(r.verdict is Verdict.ERROR and r.frame.index == -1 for r in line)
    refused = [r for r in line if "already waiting" in (r.error or "")]
    late = [r for r in line if "did not deliver within trigger_timeout 1 s" in (r.error or "")]
    assert len(refused) in (3, 4) and len(refused) + len(late) == 6, [r.error for r in line]


def test_a_defect_in_one_crop_is_found_with_its_box_in_frame_pixels(config, sub: Subscriber, tmp_path: Path) -> None:
    """A 2x2 mosaic of synthetic parts, one with a defect, inferred as 4 crops: one NG result whose defects all
    lie in the defective crop, in frame pixels (a classifier's finding on a crop is boxed by the crop)."""
    import cv2
    import numpy as np

    from camera.synthetic import DefectGenerator

    gen = DefectGenerator(5, 256, 256, 0.5)
    ok = [i for i in range(40) if gen.label(i) == "ok"][:3]
    bad = next(i for i in range(40) if gen.label(i) != "ok")
    tiles = [gen.render(i)[0] for i in ok]
    tiles.insert(3, gen.render(bad)[0])  # bottom right
    mosaic = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    folder = tmp_path / "mosaic"
    folder.mkdir()
    cv2.imwrite(str(folder / "m.png"), mosaic)
    crops = [[0, 0, 256, 256], [256, 0, 512, 256], [0, 256, 256, 512], [256, 256, 512, 512]]
    cfg = config([{"id": "tiles", "mode": "every-frame", "crops": crops, "source": {"type": "folder", "path": folder}}])
    got: list[ResultRecord] = []
    run_daemon(cfg, lambda _d: results_until(sub, lambda r: len(r) >= 1, got))
    assert len(got) == 1
    (result,) = got
    assert result.verdict is Verdict.NG and (result.frame.width, result.frame.height) == (512, 512)
    x0, y0, x1, y1 = gen.render(bad)[1].defects[0].box  # in the tile; the tile sits at (256, 256)
    assert result.defects and all(d.box == (256, 256, 512, 512) for d in result.defects)
    assert all(b[0] <= x0 + 256 and b[1] <= y0 + 256 and x1 + 256 <= b[2] and y1 + 256 <= b[3]
               for b in (d.box for d in result.defects) if b is not None)
    assert gen.label(bad) in {d.label for d in result.defects}


def test_camera_status_topic_follows_a_stream_going_down_and_back(config, sub: Subscriber) -> None:
    """An MJPEG camera whose server hangs: its retained <camera>/status goes online -> stalled -> online, the
    reconnect counted; the other camera's status stays online; periodic stats carry both cameras."""
    import json

    import cv2

    from camera.synthetic import DefectGenerator
    from tools.mjpeg_server import MjpegServer

    jpg = cv2.imencode(".jpg", DefectGenerator(1, 128, 128, 0.5).render(0)[0])[1].tobytes()
    with MjpegServer([jpg], fps=20) as server:
        cfg = config([
            {"id": "mjpeg", "source": {"type": "stream", "url": server.url, "stall_timeout": 1.0}},
            {"id": "synth", "source": {"type": "synthetic", "fps": 5}},
        ])
        seen: list[tuple[str, dict[str, Any]]] = []

        def statuses() -> list[str]:
            seen.extend((t, json.loads(p)) for t, p, _ in sub.drain() if t.endswith(("/status", "/stats")))
            return [b["state"] for t, b in seen if t == "ovt/st-trig/mjpeg/status"]

        def until(pred: Callable[[list[str]], bool]) -> None:
            deadline = time.monotonic() + HANG_GUARD
            while not pred(statuses()):
                assert time.monotonic() < deadline, statuses()
                time.sleep(0.05)

        def drive(_daemon: Daemon) -> None:
            until(lambda s: "online" in s)
            server.stall()
            until(lambda s: "stalled" in s)
            server.resume()
            until(lambda s: s[-1] == "online" and "stalled" in s)
            until(lambda _s: any(t.endswith("/stats") for t, _ in seen))

        run_daemon(cfg, drive)
        statuses()
    states = [b for t, b in seen if t == "ovt/st-trig/mjpeg/status"]
    names = [b["state"] for b in states]
    back = names.index("online", names.index("stalled"))
    assert states[back]["reconnects"] >= 1 and states[back]["camera"] == "mjpeg"
    assert "stalled" in (states[names.index("stalled")]["last_error"] or "")
    assert names[-1] == "offline"  # said at shutdown
    synth = [b["state"] for t, b in seen if t == "ovt/st-trig/synth/status"]
    assert "stalled" not in synth and "reconnecting" not in synth
    stats = [b for t, b in seen if t == "ovt/st-trig/stats"]
    assert stats and set(stats[-1]["cameras"]) == {"mjpeg", "synth"}
    assert {"frames", "fps", "dropped", "reconnects", "last_frame_age_s", "state"} <= set(stats[-1]["cameras"]["mjpeg"])
