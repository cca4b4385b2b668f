"""Trigger-to-result latency of triggered inspection with pylon's emulated Basler camera (issue 10).

A real daemon (``daemon.app.Daemon``, this process) with the demo IR, a real Mosquitto on a free
port, and one camera: ``type = "basler"`` with ``software_trigger = true`` (``PYLON_CAMEMU``),
``mode = "triggered"``. Triggers go through ``Daemon.trigger`` one at a time (the next once the
previous result arrived), as a PLC cycle would. Two figures per trigger:

* ``client_ms``: ``Daemon.trigger()`` called -> the result received by an MQTT subscriber (what the
  line sees: software trigger, exposure, grab, inference, decision, QoS 1 publish, broker);
* ``daemon_ms``: the result's own ``timings.trigger_to_result_ms`` (trigger -> verdict decided).

Writes ``benchmarks/results/trigger_latency.json`` and ``.md``. Nothing here asserts on time.

    .venv/bin/python benchmarks/trigger_latency.py [--triggers 200] [--roi 640x480] [--store DIR]

Without ``--store`` the committed demo checkpoint is converted first (``ovedge-convert``, as the tests do).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYLON_CAMEMU", "1")

from daemon.app import Daemon  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.result import ResultRecord  # noqa: E402
from tests.configs import write_config  # noqa: E402
from tests.conftest import DEMO_CONVERT_ARGS  # noqa: E402
from tools.mosquitto import Mosquitto  # noqa: E402
from tools.subscriber import Subscriber  # noqa: E402

GUARD = 60.0


def convert_demo(store: Path) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "ovedge-convert"), str(ROOT / "models/demo/defectnet.pt"),
         "--labels", str(ROOT / "models/demo/labels.txt"), *DEMO_CONVERT_ARGS, "--out", str(store)],
        check=True, cwd=ROOT, capture_output=True,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "p99": round(pct(values, 0.99), 2),
            "min": round(min(values), 2), "max": round(max(values), 2)}


def measure(store: Path, work: Path, triggers: int, roi: tuple[int, int]) -> dict[str, Any]:
    arrived: dict[str, float] = {}
    records: dict[str, ResultRecord] = {}
    got = threading.Condition()

    def on_message(topic: str, payload: bytes, _retained: bool) -> None:
        if topic.endswith("/result"):
            now = time.monotonic()
            record = ResultRecord.model_validate_json(payload)
            with got:
                arrived[record.trigger_id or ""] = now
                records[record.trigger_id or ""] = record
                got.notify_all()

    with Mosquitto() as broker, Subscriber(broker.port, ["bench/st/+/result"], on_message=on_message):
        cfg = load_config(write_config(
            work,
            station={"name": "st", "topic_prefix": "bench"},
            model={"store": store, "name": "demo", "cache_dir": work / "cache"},
            cameras=[{"id": "basler", "mode": "triggered", "trigger_timeout": 10,
                      "source": {"type": "basler", "software_trigger": True, "roi": [0, 0, *roi]}}],
            mqtt={"port": broker.port, "stats_interval": 0},
            state={"dir": work / "state"},
        ))
        daemon = Daemon(cfg)
        stop = threading.Event()
        client_ms: list[float] = []
        failed: list[BaseException] = []

        def wait_for(tid: str) -> None:
            with got:
                if not got.wait_for(lambda: tid in arrived, GUARD):
                    raise TimeoutError(f"no result for trigger {tid}")

        def drive() -> None:
            try:
                daemon.ready.wait(GUARD)
                for i in range(triggers + 5):  # the first 5 warm up the path and are not counted
                    started = time.monotonic()
                    tid = daemon.trigger("basler", f"bench-{i}")
                    wait_for(tid)
                    if i >= 5:
                        client_ms.append((arrived[tid] - started) * 1e3)
            except BaseException as exc:  # reported below
                failed.append(exc)
            finally:
                stop.set()

        thread = threading.Thread(target=drive, name="bench-driver")
        thread.start()
        daemon.run(stop)
        thread.join()
        if failed:
            raise failed[0]
    counted = list(records.values())[5:]
    daemon_ms = [r.timings.trigger_to_result_ms or 0.0 for r in counted]
    inference_ms = [r.timings.inference_ms for r in counted]
    errors = sum(r.verdict.value == "ERROR" for r in counted)
    return {
        "triggers": triggers,
        "errors": errors,
        "frame": f"{roi[0]}x{roi[1]} Mono8 (emulated Basler, software trigger)",
        "client_ms": summary(client_ms),
        "daemon_ms": summary(daemon_ms),
        "inference_ms": summary(inference_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--triggers", type=int, default=200)
    parser.add_argument("--roi", default="640x480", help="frame size WxH cut from the emulated sensor")
    parser.add_argument("--store", type=Path, help="a model store holding demo (default: convert it)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "trigger_latency.json")
    args = parser.parse_args()
    w, h = (int(v) for v in args.roi.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = args.store
        if store is None:
            store = work / "store"
            convert_demo(store)
        result = measure(store, work, args.triggers, (w, h))
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                         "python": platform.python_version()}
    result["command"] = "benchmarks/trigger_latency.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    c, d, i = result["client_ms"], result["daemon_ms"], result["inference_ms"]
    md = (
        "# Trigger-to-result latency, emulated Basler (pylon CAMEMU), demo IR on CPU\n\n"
        f"`{result['command']}` — {result['triggers']} triggers one at a time, {result['frame']}, "
        f"{result['errors']} ERROR results.\n\n"
        "| figure | median ms | p99 ms | min | max |\n|---|---|---|---|---|\n"
        f"| trigger() -> result at an MQTT subscriber | {c['median']} | {c['p99']} | {c['min']} | {c['max']} |\n"
        f"| trigger -> verdict decided (result's trigger_to_result_ms) | {d['median']} | {d['p99']} | {d['min']} "
        f"| {d['max']} |\n"
        f"| of which inference (request latency) | {i['median']} | {i['p99']} | {i['min']} | {i['max']} |\n"
    )
    args.out.with_suffix(".md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
