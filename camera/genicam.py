"""GigE Vision / USB3 Vision cameras through a GenTL producer and ``harvesters`` (extra ``ovedge[genicam]``).

The producer is the ``.cti`` file of the camera vendor's SDK (any GenTL producer works: the
cameras are standard). ``harvesters`` is imported only when such a camera is opened.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any, Self

import numpy as np

from camera._genicam_common import apply_settings, pixels
from camera.config import GenICamSourceConfig
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

__all__ = ["GenICamSource"]

log = logging.getLogger(__name__)

_POLL = 0.2  # seconds per fetch, so that an interrupt or a stop is seen promptly


class _HarvestersNodes:
    def __init__(self, node_map: Any, genapi: Any) -> None:
        self._map = node_map
        self._genapi = genapi

    def _node(self, name: str) -> Any:
        return self._map.get_node(name)

    def has(self, name: str) -> bool:
        try:
            self._node(name)
        except self._genapi.LogicalErrorException:
            return False
        return True

    def is_command(self, name: str) -> bool:
        return isinstance(self._node(name), self._genapi.ICommand)

    def set(self, name: str, value: str) -> None:
        self._node(name).from_string(value)

    def get(self, name: str) -> str:
        return str(self._node(name).to_string())

    def execute(self, name: str) -> None:
        self._node(name).execute()


class GenICamSource:
    """A :class:`camera.frame.FrameSource` over one GenTL device; software-triggerable when configured."""

    def __init__(self, config: GenICamSourceConfig) -> None:
        self.cti = config.cti
        self.config = config
        self._check = FrameCheck.of(config)
        self._harvester: Any = None
        self._acquirer: Any = None
        self._nodes: _HarvestersNodes | None = None
        self._timeout_exc: type[BaseException] = TimeoutError
        self._sdk_error: type[BaseException] = RuntimeError
        self._format = ""
        self._index = 0
        self._interrupted = threading.Event()

    @property
    def description(self) -> str:
        """``GenICam camera serial 1234 (producer x.cti)``."""
        c = self.config
        which = (
            f"serial {c.serial}" if c.serial is not None
            else f"user id {c.user_id}" if c.user_id is not None
            else f"#{c.index or 0}"
        )
        return f"GenICam camera {which} ({self.cti.name})"

    def __enter__(self) -> Self:
        self.close()
        try:
            from genicam import genapi, gentl
            from harvesters.core import Harvester
        except ImportError as exc:
            raise MissingExtraError(source_type="genicam", extra="genicam", module="harvesters") from exc
        if not self.cti.is_file():
            raise SourceError(
                what=self.description,
                problem="cannot be opened",
                detail=f"GenTL producer {self.cti} does not exist",
                fix="fix `cti`",
            )
        self._timeout_exc = gentl.TimeoutException
        self._sdk_error = genapi.GenericException
        self._interrupted.clear()
        harvester = self._harvester = Harvester()
        try:
            harvester.add_file(str(self.cti))
            harvester.update()
            index = self._device_index(harvester.device_info_list)
            self._acquirer = acquirer = harvester.create(index)
            self._nodes = nodes = _HarvestersNodes(acquirer.remote_device.node_map, genapi)
            apply_settings(self.config, nodes, description=self.description, sdk_error=genapi.GenericException)
            self._format = nodes.get("PixelFormat")
            acquirer.start()
        except CameraError:
            self.close()
            raise
        except (genapi.GenericException, gentl.GenericException) as exc:
            self.close()
            raise SourceError(what=self.description, problem="cannot be opened", detail=openvino_message(exc)) from exc
        log.info("opened %s: %s", self.description, self._format)
        return self

    def _device_index(self, infos: list[Any]) -> int:
        if not infos:
            raise CameraNotFoundError(
                self.description, (), "check power, cable and (GigE) that the camera is in this host's subnet"
            )
        c = self.config

        def attr(info: Any, name: str) -> str | None:
            try:
                value = getattr(info, name)
            except Exception:  # noqa: BLE001 - a producer may not provide the field at all
                return None
            return None if value is None else str(value)

        if c.serial is not None:
            found = [i for i, info in enumerate(infos) if attr(info, "serial_number") == c.serial]
        elif c.user_id is not None:
            found = [i for i, info in enumerate(infos) if attr(info, "user_defined_name") == c.user_id]
        else:
            found = [c.index or 0] if (c.index or 0) < len(infos) else []
        if not found:
            serials = [attr(info, "serial_number") or "?" for info in infos]
            raise CameraNotFoundError(
                self.description, serials, "check power and cable, or fix the selector (serial, user_id or index)"
            )
        return found[0]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop acquisition and release the device and the producer (idempotent)."""
        acquirer, harvester = self._acquirer, self._harvester
        self._acquirer = self._harvester = self._nodes = None
        if acquirer is not None:
            try:
                acquirer.stop()
            finally:
                acquirer.destroy()
        if harvester is not None:
            harvester.reset()

    def feature(self, name: str) -> str:
        """The current value of a camera feature, as the camera reports it."""
        if self._nodes is None:
            raise SourceNotOpenError(self.description)
        return self._nodes.get(name)

    def interrupt(self) -> None:
        """Make a waiting (or the next) :meth:`read` return ``None`` once, soon (any thread)."""
        self._interrupted.set()

    def trigger(self) -> None:
        """Fire ``TriggerSoftware``: one frame comes through the next :meth:`read`."""
        if self._nodes is None:
            raise SourceNotOpenError(self.description)
        if not self.config.software_trigger:
            raise FreeRunningError(self.description)
        try:
            self._nodes.execute("TriggerSoftware")
        except self._sdk_error as exc:
            raise NodeRefusedError(self.description, "TriggerSoftware", "execute", openvino_message(exc)) from exc

    def read(self) -> Frame | None:
        """The next frame; ``None`` when interrupted; :class:`CameraStalledError` after ``stall_after`` s of silence."""
        if self._acquirer is None:
            raise SourceNotOpenError(self.description)
        started = time.monotonic()
        while not self._interrupted.is_set():
            try:
                buffer = self._acquirer.fetch(timeout=_POLL)
            except self._timeout_exc:
                stall_after = self.config.stall_after
                if stall_after is not None and time.monotonic() - started >= stall_after:
                    raise CameraStalledError(self.description, stall_after, "timeout") from None
                continue
            with buffer:
                component = buffer.payload.components[0]
                fmt, width, height = str(component.data_format), int(component.width), int(component.height)
                data = np.array(component.data, copy=True)  # the buffer goes back to the camera on exit
            return self._frame(data, fmt, width, height)
        self._interrupted.clear()  # one interrupt, one None
        return None

    def _frame(self, data: Any, fmt: str, width: int, height: int) -> Frame:
        index = self._index
        self._index += 1
        try:
            image, bits = pixels(data, fmt, width, height)
        except ValueError as exc:
            return failed_frame(str(exc), index=index, ref=None, height=height, width=width)
        return self._check.frame(image, index=index, ref=None, bits=bits)
