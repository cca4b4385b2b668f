"""How fast cameras come back: RTSP server killed and restarted, HTTP MJPEG stream that stalls (issue 10).

Runs the real capture thread (``daemon.capture.CameraWorker``) against the GStreamer RTSP test
server (``tools/rtsp_server.py``, Debian packages listed in ``tools/rtsp.py``) and the stalling
MJPEG server (``tools/mjpeg_server.py``), and the emulated Basler camera's software trigger.
Writes ``benchmarks/results/cameras.json``. Nothing here asserts on time.

    .venv/bin/python benchmarks/camera_recovery.py [--rounds 5] [--down 2.0] [--stall-timeout 2.0]

Figures, each per round and as median/max:

* ``rtsp.detect_s``: server killed -> the capture thread's read fails;
* ``rtsp.reconnect_s``: server listening again -> first frame from the new connection (includes
  the back-off wait: 1 s doubling to 30 s from the failure, and FFmpeg's RTSP open);
* ``rtsp.outage_s``: server killed -> first frame again (``down`` seconds of it are the outage itself);
* ``mjpeg.detect_s``: last frame the server sent before hanging -> stall reported (``stall_timeout``);
* ``mjpeg.recover_s``: stall reported -> first frame from the new connection (back-off + open);
* ``basler_trigger``: ``trigger()`` -> frame returned by ``read()``, emulated camera, 320x240 Mono8.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYLON_CAMEMU", "1")

import cv2  # noqa: E402

from camera import DefectGenerator  # noqa: E402
from daemon.capture import CameraWorker, Health  # noqa: E402
from daemon.config import CameraConfig  # noqa: E402
from daemon.slots import FrameHub  # noqa: E402
from tools.mjpeg_server import MjpegServer  # noqa: E402
from tools.rtsp import RtspCamera  # noqa: E402

GUARD = 120.0


def _worker(source: dict[str, Any]) -> tuple[CameraWorker, FrameHub[str], threading.Event]:
    hub: FrameHub[str] = FrameHub()
    stop = threading.Event()
    cfg = CameraConfig.model_validate({"id": "bench", "source": source, "mode": "free-run"})
    return CameraWorker(cfg, hub, stop), hub, stop


def _drain_until(hub: FrameHub[str], cond: Any) -> float:
    deadline = time.monotonic() + GUARD
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("hang guard")
        hub.get(timeout=0.01)
    return time.monotonic()


def _summary(values: list[float]) -> dict[str, Any]:
    return {"rounds": [round(v, 3) for v in values], "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def rtsp(rounds: int, down: float) -> dict[str, Any]:
    detect, reconnect, outage = [], [], []
    states: set[str] = set()
    with RtspCamera() as server:
        worker, hub, stop = _worker({"type": "stream", "url": server.url})
        worker.start()
        try:
            _drain_until(hub, lambda: worker.frames >= 10)
            for _ in range(rounds):
                failures = worker.failures
                killed = time.monotonic()
                server.kill()
                _drain_until(hub, lambda f=failures: worker.failures > f)
                states.add(worker.health.value)
                detect.append((worker.last_failure or killed) - killed)
                time.sleep(max(0.0, down - (time.monotonic() - killed)))
                server.start()
                back = time.monotonic()
                n = worker.frames
                first = _drain_until(hub, lambda n=n: worker.frames > n)
                reconnect.append(first - back)
                outage.append(first - killed)
                _drain_until(hub, lambda n=n: worker.frames >= n + 10)
        finally:
            stop.set()
            worker.join(timeout=GUARD)
    return {"down_s": down, "failure_states": sorted(states), "detect_s": _summary(detect),
            "reconnect_s": _summary(reconnect),
            "outage_s": _summary(outage), "reconnects": worker.reconnects}


def mjpeg(rounds: int, stall_timeout: float) -> dict[str, Any]:
    detect, recover = [], []
    jpg = cv2.imencode(".jpg", DefectGenerator(2, 320, 240, 0.5).render(0)[0])[1].tobytes()
    with MjpegServer([jpg], fps=25) as server:
        worker, hub, stop = _worker({"type": "stream", "url": server.url, "stall_timeout": stall_timeout})
        worker.start()
        try:
            _drain_until(hub, lambda: worker.frames >= 10)
            for _ in range(rounds):
                failures = worker.failures
                server.stall()
                stalled = _drain_until(hub, lambda f=failures: worker.failures > f)
                assert worker.health is Health.STALLED, worker.health
                detect.append((worker.last_failure or stalled) - (server.last_sent or stalled))
                server.resume()
                n = worker.frames
                first = _drain_until(hub, lambda n=n: worker.frames > n)
                recover.append(first - (worker.last_failure or stalled))
                _drain_until(hub, lambda n=n: worker.frames >= n + 10)
        finally:
            stop.set()
            worker.join(timeout=GUARD)
    return {"stall_timeout_s": stall_timeout, "detect_s": _summary(detect), "recover_s": _summary(recover),
            "reconnects": worker.reconnects}


def basler_trigger(n: int) -> dict[str, Any]:
    from camera import BaslerSource, BaslerSourceConfig

    latencies = []
    with BaslerSource(BaslerSourceConfig(software_trigger=True, pixel_format="Mono8", roi=(0, 0, 320, 240))) as cam:
        for _ in range(n):
            t = time.monotonic()
            cam.trigger()
            frame = cam.read()
            latencies.append((time.monotonic() - t) * 1000.0)
            if frame is None or frame.error is not None:
                raise RuntimeError(f"trigger gave no usable frame: {frame}")
    ordered = sorted(latencies)
    return {"triggers": n, "median_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(n - 1, int(0.99 * n))], 2), "max_ms": round(ordered[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--down", type=float, default=2.0, help="seconds the RTSP server stays dead")
    parser.add_argument("--stall-timeout", type=float, default=2.0)
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cameras.json")
    args = parser.parse_args()
    result = {
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join(["benchmarks/camera_recovery.py", *sys.argv[1:]]),
        "backoff": "1 s doubling to 30 s after a failure (daemon.capture)",
        "rtsp": rtsp(args.rounds, args.down),
        "mjpeg": mjpeg(args.rounds, args.stall_timeout),
        "basler_trigger": basler_trigger(args.triggers),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
