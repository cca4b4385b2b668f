"""Basler cameras through pylon's ``pypylon`` (extra ``ovedge[basler]``), imported only when one is opened.

Frames are grabbed one by one (pylon's ``GrabStrategy_OneByOne``: its buffers keep frames in
order; when all are full the camera skips, as any free-running camera behind a slow reader).
A grab the camera reports as failed (incomplete frame, buffer underrun) becomes a frame with
``error``, never a silent gap.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any, Final, Self

from camera._genicam_common import apply_settings, pixels
from camera.config import BaslerSourceConfig
from camera.errors import (
    CameraNotFoundError,
    CameraStalledError,
    FreeRunningError,
    MissingExtraError,
    NodeRefusedError,
    SourceError,
    SourceNotOpenError,
)
from camera.frame import Frame
from camera.validate import FrameCheck, failed_frame
from ovedge.errors import CameraError, openvino_message

__all__ = ["BaslerSource"]

log = logging.getLogger(__name__)

_POLL_MS: Final = 200  # per RetrieveResult, so that an interrupt or a stop is seen promptly
_TRIGGER_READY_MS: Final = 1000


class _PylonNodes:
    def __init__(self, node_map: Any) -> None:
        self._map = node_map

    def has(self, name: str) -> bool:
        return bool(self._map.GetNode(name).IsValid())

    def is_command(self, name: str) -> bool:
        return type(self._map.GetNode(name)).__name__ == "CommandParameter"

    def set(self, name: str, value: str) -> None:
        self._map.GetNode(name).FromString(value)

    def get(self, name: str) -> str:
        return str(self._map.GetNode(name).ToString())

    def execute(self, name: str) -> None:
        self._map.GetNode(name).Execute()


class BaslerSource:
    """A :class:`camera.frame.FrameSource` over one Basler camera; software-triggerable when configured."""

    def __init__(self, config: BaslerSourceConfig) -> None:
        self.config = config
        self._check = FrameCheck.of(config)
        self._pylon: Any = None
        self._camera: Any = None
        self._nodes: _PylonNodes | None = None
        self._sdk_error: type[BaseException] = RuntimeError
        self._format = ""
        self.serial: str | None = None  # of the camera opened
        self._index = 0
        self._interrupted = threading.Event()

    @property
    def description(self) -> str:
        """``Basler camera <serial>`` or ``Basler camera (first found)``."""
        return f"Basler camera {self.config.serial}" if self.config.serial else "Basler camera (first found)"

    def __enter__(self) -> Self:
        self.close()
        try:
            from pypylon import genicam, pylon
        except ImportError as exc:
            raise MissingExtraError(source_type="basler", extra="basler", module="pypylon") from exc
        self._pylon, self._sdk_error = pylon, genicam.GenericException
        self._interrupted.clear()
        try:
            factory = pylon.TlFactory.GetInstance()
            device = self._find(factory.EnumerateDevices())
            self._camera = camera = pylon.InstantCamera(factory.CreateDevice(device))
            self.serial = str(device.GetSerialNumber())
            camera.Open()
            self._nodes = nodes = _PylonNodes(camera.GetNodeMap())
            apply_settings(self.config, nodes, description=self.description, sdk_error=genicam.GenericException)
            self._format = nodes.get("PixelFormat")
            camera.StartGrabbing(pylon.GrabStrategy_OneByOne)
        except CameraError:
            self.close()
            raise
        except genicam.GenericException as exc:
            self.close()
            raise SourceError(what=self.description, problem="cannot be opened", detail=openvino_message(exc)) from exc
        log.info("opened %s (%s): %s", self.description, device.GetModelName(), self._format)
        return self

    def _find(self, devices: Any) -> Any:
        wanted = self.config.serial
        chosen = [d for d in devices if wanted is None or d.GetSerialNumber() == wanted]
        if not chosen:
            serials = [str(d.GetSerialNumber()) for d in devices]
            raise CameraNotFoundError(self.description, serials, "check power and cable, or fix `serial`")
        return chosen[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop grabbing and close the camera (idempotent)."""
        camera, self._camera, self._nodes = self._camera, None, None
        if camera is not None:
            try:
                camera.StopGrabbing()
                camera.Close()
            finally:
                camera.DestroyDevice()

    def feature(self, name: str) -> str:
        """The current value of a camera feature, as the camera reports it."""
        if self._nodes is None:
            raise SourceNotOpenError(self.description)
        return self._nodes.get(name)

    def interrupt(self) -> None:
        """Make a waiting (or the next) :meth:`read` return ``None`` once, soon (any thread)."""
        self._interrupted.set()

    def trigger(self) -> None:
        """``ExecuteSoftwareTrigger`` once the camera is ready: one frame comes through the next :meth:`read`."""
        camera = self._camera
        if camera is None:
            raise SourceNotOpenError(self.description)
        if not self.config.software_trigger:
            raise FreeRunningError(self.description)
        try:
            if not camera.WaitForFrameTriggerReady(_TRIGGER_READY_MS, self._pylon.TimeoutHandling_Return):
                raise SourceError(
                    what=self.description,
                    problem="was not ready for a trigger",
                    detail=f"waited {_TRIGGER_READY_MS} ms",
                    fix="trigger no faster than the camera takes frames (exposure and readout)",
                )
            camera.ExecuteSoftwareTrigger()
        except self._sdk_error as exc:
            raise NodeRefusedError(self.description, "TriggerSoftware", "execute", openvino_message(exc)) from exc

    def read(self) -> Frame | None:
        """The next frame; ``None`` when interrupted; :class:`CameraStalledError` after ``stall_after`` s of silence."""
        camera, pylon = self._camera, self._pylon
        if camera is None:
            raise SourceNotOpenError(self.description)
        started = time.monotonic()
        while not self._interrupted.is_set():
            try:
                result = camera.RetrieveResult(_POLL_MS, pylon.TimeoutHandling_Return)
            except self._sdk_error as exc:
                raise SourceError(
                    what=self.description, problem="stopped delivering frames", detail=openvino_message(exc)
                ) from exc
            if result is None or not result.IsValid():
                if not camera.IsGrabbing():
                    raise SourceError(
                        what=self.description,
                        problem="stopped grabbing (disconnected?)",
                        fix="check its power and cable (the daemon reopens it after a back-off)",
                    )
                stall_after = self.config.stall_after
                if stall_after is not None and time.monotonic() - started >= stall_after:
                    raise CameraStalledError(self.description, stall_after, "timeout")
                continue
            try:
                return self._frame(result)
            finally:
                result.Release()
        self._interrupted.clear()  # one interrupt, one None
        return None

    def _frame(self, result: Any) -> Frame:
        index = self._index
        self._index += 1
        width, height = int(result.GetWidth()), int(result.GetHeight())
        if not result.GrabSucceeded():
            return failed_frame(
                f"grab failed: {result.GetErrorDescription()} (error 0x{result.GetErrorCode():x})",
                index=index, ref=None, height=height, width=width,
            )
        try:
            image, bits = pixels(result.GetArray(), self._format, width, height)
        except ValueError as exc:
            return failed_frame(str(exc), index=index, ref=None, height=height, width=width)
        return self._check.frame(image, index=index, ref=None, bits=bits)
