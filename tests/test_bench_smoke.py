"""Smoke test of the speed benchmark: one row kind, the demo model, FP32, quick mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_engine_rows_write_wellformed_json_and_markdown(tmp_path: Path) -> None:
    """`run.py --quick --rows engine` converts the demo model and writes latest.json/.md with real figures."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--models", "demo",
         "--precisions", "fp32", "--rows", "engine", "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]

    result = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert result["meta"]["quick"] is True
    rows = result["rows"]
    assert {(r["model"], r["precision"], r["runner"], r["hint"]) for r in rows} == {
        ("demo", "fp32", "engine loop", "throughput"),
        ("demo", "fp32", "engine loop", "latency"),
    }
    for r in rows:
        assert r["fps"] > 0 and r["median_ms"] > 0 and r["frames"] >= 40 and r["cpu_ms_per_frame"] > 0
    assert result["models"]["demo"]["conversions"]["fp32"]["parity"]["passed"] is True
    assert result["targets"] == []  # no benchmark_app rows asked for: nothing to judge against

    md = (out / "latest.md").read_text(encoding="utf-8")
    table = [line for line in md.splitlines() if line.startswith("| demo |")]
    assert len(table) == 2
    assert all(line.count("|") == 10 for line in table)


@pytest.mark.slow
def test_stages_cut_the_real_daemon_and_write_wellformed_json_and_markdown(tmp_path: Path, demo_store: Path) -> None:
    """`stages.py` runs benchmark_app, the engine loop, the daemon cut after inference and after judging,
    and the whole daemon through Mosquitto, each on the same IR, and tables their ratios."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stages.py"), str(demo_store), "demo", "1",
         "--frames", "4000", "--rounds", "1", "--bapp-seconds", "2", "--out", str(out)],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]

    doc = json.loads((out / "stages.json").read_text(encoding="utf-8"))
    (only,) = doc["rounds"]
    assert set(only["ratios"]) == {"infer", "capture+infer", "+judge", "e2e"}
    for stage in ("benchmark_app", "infer", "capture+infer", "+judge", "e2e"):
        assert only[stage]["fps"] > 0 and only[stage]["cpu_ms_per_frame"] > 0, stage
    # The cut stages ran the daemon's own threads; only the whole daemon ran the delivery threads.
    for stage in ("capture+infer", "+judge"):
        threads = only[stage]["thread_cpu_ms_per_frame"]
        assert threads["camera-cam0"] > 0 and threads["dispatch"] > 0
        assert threads.get("spool-writer", 0.0) < 0.01  # idle: wakes only to look at an empty queue
    assert only["e2e"]["thread_cpu_ms_per_frame"]["spool-writer"] > 0
    assert set(only["e2e"]["verdicts"]) <= {"OK", "NG"}

    md = (out / "stages.md").read_text(encoding="utf-8")
    stages = ("| infer |", "| capture+infer |", "| +judge |", "| e2e |")
    rows = [line for line in md.splitlines() if line.startswith(stages)]
    assert len(rows) == 4 and all(line.count("|") == 4 for line in rows)
