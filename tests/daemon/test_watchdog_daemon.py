"""The watchdog rule inside a real daemon (demo model, real broker, real notify socket), in-process.

The daemon runs in the test's main thread (it installs its SIGHUP handler there); a helper thread
plays systemd and the operator. Windows are multiples of ``WATCHDOG_USEC``; waits for something
to appear have hang guards only.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.app import Daemon
from daemon.config import load_config
from daemon.systemd import Notifier
from tests.configs import write_config
from tests.daemon.in_process import run_beside
from tests.daemon.notify_parts import HANG_GUARD, PERIOD, WATCHDOG_USEC, NotifySocket, largest_gap, notify_socket, pings
from tools.subscriber import Subscriber


@pytest.fixture
def systemd() -> Iterator[NotifySocket]:
    with notify_socket() as notify:
        yield notify


def _run(tmp_path: Path, demo_store: Path, port: int, systemd: NotifySocket, source: dict[str, Any], mode: str,
         script: Callable[[Daemon], None]) -> None:
    """Run the daemon in this thread until ``script`` (on a helper thread) returns; both must succeed."""
    cfg = load_config(write_config(
        tmp_path,
        station={"name": "st", "topic_prefix": "ovt"},
        model={"store": demo_store, "name": "demo", "cache_dir": tmp_path / "cache"},
        cameras=[{"id": "cam0", "mode": mode, "source": source}],
        mqtt={"port": port},
        state={"dir": tmp_path / "state"},
    ))
    notifier = Notifier({"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    run_beside(Daemon(cfg, notifier=notifier), script, when_ready=False)  # the script plays systemd from the start


def test_an_idle_camera_does_not_stop_the_pings(demo_store: Path, broker, tmp_path: Path,
                                                systemd: NotifySocket) -> None:
    """A camera whose source ended (as a triggered camera between parts): nothing waits anywhere, so
    the pings go on with no gap as long as WATCHDOG_USEC for 4 periods, and STATUS says 0.0 fps."""
    count = 12
    with Subscriber(broker.port, ["ovt/st/cam0/result"]) as sub:

        def script(_d: Daemon) -> None:
            systemd.wait_for(lambda m: m.fields.get("READY") == "1", "READY=1")
            got = 0
            deadline = time.monotonic() + HANG_GUARD
            while got < count and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    sub.messages.get(timeout=0.5)
                    got += 1
            assert got == count, f"{got} results of {count}"
            start = time.monotonic()
            window = systemd.read_for(4 * PERIOD)
            assert largest_gap(pings(window), start, start + 4 * PERIOD) < PERIOD, pings(window)
            assert not any(m.fields.get("STATUS", "").startswith("stalled") for m in window)
            assert any(", 0.0 fps," in m.fields.get("STATUS", "") for m in window)

        _run(tmp_path, demo_store, broker.port, systemd,
             {"type": "synthetic", "seed": 1, "fps": 0, "count": count}, "every-frame", script)


def test_a_publisher_that_never_returns_stops_the_pings(demo_store: Path, broker, tmp_path: Path,
                                                        systemd: NotifySocket) -> None:
    """The publisher's lock held and never released (a deadlock): the decide thread blocks inside the
    hand-off, STATUS turns 'stalled: results wait for the publisher ...' and no WATCHDOG=1 comes for
    2 x WATCHDOG_USEC; once the lock is released the pings and 'inspecting' come back."""

    def script(d: Daemon) -> None:
        systemd.wait_for(lambda m: m.fields.get("READY") == "1", "READY=1")
        systemd.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", "a first ping")
        publisher = d.publisher
        assert publisher is not None, "READY=1 came before the publisher ran"
        with publisher.hold():  # the wedge under test
            stalled = systemd.wait_for(
                lambda m: m.fields.get("STATUS", "").startswith("stalled: ")
                and "results wait for the publisher" in m.fields["STATUS"], "a stalled STATUS")
            systemd.read_for(2 * PERIOD)
            assert not [t for t in pings(systemd.messages) if t > stalled.at], "pinged while stalled"
        systemd.skip()  # only what comes after the release counts
        systemd.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", "pings after the release")
        systemd.wait_for(lambda m: m.fields.get("STATUS", "").startswith("inspecting: "), "inspecting again")

    with Subscriber(broker.port, ["ovt/#"], on_message=lambda *_: None):
        _run(tmp_path, demo_store, broker.port, systemd,
             {"type": "synthetic", "seed": 1, "fps": 20}, "free-run", script)
