"""Train the demo defect classifier (DefectNet) on synthetic frames and write ``models/demo/``.

    .venv/bin/python tools/train_demo_model.py [--out models/demo] [--epochs 8] ...

Training frames come from ``camera.synthetic.DefectGenerator`` (seed ``--train-seed``), the
held-out set from a different seed, both rendered at 256 x 256, resized to 128 x 128 with
``cv2.INTER_LINEAR`` (the IR resizes linearly too) and converted BGR -> RGB. CPU only, two
threads, deterministic for the given seeds. Writes ``defectnet.pt`` (fp32 state_dict),
``labels.txt`` and ``training.json`` (settings, held-out accuracy, confusion matrix).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias

from camera.synthetic import LABELS, DefectGenerator
from convert.demo_model import INPUT_SIZE, MEAN, STD, DefectNet, prepare, to_input

FRAME_SIZE = 256
DEFECT_RATE = 0.75  # ok and the three defect kinds in equal shares


def render_range(args: tuple[int, int, int, int, float]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Frames ``start .. start+count-1`` of ``seed``: model-sized RGB uint8 images and class indices."""
    seed, start, count, frame_size, defect_rate = args
    gen = DefectGenerator(seed, frame_size, frame_size, defect_rate)
    rendered = [gen.render(start + k) for k in range(count)]
    images = prepare(np.stack([image for image, _ in rendered]))
    labels = np.array([LABELS.index(truth.label) for _, truth in rendered], dtype=np.int64)
    return images, labels


def render_set(
    seed: int, count: int, *, workers: int = 2, frame_size: int = FRAME_SIZE, defect_rate: float = DEFECT_RATE
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Frames ``0 .. count-1`` of ``seed`` (deterministic whatever ``workers`` is)."""
    chunk = 250
    jobs = [(seed, s, min(chunk, count - s), frame_size, defect_rate) for s in range(0, count, chunk)]
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(render_range, jobs)
    else:
        parts = [render_range(j) for j in jobs]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips and transposes per sample (the parts have no preferred orientation)."""
    n = x.shape[0]
    for op in ("hflip", "vflip", "transpose"):
        m = torch.rand(n, generator=gen) < 0.5
        if m.any():
            part = x[m]
            if op == "hflip":
                part = part.flip(3)
            elif op == "vflip":
                part = part.flip(2)
            else:
                part = part.transpose(2, 3)
            x[m] = part
    return x


@torch.no_grad()
def predict(model: DefectNet, images: npt.NDArray[np.uint8], batch: int = 256) -> npt.NDArray[np.int64]:
    """Class indices for model-sized RGB uint8 images."""
    model.eval()
    out = [model(to_input(images[i : i + batch])).argmax(1) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy().astype(np.int64)


def confusion(truth: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """Rows: true class, columns: predicted class."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (truth, pred), 1)
    return m


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "demo")
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--holdout-seed", type=int, default=2)
    p.add_argument("--train-frames", type=int, default=12000)
    p.add_argument("--holdout-frames", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--torch-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if a.train_seed == a.holdout_seed:
        print("error: --holdout-seed must differ from --train-seed", file=sys.stderr)
        return 2

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.torch_seed)
    torch.use_deterministic_algorithms(True)

    t0 = time.monotonic()
    x_train, y_train = render_set(a.train_seed, a.train_frames, workers=a.threads)
    x_hold, y_hold = render_set(a.holdout_seed, a.holdout_frames, workers=a.threads)
    render_s = time.monotonic() - t0
    print(f"rendered {len(x_train)} training + {len(x_hold)} held-out frames in {render_s:.0f} s")
    print(
        "training class counts:", dict(zip(LABELS, np.bincount(y_train, minlength=len(LABELS)).tolist(), strict=True))
    )

    model = DefectNet(len(LABELS))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    steps_per_epoch = (len(x_train) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(a.torch_seed)
    y_train_t = torch.from_numpy(y_train)

    t1 = time.monotonic()
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total, seen = 0.0, 0
        for i in range(0, len(order), a.batch):
            idx = order[i : i + a.batch]
            xb = augment(to_input(x_train[idx.numpy()]), gen)
            loss = F.cross_entropy(model(xb), y_train_t[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        acc = float((predict(model, x_hold) == y_hold).mean())
        print(f"epoch {epoch + 1}/{a.epochs}: loss {total / seen:.4f}, held-out accuracy {acc:.4f}", flush=True)
    train_s = time.monotonic() - t1

    pred = predict(model, x_hold)
    cm = confusion(y_hold, pred, len(LABELS))
    overall = float((pred == y_hold).mean())
    per_class = {lab: float(cm[i, i] / max(1, cm[i].sum())) for i, lab in enumerate(LABELS)}
    print(f"held-out (seed {a.holdout_seed}, {len(y_hold)} frames): accuracy {overall:.4f}")
    for lab, v in per_class.items():
        print(f"  {lab:8s} {v:.4f}")
    print("confusion (rows true, cols predicted):", *LABELS)
    for lab, row in zip(LABELS, cm.tolist(), strict=True):
        print(f"  {lab:8s} {row}")

    a.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    state = {k: (v.to(torch.int64) if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
    torch.save(state, a.out / "defectnet.pt")
    (a.out / "labels.txt").write_text("".join(f"{lab}\n" for lab in LABELS), encoding="utf-8")
    info = {
        "architecture": "convert.demo_model:DefectNet",
        "num_classes": len(LABELS),
        "labels": list(LABELS),
        "input_size": list(INPUT_SIZE),
        "colour_order": "RGB",
        "layout": "NCHW",
        "mean": list(MEAN),
        "std": list(STD),
        "resize": "cv2.INTER_LINEAR from the rendered frame",
        "generator": "camera.synthetic.DefectGenerator",
        "frame_size": [FRAME_SIZE, FRAME_SIZE],
        "defect_rate": DEFECT_RATE,
        "train_seed": a.train_seed,
        "train_frames": a.train_frames,
        "holdout_seed": a.holdout_seed,
        "holdout_frames": a.holdout_frames,
        "epochs": a.epochs,
        "batch": a.batch,
        "optimizer": f"AdamW lr={a.lr} wd=1e-4, OneCycle, label smoothing 0.05, flips/transposes",
        "torch_seed": a.torch_seed,
        "threads": a.threads,
        "holdout_accuracy": round(overall, 5),
        "holdout_per_class_accuracy": {k: round(v, 5) for k, v in per_class.items()},
        "holdout_confusion": cm.tolist(),
        "torch_version": torch.__version__,
        "render_seconds": round(render_s, 1),
        "training_seconds": round(train_s, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (a.out / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {a.out / 'defectnet.pt'} ({(a.out / 'defectnet.pt').stat().st_size} bytes), labels.txt, training.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
