"""Shared fixtures: a real Mosquitto broker per test, the repository paths, the demo IR, the config writer."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tools/ (broker, subscriber) for the tests

from convert.demo_recipe import CHECKPOINT, convert_args  # noqa: E402  (torch-free)
from tests import configs  # noqa: E402
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


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """:func:`tests.configs.write_config` writing into the test's ``tmp_path``: ``write_config(mqtt={...})``."""
    return functools.partial(configs.write_config, tmp_path)


DEMO_CONVERT_ARGS = convert_args()  # the demo recipe, written once in convert/demo_recipe.py


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed demo checkpoint converted by the real `ovedge-convert` CLI into a private store."""
    store = tmp_path_factory.mktemp("store")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ovedge-convert"), str(CHECKPOINT), *DEMO_CONVERT_ARGS,
         "--out", str(store)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (store / "demo" / "1" / "manifest.json").is_file()
    return store
