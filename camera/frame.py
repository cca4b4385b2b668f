"""The unit a frame source yields, and the protocol every source satisfies."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image, as it left the camera.

    ``image`` is H x W x 3, uint8, BGR (OpenCV's order); the IR takes it as it is.
    """

    image: Image
    index: int  # 0-based, increasing, per source
    timestamp: float  # UTC epoch seconds at capture
    monotonic: float  # time.monotonic() at capture, for latency figures
    source_ref: str | None = None  # file name, part id, ...: where this frame came from
    extra: dict[str, object] = field(default_factory=dict)


class FrameSource(Protocol):
    """A camera: open on ``__enter__``, close on ``__exit__``, ``read`` in one thread only."""

    @property
    def description(self) -> str:
        """Human-readable name with credentials scrubbed (safe to log)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def read(self) -> Frame | None:
        """Block until the next frame; ``None`` at the end of a finite source.

        Raises :class:`ovedge.errors.CameraError` when the source failed.
        """
        ...
