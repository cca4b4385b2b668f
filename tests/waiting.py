"""Waiting in tests for something another thread or process does: polling with a hang guard only."""

from __future__ import annotations

import time
from collections.abc import Callable

HANG_GUARD = 60.0  # seconds: generous on purpose, it only bounds how long a broken test hangs


def wait_until(predicate: Callable[[], object], seconds: float = HANG_GUARD) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` have passed (a hang guard, not a speed
    requirement); whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())
