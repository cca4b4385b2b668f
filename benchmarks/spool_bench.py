"""What the durable spool costs: CPU ms per result, and the delivery path with and without it.

    .venv/bin/python benchmarks/spool_bench.py [--results 3000] [--rounds 3] [--out benchmarks/results]

Two measurements, in alternating rounds in one run (the machine is shared: compare ratios):

* ``spool``: :class:`daemon.spool.Spool` alone in a temp folder, for batch sizes 1, 8 and 64 and
  ``synchronous`` full/normal: ``commit`` (numbering + one transaction per batch) + ``pending``
  (the sender's read) + ``mark`` (PUBACK outcomes, one transaction per batch). CPU ms per result
  is this thread's CPU time (``time.thread_time``); wall ms per batch includes the fsync waits.
* ``delivery path``: prebuilt result drafts pushed at full speed, in batches of 8, through
  (a) :class:`daemon.delivery.Delivery` (``spool-writer``) -> spool -> ``mqtt-send`` -> a private
  Mosquitto, and
  (b) the pre-spool path: number in memory -> ``Publisher.publish_result`` -> the same broker;
  a subscriber in its own process (``listen.py``) counts them (the broker's per-client queue is
  raised so that a slow subscriber does not lose any). Results per second (subscriber
  arrivals) and CPU ms per result of this process (all threads: decide-side, paho, our senders),
  with the ratio spool / no spool.

Writes ``spool.json`` and ``spool.md`` into ``--out``. Nothing asserts on time.
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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from daemon.config import SpoolConfig, load_config  # noqa: E402
from daemon.delivery import Delivery  # noqa: E402
from daemon.publisher import Alarms, Publisher  # noqa: E402
from daemon.result import DefectData, Result, Verdict  # noqa: E402
from daemon.spool import RowState, Spool  # noqa: E402
from tools.mosquitto import Mosquitto  # noqa: E402


def drafts(n: int) -> list[Result]:
    return [Result(
        seq=0, station="bench", camera="cam0", time=1_767_225_600.0, frame_index=i, frame_ref=f"synthetic:3:{i}",
        captured=1_767_225_600.0, width=224, height=224, model_name="resnet18", model_version=1, device="CPU",
        verdict=Verdict.NG if i % 2 else Verdict.OK,
        defects=(DefectData(label="scratch", score=0.93, box=None),) if i % 2 else (),
        inference_ms=25.0, capture_to_result_ms=40.0,
    ) for i in range(n)]


def spool_round(n: int, batch: int, sync: str) -> dict[str, Any]:
    items = drafts(n)
    with tempfile.TemporaryDirectory(prefix="ovedge-spool-bench-") as tmp, \
            Spool(Path(tmp), SpoolConfig(synchronous=sync)) as spool:  # type: ignore[arg-type]
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        cursor = 0
        for i in range(0, n, batch):
            records = spool.commit(items[i:i + batch])
            rows = spool.pending(cursor, batch)
            cursor = rows[-1].seq
            spool.mark([(r.seq, RowState.DELIVERED) for r in records])
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        assert spool.depth == 0
    batches = -(-n // batch)
    return {"cpu_ms_per_result": 1000 * cpu / n, "wall_ms_per_batch": 1000 * wall / batches,
            "results_per_s": n / wall}


def _config(tmp: Path, port: int) -> Any:
    path = tmp / "c.toml"
    path.write_text(f"""
[station]
name = "bench"
[[cameras]]
id = "cam0"
[cameras.source]
type = "synthetic"
[mqtt]
port = {port}
max_inflight = 100
[state]
dir = "{tmp / 'state'}"
[spool]
replay_delay = 0
replay_rate = 100000
""", encoding="utf-8")
    return load_config(path)


def path_round(n: int, *, with_spool: bool) -> dict[str, Any]:
    items = drafts(n)
    # A queue large enough for the subscriber: Mosquitto's default (1000) drops what a slower
    # subscriber has not taken yet, after PUBACK success (docs/MQTT.md); this measures our side.
    with tempfile.TemporaryDirectory(prefix="ovedge-spool-bench-") as tmp_s, \
            Mosquitto(extra="max_queued_messages 1000000") as broker:
        tmp = Path(tmp_s)
        cfg = _config(tmp, broker.port)
        out = tmp / "got.jsonl"
        listener = subprocess.Popen(
            [sys.executable, str(HERE / "listen.py"), "--port", str(broker.port), "--topic", "ovedge/bench/+/result",
             "--count", str(n), "--out", str(out), "--timeout", "300"],
            stdout=subprocess.PIPE, text=True,
        )
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        alarms = Alarms()
        with Spool(cfg.state_dir(), cfg.spool, on_alarm=alarms.raise_) as spool, \
                Publisher(cfg, dict, spool=spool if with_spool else None, alarms=alarms) as pub:
            delivery = Delivery(spool, pub, alarms, batch_ms=cfg.spool.batch_ms).__enter__()
            t0 = os.times()
            seq = 0
            for i in range(0, n, 8):
                batch = items[i:i + 8]
                if with_spool:
                    delivery.submit(batch)
                else:
                    for d in batch:
                        seq += 1
                        pub.publish_result(d.numbered(seq))
                    while pub.outstanding() > cfg.mqtt.max_inflight:  # the old path had paho's window only
                        time.sleep(0.0005)
            try:
                listener.wait(300)
            except subprocess.TimeoutExpired:
                listener.kill()
                listener.wait()
            t1 = os.times()
            delivery.__exit__(None, None, None)
        arrivals = [json.loads(line)["t"] for line in out.read_text(encoding="utf-8").splitlines()]
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    span = max(arrivals) - min(arrivals) if len(arrivals) > 1 else float("nan")
    return {"received": len(arrivals), "results_per_s": (len(arrivals) - 1) / span,
            "cpu_ms_per_result": 1000 * cpu / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    spool_rows: dict[str, list[dict[str, Any]]] = {}
    path_rows: dict[str, list[dict[str, Any]]] = {"spool": [], "no spool": []}
    for r in range(args.rounds):
        for sync in ("full", "normal"):
            for batch in (1, 8, 64):
                spool_rows.setdefault(f"{sync}/{batch}", []).append(spool_round(args.results, batch, sync))
        order = (True, False) if r % 2 == 0 else (False, True)
        for with_spool in order:
            path_rows["spool" if with_spool else "no spool"].append(path_round(args.results, with_spool=with_spool))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(x[key] for x in rows)

    result: dict[str, Any] = {
        "meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
                 "cpu_count": os.cpu_count(), "results_per_round": args.results, "rounds": args.rounds,
                 "load_avg_1min": os.getloadavg()[0]},
        "spool": {k: {"median": {m: med(v, m) for m in v[0]}, "rounds": v} for k, v in spool_rows.items()},
        "delivery_path": {k: {"median": {m: med(v, m) for m in v[0]}, "rounds": v} for k, v in path_rows.items()},
    }
    s, o = result["delivery_path"]["spool"]["median"], result["delivery_path"]["no spool"]["median"]
    result["ratios"] = {"results_per_s_spool_over_no_spool": s["results_per_s"] / o["results_per_s"],
                        "cpu_ms_per_result_spool_minus_no_spool": s["cpu_ms_per_result"] - o["cpu_ms_per_result"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spool.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "spool.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    m = result["meta"]
    lines = [f"# Spool cost ({m['date']}, {m['cpu_count']} cores, load {m['load_avg_1min']:.1f}, "
             f"{m['results_per_round']} results x {m['rounds']} rounds, medians)", "",
             "| spool alone: synchronous / batch | CPU ms per result | wall ms per batch | results/s |",
             "|---|---|---|---|"]
    for key, row in result["spool"].items():
        med = row["median"]
        lines.append(f"| {key} | {med['cpu_ms_per_result']:.3f} | {med['wall_ms_per_batch']:.2f} | "
                     f"{med['results_per_s']:.0f} |")
    lines += ["", "| delivery path (batches of 8, real Mosquitto) | results/s at the subscriber | "
              "CPU ms per result (process) |", "|---|---|---|"]
    for key, row in result["delivery_path"].items():
        med = row["median"]
        lines.append(f"| {key} | {med['results_per_s']:.0f} | {med['cpu_ms_per_result']:.3f} |")
    r = result["ratios"]
    lines += ["", f"Ratio spool / no spool, results/s: **{r['results_per_s_spool_over_no_spool']:.2f}**; "
              f"extra CPU per result with the spool: **{r['cpu_ms_per_result_spool_minus_no_spool']:.3f} ms**.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
