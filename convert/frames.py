"""Deterministic synthetic frames and image folders: the inputs of parity, golden sample and INT8."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ovedge.errors import ConvertOptionError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def synthetic_frame(index: int, width: int, height: int) -> np.ndarray:
    """A u8 BGR frame, the same for the same arguments on every machine: smooth colour fields,
    a few rectangles and mild noise -- closer to a photo than white noise is."""
    import cv2

    rng = np.random.default_rng(10_007 + index)
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    frame = np.asarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR))
    for _ in range(3):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        frame[y0 : y1 + 1, x0 : x1 + 1] = rng.integers(0, 256, 3, dtype=np.uint8)
    noise = rng.integers(-8, 9, size=frame.shape)
    noisy: np.ndarray = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return noisy


def synthetic_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """``count`` frames at sizes around (not equal to) the input size, so the in-graph resize works."""
    sizes = [(width * 3 // 2, height * 3 // 2), (width, height), (width * 2, height), (width, height * 2 // 3 + 1)]
    return [synthetic_frame(i, *sizes[i % len(sizes)]) for i in range(count)]


def image_files(folder: Path, flag: str) -> list[Path]:
    if not folder.is_dir():
        raise ConvertOptionError(what=f"{flag} {folder}", problem="is not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ConvertOptionError(
            what=f"{flag} {folder}", problem=f"holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return files


def read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConvertOptionError(what=f"image {path}", problem="cannot be decoded")
    return np.ascontiguousarray(image)


def iter_images(files: list[Path], limit: int) -> Iterator[np.ndarray]:
    for path in files[:limit]:
        yield read_image(path)
