"""``ovedged run`` under a real notify socket, as systemd would run it (Type=notify, WatchdogSec).

The test plays systemd's part: it binds an AF_UNIX datagram socket, starts the daemon with
``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``JOURNAL_STREAM`` (naming the daemon's stderr file), and
reads what the daemon says. Time windows are multiples of ``WATCHDOG_USEC``; the generous limits
on waiting for something to appear are hang guards, not speed requirements.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.configs import write_config
from tests.daemon.notify_parts import (
    HANG_GUARD,
    PERIOD,
    WATCHDOG_USEC,
    Message,
    NotifySocket,
    largest_gap,
    notify_socket,
    pings,
)
from tools.subscriber import Subscriber

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def daemon(tmp_path: Path, demo_store: Path, broker_port: int, repo_root: Path, *,
           keepalive: int = 15) -> Iterator[tuple[subprocess.Popen[bytes], NotifySocket, Path]]:
    """``ovedged run`` on one free-running synthetic camera, with systemd's variables set."""
    state = tmp_path / "state"
    cfg = write_config(
        tmp_path,
        station={"name": "st", "topic_prefix": "ovt"},
        model={"store": demo_store, "name": "demo", "cache_dir": state / "cache"},
        cameras=[{"id": "cam0", "mode": "free-run", "source": {"type": "synthetic", "seed": 1, "fps": 20}}],
        mqtt={"port": broker_port, "keepalive": keepalive},
        state={"dir": state},
    )
    log = tmp_path / "daemon.log"
    # A subscriber, so that results are delivered (not answered "no matching subscribers").
    with notify_socket() as notify, log.open("wb") as err, \
            Subscriber(broker_port, ["ovt/#"], on_message=lambda *_: None):
        st = os.fstat(err.fileno())
        env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC),
               "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", "PYTHONPATH": str(repo_root)}
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(cfg)], cwd=repo_root, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            yield proc, notify, log
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_notify_protocol_ready_status_watchdog_reload_stop(demo_store: Path, broker, tmp_path: Path,
                                                           repo_root: Path) -> None:
    """READY=1 (with an 'inspecting' STATUS naming cameras and model) only once the pipeline runs; then
    WATCHDOG=1 with no gap longer than WATCHDOG_USEC; SIGHUP gives RELOADING=1 (with MONOTONIC_USEC) then
    READY=1; a paused broker turns STATUS 'degraded' without stopping the pings (a restart cannot fix a
    broker); SIGTERM gives STOPPING=1 and exit 0. Every log line carries a <N> priority for journald."""
    with daemon(tmp_path, demo_store, broker.port, repo_root, keepalive=5) as (proc, notify, log):
        ready = notify.wait_for(lambda m: m.fields.get("READY") == "1", "READY=1", proc, log)
        before = [m for m in notify.messages if m.at < ready.at]
        starting = "starting: model demo (version latest) on CPU"
        assert any(m.fields.get("STATUS", "").startswith(starting) for m in before), before
        assert any("EXTEND_TIMEOUT_USEC" in m.fields for m in before), "a compile extends the start timeout"
        assert "WATCHDOG" not in {k for m in before for k in m.fields}, "no ping before READY=1"
        assert ready.fields["STATUS"].startswith("inspecting: 1 camera, "), ready.fields
        assert ready.fields["STATUS"].endswith("model demo v1 on CPU"), ready.fields

        window = notify.read_for(3 * PERIOD)
        assert largest_gap(pings(window), ready.at, ready.at + 3 * PERIOD) < PERIOD, pings(window)
        assert any(re.fullmatch(r"inspecting: 1 camera, [0-9.]+ fps, model demo v1 on CPU", m.fields.get("STATUS", ""))
                   and not m.fields["STATUS"].startswith("inspecting: 1 camera, 0.0 fps")
                   for m in notify.messages), [m.fields for m in notify.messages]

        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for(lambda m: m.fields.get("RELOADING") == "1", "RELOADING=1", proc, log)
        assert int(reloading.fields["MONOTONIC_USEC"]) > 0
        notify.wait_for(lambda m: m.fields.get("READY") == "1", "READY=1 after the reload", proc, log)

        broker.proc.send_signal(signal.SIGSTOP)  # the broker hangs: no PUBACK, no CONNACK, no PINGRESP
        try:
            paused = time.monotonic()
            degraded = notify.wait_for(lambda m: m.fields.get("STATUS", "").startswith("degraded:"),
                                       "a degraded STATUS", proc, log)
            assert "MQTT broker 127.0.0.1" in degraded.fields["STATUS"]
            notify.read_for(PERIOD)
            assert largest_gap(pings(notify.messages), paused, time.monotonic()) < PERIOD
        finally:
            broker.proc.send_signal(signal.SIGCONT)
        notify.wait_for(lambda m: m.fields.get("STATUS", "").startswith("inspecting:"), "back to inspecting",
                        proc, log)

        proc.send_signal(signal.SIGTERM)
        stopping = notify.wait_for(lambda m: m.fields.get("STOPPING") == "1", "STOPPING=1", proc, log)
        assert proc.wait(timeout=HANG_GUARD) == 0, log.read_text()[-3000:]
        notify.read_for(0.2)
        assert not pings([m for m in notify.messages if m.at > stopping.at]), "no ping after STOPPING=1"

    lines = log.read_text().splitlines()
    assert lines, "the daemon logged nothing"
    assert all(re.match(r"<[2-7]>", line) for line in lines), [ln for ln in lines if not re.match(r"<[2-7]>", ln)]
    assert any(line.startswith("<6>INFO daemon.app: running: 1 camera(s)") for line in lines)
    assert any(line.startswith("<4>WARNING daemon.publisher: MQTT connection lost") for line in lines)


# -- a real wedge: every thread but the main one stopped with ptrace ------------------------------

PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_DETACH = 17
WALL = 0x40000000  # waitpid(__WALL): wait for threads, not only children


class Freezer:
    """Stops threads of another process (ptrace-stop: the kernel stops exactly that thread)."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self._libc.ptrace.restype = ctypes.c_long
        self.frozen: list[int] = []

    def freeze_all_but_main(self, pid: int) -> None:
        for task in Path(f"/proc/{pid}/task").iterdir():
            tid = int(task.name)
            if tid == pid:
                continue
            if self._libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
                err = ctypes.get_errno()
                if err == 3:  # ESRCH: the thread ended meanwhile
                    continue
                pytest.fail(f"ptrace(SEIZE) on thread {tid}: {os.strerror(err)}; the test needs ptrace "
                            "(a container without CAP_SYS_PTRACE or kernel.yama.ptrace_scope >= 2 refuses it)")
            self._libc.ptrace(PTRACE_INTERRUPT, tid, None, None)
            os.waitpid(tid, WALL)
            self.frozen.append(tid)

    def thaw(self) -> None:
        for tid in self.frozen:
            self._libc.ptrace(PTRACE_DETACH, tid, None, None)
        self.frozen.clear()


def test_wedged_pipeline_stops_the_pings_and_abort_dumps_every_thread(demo_store: Path, broker, tmp_path: Path,
                                                                      repo_root: Path) -> None:
    """With every thread but the main one stopped (cameras, dispatch, OpenVINO's workers, decide, the
    publisher: a deadlock seen from outside), the main loop still runs and reports STATUS 'stalled: ...'
    but sends no WATCHDOG=1 for 2 x WATCHDOG_USEC; once the threads run again the pings come back. The
    watchdog's SIGABRT then makes faulthandler write the stack of every thread (decide, dispatch, ...)."""
    with daemon(tmp_path, demo_store, broker.port, repo_root) as (proc, notify, log):
        notify.wait_for(lambda m: m.fields.get("READY") == "1", "READY=1", proc, log)
        notify.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", "a first ping", proc, log)
        freezer = Freezer()
        stalled: Message | None = None
        for _attempt in range(5):
            freezer.freeze_all_but_main(proc.pid)
            try:
                got = notify.read_for(3 * PERIOD)
                stalled = next((m for m in got if m.fields.get("STATUS", "").startswith("stalled:")), None)
                if stalled is not None:
                    after = notify.read_for(2 * PERIOD)
                    assert not pings([m for m in got + after if m.at > stalled.at]), "pinged while stalled"
                else:
                    # Nothing at all: a stopped thread held the GIL, so the main loop could not run
                    # either (no ping: right, but not what this test is about). Thaw and try again.
                    assert not pings(got[1:]), "pinged while every worker thread was stopped"
            finally:
                freezer.thaw()
            notify.skip()
            notify.wait_for(lambda m: m.fields.get("WATCHDOG") == "1", "pings after the thaw", proc, log)
            if stalled is not None:
                break
        assert stalled is not None, "the main loop never ran while the workers were stopped"
        notify.wait_for(lambda m: m.fields.get("STATUS", "").startswith("inspecting:"), "inspecting again",
                        proc, log)

        proc.send_signal(signal.SIGABRT)  # what systemd sends when the watchdog expires
        assert proc.wait(timeout=HANG_GUARD) == -signal.SIGABRT
    text = log.read_text()
    assert "<3>ERROR daemon.app: pipeline stalled: " in text
    assert "<4>WARNING daemon.app: the pipeline moves again" in text
    assert "Fatal Python error: Aborted" in text
    dump = text[text.index("Fatal Python error: Aborted"):]
    for frame in ("_decide_loop", "_dispatch_loop", "_supervise", "_ack_loop"):
        assert f'in {frame}' in dump, f"no stack of {frame} in the dump:\n{dump[:3000]}"
