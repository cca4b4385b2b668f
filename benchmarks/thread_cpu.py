"""Where the daemon's CPU goes, per thread: run one end-to-end pass and split its CPU time by thread.

    .venv/bin/python benchmarks/thread_cpu.py STORE NAME VERSION [--size 256x256] [--frames 2000]

One :func:`runners.daemon_e2e` pass (throughput hint, camera at full speed); its
``thread_cpu_ms_per_frame`` (:class:`runners.ThreadCPU`: ``/proc/self/task/<tid>/stat`` sampled
every 0.1 s) printed thread by thread. ``run.py`` records the same figures for every e2e row.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import run  # noqa: E402
import runners  # noqa: E402


def main() -> int:
    ap = runners.model_pass_parser(__doc__, frames=2000)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frames = run.render(5, (h, w), 16)
    video = runners.write_video(Path(f"/tmp/thread-cpu-{os.getpid()}.avi"), frames, args.frames)
    try:
        fig = runners.daemon_e2e(args.store, args.name, args.version, hint="throughput", video=video,
                                 frames=args.frames, fps=0.0, warmup=20, workdir=Path(f"/tmp/thread-cpu-{os.getpid()}"),
                                 settle_s=run.E2E_SETTLE_S)
    finally:
        video.unlink()
    per = fig["thread_cpu_ms_per_frame"]
    total = sum(per.values())
    print(f"{fig['fps']:.1f} FPS end to end; {total:.3f} ms CPU per frame in this process "
          f"(broker {fig['broker_cpu_ms_per_frame']:.3f}, subscriber {fig['listener_cpu_ms_per_frame']:.3f})")
    for name, ms in per.items():
        print(f"  {ms:7.3f} ms/frame  {ms / total:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
