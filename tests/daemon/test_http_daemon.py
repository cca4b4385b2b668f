"""The HTTP API inside the running daemon: ovedged with a synthetic camera, a real broker and a real
HTTP client, from readiness to a clean SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon.http_parts import synthetic_jpeg
from tools.mosquitto import Mosquitto, free_port

BIN = Path(sys.executable).parent


def _metric(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def _wait(predicate, what: str, proc: subprocess.Popen[str], seconds: float = 120.0) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + seconds  # a hang guard, not a speed requirement
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"daemon exited while waiting for {what}"
        try:
            if predicate():
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_daemon_serves_the_api_while_inspecting(demo_store: Path, broker: Mosquitto, tmp_path: Path,
                                                repo_root: Path, write_config: Callable[..., Path]) -> None:
    """With [http] enabled, the daemon answers /healthz and /readyz (ready: model, broker, camera),
    /metrics with moving per-camera counters and the model info, /status as the retained status,
    the camera's latest frame as JPEG, and an ad-hoc /run on the same model; SIGTERM exits 0."""
    port = free_port()
    cfg = write_config(
        station={"name": "st-http"},
        model={"store": demo_store, "cache": False},
        cameras=[{"id": "cam0", "mode": "every-frame", "source": {"type": "synthetic", "seed": 5, "fps": 20}}],
        mqtt={"port": broker.port, "connect_timeout": 5},
        state={"dir": tmp_path / "state"},
        http={"enabled": True, "port": port},
    )
    proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(cfg)], cwd=repo_root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait(lambda: client.get("/healthz").status_code == 200, "liveness", proc)
            _wait(lambda: client.get("/readyz").status_code == 200, "readiness", proc)
            ready = client.get("/readyz").json()
            assert ready["model"] == "demo v1 on CPU"
            assert ready["mqtt_connected"] is True
            assert ready["cameras"] == [{"id": "cam0", "state": "running", "error": None}]

            def inferred() -> float:
                return _metric(client.get("/metrics").text, "ovedge_frames_inferred_total", {"camera": "cam0"}) or 0

            _wait(lambda: inferred() >= 3, "three inferred frames", proc)
            first = inferred()
            _wait(lambda: inferred() > first, "the counter to move", proc)
            text = client.get("/metrics").text
            assert _metric(text, "ovedge_model_info", {"name": "demo", "version": "1", "device": "CPU",
                                                       "requested_device": "CPU"}) == 1
            assert (_metric(text, "ovedge_inference_latency_seconds_count", {"camera": "cam0"}) or 0) >= 3
            assert _metric(text, "ovedge_mqtt_connected", {}) == 1

            status = client.get("/status").json()
            assert status["schema"] == "ovedge.status/1"
            assert status["state"] == "online"
            assert status["station"] == "st-http"
            assert status["model"]["name"] == "demo"

            jpeg = client.get("/cameras/cam0/latest.jpg")
            assert jpeg.status_code == 200
            assert jpeg.content[:2] == b"\xff\xd8"

            adhoc = client.post("/run", files={"file": ("p.jpg", synthetic_jpeg(2), "image/jpeg")})
            assert adhoc.status_code == 200
            assert adhoc.json()["camera"] == "http"
            assert adhoc.json()["station"] == "st-http"
            assert adhoc.json()["seq"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert f"HTTP API on http://127.0.0.1:{port}" in err
