"""The notify client, the watchdog's progress rule and the journald log format, on real sockets and files."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.journal import JournalFormatter, priority, writes_to_journal
from daemon.systemd import Notifier
from daemon.watchdog import Counters, Progress, stalled


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A bound AF_UNIX datagram socket playing systemd (short path: AF_UNIX paths are limited)."""
    folder = Path(tempfile.mkdtemp(prefix="ovn-", dir="/tmp"))
    path = folder / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)  # a hang guard
    yield sock, str(path)
    sock.close()
    path.unlink()
    folder.rmdir()


def _fields(sock: socket.socket) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())


def test_notifier_sends_each_message_as_one_datagram(listener: tuple[socket.socket, str]) -> None:
    """ready/status/watchdog/extend/reloading/stopping each arrive as one datagram with their fields;
    an unchanged STATUS is not sent again."""
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready("inspecting: 1 camera")
    assert _fields(sock) == {"READY": "1", "STATUS": "inspecting: 1 camera"}
    n.status("inspecting: 1 camera")  # unchanged: nothing sent
    n.watchdog()
    assert _fields(sock) == {"WATCHDOG": "1"}
    n.extend_timeout(15)
    assert _fields(sock) == {"EXTEND_TIMEOUT_USEC": "15000000"}
    n.reloading("reloading")
    got = _fields(sock)
    assert got["RELOADING"] == "1" and int(got["MONOTONIC_USEC"]) > 0 and got["STATUS"] == "reloading"
    n.stopping("stopping")
    assert _fields(sock) == {"STOPPING": "1", "STATUS": "stopping"}


def test_abstract_socket_address() -> None:
    """A NOTIFY_SOCKET starting with '@' is the abstract namespace (a leading NUL byte)."""
    name = f"ovedge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(30)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_extending_keeps_asking_while_the_block_runs(listener: tuple[socket.socket, str]) -> None:
    """Inside `extending`, EXTEND_TIMEOUT_USEC (3x the period) arrives again and again until the block ends."""
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    with n.extending("compiling", every=0.01):
        assert _fields(sock) == {"STATUS": "compiling"}
        for _ in range(3):
            assert _fields(sock) == {"EXTEND_TIMEOUT_USEC": "30000"}
    n.watchdog()  # the helper thread is gone: what follows is ours
    while (f := _fields(sock)) != {"WATCHDOG": "1"}:
        assert f == {"EXTEND_TIMEOUT_USEC": "30000"}  # at most one sent before the block ended


def test_outside_systemd_everything_is_a_no_op() -> None:
    """Without NOTIFY_SOCKET: nothing is sent, no watchdog period, `extending` starts no thread."""
    n = Notifier({})
    assert not n.enabled and not n.watchdog() and n.watchdog_interval is None
    with n.extending("compiling"):
        pass


def test_watchdog_interval_is_half_the_period_and_only_for_our_pid() -> None:
    """WATCHDOG_USEC=3000000 gives a ping every 1.5 s; WATCHDOG_PID naming another process gives none."""
    assert Notifier({"WATCHDOG_USEC": "3000000"}).watchdog_interval == 1.5
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 1.5
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None


# -- the progress rule ---------------------------------------------------------------------------

IDLE = Counters(waiting=False, submitted=10, judged=10, decided=10, handed=10, publisher_beats=5)


def _moved(c: Counters, **changes: int | bool) -> Counters:
    fields = {"waiting": c.waiting, "submitted": c.submitted, "judged": c.judged, "decided": c.decided,
              "handed": c.handed,
              "publisher_beats": c.publisher_beats + 1}
    fields.update(changes)
    return Counters(**fields)  # type: ignore[arg-type]


def test_an_idle_pipeline_is_not_stalled() -> None:
    """Nothing waiting, nothing in flight, publisher turning: no stall, however long it stays so."""
    assert stalled(IDLE, _moved(IDLE)) is None


def test_each_stage_with_work_and_no_progress_is_named() -> None:
    """A frame waiting with no submission, requests in flight with none finished, results inside the
    hand-off with none taken, a publisher loop that stopped: each is reported; movement clears it."""
    waiting = Counters(waiting=True, submitted=10, judged=10, decided=10, handed=10, publisher_beats=5)
    assert stalled(waiting, _moved(waiting)) == "frames wait for the engine but none was submitted"
    assert stalled(waiting, _moved(waiting, submitted=11)) is None

    flight = Counters(waiting=False, submitted=12, judged=10, decided=10, handed=10, publisher_beats=5)
    assert stalled(flight, _moved(flight)) == "2 inference(s) in flight but none finished"
    assert stalled(flight, _moved(flight, judged=11)) is None

    handoff = Counters(waiting=False, submitted=11, judged=11, decided=11, handed=10, publisher_beats=5)
    assert stalled(handoff, _moved(handoff)) == "results wait for the publisher but none was taken"
    assert stalled(handoff, _moved(handoff, handed=11)) is None

    assert stalled(IDLE, IDLE) == "the publisher's thread stopped turning"


def test_a_jam_names_the_most_downstream_stage_first() -> None:
    """When the publisher hand-off blocks, everything upstream waits too: the hand-off is named first."""
    jam = Counters(waiting=True, submitted=14, judged=11, decided=11, handed=10, publisher_beats=5)
    assert stalled(jam, _moved(jam)) == (
        "results wait for the publisher but none was taken; 3 inference(s) in flight but none finished; "
        "frames wait for the engine but none was submitted"
    )


def test_progress_compares_each_reading_with_the_previous_one() -> None:
    """The first check is the baseline; later checks compare with the reading just before."""
    readings = iter([IDLE, IDLE, _moved(IDLE)])
    progress = Progress(lambda: next(readings))
    assert progress.check() is None
    assert progress.check() == "the publisher's thread stopped turning"
    assert progress.check() is None


# -- journald ----------------------------------------------------------------------------------

def test_priority_prefix_per_level_and_on_every_line_of_a_traceback() -> None:
    """ERROR -> <3>, WARNING -> <4>, INFO -> <6>, DEBUG -> <7>, CRITICAL -> <2>; each line of a record."""
    assert [priority(lv) for lv in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO,
                                    logging.DEBUG)] == [2, 3, 4, 6, 7]
    fmt = JournalFormatter("%(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("daemon.app", logging.ERROR, __file__, 1, "two\nlines", None, None)
    assert fmt.format(record) == "<3>ERROR daemon.app: two\n<3>lines"


def test_journal_stream_must_name_our_stderr(tmp_path: Path) -> None:
    """JOURNAL_STREAM counts only when its device:inode is the stream's file; inherited by a child whose
    stderr goes elsewhere, or absent, or garbage, it does not."""
    with (tmp_path / "a").open("w") as a, (tmp_path / "b").open("w") as b:
        st = os.fstat(a.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert writes_to_journal(a, env)
        assert not writes_to_journal(b, env)
        assert not writes_to_journal(a, {})
        assert not writes_to_journal(a, {"JOURNAL_STREAM": "x:y"})
        assert not writes_to_journal(io.StringIO(), env)


def test_extending_gives_up_after_its_limit(listener: tuple[socket.socket, str],
                                            caplog: pytest.LogCaptureFixture) -> None:
    """A block still running after `limit` seconds is a hang: the extensions stop (with one error line),
    so that systemd's own start timeout applies again."""
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    with caplog.at_level(logging.ERROR, logger="daemon.systemd"), n.extending("compiling", every=0.01, limit=0.05):
        deadline = time.monotonic() + 30  # a hang guard
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.getMessage() for r in caplog.records] == [
            "compiling: still not done after 0.05 s; no longer extending systemd's start timeout"
        ]
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                sock.recv(4096)  # what was sent before the limit
        sock.settimeout(20 * 0.01)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
