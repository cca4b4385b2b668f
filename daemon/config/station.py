"""``[station]``: who we are on the line."""

from __future__ import annotations

from pydantic import Field

from daemon.config._base import Section, TopicLevel

__all__ = ["StationConfig"]


class StationConfig(Section):
    """Who we are on the line: the first levels of every MQTT topic."""

    name: TopicLevel = Field("station1", description="station name, one MQTT topic level")
    topic_prefix: TopicLevel = Field("ovedge", description="first MQTT topic level of every topic")
