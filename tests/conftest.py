"""Shared fixtures: a real Mosquitto broker per test, the repository paths, the demo IR."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tools/ (broker, subscriber) for the tests

from tools.mosquitto import Mosquitto, find_mosquitto  # noqa: E402


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port with a temp config, stopped after the test."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (.ci/run does this)")
    with Mosquitto() as b:
        yield b


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
