"""What the systemd notify tests share: systemd's side of the notify protocol, on a real socket.

The test plays systemd: it binds an AF_UNIX datagram socket, hands its path to the daemon as
``NOTIFY_SOCKET`` (with ``WATCHDOG_USEC``) and reads what the daemon says. Time windows are
multiples of ``WATCHDOG_USEC``; the generous limits on waiting for something to appear are hang
guards, not speed requirements.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

WATCHDOG_USEC = 3_000_000
PERIOD = WATCHDOG_USEC / 1e6  # seconds systemd waits for a ping before it aborts the service
HANG_GUARD = 300.0


@dataclass(frozen=True)
class Message:
    at: float  # time.monotonic() when received
    fields: dict[str, str]


class NotifySocket:
    """The systemd side of the protocol: a bound datagram socket and everything received on it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[Message] = []
        self._seen = 0  # messages before this index were looked at by wait_for

    def close(self) -> None:
        self.sock.close()

    def skip(self) -> None:
        """Let :meth:`wait_for` look only at messages that arrive from now on."""
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(4096)  # already sent: not "from now on"
        self._seen = len(self.messages)

    def read_for(self, seconds: float) -> list[Message]:
        """Everything that arrives during ``seconds``."""
        end = time.monotonic() + seconds
        got: list[Message] = []
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                break
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            got.append(Message(time.monotonic(), fields))
        self.messages += got
        return got

    def wait_for(self, pred: Callable[[Message], bool], what: str, proc: subprocess.Popen[bytes] | None = None,
                 log: Path | None = None) -> Message:
        """The first message not yet looked at for which ``pred`` holds; fails if the daemon process
        ``proc`` (when given) exits first, with the end of its ``log`` (when given)."""

        def tail() -> str:
            return "" if log is None else f":\n{log.read_text()[-3000:]}"

        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            for i in range(self._seen, len(self.messages)):
                if pred(self.messages[i]):
                    self._seen = i + 1
                    return self.messages[i]
            self._seen = len(self.messages)
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"ovedged exited ({proc.returncode}) before {what}{tail()}")
            self.read_for(0.5)
        pytest.fail(f"no {what} within the hang guard{tail()}")


@contextlib.contextmanager
def notify_socket() -> Iterator[NotifySocket]:
    """A :class:`NotifySocket` in a new folder under /tmp (AF_UNIX paths are limited to 107 bytes),
    closed and removed afterwards."""
    short = Path(tempfile.mkdtemp(prefix="ovn-", dir="/tmp"))
    notify = NotifySocket(short / "notify")
    try:
        yield notify
    finally:
        notify.close()
        with contextlib.suppress(OSError):
            notify.path.unlink()
            short.rmdir()


def pings(messages: list[Message]) -> list[float]:
    """When each ``WATCHDOG=1`` among ``messages`` arrived."""
    return [m.at for m in messages if m.fields.get("WATCHDOG") == "1"]


def largest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] without a ping."""
    marks = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(marks))
