"""Smoke test of benchmarks/camera_recovery.py: one round of each scenario writes a well-formed JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_one_round_writes_reconnect_stall_and_trigger_figures(tmp_path: Path) -> None:
    """`camera_recovery.py --rounds 1` runs the real RTSP, MJPEG and emulated Basler scenarios and records them."""
    out = tmp_path / "cameras.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "camera_recovery.py"), "--rounds", "1", "--down", "0.5",
         "--stall-timeout", "0.5", "--triggers", "10", "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["rtsp"]["reconnects"] == 1 and len(result["rtsp"]["reconnect_s"]["rounds"]) == 1
    assert result["rtsp"]["reconnect_s"]["median"] > 0 and result["rtsp"]["outage_s"]["median"] > 0
    assert result["mjpeg"]["reconnects"] == 1 and result["mjpeg"]["stall_timeout_s"] == 0.5
    assert result["mjpeg"]["detect_s"]["median"] > 0
    assert result["basler_trigger"]["triggers"] == 10 and result["basler_trigger"]["median_ms"] > 0


def test_trigger_latency_benchmark_writes_json_and_markdown(tmp_path: Path, demo_store: Path) -> None:
    """`trigger_latency.py --triggers 5` runs the emulated Basler through a real daemon and broker and records
    client and daemon latencies for every trigger, with no ERROR result."""
    out = tmp_path / "trigger_latency.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "trigger_latency.py"), "--triggers", "5", "--roi", "320x240",
         "--store", str(demo_store), "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["triggers"] == 5 and result["errors"] == 0
    assert result["client_ms"]["median"] > 0 and result["daemon_ms"]["median"] <= result["client_ms"]["max"]
    assert "| trigger() -> result at an MQTT subscriber |" in out.with_suffix(".md").read_text(encoding="utf-8")
