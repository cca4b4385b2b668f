"""Where state and the compiled-model cache go when the config does not say: decided here only.

Under systemd, ``StateDirectory=`` / ``CacheDirectory=`` set ``$STATE_DIRECTORY`` /
``$CACHE_DIRECTORY`` (colon-separated when several are declared; the first is ours). Otherwise
the XDG locations under the home folder. The config sections use these as defaults, so after
loading ``state.dir`` and ``model.cache_dir`` are always set and absolute.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir", "default_state_dir"]


def _systemd_dir(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value.split(":")[0]) if value else None


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (first entry), else ``~/.local/state/ovedge``."""
    return _systemd_dir("STATE_DIRECTORY") or Path.home() / ".local" / "state" / "ovedge"


def default_cache_dir() -> Path:
    """``$CACHE_DIRECTORY/ovedge`` (first entry), else ``$XDG_CACHE_HOME/ovedge`` or ``~/.cache/ovedge``."""
    systemd = _systemd_dir("CACHE_DIRECTORY")
    if systemd is not None:
        return systemd / "ovedge"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ovedge"
