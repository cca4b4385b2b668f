"""The systemd notify protocol without libsystemd: datagrams to ``$NOTIFY_SOCKET``.

:class:`Notifier` reads the environment once (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``,
``WATCHDOG_PID``) and says what the daemon is doing; every call is a no-op outside systemd.

What the daemon sends, and when (``docs/ARCHITECTURE.md``, Lifecycle):

* ``EXTEND_TIMEOUT_USEC=`` every few seconds while a model compiles (:meth:`Notifier.extending`,
  a helper thread): a first GPU/NPU compile can take minutes, longer than ``TimeoutStartSec``;
* ``READY=1`` with ``STATUS=`` once the model is compiled and self-tested, the cameras opened and
  the publisher connected;
* ``STATUS=`` whenever the human-readable state changes (``systemctl status`` shows it);
* ``WATCHDOG=1`` only when :class:`daemon.watchdog.Progress` says the pipeline moves;
* ``RELOADING=1`` on SIGHUP, ``READY=1`` once the model check it asked for is over;
* ``STOPPING=1`` on SIGTERM, before the bounded drain.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping

log = logging.getLogger(__name__)

__all__ = ["Notifier"]

EXTEND_EVERY = 5.0
"""Seconds between two ``EXTEND_TIMEOUT_USEC`` messages while a compile runs."""
EXTEND_LIMIT = 1800.0
"""Seconds after which :meth:`Notifier.extending` stops asking: a start-up this long is a hang,
and ``TimeoutStartSec`` may end it."""


class Notifier:
    """sd_notify for one process: the socket address and the watchdog period, read once."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._shown = address
        self.watchdog_interval = _watchdog_interval(env)
        self._lock = threading.Lock()
        self._status: str | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True under a unit with ``Type=notify`` (``$NOTIFY_SOCKET`` set)."""
        return bool(self._address)

    def send(self, *fields: str) -> bool:
        """One datagram of ``KEY=value`` lines; False when not under systemd or the send failed."""
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(fields).encode())
        except OSError as exc:
            if not self._warned:  # once: systemd going away must not flood the log
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", self._shown, exc)
            return False
        return True

    # -- the messages ----------------------------------------------------------------------------

    def ready(self, status: str) -> bool:
        with self._lock:
            self._status = status
        return self.send("READY=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        """``STATUS=text``, sent only when it differs from the last one sent."""
        with self._lock:
            if text == self._status:
                return True
            self._status = text
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        return self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def reloading(self, status: str) -> bool:
        with self._lock:
            self._status = status
        # MONOTONIC_USEC lets a Type=notify-reload unit (systemd >= 253) match the reload it asked for.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        with self._lock:
            self._status = status
        return self.send("STOPPING=1", f"STATUS={status}")

    @contextlib.contextmanager
    def extending(self, what: str, every: float = EXTEND_EVERY, limit: float = EXTEND_LIMIT) -> Iterator[None]:
        """While the block runs, ask systemd for ``3 * every`` more seconds of start-up every ``every`` s.

        Each message extends the current start (or stop) timeout from the moment it arrives, so
        the block may take as long as it needs, up to ``limit`` seconds; then the messages stop and
        systemd's own timeout applies again. Outside systemd nothing is started.
        """
        if not self.enabled:
            yield
            return
        done = threading.Event()
        self.status(what)

        def keep_extending() -> None:
            end = time.monotonic() + limit
            while time.monotonic() < end:
                self.extend_timeout(3 * every)
                if done.wait(every):
                    return
            log.error("%s: still not done after %g s; no longer extending systemd's start timeout", what, limit)

        thread = threading.Thread(target=keep_extending, name="systemd-extend", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings (half of ``WATCHDOG_USEC``), or None when no watchdog is asked for us.

    ``WATCHDOG_PID``, when set, names the process the watchdog is meant for (a child started by
    us inherits the variables and must not ping).
    """
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000

