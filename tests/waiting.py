"""Waiting in tests for something another thread or process does: polling with a hang guard only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")

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


class Drains(Protocol):
    def drain(self) -> list[tuple[str, bytes, bool]]: ...


def receive_all(sub: Drains, count: int, parse: Callable[[bytes], T], *, settle: float = 0.5) -> list[T]:
    """What ``sub`` receives once at least ``count`` messages have come (a hang guard: a daemon that
    exited had them PUBACKed, but a loaded subscriber lags), then ``settle`` seconds more so that a
    duplicate would be there too; each payload through ``parse``."""
    got: list[T] = []

    def arrived() -> bool:
        got.extend(parse(payload) for _, payload, _ in sub.drain())
        return len(got) >= count

    assert wait_until(arrived), f"{len(got)} of {count} messages arrived"
    time.sleep(settle)
    got.extend(parse(payload) for _, payload, _ in sub.drain())
    return got
