"""What every section shares: frozen, unknown keys refused; MQTT topic levels."""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = ["Section", "TopicLevel"]

_TOPIC_LEVEL: Final = re.compile(r"^[^/#+\s]+$")


class Section(BaseModel):
    """A config table: parsed once into a frozen object; a key it does not declare is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _topic_level(value: str) -> str:
    if not _TOPIC_LEVEL.match(value):
        msg = f"{value!r} must be one MQTT topic level: no '/', '+', '#' or spaces"
        raise ValueError(msg)
    return value


TopicLevel = Annotated[str, AfterValidator(_topic_level)]
"""A name used as one MQTT topic level (station name, topic prefix, camera id)."""
