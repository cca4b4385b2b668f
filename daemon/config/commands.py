"""``[commands]``: MQTT v5 requests on ``<prefix>/<station>/cmd/<verb>`` (:mod:`daemon.commands`).

Off unless ``enabled = true``; then only the verbs listed in ``verbs`` are answered.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from daemon.config._base import Section

__all__ = ["VERBS", "CommandsConfig", "Verb"]

Verb = Literal["inspect", "model", "reload", "replay", "status"]
VERBS: tuple[Verb, ...] = ("inspect", "model", "reload", "replay", "status")


class CommandsConfig(Section):
    """Commands over MQTT v5 request/response (response topic + correlation data)."""

    enabled: bool = Field(False, description="subscribe to <prefix>/<station>/cmd/+ and answer commands")
    verbs: tuple[Verb, ...] = Field(
        VERBS, description="the verbs answered (inspect, model, reload, replay, status); others are refused"
    )
    queue: int = Field(
        64, ge=1, le=10000, description="commands waiting for the command thread; when full, a new command is "
        "dropped, counted and logged (it gets no answer)",
    )
    replay_max: int = Field(
        1000, ge=1, le=100000, description="most results one replay request re-publishes (the answer says "
        "whether more are stored: ask again from the last seq)",
    )
    inspect_timeout: float = Field(
        10.0, gt=0, description="seconds an inspect request waits for the camera's next judged frame",
    )
