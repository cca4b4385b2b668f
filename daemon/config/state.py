"""``[state]``: where the daemon keeps what must survive a restart (the result spool)."""

from __future__ import annotations

from pydantic import Field

from daemon.config._base import Section
from daemon.config.dirs import default_state_dir
from ovedge.paths import ConfigPath

__all__ = ["StateConfig"]


class StateConfig(Section):
    """Where the daemon keeps what must survive a restart."""

    dir: ConfigPath = Field(
        default_factory=default_state_dir,
        validate_default=True,
        description="state folder (the result spool, spool.db); unset = $STATE_DIRECTORY or ~/.local/state/ovedge",
    )
