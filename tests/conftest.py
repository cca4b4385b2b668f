"""Shared fixtures: a real Mosquitto broker per test, the repository paths, the demo IR, the config writer,
a real headless Chromium."""

from __future__ import annotations

import functools
import shutil
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


def _chromium() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail("headless Chromium is not installed: apt-get install -y chromium chromium-driver "
                    "(.ci/run does this)")
    return browser, driver


@pytest.fixture
def chrome(tmp_path: Path) -> Iterator[object]:
    """A real headless Chromium driven by chromedriver (selenium), no background networking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--no-first-run", "--metrics-recording-only",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    service = Service(executable_path=driver, log_output=str(tmp_path / "chromedriver.log"))
    drv = webdriver.Chrome(service=service, options=options)
    try:
        yield drv
    finally:
        drv.quit()
