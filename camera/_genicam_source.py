"""What the `genicam` and `basler` sources do alike around their SDKs: opening, reading, triggering.

Each subclass talks to its own SDK in three hooks: :meth:`GenICamFamilySource._poll` (wait one poll
for a frame), :meth:`GenICamFamilySource._fire` (one software trigger) and ``close``. Everything
else (the frame counter, an interrupt, the stall limit, the trigger's preconditions, what an SDK
error while opening becomes, pixels to a checked frame) lives here once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from camera._genicam_common import NodeMap
from camera.config import NodeSettings
from camera.errors import CameraStalledError, FreeRunningError, NodeRefusedError, SourceError, SourceNotOpenError
from camera.frame import ClosedOnExit, Frame
from camera.pixels import pixels
from camera.validate import FrameCheck, failed_frame
from ovedge.errors import CameraError, openvino_message

__all__ = ["GenICamFamilySource"]


class GenICamFamilySource(ClosedOnExit):
    """Base of a :class:`camera.frame.FrameSource` over one GenICam camera; software-triggerable when configured.

    A subclass sets ``_nodes`` (its :class:`NodeMap`; ``None`` while closed), ``_sdk_error`` and
    ``_format`` when it opens, and clears ``_nodes`` in ``close()``.
    """

    def __init__(self, config: NodeSettings) -> None:
        self.config = config
        self._check = FrameCheck.of(config)
        self._nodes: NodeMap | None = None
        self._sdk_error: type[BaseException] = RuntimeError
        self._format = ""  # the camera's PixelFormat, read once it is set
        self._index = 0
        self._interrupted = threading.Event()

    @property
    def description(self) -> str:
        """Human-readable name (nothing secret in it)."""
        raise NotImplementedError

    # -- the SDK's part -------------------------------------------------------------------------

    def _poll(self) -> Frame | None:
        """Wait one poll for the next frame: it, or ``None`` when none came (not yet a stall)."""
        raise NotImplementedError

    def _fire(self, nodes: NodeMap) -> None:
        """Send one software trigger to the open camera; the SDK's own error when it refuses."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _opening(self, *sdk_errors: type[BaseException]) -> Iterator[None]:
        """Around opening: on any failure close again; an SDK error becomes :class:`SourceError`."""
        try:
            yield
        except CameraError:
            self.close()
            raise
        except sdk_errors as exc:
            self.close()
            raise SourceError(what=self.description, problem="cannot be opened", detail=openvino_message(exc)) from exc

    def feature(self, name: str) -> str:
        """The current value of a camera feature, as the camera reports it."""
        if self._nodes is None:
            raise SourceNotOpenError(self.description)
        return self._nodes.get(name)

    def interrupt(self) -> None:
        """Make a waiting (or the next) :meth:`read` return ``None`` once, soon (any thread)."""
        self._interrupted.set()

    def trigger(self) -> None:
        """One software trigger: one frame comes through the next :meth:`read`."""
        if self._nodes is None:
            raise SourceNotOpenError(self.description)
        if not self.config.software_trigger:
            raise FreeRunningError(self.description)
        try:
            self._fire(self._nodes)
        except self._sdk_error as exc:
            raise NodeRefusedError(self.description, "TriggerSoftware", "execute", openvino_message(exc)) from exc

    def read(self) -> Frame | None:
        """The next frame; ``None`` when interrupted; :class:`CameraStalledError` after ``stall_after`` s of silence."""
        if self._nodes is None:
            raise SourceNotOpenError(self.description)
        started = time.monotonic()
        while not self._interrupted.is_set():
            frame = self._poll()
            if frame is not None:
                return frame
            stall_after = self.config.stall_after
            if stall_after is not None and time.monotonic() - started >= stall_after:
                raise CameraStalledError(self.description, stall_after, "timeout")
        self._interrupted.clear()  # one interrupt, one None
        return None

    def _next_index(self) -> int:
        index = self._index
        self._index += 1
        return index

    def _frame(self, data: Any, pixel_format: str, *, index: int, width: int, height: int) -> Frame:
        """Frame ``index`` from a buffer in ``pixel_format``: checked pixels, or the reason it has none."""
        try:
            image, bits = pixels(data, pixel_format, width, height)
        except ValueError as exc:
            return failed_frame(str(exc), index=index, ref=None, height=height, width=width)
        return self._check.frame(image, index=index, ref=None, bits=bits)
