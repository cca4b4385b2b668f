"""The delivery guarantee measured: every fault scenario of ``tools/faults.py`` in one run.

    .venv/bin/python benchmarks/delivery.py [--out benchmarks/results] [--only NAME,...]

Converts the demo checkpoint into a temporary store, runs each scenario (a real ovedged, a real
Mosquitto, a persistent-session subscriber) and writes ``delivery.json`` (all figures) and
``delivery.md`` (the table in ``docs/MQTT.md``). Scenarios: ``outage60``, ``outage60-nopersist``,
``freeze``, ``kill``, ``daemon-kills``, ``sigterm-down``, ``readonly``, ``full``, ``quota``,
``corrupt``.
Takes about 8 minutes; nothing asserts (``tests/test_delivery.py`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tools import faults  # noqa: E402

SCENARIOS: dict[str, Callable[[Path, Path], faults.Figures]] = {
    "outage60": lambda w, s: faults.outage(w, s, seconds=60, persistence=True),
    "outage60-nopersist": lambda w, s: faults.outage(w, s, seconds=60, persistence=False),
    "freeze": lambda w, s: faults.outage(w, s, seconds=12, persistence=True, how="freeze"),
    "kill": lambda w, s: faults.outage(w, s, seconds=5, persistence=True, how="kill"),
    "daemon-kills": lambda w, s: faults.daemon_kills(w, s, kills=20),
    "sigterm-down": faults.sigterm_while_down,
    "readonly": lambda w, s: faults.storage_fault(w, s, kind="readonly"),
    "full": lambda w, s: faults.storage_fault(w, s, kind="full"),
    "quota": faults.quota_full,
    "corrupt": faults.corrupt_spool,
}


def convert_demo(store: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ovedge-convert")), str(ROOT / "models/demo/defectnet.pt"),
         "--labels", str(ROOT / "models/demo/labels.txt"), "--name", "demo", "--arch", "convert.demo_model:DefectNet",
         "--ok-labels", "ok", "--input-size", "128x128", "--mean", "123.675,116.28,103.53",
         "--std", "58.395,57.12,57.375", "--out", str(store)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ovedge-convert failed: {done.stderr[-2000:]}")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| scenario | produced | received unique | duplicates | missing | ERROR results | reconnect s | "
             "spool high-water | exit codes | notes |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        notes = r["notes"]
        extra = []
        if "rss_growth_mb_per_min" in notes and "60 s" in r["scenario"]:
            extra.append(f"RSS {notes['rss_growth_mb_per_min']:+.1f} MB/min during the outage")
        if "degraded_log_lines" in notes:
            extra.append(f"{notes['degraded_log_lines']} 'cannot be stored' log line(s)")
        if "states" in notes:
            extra.append("status " + " → ".join(notes["states"]))
        reconnect = "—" if r["reconnect_s"] is None else f"{r['reconnect_s']:.1f}"
        lines.append(f"| {r['scenario']} | {r['produced']:,} | {r['received_unique']:,} | {r['duplicates']:,} | "
                     f"**{r['missing']}** | {r['error_results']:,} | {reconnect} | {r['spool_high_water']:,} | "
                     f"{', '.join(map(str, r['exit_codes']))} | {'; '.join(extra)} |")
    return "\n".join(lines) + "\n"


def table_from(path: Path) -> str:
    """The Markdown table from an existing ``delivery.json`` (to refresh docs without a re-run)."""
    return markdown(json.loads(path.read_text(encoding="utf-8"))["scenarios"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ovedge-delivery-") as tmp:
        store = Path(tmp) / "store"
        convert_demo(store)
        for name in names:
            work = Path(tmp) / name
            work.mkdir()
            fig = SCENARIOS[name](work, store)
            fig.notes.pop("log", None)
            rows.append({"name": name, **fig.as_dict()})
            print(f"{name}: produced {fig.produced}, missing {fig.missing}, duplicates {fig.duplicates}", flush=True)
    result = {"meta": {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
                       "load_avg_1min": os.getloadavg()[0]}, "scenarios": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "delivery.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "delivery.md").write_text(markdown(rows), encoding="utf-8")
    print(markdown(rows))
    return 0 if all(r["missing"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
