"""Crops (tiles): rectangles of a frame inferred on their own, put back together as one result.

A camera with ``crops`` has each frame cut into its rectangles by the dispatcher (:func:`cut`);
every part is submitted as a frame of its own with a :class:`CropPart` as context. The decide
thread collects the parts of a frame in their :class:`CropGroup`; when the last one is back it
becomes one :class:`~daemon.engine.InferenceDone` for the whole frame (context :class:`CropsDone`),
and :func:`detections` decodes each part for its own size and moves its regions into frame
pixels (a classification on a tile, which has no box, gets the tile's rectangle as its box). The
rules then judge the union, so the frame's verdict is the worst of its crops; a part that failed
makes the frame's result ERROR, naming the crop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camera.frame import Frame
from daemon.config import Crop
from daemon.engine import InferenceDone
from ovedge.layouts import Detection

__all__ = ["CropGroup", "CropPart", "CropsDone", "camera_of", "cut", "detections"]


@dataclass(slots=True)
class CropGroup:
    """The parts of one frame in flight; filled by the decide thread only."""

    frame: Frame
    camera: str
    crops: tuple[Crop, ...]
    parts: list[InferenceDone | None] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.parts = [None] * len(self.crops)

    def add(self, index: int, item: InferenceDone) -> InferenceDone | None:
        """Record one part; the whole frame's :class:`InferenceDone` once every part is back."""
        with self._lock:
            self.parts[index] = item
            if any(p is None for p in self.parts):
                return None
            parts = tuple(p for p in self.parts if p is not None)
        failed = [(c, p.error) for c, p in zip(self.crops, parts, strict=True) if p.outputs is None]
        error = "; ".join(f"crop {list(c)}: {e}" for c, e in failed) or None
        return InferenceDone(
            frame=self.frame,
            context=CropsDone(self.camera, self.crops, parts),
            model=parts[-1].model,
            outputs=None if error else (),
            latency_ms=max(p.latency_ms for p in parts),
            error=error,
        )


@dataclass(frozen=True, slots=True)
class CropPart:
    """The context of one submitted crop."""

    group: CropGroup
    index: int


@dataclass(frozen=True, slots=True)
class CropsDone:
    """The context of a whole frame put back together from its crops."""

    camera: str
    crops: tuple[Crop, ...]
    parts: tuple[InferenceDone, ...]


def camera_of(context: Any) -> str:
    """The camera id a finished request's context names."""
    if isinstance(context, CropsDone):
        return context.camera
    if isinstance(context, CropPart):
        return context.group.camera
    return str(context)


def cut(frame: Frame, crops: tuple[Crop, ...]) -> list[Frame] | str:
    """The frames of each crop (copies, contiguous), or why they cannot be cut (a crop outside the frame)."""
    h, w = frame.image.shape[:2]
    outside = [list(c) for c in crops if c[2] > w or c[3] > h]
    if outside:
        return f"crops {outside} reach outside the {w}x{h} frame; fix cameras.crops"
    return [
        Frame(image=np.ascontiguousarray(frame.image[y0:y1, x0:x1]), index=frame.index, timestamp=frame.timestamp,
              monotonic=frame.monotonic, source_ref=frame.source_ref)
        for x0, y0, x1, y1 in crops
    ]


def detections(item: InferenceDone) -> list[Detection]:
    """The detections of a finished request in frame pixels: one frame, or a frame's crops put together."""
    if not isinstance(item.context, CropsDone):
        return item.model.loaded.postprocess(item.outputs or (), item.frame.image.shape[:2])
    found: list[Detection] = []
    for (x0, y0, x1, y1), part in zip(item.context.crops, item.context.parts, strict=True):
        for d in part.model.loaded.postprocess(part.outputs or (), part.frame.image.shape[:2]):
            box = (x0, y0, x1, y1) if d.box is None else (d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0)
            found.append(Detection(label=d.label, score=d.score, box=box, area=d.area))
    return found
