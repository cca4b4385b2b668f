"""Basler cameras through pylon's ``pypylon`` (extra ``ovedge[basler]``), imported only when one is opened.

Frames are grabbed one by one (pylon's ``GrabStrategy_OneByOne``: its buffers keep frames in
order; when all are full the camera skips, as any free-running camera behind a slow reader).
A grab the camera reports as failed (incomplete frame, buffer underrun) becomes a frame with
``error``, never a silent gap.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Self

from camera._genicam_common import NodeMap, apply_settings
from camera._genicam_source import GenICamFamilySource
from camera.config import BaslerSourceConfig
from camera.errors import CameraNotFoundError, MissingExtraError, SourceError
from camera.frame import Frame
from camera.validate import failed_frame
from ovedge.errors import openvino_message

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


class BaslerSource(GenICamFamilySource):
    """A :class:`camera.frame.FrameSource` over one Basler camera; software-triggerable when configured."""

    def __init__(self, config: BaslerSourceConfig) -> None:
        super().__init__(config)
        self.config: BaslerSourceConfig = config
        self._pylon: Any = None
        self._camera: Any = None
        self.serial: str | None = None  # of the camera opened

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
        with self._opening(genicam.GenericException):
            factory = pylon.TlFactory.GetInstance()
            device = self._find(factory.EnumerateDevices())
            self._camera = camera = pylon.InstantCamera(factory.CreateDevice(device))
            self.serial = str(device.GetSerialNumber())
            camera.Open()
            self._nodes = nodes = _PylonNodes(camera.GetNodeMap())
            apply_settings(self.config, nodes, description=self.description, sdk_error=genicam.GenericException)
            self._format = nodes.get("PixelFormat")
            camera.StartGrabbing(pylon.GrabStrategy_OneByOne)
        log.info("opened %s (%s): %s", self.description, device.GetModelName(), self._format)
        return self

    def _find(self, devices: Any) -> Any:
        wanted = self.config.serial
        chosen = [d for d in devices if wanted is None or d.GetSerialNumber() == wanted]
        if not chosen:
            serials = [str(d.GetSerialNumber()) for d in devices]
            raise CameraNotFoundError(self.description, serials, "check power and cable, or fix `serial`")
        return chosen[0]

    def close(self) -> None:
        """Stop grabbing and close the camera (idempotent)."""
        camera, self._camera, self._nodes = self._camera, None, None
        if camera is not None:
            try:
                camera.StopGrabbing()
                camera.Close()
            finally:
                camera.DestroyDevice()

    def _fire(self, nodes: NodeMap) -> None:
        """``ExecuteSoftwareTrigger`` once the camera is ready for it."""
        camera = self._camera
        if not camera.WaitForFrameTriggerReady(_TRIGGER_READY_MS, self._pylon.TimeoutHandling_Return):
            raise SourceError(
                what=self.description,
                problem="was not ready for a trigger",
                detail=f"waited {_TRIGGER_READY_MS} ms",
                fix="trigger no faster than the camera takes frames (exposure and readout)",
            )
        camera.ExecuteSoftwareTrigger()

    def _poll(self) -> Frame | None:
        camera = self._camera
        try:
            result = camera.RetrieveResult(_POLL_MS, self._pylon.TimeoutHandling_Return)
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
            return None
        try:
            return self._grabbed(result)
        finally:
            result.Release()

    def _grabbed(self, result: Any) -> Frame:
        index = self._next_index()
        width, height = int(result.GetWidth()), int(result.GetHeight())
        if not result.GrabSucceeded():
            return failed_frame(
                f"grab failed: {result.GetErrorDescription()} (error 0x{result.GetErrorCode():x})",
                index=index, ref=None, height=height, width=width,
            )
        return self._frame(result.GetArray(), self._format, index=index, width=width, height=height)
