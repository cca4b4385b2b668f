"""Where the end-to-end ratio goes, stage by stage (issue 8): the daemon cut short at each stage.

    .venv/bin/python benchmarks/stages.py STORE NAME VERSION [--size 256x256] [--frames 12000]
                                          [--rounds 3] [--bapp-seconds 10] [--out benchmarks/results]

Each round measures, one after the other on the same IR and frame shape (throughput hint):

* ``benchmark_app``: the reference (``runners.benchmark_app``, dynamic IR fed ``[1,H,W,3]``);
* ``infer``: ``runners.engine_loop``, the engine on pre-decoded frames (no camera, no results);
* ``capture+infer``: the real daemon (``daemon.app.Daemon``: video camera thread, hub, dispatch,
  engine, static-shape copy) whose decide thread only takes the finished requests and counts them;
* ``+judge``: the same, the decide thread also judges every result (``Daemon.assess``: post-process,
  rules, the ``Result``) and serialises it (``Result.to_json``), then drops it;
* ``e2e``: the whole daemon (``runners.daemon_e2e``): the above plus the spool (one fsync'd SQLite
  transaction per batch), one QoS-1 MQTT message per result through a private Mosquitto to a
  ``mosquitto_sub`` subscriber, and the PUBACKs marked in the spool.

The cut stages subclass :class:`daemon.app.Daemon` and replace its decide loop (a benchmark
harness, not a product path); their FPS counts the results taken after the frames' static-shape
copy serves (the daemon's steady state), over the time they took. Every stage records the CPU
of its process per frame and per thread. A stage's ratio to the round's ``benchmark_app`` is
the share of the reference that is left once that stage's work is added; the drop from one
stage to the next is that stage's price. Writes ``stages.json`` and ``stages.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import run  # noqa: E402
import runners  # noqa: E402

from daemon.app import Daemon  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.delivery import Delivery  # noqa: E402
from daemon.engine import Engine  # noqa: E402
from tools.mosquitto import Mosquitto  # noqa: E402

STAGES = ("infer", "capture+infer", "+judge", "e2e")


class CutDaemon(Daemon):
    """The daemon with its decide loop cut short: results are counted (and judged) but not delivered."""

    def __init__(self, *args: Any, judge: bool, shape: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judge_results = judge
        self.shape = shape
        self.steady_at = 0.0  # perf_counter when the static-shape copy first served
        self.steady = 0  # results taken since then
        self.last_at = 0.0
        self.taken = 0

    def _decide_loop(self, engine: Engine, delivery: Delivery) -> None:
        while True:
            items = engine.take_batch(timeout=0.1)
            if not items:
                if self._stop_decide.is_set():
                    return
                continue
            if self.judge_results:
                for item in items:
                    self.assess(item)[0].to_json()
            now = time.perf_counter()
            self.taken += len(items)
            if self.steady_at:
                self.steady += len(items)
                self.last_at = now
            elif self.shape in engine.static_shapes:
                self.steady_at = now


def cut_pass(store: Path, name: str, version: int, video: Path, frames: int, *, judge: bool,
             shape: tuple[int, ...], workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    with Mosquitto() as broker:  # the publisher still connects (status, commands); no result goes out
        cfg_path = workdir / "config.toml"
        cfg_path.write_text(runners.config_text(store, name, version, "throughput", video, 0.0, broker.port,
                                                 workdir / "state"), encoding="utf-8")
        cfg = load_config(cfg_path)
        daemon = CutDaemon(cfg, until_sources_end=True, judge=judge, shape=shape)
        cpu0 = runners.cpu_seconds(resource.RUSAGE_SELF)
        with runners.ThreadCPU() as threads:
            daemon.run(threading.Event())
        cpu = runners.cpu_seconds(resource.RUSAGE_SELF) - cpu0
    if daemon.taken != frames or daemon.steady < frames // 2:
        raise RuntimeError(f"cut daemon: {daemon.taken} of {frames} frames taken, {daemon.steady} in the steady state")
    return {
        "fps": daemon.steady / (daemon.last_at - daemon.steady_at),
        "frames": daemon.steady,
        "cpu_ms_per_frame": round(cpu * 1000.0 / daemon.taken, 3),
        "thread_cpu_ms_per_frame": threads.per_frame_ms(daemon.taken),
    }


def one_round(args: argparse.Namespace, video: Path, frames_list: list[Any], shape: tuple[int, int]) -> dict[str, Any]:
    xml = args.store / args.name / str(args.version) / "model.xml"
    fig: dict[str, Any] = {"load": runners.load()}
    fig["benchmark_app"] = runners.benchmark_app(xml, hint="throughput", frame_shape=shape, seconds=args.bapp_seconds)
    fig["infer"] = runners.engine_loop(args.store, args.name, args.version, hint="throughput", frames=frames_list,
                                       count=args.frames, warmup=50)
    work = Path(f"/tmp/stages-{os.getpid()}")
    fshape = (*shape, 3)
    fig["capture+infer"] = cut_pass(args.store, args.name, args.version, video, args.frames, judge=False,
                                    shape=fshape, workdir=work / "cut")
    fig["+judge"] = cut_pass(args.store, args.name, args.version, video, args.frames, judge=True,
                             shape=fshape, workdir=work / "judge")
    fig["e2e"] = runners.daemon_e2e(args.store, args.name, args.version, hint="throughput", video=video,
                                    frames=args.frames, fps=0.0, warmup=20, workdir=work / "e2e",
                                    settle_s=run.E2E_SETTLE_S)
    ref = fig["benchmark_app"]["fps"]
    fig["ratios"] = {s: round(fig[s]["fps"] / ref, 3) for s in STAGES}
    return fig


def table(rounds: list[dict[str, Any]]) -> str:
    lines = ["| stage | " + " | ".join(f"round {i + 1}" for i in range(len(rounds))) + " | median ratio |",
             "|---|" + "---:|" * (len(rounds) + 1)]
    ref = " | ".join(f"{r['benchmark_app']['fps']:.0f} FPS, {r['benchmark_app']['cpu_ms_per_frame']:.2f} ms"
                     for r in rounds)
    lines.append(f"| benchmark_app | {ref} | 1.000x |")
    for s in STAGES:
        cells = " | ".join(f"{r[s]['fps']:.0f} FPS, {r[s]['cpu_ms_per_frame']:.2f} ms ({r['ratios'][s]:.2f}x)"
                           for r in rounds)
        lines.append(f"| {s} | {cells} | {statistics.median(r['ratios'][s] for r in rounds):.3f}x |")
    lines += ["", "FPS, CPU ms per frame of the process (benchmark_app: its own), ratio to the round's benchmark_app.",
              "", "Python threads, CPU ms per frame (mean of the rounds):", "",
              "| thread | " + " | ".join(STAGES[1:]) + " |", "|---|" + "---:|" * (len(STAGES) - 1)]
    names: list[str] = []
    for r in rounds:
        for s in STAGES[1:]:
            names += [n for n in r[s]["thread_cpu_ms_per_frame"] if n not in names]
    for n in names:
        cells = " | ".join(f"{statistics.mean(r[s]['thread_cpu_ms_per_frame'].get(n, 0.0) for r in rounds):.3f}"
                           for s in STAGES[1:])
        lines.append(f"| {n} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = runners.model_pass_parser(__doc__, frames=12000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bapp-seconds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    args.store = args.store.resolve()
    w, h = (int(v) for v in args.size.split("x"))
    frames_list = run.render(5, (h, w), 16)
    video = runners.write_video(Path(f"/tmp/stages-{os.getpid()}.avi"), frames_list, args.frames)
    rounds = []
    try:
        for i in range(args.rounds):
            rounds.append(one_round(args, video, frames_list, (h, w)))
            print(f"round {i + 1}: " + ", ".join(f"{s} {x:.3f}x" for s, x in rounds[-1]["ratios"].items()), flush=True)
    finally:
        video.unlink()
    doc = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "model": f"{args.name}/{args.version}",
           "frame": args.size, "frames": args.frames, "rounds": rounds}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stages.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    md = f"# Stages of the end-to-end ratio ({doc['when']}, {doc['model']}, {args.size} frames)\n\n" + table(rounds)
    (args.out / "stages.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
