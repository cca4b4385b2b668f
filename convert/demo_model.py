"""DefectNet: the small CNN classifier behind the demo model (``models/demo/defectnet.pt``).

Input ``[N, 3, 128, 128]`` float RGB normalised as ``(x - MEAN) / STD`` with MEAN/STD in 0-255
units; output logits ``[N, num_classes]`` in the order of ``models/demo/labels.txt``
(``ok, scratch, spot, crack``). Trained by ``tools/train_demo_model.py`` on frames from
``camera.synthetic.DefectGenerator`` resized from 256 x 256 with linear interpolation.

The recipe (input size, mean, std, labels, OK label) lives once in :mod:`convert.demo_recipe`;
convert it with ``ovedge-convert models/demo/defectnet.pt $(python -m convert.demo_recipe) --out
ir_models`` (what ``make demo`` runs).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from convert.demo_recipe import INPUT_SIZE, MEAN, STD
from ovedge.errors import ConvertError

__all__ = ["INPUT_SIZE", "MEAN", "STD", "DefectNet", "classify", "load_checkpoint", "prepare", "to_input"]


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with BN + ReLU (MobileNet-v1 block)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DefectNet(nn.Module):
    """Five conv blocks (two plain, three depthwise-separable), global average pool, linear head."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.features = nn.Sequential(
            _conv_bn(3, 24, 2),  # 64 x 64
            _conv_bn(24, 48, 2),  # 32 x 32
            _separable(48, 64, 2),  # 16 x 16
            _separable(64, 96, 2),  # 8 x 8
            _separable(96, 128, 1),  # 8 x 8
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a normalised RGB batch ``[N, 3, H, W]``."""
        x = self.features(x)
        x = torch.flatten(self.pool(x), 1)
        out: torch.Tensor = self.classifier(x)
        return out


def load_checkpoint(path: Path, num_classes: int = 4) -> DefectNet:
    """A DefectNet in eval mode with the state_dict at ``path`` loaded strictly (every key, every shape)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ConvertError(f"{path} cannot be read as a DefectNet state_dict ({exc}); retrain it") from exc
    model = DefectNet(num_classes)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConvertError(f"{path} does not match DefectNet({num_classes}): {exc}") from exc
    return model.eval()


def prepare(images_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Camera frames ``[N, H, W, 3]`` BGR -> model-sized RGB ``[N, 128, 128, 3]`` (linear resize)."""
    h, w = INPUT_SIZE
    out = np.empty((len(images_bgr), h, w, 3), dtype=np.uint8)
    for i, image in enumerate(images_bgr):
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        out[i] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return out


def to_input(images_rgb: npt.NDArray[np.uint8]) -> torch.Tensor:
    """Model-sized RGB uint8 ``[N, H, W, 3]`` -> normalised float ``[N, 3, H, W]``."""
    x = torch.from_numpy(np.ascontiguousarray(images_rgb)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def classify(model: DefectNet, images_bgr: npt.NDArray[np.uint8], batch: int = 256) -> npt.NDArray[np.int64]:
    """Predicted class indices for camera frames (BGR, any size), the way the IR will see them."""
    model.eval()
    rgb = prepare(images_bgr)
    out = [model(to_input(rgb[i : i + batch])).argmax(1) for i in range(0, len(rgb), batch)]
    result: npt.NDArray[np.int64] = torch.cat(out).numpy().astype(np.int64)
    return result
