"""Where the daemon's CPU goes, per thread: run one end-to-end pass and split its CPU time by thread.

    .venv/bin/python benchmarks/thread_cpu.py STORE NAME VERSION [--size 256x256] [--frames 2000]

A sampler thread reads ``/proc/self/task/<tid>/stat`` (user + system time) of every thread every
0.2 s while :func:`runners.daemon_e2e` runs (throughput hint, camera at full speed); Python threads
are named from ``threading.enumerate()``, the others (OpenVINO's TBB workers, paho has none) are
summed as ``native (OpenVINO)``. Prints ms of CPU per frame for each thread. Not part of ``run.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import run  # noqa: E402
import runners  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def task_cpu() -> dict[int, float]:
    out = {}
    for entry in Path("/proc/self/task").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", type=Path)
    ap.add_argument("name")
    ap.add_argument("version", type=int)
    ap.add_argument("--size", default="256x256", help="camera frame WxH")
    ap.add_argument("--frames", type=int, default=2000)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frames = run.render(5, (h, w), 16)
    video = runners.write_video(Path(f"/tmp/thread-cpu-{os.getpid()}.avi"), frames, args.frames)
    names: dict[int, str] = {}
    last: dict[int, float] = {}
    start = task_cpu()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            for t in threading.enumerate():
                if t.native_id is not None:
                    names[t.native_id] = t.name
            last.update(task_cpu())

    sampler = threading.Thread(target=sample, name="sampler", daemon=True)
    sampler.start()
    try:
        fig = runners.daemon_e2e(args.store, args.name, args.version, hint="throughput", video=video,
                                 frames=args.frames, fps=0.0, warmup=20, workdir=Path(f"/tmp/thread-cpu-{os.getpid()}"))
    finally:
        done.set()
        sampler.join()
        video.unlink()
    per: dict[str, float] = defaultdict(float)
    for tid, cpu in last.items():
        name = names.get(tid, "native (OpenVINO)")
        if name.startswith("paho-mqtt-client"):
            name = "paho network thread"
        per[name] += cpu - start.get(tid, 0.0)
    total = sum(per.values())
    print(f"{fig['fps']:.1f} FPS end to end; {total * 1000 / args.frames:.3f} ms CPU per frame in this process")
    for name, cpu in sorted(per.items(), key=lambda kv: -kv[1]):
        print(f"  {cpu * 1000 / args.frames:7.3f} ms/frame  {cpu / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
