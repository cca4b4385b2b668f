"""A zoo of tiny PyTorch models, one per task and layout, for the converter's tests and benchmark.

Built in code with seeded random weights: no downloads. Every model takes ``[N, 3, H, W]`` and
keeps to a few thousand parameters so that a conversion takes seconds on two cores.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from convert.frames import synthetic_frame

MEAN = (123.675, 116.28, 103.53)  # the normalisation the zoo classifier is trained with
STD = (58.395, 57.12, 57.375)
CLASSES = ("red", "green", "blue")  # the colour a tinted frame leans to (what ResNetTiny learns)


def _cbr(cin: int, cout: int, stride: int = 1, groups: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = _cbr(cin, cout, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(self.a(x)) + self.skip(x))


class ResNetTiny(nn.Module):
    """ResNet-style classifier: stem, three residual basic blocks, global pool, linear -> [N, C]."""

    def __init__(self, num_classes: int = 3, width: int = 8) -> None:
        super().__init__()
        self.stem = _cbr(3, width, 2)
        self.layers = nn.Sequential(
            _Basic(width, width, 1), _Basic(width, width * 2, 2), _Basic(width * 2, width * 4, 2)
        )
        self.fc = nn.Linear(width * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.layers(self.stem(x)).mean((2, 3)))
        return out


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 2) -> None:
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            _cbr(cin, hidden, k=1),
            _cbr(hidden, hidden, stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        out: torch.Tensor = x + y if self.residual else y
        return out


class MobileNetTiny(nn.Module):
    """MobileNetV2-style classifier with depthwise convolutions -> [N, C] logits."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _cbr(3, 8, 2),
            _InvertedResidual(8, 8, 1),
            _InvertedResidual(8, 16, 2),
            _InvertedResidual(16, 16, 1),
            _InvertedResidual(16, 24, 2),
        )
        self.classifier = nn.Linear(24, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(self.features(x).mean((2, 3)))
        return out


class _Backbone(nn.Module):
    """Stride-8 features."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(3, 8, 2), _cbr(8, width, 2), _cbr(width, width, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


class YoloV8Tiny(nn.Module):
    """YOLOv8-style head: ``[N, 4 + C, A]`` with cx, cy, w, h in input pixels and class scores."""

    def __init__(self, num_classes: int = 2, stride: int = 8) -> None:
        super().__init__()
        self.backbone = _Backbone()
        self.box = nn.Conv2d(16, 4, 1)
        self.cls = nn.Conv2d(16, num_classes, 1)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)
        n, _, h, w = feat.shape
        ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
        t = torch.sigmoid(self.box(feat))
        cx = (xs + t[:, 0]) * self.stride
        cy = (ys + t[:, 1]) * self.stride
        bw = t[:, 2] * self.stride * 4
        bh = t[:, 3] * self.stride * 4
        boxes = torch.stack([cx, cy, bw, bh], 1).reshape(n, 4, h * w)
        scores = torch.sigmoid(self.cls(feat)).reshape(n, -1, h * w)
        return torch.cat([boxes, scores], 1)


def _anchor_boxes(feat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Normalised x0, y0, x1, y1 per anchor from per-cell offsets ``t`` (sigmoid-ed), [N, A, 4]."""
    n, _, h, w = feat.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=t.dtype), torch.arange(w, dtype=t.dtype), indexing="ij")
    cx = (xs + t[:, 0]) / w
    cy = (ys + t[:, 1]) / h
    half_w = t[:, 2] / 2
    half_h = t[:, 3] / 2
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
    return boxes.reshape(n, h * w, 4).clamp(0, 1)


class SSDTiny(nn.Module):
    """SSD-style detector ending like ``DetectionOutput``: ``[1, 1, K, 7]`` rows
    (image_id, label, confidence, x0, y0, x1, y1), normalised, sorted by confidence."""

    def __init__(self, num_classes: int = 2, top_k: int = 16) -> None:
        super().__init__()
        self.backbone = _Backbone()
        self.box = nn.Conv2d(16, 4, 1)
        self.cls = nn.Conv2d(16, num_classes + 1, 1)  # + background
        self.top_k = top_k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)
        boxes = _anchor_boxes(feat, torch.sigmoid(self.box(feat)))[0]  # [A, 4]
        probs = torch.softmax(self.cls(feat), 1)[0].flatten(1).t()[:, 1:]  # [A, C] without background
        conf, label = probs.max(1)
        conf, order = conf.topk(self.top_k)
        rows = torch.cat(
            [torch.zeros_like(conf)[:, None], label[order].to(conf.dtype)[:, None], conf[:, None], boxes[order]], 1
        )
        return rows[None, None]


class TorchvisionStyleDetector(nn.Module):
    """torchvision-style outputs: ``boxes [K, 4]`` (x0, y0, x1, y1 pixels), ``scores [K]``, ``labels [K]``."""

    def __init__(self, num_classes: int = 2, top_k: int = 10) -> None:
        super().__init__()
        self.backbone = _Backbone()
        self.box = nn.Conv2d(16, 4, 1)
        self.cls = nn.Conv2d(16, num_classes, 1)
        self.top_k = top_k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat = self.backbone(x)
        boxes = _anchor_boxes(feat, torch.sigmoid(self.box(feat)))[0]
        scale = torch.tensor([x.shape[3], x.shape[2], x.shape[3], x.shape[2]], dtype=x.dtype)
        probs = torch.sigmoid(self.cls(feat))[0].flatten(1).t()  # [A, C]
        scores, labels = probs.max(1)
        scores, order = scores.topk(self.top_k)
        return boxes[order] * scale, scores, labels[order]


class UNetTiny(nn.Module):
    """A two-level U-Net: ``[N, C, H, W]`` per-pixel class scores at the input resolution."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.enc1 = _cbr(3, 8)
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), _cbr(8, 16))
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.dec = _cbr(16, 8)
        self.head = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.enc1(x)
        b = self.enc2(a)
        out: torch.Tensor = self.head(self.dec(torch.cat([a, self.up(b)], 1)))
        return out


class AnomalyTiny(nn.Module):
    """Anomalib-style outputs: an anomaly map ``[N, 1, H, W]`` in 0..1 and a score ``[N]`` (its max)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(_cbr(3, 8, 2), _cbr(8, 8, 2), nn.Conv2d(8, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heat = torch.sigmoid(self.body(x))
        amap = nn.functional.interpolate(heat, size=x.shape[2:], mode="bilinear", align_corners=False)
        return amap, amap.amax((1, 2, 3))


ZOO: dict[str, type[nn.Module]] = {
    "resnet": ResNetTiny,
    "mobilenet": MobileNetTiny,
    "yolov8": YoloV8Tiny,
    "ssd": SSDTiny,
    "tv_detector": TorchvisionStyleDetector,
    "unet": UNetTiny,
    "anomaly": AnomalyTiny,
}


def tinted_frame(index: int, width: int, height: int) -> np.ndarray:
    """A synthetic u8 BGR frame leaning to colour ``CLASSES[index % 3]``: in-distribution for the
    trained classifier (its calibration and parity frames)."""
    frame = synthetic_frame(index, width, height).astype(np.int16)
    channel = 2 - index % 3  # RGB class c is BGR channel 2 - c
    frame[..., channel] = np.clip(frame[..., channel] + 90, 0, 255)
    return frame.astype(np.uint8)


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    mean, std = np.array(MEAN, np.float32), np.array(STD, np.float32)
    batch = np.stack([((f[..., ::-1].astype(np.float32) - mean) / std).transpose(2, 0, 1) for f in frames])
    return torch.from_numpy(batch)


def train(model: nn.Module, steps: int = 40, size: int = 32, batch: int = 16) -> None:
    """A few seconds of Adam on tinted frames (at a small size; the net is fully convolutional):
    enough for the clear margins INT8 parity needs, which a fitted head on a random backbone lacks."""
    x = _to_tensor([tinted_frame(2000 + i, size, size) for i in range(96)])
    labels = torch.tensor([i % 3 for i in range(96)])
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), 2e-2)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, 96, (batch,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    model.eval()


def build(name: str, seed: int = 0) -> nn.Module:
    """A zoo model with seeded random weights and non-trivial BatchNorm statistics, in eval mode;
    the ResNet-style classifier is briefly trained to tell tinted frames apart (for INT8)."""
    torch.manual_seed(seed)
    model = ZOO[name]()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                mean, var = module.running_mean, module.running_var
                if mean is not None and var is not None:
                    mean.uniform_(-0.1, 0.1)
                    var.uniform_(0.5, 1.5)
    model.eval()
    if isinstance(model, ResNetTiny):
        train(model)
    return model
