"""The unit a frame source yields, and the protocols sources satisfy."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image, as it left the camera.

    ``image`` is H x W x 3, uint8, BGR (OpenCV's order); the IR takes it as it is.

    ``error`` set means the source could not deliver a usable picture for this capture (a file
    that does not decode, a frame too small, an unsupported depth): the daemon turns it into an
    ``ERROR`` result carrying this text, without inferring. ``image`` then has the shape of what
    arrived (as far as known, 0 x 0 otherwise) and no meaningful pixels.
    """

    image: Image
    index: int  # 0-based, increasing, per source
    timestamp: float  # UTC epoch seconds at capture
    monotonic: float  # time.monotonic() at capture, for latency figures
    source_ref: str | None = None  # file name, part id, ...: where this frame came from
    extra: dict[str, object] = field(default_factory=dict)
    error: str | None = None


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


class ClosedOnExit:
    """Base of a source whose ``with`` block ends in :meth:`close`, however the block ends."""

    def close(self) -> None:
        """Release what the source holds (idempotent)."""
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class Interruptible(Protocol):
    """A source whose ``read()`` may wait indefinitely (a watched folder, a triggered camera).

    ``interrupt()`` is the one method another thread may call: it makes a blocked (or the next)
    ``read()`` return ``None`` soon, once. The capture thread calls it when the daemon stops.
    """

    def interrupt(self) -> None: ...


@runtime_checkable
class SoftwareTriggerable(Protocol):
    """A camera that takes a picture when told to (GenICam ``TriggerSoftware``, pylon
    ``ExecuteSoftwareTrigger``), configured with ``software_trigger = true``.

    ``trigger()`` fires one exposure; the frame arrives through the next ``read()``. Raises
    :class:`ovedge.errors.CameraError` when the camera cannot take it. Call it from the thread
    that reads (the capture thread), or before that thread is started.
    """

    def trigger(self) -> None: ...
