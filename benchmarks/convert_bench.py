"""Converter benchmark (issue 3): conversion time and peak memory for the zoo (FP16 and INT8), and
INT8 vs FP32 throughput of the ResNet-style model in ``benchmark_app``.

    .venv/bin/python benchmarks/convert_bench.py [--models resnet,yolov8] [--precisions fp16,int8]
                                                 [--throughput-size 224] [--seconds 10] [--out benchmarks/results]

Each conversion runs in its own process (so its peak RSS is its own), from a TorchScript file of
the zoo model (64x64 input) into a temporary store, INT8 calibrated on 20 in-distribution frames.
Writes ``convert.json`` and ``convert.md`` into ``--out``. No assertion on time: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
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

LABELS = {
    "resnet": ("red", "green", "blue"),
    "mobilenet": ("a", "b", "c"),
    "yolov8": ("screw", "nut"),
    "ssd": ("screw", "nut"),
    "tv_detector": ("screw", "nut"),
    "unet": ("background", "scratch", "dent"),
    "anomaly": (),
    "resnet-wide": ("red", "green", "blue"),
    "resnet18": tuple(f"class{i}" for i in range(1000)),
}
BENCHMARK_APP = Path(sys.executable).parent / "benchmark_app"


def one(args: argparse.Namespace) -> None:
    """Child process: a single conversion; prints one JSON line with its figures."""
    start = time.perf_counter()
    from convert.options import ConvertOptions
    from convert.pipeline import convert
    from convert.zoo import MEAN, STD

    imported = time.perf_counter() - start
    options = ConvertOptions(
        checkpoint=Path(args.one_checkpoint),
        name=args.one_name,
        out=Path(args.one_out),
        labels=LABELS.get(args.one_name, ("a", "b", "c")),
        input_width=args.one_size,
        input_height=args.one_size,
        mean=MEAN,
        std=STD,
        no_ok_label=True,  # timing only: the verdict is not used
        precision=args.one_precision,
        calibration=Path(args.one_calibration) if args.one_precision == "int8" else None,
        min_agreement=0.0 if args.one_any_parity else None,
        progress=False,
    )
    began = time.perf_counter()
    row: dict[str, Any] = {}
    try:
        result = convert(options)
        row = {"ok": True, "path": str(result.path), "parity": result.parity.to_dict()}
    except Exception as exc:  # a failed conversion is a result row, not a crash
        row = {"ok": False, "error": " ".join(str(exc).split())[:300]}
    row["convert_s"] = round(time.perf_counter() - began, 2)
    row["import_s"] = round(imported, 2)
    row["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(row))


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM): ru_maxrss would carry the parent's peak across fork/exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(
    checkpoint: Path, name: str, out: Path, precision: str, calibration: Path, size: int, *, any_parity: bool = False
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--one-checkpoint",
        str(checkpoint),
        "--one-name",
        name,
        "--one-out",
        str(out),
        "--one-precision",
        precision,
        "--one-calibration",
        str(calibration),
        "--one-size",
        str(size),
    ]
    if any_parity:
        cmd.append("--one-any-parity")
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"ok": False, "error": (done.stderr.strip().splitlines() or ["no output"])[-1], "wall_s": wall}
    row: dict[str, Any] = json.loads(lines[-1])
    row["wall_s"] = round(wall, 2)
    return row


def make_inputs(work: Path, models: list[str], throughput_size: int) -> tuple[dict[str, Path], Path, dict[str, Path]]:
    import cv2
    import torch

    from convert import zoo

    calibration = work / "calibration"
    calibration.mkdir()
    for i in range(20):
        cv2.imwrite(str(calibration / f"{i:03d}.png"), zoo.tinted_frame(500 + i, 80 + i, 72))
    files = {}
    for name in models:
        path = work / f"{name}.pt"
        torch.jit.save(torch.jit.trace(zoo.build(name), torch.zeros(1, 3, 64, 64)), str(path))
        files[name] = path
    # the throughput models: the zoo's ResNet-style net made wider, and a ResNet-18 (random weights)
    sys.path.insert(0, str(HERE))
    import resnet18

    torch.manual_seed(0)
    size = throughput_size
    big = {"resnet-wide": zoo.ResNetTiny(num_classes=3, width=32).eval(), "resnet18": resnet18.build(0).eval()}
    paths = {}
    for name, module in big.items():
        paths[name] = work / f"{name}.pt"
        torch.jit.save(torch.jit.trace(module, torch.zeros(1, 3, size, size)), str(paths[name]))
    return files, calibration, paths


def benchmark_app(xml: Path, size: int, seconds: int, hint: str) -> dict[str, float]:
    done = subprocess.run(
        [
            str(BENCHMARK_APP),
            "-m",
            str(xml),
            "-d",
            "CPU",
            "-hint",
            hint,
            "-t",
            str(seconds),
            "-data_shape",
            f"[1,{size},{size},3]",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    fps = re.search(r"Throughput:\s+([\d.]+) FPS", done.stdout)
    median = re.search(r"Median:\s+([\d.]+) ms", done.stdout)
    if done.returncode != 0 or fps is None:
        raise RuntimeError(f"benchmark_app failed on {xml}: {done.stdout[-500:]} {done.stderr[-500:]}")
    return {"fps": float(fps.group(1)), "median_ms": float(median.group(1)) if median else float("nan")}


def render(report: dict[str, Any]) -> str:
    lines = [
        "# Converter benchmark",
        "",
        f"{report['created_utc']} on {report['machine']} ({report['cpus']} CPUs); "
        "each conversion in its own process from a TorchScript file, INT8 calibrated on 20 frames.",
        "",
        "| model | precision | result | convert s | process wall s | peak RSS MB | parity metric | agreement "
        "| max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["conversions"]:
        p = r.get("parity", {})
        result = "ok" if r.get("ok") else f"FAILED: {r.get('error', '')[:80]}"
        lines.append(
            f"| {r['model']} | {r['precision']} | {result} | {r.get('convert_s', '-')} | {r.get('wall_s', '-')} "
            f"| {r.get('peak_rss_mb', '-')} | {p.get('metric', '-')} | "
            f"{p['agreement'] * 100:.1f} % | {p['max_abs_diff']:.3g} |"
            if p
            else f"| {r['model']} | {r['precision']} | {result} | {r.get('convert_s', '-')} | {r.get('wall_s', '-')} "
            f"| {r.get('peak_rss_mb', '-')} | - | - | - |"
        )
    rows = [t for t in report.get("throughput", []) if "error" not in t]
    if rows:
        lines += [
            "",
            f"## INT8 vs FP32 throughput ({rows[0]['size']}x{rows[0]['size']} u8 frames, benchmark_app "
            f"-hint throughput -t {rows[0]['seconds']})",
            "",
            "| model | FP32 FPS | INT8 FPS | INT8 speed-up | FP32 / INT8 median ms | INT8 top-1 agreement |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t['model']} | {t['fp32']['fps']:.1f} | {t['int8']['fps']:.1f} | **{t['speedup']:.2f}x** | "
            f"{t['fp32']['median_ms']:.2f} / {t['int8']['median_ms']:.2f} | {t['int8_agreement'] * 100:.1f} % |"
            for t in rows
        ]
        lines.append("")
        lines.append("INT8 agreement on random weights (near-tie logits) is reported, not enforced, for these rows.")
    lines += [f"\nthroughput {t['model']}: FAILED {t['error']}" for t in report.get("throughput", []) if "error" in t]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet,mobilenet,yolov8,ssd,tv_detector,unet,anomaly")
    ap.add_argument("--precisions", default="fp16,int8")
    ap.add_argument("--throughput-size", type=int, default=224)
    ap.add_argument("--seconds", type=int, default=10, help="benchmark_app -t per precision")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    for flag in ("--one-checkpoint", "--one-name", "--one-out", "--one-precision", "--one-calibration"):
        ap.add_argument(flag, help=argparse.SUPPRESS)
    ap.add_argument("--one-size", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--one-any-parity", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_checkpoint:
        one(args)
        return 0
    models = [m for m in args.models.split(",") if m]
    precisions = [p for p in args.precisions.split(",") if p]
    report: dict[str, Any] = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "conversions": [],
    }
    with tempfile.TemporaryDirectory(prefix="convert-bench-") as tmp:
        work = Path(tmp)
        files, calibration, big_models = make_inputs(work, models, args.throughput_size)
        for name in models:
            for precision in precisions:
                row = child(files[name], name, work / "store", precision, calibration, 64)
                row.update(model=name, precision=precision)
                report["conversions"].append(row)
                print(
                    f"{name:12s} {precision:5s} {'ok' if row.get('ok') else 'FAILED'} "
                    f"convert {row.get('convert_s', '-')} s, peak RSS {row.get('peak_rss_mb', '-')} MB",
                    flush=True,
                )
        size = args.throughput_size
        report["throughput"] = []
        titles = {"resnet-wide": "zoo ResNetTiny(width=32)", "resnet18": "ResNet-18 (benchmarks/resnet18.py)"}
        for name, path in big_models.items():
            fp32 = child(path, name, work / "store", "fp32", calibration, size)
            int8 = child(path, name, work / "store", "int8", calibration, size, any_parity=True)
            if not (fp32.get("ok") and int8.get("ok")):
                report["throughput"].append({"model": titles[name], "error": fp32.get("error") or int8.get("error")})
                continue
            f = benchmark_app(Path(fp32["path"]) / "model.xml", size, args.seconds, "throughput")
            i = benchmark_app(Path(int8["path"]) / "model.xml", size, args.seconds, "throughput")
            report["throughput"].append(
                {
                    "model": titles[name] + ", random weights",
                    "size": size,
                    "seconds": args.seconds,
                    "fp32": f,
                    "int8": i,
                    "int8_agreement": int8["parity"]["agreement"],
                    "int8_convert_s": int8["convert_s"],
                    "speedup": i["fps"] / f["fps"],
                }
            )
            print(f"{name}: fp32 {f['fps']:.1f} FPS, int8 {i['fps']:.1f} FPS: {i['fps'] / f['fps']:.2f}x", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "convert.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / "convert.md").write_text(render(report), encoding="utf-8")
    print(f"wrote {args.out / 'convert.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
