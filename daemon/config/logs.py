"""``[logging]``: how much the daemon says."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from daemon.config._base import Section

__all__ = ["LoggingConfig"]


class LoggingConfig(Section):
    """How much the daemon says (``--log-level`` overrides it)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
