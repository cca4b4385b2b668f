"""GigE Vision / USB3 Vision cameras through a GenTL producer and ``harvesters`` (extra ``ovedge[genicam]``).

The producer is the ``.cti`` file of the camera vendor's SDK (any GenTL producer works: the
cameras are standard). ``harvesters`` is imported only when such a camera is opened.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np

from camera._genicam_common import NodeMap, apply_settings
from camera._genicam_source import GenICamFamilySource
from camera.config import GenICamSourceConfig
from camera.errors import CameraNotFoundError, MissingExtraError, SourceError
from camera.frame import Frame

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


class GenICamSource(GenICamFamilySource):
    """A :class:`camera.frame.FrameSource` over one GenTL device; software-triggerable when configured."""

    def __init__(self, config: GenICamSourceConfig) -> None:
        super().__init__(config)
        self.config: GenICamSourceConfig = config
        self.cti = config.cti
        self._harvester: Any = None
        self._acquirer: Any = None
        self._timeout_exc: type[BaseException] = TimeoutError

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
        with self._opening(genapi.GenericException, gentl.GenericException):
            harvester.add_file(str(self.cti))
            harvester.update()
            index = self._device_index(harvester.device_info_list)
            self._acquirer = acquirer = harvester.create(index)
            self._nodes = nodes = _HarvestersNodes(acquirer.remote_device.node_map, genapi)
            apply_settings(self.config, nodes, description=self.description, sdk_error=genapi.GenericException)
            self._format = nodes.get("PixelFormat")
            acquirer.start()
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

    def _fire(self, nodes: NodeMap) -> None:
        """Execute ``TriggerSoftware``."""
        nodes.execute("TriggerSoftware")

    def _poll(self) -> Frame | None:
        try:
            buffer = self._acquirer.fetch(timeout=_POLL)
        except self._timeout_exc:
            return None
        with buffer:
            component = buffer.payload.components[0]
            fmt, width, height = str(component.data_format), int(component.width), int(component.height)
            data = np.array(component.data, copy=True)  # the buffer goes back to the camera on exit
        return self._frame(data, fmt, index=self._next_index(), width=width, height=height)
