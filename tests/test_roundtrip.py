"""The walking skeleton end to end: checkpoint -> ovedge-convert -> ovedged -> MQTT subscriber."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from camera.synthetic import DefectGenerator
from daemon.result import ResultRecord, Verdict
from tests.configs import write_config
from tests.waiting import receive_all, wait_until
from tools.subscriber import Subscriber

FRAMES = 60
SEED = 3
BIN = Path(sys.executable).parent


def _config(folder: Path, *, store: Path, port: int, state: Path, count: int | None = FRAMES, fps: float = 0,
            more_cameras: tuple[dict[str, Any], ...] = ()) -> Path:
    camera = {
        "id": "cam0",
        "mode": "every-frame",
        "source": {"type": "synthetic", "seed": SEED, "fps": fps, **({} if count is None else {"count": count})},
    }
    return write_config(
        folder,
        station={"name": "st-test", "topic_prefix": "ovt"},
        model={"store": store, "name": "demo", "cache_dir": state / "cache"},
        cameras=[camera, *more_cameras],
        mqtt={"port": port, "connect_timeout": 5},
        state={"dir": state},
    )


def test_checkpoint_to_mqtt_round_trip(demo_store: Path, broker, tmp_path: Path, repo_root: Path) -> None:
    """Every frame of the synthetic camera arrives as a valid result whose verdict matches the injected defect."""
    cfg = _config(tmp_path, store=demo_store, port=broker.port, state=tmp_path / "state")
    prefix = "ovt/st-test"
    with Subscriber(broker.port, [f"{prefix}/#"]) as sub:
        proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(cfg)], cwd=repo_root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        results: list[ResultRecord] = []
        statuses: list[dict] = []
        deadline = time.monotonic() + 300  # a hang guard, not a speed requirement
        while len(results) < FRAMES and time.monotonic() < deadline and proc.poll() is None:
            for topic, payload, _retained in sub.drain():
                if topic == f"{prefix}/cam0/result":
                    results.append(ResultRecord.model_validate_json(payload))
                elif topic == f"{prefix}/status":
                    statuses.append(json.loads(payload))
            time.sleep(0.05)

        def copy_announced() -> bool:  # the retained status says when the static-shape copy serves
            statuses.extend(json.loads(p) for t, p, _ in sub.drain() if t == f"{prefix}/status")
            return any(s["model"].get("static_shapes") for s in statuses if s.get("model"))

        announced = wait_until(copy_announced)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

        def stopped() -> bool:  # the last status, sent before the daemon exited; the subscriber may lag
            statuses.extend(json.loads(p) for t, p, _ in sub.drain() if t == f"{prefix}/status")
            return statuses[-1]["state"] == "stopped"

        wait_until(stopped)

    assert len(results) == FRAMES, f"got {len(results)} results; daemon log:\n{err[-2000:]}"
    seqs = [r.seq for r in results]
    assert len(set(seqs)) == FRAMES and seqs == sorted(seqs), "sequence numbers must be unique and increasing"
    assert sorted(r.frame.index for r in results) == list(range(FRAMES)), "every-frame mode skips nothing"
    gen = DefectGenerator(SEED, 256, 256, 0.5)
    agree = 0
    for r in results:
        truth = gen.render(r.frame.index)[1]
        assert gen.label(r.frame.index) == truth.label
        assert r.model.name == "demo" and r.model.version == 1 and r.model.device == "CPU"
        assert r.verdict in (Verdict.OK, Verdict.NG), r.error
        agree += (r.verdict is Verdict.NG) == truth.defective
        if r.verdict is Verdict.NG:
            assert r.defects and all(d.label != "ok" for d in r.defects)
    assert agree / FRAMES >= 0.9, f"verdicts match the injected defects for only {agree}/{FRAMES} frames"
    assert statuses and statuses[0]["state"] == "online"
    assert statuses[-1]["state"] == "stopped" and statuses[-1]["reason"] == "shutdown", statuses[-1]
    assert announced, "no retained status listed the static-shape copy"
    assert [s for s in statuses if s.get("model")][-1]["model"]["static_shapes"] == ["256x256x3"]
    assert "Traceback" not in err


def test_the_retained_status_says_when_the_static_copy_serves(demo_store: Path, broker, tmp_path: Path,
                                                              repo_root: Path) -> None:
    """A camera at 5 fps that never ends (no state change after its first frame): the static-shape copy
    of the model for its 256x256 frames is compiled in the background, and the retained status lists
    it (republished when the copy serves rather than at the next 10 s refresh: the engine's
    ``on_static`` call is pinned in test_pipeline_parts)."""
    cfg = _config(tmp_path, store=demo_store, port=broker.port, state=tmp_path / "state", count=None, fps=5)
    topic = "ovt/st-test/status"
    with Subscriber(broker.port, [topic]) as sub:
        proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(cfg)], cwd=repo_root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        models: list[dict[str, Any]] = []

        def listed() -> bool:
            models.extend(m for _, p, _ in sub.drain() if (m := json.loads(p).get("model")))
            return any(m["static_shapes"] for m in models) or proc.poll() is not None

        assert wait_until(listed)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert models[0]["static_shapes"] == []  # the first status: the dynamic model serves
    assert models[-1]["static_shapes"] == ["256x256x3"]
    assert "Traceback" not in err


def test_unreachable_broker_is_one_line_error(demo_store: Path, tmp_path: Path, repo_root: Path) -> None:
    """With nothing listening on the configured port, ovedged exits non-zero with one line naming host:port."""
    from tools.mosquitto import free_port

    port = free_port()
    cfg = _config(tmp_path, store=demo_store, port=port, state=tmp_path / "state")
    done = subprocess.run([str(BIN / "ovedged"), "run", "--config", str(cfg)], capture_output=True, text=True,
                          cwd=repo_root, timeout=120, check=False, env={**os.environ, "JOURNAL_STREAM": ""})
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("ovedged: error:")]
    assert len(errors) == 1, done.stderr
    assert f"127.0.0.1:{port}" in errors[0] and "unreachable" in errors[0]
    assert "Traceback" not in done.stderr


def test_two_cameras_share_one_model_until_their_sources_end(demo_store: Path, broker, tmp_path: Path,
                                                             repo_root: Path) -> None:
    """A synthetic camera and an image folder share one compiled model; each gets every frame on its own topic."""
    import cv2

    folder = tmp_path / "parts"
    folder.mkdir()
    gen = DefectGenerator(11, 320, 240, 0.5)
    truth = {}
    for i in range(8):
        image, t = gen.render(i)
        cv2.imwrite(str(folder / f"part-{i:03d}.png"), image)
        truth[f"part-{i:03d}.png"] = t.defective
    folder_camera = {
        "id": "cam1", "mode": "every-frame", "source": {"type": "folder", "path": folder, "pattern": "*.png"}
    }
    cfg = _config(tmp_path, store=demo_store, port=broker.port, state=tmp_path / "state", count=12,
                  more_cameras=(folder_camera,))
    with Subscriber(broker.port, ["ovt/st-test/+/result"]) as sub:
        done = subprocess.run([str(BIN / "ovedged"), "run", "--config", str(cfg), "--until-sources-end"],
                              capture_output=True, text=True, cwd=repo_root, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        got = receive_all(sub, 20, ResultRecord.model_validate_json)
    by_cam = {cam: [r for r in got if r.camera == cam] for cam in ("cam0", "cam1")}
    assert len(by_cam["cam0"]) == 12
    assert sorted(r.frame.ref or "" for r in by_cam["cam1"]) == sorted(truth)
    assert all(r.frame.width == 320 and r.frame.height == 240 for r in by_cam["cam1"])
    agree = sum((r.verdict is Verdict.NG) == truth[Path(r.frame.ref or "").name] for r in by_cam["cam1"])
    assert agree >= 7, [(r.frame.ref, r.verdict) for r in by_cam["cam1"]]
    assert len({r.seq for r in got}) == len(got) == 20


def test_stop_mid_stream_publishes_every_frame_that_entered_once(demo_store: Path, broker, tmp_path: Path) -> None:
    """Stopping while frames are in flight at full speed (every-frame camera, many results per
    batch): every frame that entered the pipeline is published exactly once, in capture order
    without a gap, with unique increasing sequence numbers, and the daemon's verdict count equals
    what the subscriber received."""
    import threading

    from daemon.app import Daemon
    from daemon.config import load_config

    cfg = load_config(_config(tmp_path, store=demo_store, port=broker.port, state=tmp_path / "state", count=0))
    daemon = Daemon(cfg)
    stop = threading.Event()
    got: list[ResultRecord] = []

    def stop_after_100(sub: Subscriber) -> None:
        deadline = time.monotonic() + 300  # a hang guard, not a speed requirement
        while len(got) < 100 and time.monotonic() < deadline:
            got.extend(ResultRecord.model_validate_json(p) for _, p, _ in sub.drain())
            time.sleep(0.01)
        stop.set()  # what SIGTERM does in the CLI

    with Subscriber(broker.port, ["ovt/st-test/cam0/result"]) as sub:
        watcher = threading.Thread(target=stop_after_100, args=(sub,), name="test-stopper")
        watcher.start()
        assert daemon.run(stop) == 0  # in this thread: the daemon installs its SIGHUP handler
        watcher.join()
        # every judged result was PUBACKed before run() returned
        got += receive_all(sub, sum(daemon.verdicts.values()) - len(got), ResultRecord.model_validate_json)
    indices = [r.frame.index for r in got]
    assert len(got) >= 100
    assert sorted(indices) == list(range(len(got)))  # no frame lost, none twice
    seqs = [r.seq for r in got]
    assert len(set(seqs)) == len(seqs)
    assert sum(daemon.verdicts.values()) == len(got)
    assert all(r.verdict in (Verdict.OK, Verdict.NG) for r in got)
