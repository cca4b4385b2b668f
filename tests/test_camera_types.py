"""Several kinds of camera in one daemon: emulated Basler, simulated GenICam, MJPEG stream, watched folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import genicam

from camera.synthetic import DefectGenerator
from daemon.result import ResultRecord, Verdict
from tests.configs import write_config
from tools.mjpeg_server import MjpegServer
from tools.subscriber import Subscriber

BIN = Path(sys.executable).parent
HANG_GUARD = 300.0


def test_five_kinds_of_camera_share_one_model(demo_store: Path, broker, tmp_path: Path, repo_root: Path) -> None:
    """Each camera's frames become results on its own topic; files dropped into the watched folder are judged once."""
    drop = tmp_path / "drop"
    drop.mkdir()
    gen = DefectGenerator(21, 256, 256, 0.5)
    jpg = cv2.imencode(".jpg", gen.render(0)[0])[1].tobytes()
    viky = Path(genicam.__file__).parent / "viky.cti"
    cameras = [
        {"id": "synthetic", "source": {"type": "synthetic", "seed": 3, "fps": 10}},
        {"id": "basler", "source": {"type": "basler", "roi": [0, 0, 320, 240]}},
        {"id": "genicam", "source": {"type": "genicam", "cti": viky, "index": 2}},
        {"id": "watched", "mode": "every-frame",
         "source": {"type": "folder", "path": drop, "watch": True, "settle": 0.3, "poll": 0.1}},
    ]
    with MjpegServer([jpg], fps=10) as server, Subscriber(broker.port, ["ovt/st-kinds/+/result"]) as sub:
        cameras.append({"id": "mjpeg", "source": {"type": "stream", "url": server.url}})
        cfg = write_config(
            tmp_path,
            station={"name": "st-kinds", "topic_prefix": "ovt"},
            model={"store": demo_store, "name": "demo", "cache_dir": tmp_path / "cache"},
            cameras=cameras,
            mqtt={"port": broker.port, "connect_timeout": 5},
            state={"dir": tmp_path / "state"},
        )
        env = {**os.environ, "PYLON_CAMEMU": "1"}
        proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(cfg)], cwd=repo_root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        results: list[ResultRecord] = []
        dropped = []
        deadline = time.monotonic() + HANG_GUARD
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                results += [ResultRecord.model_validate_json(p) for _, p, _ in sub.drain()]
                cams = {r.camera for r in results}
                if len(dropped) < 3 and {"synthetic", "basler", "genicam", "mjpeg"} <= cams:
                    name = f"part{len(dropped)}.png"  # written under a dot-name, then renamed into place
                    cv2.imwrite(str(drop / f".{name}"), gen.render(len(dropped) + 1)[0])
                    (drop / f".{name}").rename(drop / name)
                    dropped.append(name)
                if len(dropped) == 3 and sum(r.camera == "watched" for r in results) >= 3:
                    break
                time.sleep(0.1)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(1.0)  # a repeat of a watched file would show up now
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=120)
        results += [ResultRecord.model_validate_json(p) for _, p, _ in sub.drain()]
    assert proc.returncode == 0, err[-3000:]
    kinds = ("synthetic", "basler", "genicam", "mjpeg", "watched")
    by_cam = {cam: [r for r in results if r.camera == cam] for cam in kinds}
    for cam, got in by_cam.items():
        assert got, f"no result from {cam}; log:\n{err[-3000:]}"
        assert all(r.verdict in (Verdict.OK, Verdict.NG) for r in got), (cam, [r.error for r in got])
    assert {(r.frame.width, r.frame.height) for r in by_cam["basler"]} == {(320, 240)}
    assert {(r.frame.width, r.frame.height) for r in by_cam["genicam"]} == {(400, 400)}
    assert sorted(r.frame.ref or "" for r in by_cam["watched"]) == dropped  # each dropped file exactly once
    assert sorted(p.name for p in (drop / "done").iterdir()) == dropped
    assert "Traceback" not in err
