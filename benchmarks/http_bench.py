"""``POST /infer`` against the seed document's Flask + gunicorn ``/run`` service, on the same weights.

    python benchmarks/http_bench.py [--seconds 15] [--rounds 2] [--hints latency,throughput] [--out DIR]

One run, one set of weights (``benchmarks/resnet18.py``, torch seed 0, 224x224, 1000 classes):

* **seed-style service**: ``benchmarks/seed_service.py`` under ``gunicorn -w 2`` (Flask, PyTorch
  eager, the upload saved, opened with Pillow, ``ToTensor``, argmax);
* **ovedge**: a real ``ovedged run`` per precision (FP32, INT8 by ``ovedge-convert``) and hint,
  HTTP API on, a real Mosquitto, one synthetic camera that renders a single frame and ends (so the
  cameras take no CPU while the HTTP clients are measured); ``POST /infer``;
* **benchmark_app** on each IR with ``-data_shape [1,224,224,3]`` (the upload's shape, u8 NHWC).

The load generator is ``ab`` (apache2-utils): the same multipart body (field ``file``, a ~40 KB
224x224 JPEG) to both services, no keep-alive (gunicorn's sync workers close every connection),
``-l`` (answers vary in length), at concurrency 1 and 4. Every service is started first and the
rows are measured in alternating rounds; a row's figure is the median of its rounds. Each row
records the 1-minute load average and the share of all cores other processes used meanwhile.
Writes ``http.json`` and ``http.md`` under ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

import runners  # noqa: E402  (benchmark_app, load, Others)

from tools.mosquitto import Mosquitto, free_port  # noqa: E402

log = logging.getLogger("http-bench")
PY = sys.executable
BIN = Path(PY).parent
SIZE = 224
LABELS = tuple(f"class{i}" for i in range(1000))
BOUNDARY = "ovedgebenchboundary7f3a"
MEAN, STD = "123.675,116.28,103.53", "58.395,57.12,57.375"


# -- inputs -------------------------------------------------------------------------------------


def upload_jpeg(target_bytes: int = 40_000) -> bytes:
    """A 224x224 synthetic part photo with sensor noise, as the JPEG closest to ``target_bytes``."""
    from camera.synthetic import DefectGenerator

    image, _ = DefectGenerator(3, SIZE, SIZE, 1.0).render(1)
    noisy = np.clip(image.astype(np.int16) + np.random.default_rng(0).normal(0, 3, image.shape), 0, 255)
    image = noisy.astype(np.uint8)
    best = b""
    for quality in range(80, 101):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        if not best or abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data.tobytes()
    return best


def multipart(jpeg: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"part.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + jpeg + f"\r\n--{BOUNDARY}--\r\n".encode()


def convert(ckpt: Path, precision: str, store: Path, tmp: Path) -> Path:
    labels = tmp / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    cmd = [str(BIN / "ovedge-convert"), str(ckpt), "--name", f"resnet18-{precision}", "--arch", "resnet18:ResNet18",
           "--arch-path", str(HERE), "--labels", str(labels), "--ok-labels", LABELS[0],
           "--input-size", f"{SIZE}x{SIZE}", "--mean", MEAN, "--std", STD, "--precision", precision,
           "--out", str(store), "--quiet"]
    if precision == "int8":
        calib = tmp / "calibration"
        calib.mkdir(exist_ok=True)
        from camera.synthetic import DefectGenerator

        gen = DefectGenerator(3, SIZE, SIZE, 0.75)
        for i in range(100):
            cv2.imwrite(str(calib / f"{i:04d}.png"), gen.render(i)[0])
        # random weights over 1000 classes: top-1 parity is near-tie noise, not accuracy
        cmd += ["--calibration", str(calib), "--min-agreement", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"ovedge-convert failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    from ovedge.store import ModelStore

    return Path(ModelStore(store).resolve(f"resnet18-{precision}", "latest").path)


# -- services -----------------------------------------------------------------------------------


def wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 300.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


@contextlib.contextmanager
def running(cmd: list[str], url: str, *, env: dict[str, str] | None = None, cwd: Path = ROOT,
            log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_http(url, proc)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def daemon_config(path: Path, store: Path, name: str, hint: str, http_port: int, mqtt_port: int, state: Path) -> Path:
    path.write_text(f"""
[station]
name = "bench-http"
[model]
store = "{store}"
name = "{name}"
hint = "{hint}"
cache = false
[[cameras]]
id = "cam0"
mode = "every-frame"
[cameras.source]
type = "synthetic"
width = {SIZE}
height = {SIZE}
count = 1
[mqtt]
port = {mqtt_port}
[state]
dir = "{state}"
[http]
enabled = true
port = {http_port}
[logging]
level = "WARNING"
""", encoding="utf-8")
    return path


# -- measuring ----------------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants (gunicorn's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += (int(stats[p][11]) + int(stats[p][12])) / tick
        todo += children.get(p, [])
    return total


_AB = {
    "rps": re.compile(r"Requests per second:\s+([\d.]+)"),
    "complete": re.compile(r"Complete requests:\s+(\d+)"),
    "failed": re.compile(r"Failed requests:\s+(\d+)"),
    "non2xx": re.compile(r"Non-2xx responses:\s+(\d+)"),
    "mean_ms": re.compile(r"Time per request:\s+([\d.]+) \[ms\] \(mean\)"),
}
_PCT = re.compile(r"^\s+(50|90|99)%\s+(\d+)", re.MULTILINE)


def ab(url: str, body: Path, concurrency: int, seconds: float, service_pid: int) -> dict[str, Any]:
    cmd = ["ab", "-q", "-l", "-t", str(seconds), "-n", "1000000", "-c", str(concurrency),
           "-T", f"multipart/form-data; boundary={BOUNDARY}", "-p", str(body), url]
    load_before = runners.load()
    cpu0 = tree_cpu_seconds(service_pid)
    with runners.Others() as others:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds * 4 + 60)
        cpu = tree_cpu_seconds(service_pid) - cpu0
        others.ours = cpu  # ab's own CPU counts as "others": it is small and the same for both services
    out = proc.stdout
    got = {k: rx.search(out) for k, rx in _AB.items()}
    if proc.returncode != 0 or got["rps"] is None or got["complete"] is None:
        raise RuntimeError(f"ab failed ({proc.returncode}): {' '.join(cmd)}\n{out[-1500:]}{proc.stderr[-500:]}")
    pct = {int(p): float(v) for p, v in _PCT.findall(out)}
    complete = int(got["complete"].group(1))
    return {
        "fps": float(got["rps"].group(1)),
        "requests": complete,
        "failed": int(got["failed"].group(1)) if got["failed"] else 0,
        "non_2xx": int(got["non2xx"].group(1)) if got["non2xx"] else 0,
        "p50_ms": pct.get(50), "p90_ms": pct.get(90), "p99_ms": pct.get(99),
        "mean_ms": float(got["mean_ms"].group(1)) if got["mean_ms"] else None,
        "service_cpu_ms_per_request": round(cpu * 1000 / complete, 2) if complete else None,
        "load_before": load_before, "load_after": runners.load(), "others_cpu_share": others.share,
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for k in runs[0]:
        values = [r[k] for r in runs if isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool)]
        row[k] = round(statistics.median(values), 3) if len(values) == len(runs) else runs[0][k]
    row["rounds"] = [r.get("fps") for r in runs]
    return row


# -- the run ------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0, help="each ab / benchmark_app run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; a row is their median")
    ap.add_argument("--hints", default="latency,throughput", help="daemon model.hint values to measure")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--seed-threads", type=int, default=1, help="torch threads per gunicorn worker")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for tool in ("ab", "gunicorn"):
        if shutil.which(tool) is None and not (BIN / tool).exists():
            print(f"http_bench: {tool} is not installed (apt-get install -y apache2-utils; pip install '.[bench]')",
                  file=sys.stderr)
            return 2
    hints = [h for h in args.hints.split(",") if h]
    precisions = [p for p in args.precisions.split(",") if p]
    levels = [int(c) for c in args.concurrency.split(",")]
    started = time.time()
    uptime_start = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ckpt = tmp / "resnet18.pt"
        subprocess.run([PY, str(HERE / "peers.py"), "checkpoint", "--arch", "resnet18", "--out", str(ckpt)], check=True)
        store = tmp / "store"
        irs = {}
        for prec in precisions:
            log.info("converting %s", prec)
            irs[prec] = convert(ckpt, prec, store, tmp)
        jpeg = upload_jpeg()
        body = tmp / "body.bin"
        body.write_bytes(multipart(jpeg))
        log.info("upload: %d-byte JPEG, %dx%d; multipart body %d bytes", len(jpeg), SIZE, SIZE, body.stat().st_size)

        results: dict[str, list[dict[str, Any]]] = {}
        with contextlib.ExitStack() as stack:
            broker = stack.enter_context(Mosquitto())
            targets: list[tuple[str, str, int]] = []  # (row key prefix, url, pid)
            seed_port = free_port()
            seed_env = {**os.environ, "SEED_CHECKPOINT": str(ckpt), "SEED_TORCH_THREADS": str(args.seed_threads)}
            gunicorn = shutil.which("gunicorn") or str(BIN / "gunicorn")
            seed = stack.enter_context(running(
                [gunicorn, "-w", "2", "-b", f"127.0.0.1:{seed_port}", "--chdir", str(HERE), "--timeout", "120",
                 "seed_service:app"],
                f"http://127.0.0.1:{seed_port}/", env=seed_env, log_path=tmp / "seed.log"))
            targets.append(("seed|PyTorch fp32|-", f"http://127.0.0.1:{seed_port}/run", seed.pid))
            for prec in precisions:
                for hint in hints:
                    port = free_port()
                    cfg = daemon_config(tmp / f"{prec}-{hint}.toml", store, f"resnet18-{prec}", hint, port,
                                        broker.port, tmp / f"state-{prec}-{hint}")
                    proc = stack.enter_context(running(
                        [str(BIN / "ovedged"), "run", "--config", str(cfg)], f"http://127.0.0.1:{port}/healthz",
                        log_path=tmp / f"ovedged-{prec}-{hint}.log"))
                    wait_model(f"http://127.0.0.1:{port}", proc)
                    targets.append((f"ovedge|{prec}|{hint}", f"http://127.0.0.1:{port}/infer", proc.pid))
            for _, url, pid in targets:  # warm-up, and every service answers 200 to the body
                check = ab(url, body, 1, 2.0, pid)
                if check["non_2xx"] or check["failed"]:
                    raise RuntimeError(f"{url} did not answer the upload with 200: {check}")
            for rnd in range(args.rounds):
                for key, url, pid in targets:
                    for c in levels:
                        log.info("round %d: %s c=%d", rnd + 1, key, c)
                        results.setdefault(f"{key}|c{c}", []).append(ab(url, body, c, args.seconds, pid))
                for prec in precisions:
                    for hint in hints:
                        log.info("round %d: benchmark_app %s %s", rnd + 1, prec, hint)
                        results.setdefault(f"benchmark_app|{prec}|{hint}|-", []).append(
                            runners.benchmark_app(irs[prec] / "model.xml", hint=hint, frame_shape=(SIZE, SIZE),
                                                  seconds=int(args.seconds)))
    rows = {k: median_row(v) for k, v in results.items()}
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "loadavg_at_start": uptime_start,
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
        "cpus": os.cpu_count(),
        "cpu": runners_cpu_name(),
        "python": platform.python_version(),
        "upload_jpeg_bytes": len(jpeg),
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "hints": hints, "precisions": precisions,
                     "concurrency": levels, "seed_workers": 2, "seed_torch_threads": args.seed_threads},
        "rows": rows,
        "targets": judge(rows, precisions, hints, levels),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "http.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (args.out / "http.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return 0


def wait_model(base: str, proc: subprocess.Popen[bytes], seconds: float = 300.0) -> None:
    """/infer needs the compiled model: wait until /readyz names it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ovedged exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if json.loads(r.read()).get("model"):
                    return
        except urllib.error.HTTPError as exc:  # 503 while a camera has ended or the broker is away
            if json.loads(exc.read()).get("model"):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base}: the model was not loaded within {seconds:.0f} s")


def runners_cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _target(what: str, value: float | str, target: float | str, ok: bool) -> dict[str, Any]:
    return {"what": what, "value": round(value, 3) if isinstance(value, float) else value, "target": target,
            "pass": ok}


def judge(rows: dict[str, dict[str, Any]], precisions: list[str], hints: list[str],
          levels: list[int]) -> list[dict[str, Any]]:
    """The issue's targets. /infer's FPS is its best concurrency; the seed's too (its best).

    ``cpu`` entries are informative: the same ratios by CPU time per request (service processes
    only), which depend far less on what else ran on the machine than FPS does.
    """
    out: list[dict[str, Any]] = []
    seed = [rows[f"seed|PyTorch fp32|-|c{c}"] for c in levels]
    seed_fps = max(r["fps"] for r in seed)
    seed_cpu = min(r["service_cpu_ms_per_request"] for r in seed)
    seed_p50 = rows.get("seed|PyTorch fp32|-|c1", {}).get("p50_ms")
    for prec in precisions:
        for hint in hints:
            ours = [rows[f"ovedge|{prec}|{hint}|c{c}"] for c in levels]
            fps = max(r["fps"] for r in ours)
            cpu = min(r["service_cpu_ms_per_request"] for r in ours)
            bapp = rows[f"benchmark_app|{prec}|{hint}|-"]
            bapp_best = max(rows[f"benchmark_app|{prec}|{h}|-"]["fps"] for h in hints)
            want = 1.5 if prec == "fp32" else 3.0
            tag = f"{prec} {hint}:"
            out += [
                _target(f"{tag} /infer FPS / benchmark_app FPS (same hint)", fps / bapp["fps"], 0.9,
                        fps / bapp["fps"] >= 0.9),
                _target(f"{tag} /infer FPS / benchmark_app best-hint FPS", fps / bapp_best, 0.9,
                        fps / bapp_best >= 0.9),
                _target(f"{tag} /infer FPS / seed-style service FPS", fps / seed_fps, want, fps / seed_fps >= want),
                _target(f"{tag} (cpu) benchmark_app CPU/inference / /infer CPU/request", bapp["cpu_ms_per_frame"] / cpu,
                        0.9, bapp["cpu_ms_per_frame"] / cpu >= 0.9),
                _target(f"{tag} (cpu) seed CPU/request / /infer CPU/request", seed_cpu / cpu, want,
                        seed_cpu / cpu >= want),
            ]
            p50 = rows.get(f"ovedge|{prec}|{hint}|c1", {}).get("p50_ms")
            if p50 is not None and seed_p50 is not None:
                out.append(_target(f"{tag} /infer p50 at c=1 vs seed's (ms)", f"{p50:g} vs {seed_p50:g}", "below",
                                   p50 < seed_p50))
    return out


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    s = report["settings"]
    lines = [
        "# POST /infer vs the seed's Flask + gunicorn service (ResNet-18, 224x224, same weights)",
        "",
        f"Run {report['started']} ({report['seconds']:.0f} s) on {report['cpus']} x {report['cpu']}; "
        f"load average at start {' '.join(report['loadavg_at_start'])}, at end {' '.join(report['loadavg_at_end'])} "
        "(the machine is shared: compare ratios within this run). "
        f"Upload: a {report['upload_jpeg_bytes']}-byte JPEG in multipart field `file`; `ab` without keep-alive; "
        f"{s['rounds']} alternating rounds of {s['seconds']:g} s, medians. Seed service: gunicorn -w "
        f"{s['seed_workers']}, {s['seed_torch_threads']} torch thread(s) per worker.",
        "",
        "| runner | precision | hint | concurrency | FPS | p50 ms | p90 ms | service CPU ms/req "
        "| others' CPU | load | rounds (FPS) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"seed": "seed-style Flask+gunicorn `/run`", "ovedge": "ovedged `POST /infer`"}
    for key, r in rows.items():
        runner, prec, hint, conc = key.split("|")
        if runner == "benchmark_app":
            p50, p90, cpu = r.get("median_ms"), "", r.get("cpu_ms_per_frame")
        else:
            p50, p90, cpu = r.get("p50_ms"), r.get("p90_ms"), r.get("service_cpu_ms_per_request")
        lines.append(
            f"| {names.get(runner, runner)} | {prec} | {hint} | {conc.removeprefix('c')} | {r['fps']:.1f} | {p50} "
            f"| {p90} | {cpu} | {100 * r['others_cpu_share']:.0f} % | {r['load_before']} "
            f"| {', '.join(f'{x:.1f}' for x in r['rounds'])} |"
        )
    lines += ["", "benchmark_app: `-data_shape [1,224,224,3] -inference_only true`; p50 = its median latency; "
              "CPU = ms per inference. `(cpu)` targets: the same ratio by CPU time per request (informative).",
              "", "| target | value | wanted | |", "|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['what']} | {t['value']} | {t['target']} | {'pass' if t['pass'] else 'MISS'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
