"""A real daemon run in the test's own process: ``Daemon.run`` in the main thread (it installs its
SIGHUP handler there) while the test's script drives it from a helper thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

from daemon.app import Daemon

READY_GUARD = 120.0  # seconds: a hang guard for start-up (model compile on a loaded machine), not a speed test


def run_beside(daemon: Daemon, script: Callable[[Daemon], None], *, when_ready: bool = True) -> None:
    """Run ``daemon`` here and ``script(daemon)`` on a thread (after ``daemon.ready`` when
    ``when_ready``); the daemon stops when the script returns. The script's failure is raised here,
    and the daemon must exit 0."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def drive() -> None:
        try:
            if when_ready and not daemon.ready.wait(READY_GUARD):
                failed.append(TimeoutError("the daemon did not become ready"))
            else:
                script(daemon)
        except BaseException as exc:  # re-raised in the test's thread
            failed.append(exc)
        finally:
            stop.set()

    helper = threading.Thread(target=drive, name="test-driver")
    helper.start()
    try:
        code = daemon.run(stop)
    finally:
        stop.set()
        helper.join()
    if failed:
        raise failed[0]
    assert code == 0
