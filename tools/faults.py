"""Real faults against a real daemon and a real Mosquitto: the delivery guarantee, measured.

Each scenario starts ``ovedged`` (the demo model, a synthetic camera at full speed, a fresh state
folder) and a persistent-session QoS 1 subscriber (what an MES client would be), injects one
fault, stops the daemon cleanly with the broker up and counts: results produced (every number the
spool handed out, read from the spool file), received unique, duplicates, missing, the time from
the broker's return to the first result received, and the spool's high-water mark.

Used by ``tests/test_delivery.py`` (asserts zero missing) and ``benchmarks/delivery.py`` (writes
``benchmarks/results/delivery.json`` and the Markdown table for ``docs/MQTT.md``).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.mosquitto import Mosquitto, free_port
from tools.subscriber import Subscriber

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STATION, PREFIX = "line1", "ovt"
TOPIC = f"{PREFIX}/{STATION}"


@dataclass
class Figures:
    scenario: str
    produced: int = 0
    received_unique: int = 0
    duplicates: int = 0
    missing: int = 0
    error_results: int = 0
    reconnect_s: float | None = None
    spool_high_water: int = 0
    exit_codes: list[int] = field(default_factory=list)
    duration_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Collector:
    """A persistent-session QoS 1 subscriber that counts every result by seq (de-dup on (station, seq))."""

    def __init__(self, port: int, client_id: str = "mes-1") -> None:
        self.lock = threading.Lock()
        self.seen: Counter[int] = Counter()
        self.arrivals: list[tuple[float, int]] = []
        self.statuses: list[dict[str, Any]] = []
        self.alarms: list[dict[str, Any]] = []
        self.errors: dict[int, str] = {}
        self.sub = Subscriber(port, [f"{TOPIC}/#"], client_id=client_id, session_expiry=3600,
                              on_message=self._on_message)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        body = json.loads(payload)
        with self.lock:
            if topic.endswith("/result"):
                self.seen[body["seq"]] += 1
                self.arrivals.append((time.monotonic(), body["seq"]))
                if body["verdict"] == "ERROR":
                    self.errors[body["seq"]] = body.get("error") or ""
            elif topic.endswith("/status") and topic.count("/") == 2:  # the station's, not a camera's
                self.statuses.append(body)
            elif topic.endswith("/alarm"):
                self.alarms.append(body)

    def __enter__(self) -> Collector:
        self.sub.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sub.__exit__(None, None, None)

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def first_arrival_after(self, t: float) -> float | None:
        with self.lock:
            later = [a for a, _ in self.arrivals if a > t]
        return min(later) - t if later else None

    def wait_for(self, seqs: set[int], quiet: float = 5.0, limit: float = 180.0) -> None:
        """Until every seq arrived, or nothing new came for ``quiet`` s (a hang guard, not a speed claim)."""
        deadline = time.monotonic() + limit
        last, seen_before = time.monotonic(), -1
        while time.monotonic() < deadline:
            with self.lock:
                have = set(self.seen)
            if seqs <= have:
                return
            if len(have) != seen_before:
                last, seen_before = time.monotonic(), len(have)
            elif time.monotonic() - last > quiet:
                return
            time.sleep(0.1)


class Daemon:
    """``ovedged run`` as a child process; the log goes to a file (one file across restarts)."""

    def __init__(self, work: Path, store: Path, port: int, *, extra: str = "", wrap: list[str] | None = None) -> None:
        self.work = work
        self.state = work / "state"
        self.log_path = work / "daemon.log"
        self.config = work / "config.toml"
        self.wrap = wrap or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.config.write_text(f"""
[station]
name = "{STATION}"
topic_prefix = "{PREFIX}"
[model]
store = "{store}"
name = "demo"
cache_dir = "{work / 'cache'}"
[[cameras]]
id = "cam0"
mode = "every-frame"
[cameras.source]
type = "synthetic"
seed = 3
fps = 0
[mqtt]
port = {port}
keepalive = 5
connect_timeout = 5
require_at_start = false
[state]
dir = "{self.state}"
[spool]
retry_interval = 5
replay_delay = 1
drain_timeout = 10
{extra}
""", encoding="utf-8")

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()  # never leave a daemon behind, whatever happened

    def start(self, *, ready: bool = True) -> None:
        self.runs += 1
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"=== run {self.runs}\n")
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen([*self.wrap, str(BIN / "ovedged"), "run", "--config", str(self.config)],
                                     cwd=ROOT, stdout=log, stderr=log, env=env, start_new_session=True)
        log.close()
        if ready:
            self.wait_log(f"=== run {self.runs}", "running:")

    def run_log(self) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text.split(f"=== run {self.runs}\n", 1)[-1]

    def wait_log(self, _marker: str, needle: str, limit: float = 120.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if needle in self.run_log():
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ovedged exited ({self.proc.returncode}):\n{self.run_log()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"ovedged did not log {needle!r} within {limit:g} s:\n{self.run_log()[-3000:]}")

    def terminate(self, timeout: float = 120.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def produced(self) -> int:
        """Every number handed out: the spool's next_seq - 1 (read from the file after the daemon left)."""
        db = sqlite3.connect(f"file:{self.state / 'spool.db'}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]) - 1
        finally:
            db.close()

    def stored_seqs(self) -> set[int]:
        """Every seq the spool still holds (delivered or not, within retention): what replay can serve."""
        db = sqlite3.connect(f"file:{self.state / 'spool.db'}?mode=ro", uri=True)
        try:
            return {int(row[0]) for row in db.execute("SELECT seq FROM results")}
        finally:
            db.close()

    def delivered_seqs(self) -> set[int]:
        """The seqs the spool has marked delivered (success PUBACK) so far."""
        db = sqlite3.connect(f"file:{self.state / 'spool.db'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT seq FROM results WHERE state = 1").fetchall()
        finally:
            db.close()
        return {int(seq) for (seq,) in rows}

    def high_water(self) -> int:
        marks = [int(m) for m in re.findall(r"high-water (\d+)", self.log_path.read_text(errors="replace"))]
        return max(marks, default=0)


def _finish(fig: Figures, daemon: Daemon, sub: Collector, started: float) -> Figures:
    produced = daemon.produced()
    sub.wait_for(set(range(1, produced + 1)))
    with sub.lock:
        seen = Counter(sub.seen)
        fig.error_results = len(sub.errors)
    fig.produced = produced
    fig.received_unique = len([s for s in seen if 1 <= s <= produced])
    fig.duplicates = sum(n - 1 for n in seen.values())
    fig.missing = produced - fig.received_unique
    fig.spool_high_water = daemon.high_water()
    fig.duration_s = round(time.monotonic() - started, 1)
    statuses = [s.get("spool", {}).get("high_water", 0) or 0 for s in sub.statuses]
    fig.spool_high_water = max([fig.spool_high_water, *statuses])
    return fig


def outage(work: Path, store: Path, *, seconds: float, persistence: bool, how: str = "stop") -> Figures:
    """Broker away for ``seconds`` while the camera runs flat out: stopped (``stop``), ``kill``ed or ``freeze``."""
    fig = Figures(f"broker {how} {seconds:g} s, persistence {'on' if persistence else 'off'}")
    started = time.monotonic()
    port = free_port()
    with Mosquitto(port, persistence=persistence) as broker, Collector(port) as sub, \
            Daemon(work, store, port) as daemon:
        daemon.start()
        time.sleep(3)
        rss0 = daemon.rss_mb()
        t0 = time.monotonic()
        if how == "freeze":
            broker.freeze()
        elif how == "kill":
            broker.kill()
        else:
            broker.stop()
        time.sleep(seconds)
        rss1 = daemon.rss_mb()
        # While the broker is away nothing is acknowledged: what the spool has marked delivered now is
        # what the broker that went away acknowledged (by seq, not by the time of the mark, which
        # lags the PUBACK on a loaded machine). Only those can have been lost with its memory.
        acked_by_first = daemon.delivered_seqs()
        if how == "freeze":
            broker.thaw()
        else:
            broker.start()
        back = time.monotonic()
        fig.notes["rss_growth_mb_per_min"] = round((rss1 - rss0) / ((back - t0) / 60), 2)
        _wait_drained(daemon, sub, back)
        fig.reconnect_s = _round(sub.first_arrival_after(back))
        fig.exit_codes.append(daemon.terminate())
        fig.notes["final_log_line"] = daemon.run_log().strip().splitlines()[-1]
        fig = _finish(fig, daemon, sub, started)
        with sub.lock:
            missing = set(range(1, fig.produced + 1)) - set(sub.seen)
        fig.notes["missing_not_in_spool"] = len(missing - daemon.stored_seqs())  # replay cannot fill these
        # A broker that dies (kill) or restarts without persistence loses what it had PUBACKed but not
        # yet forwarded or saved: those seqs were acknowledged before it went away. Any other missing
        # seq would be the daemon's fault.
        fig.notes["missing_acked_after_outage"] = len(missing - acked_by_first)
        fig.notes["missing_ranges"] = _ranges(missing)  # to tell the stop's loss from a later one
        return fig


def _wait_drained(daemon: Daemon, sub: Collector, since: float, limit: float = 240.0) -> None:
    """Until a status after ``since`` shows an empty spool (the backlog went out), bounded."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with sub.lock:
            recent = [s for s in sub.statuses[-3:] if s.get("state") == "online"]
        if time.monotonic() > since + 12 and recent and (recent[-1].get("spool") or {}).get("depth", 1) < 500:
            return
        time.sleep(0.5)


def _ranges(seqs: set[int]) -> str:
    """``{1, 2, 3, 7}`` -> ``"1-3,7"``: missing seqs in a failure message, short."""
    parts: list[str] = []
    for seq in sorted(seqs):
        if parts and seq == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{seq}"
        else:
            parts.append(str(seq))
    return ",".join(parts)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def daemon_kills(work: Path, store: Path, *, kills: int = 20, seed: int = 1) -> Figures:
    """SIGKILL the producing daemon at random points ``kills`` times; then one clean run."""
    fig = Figures(f"daemon SIGKILL x{kills}")
    started = time.monotonic()
    rng = random.Random(seed)  # noqa: S311  # kill points, not secrets
    port = free_port()
    with Mosquitto(port) as _broker, Collector(port) as sub, \
            Daemon(work, store, port) as daemon:
        for _ in range(kills):
            daemon.start(ready=rng.random() < 0.8)  # some kills land during start-up
            time.sleep(rng.uniform(0.2, 3.0))
            daemon.kill()
        daemon.start()
        time.sleep(3)
        fig.exit_codes.append(daemon.terminate())
        fig.notes["final_log_line"] = daemon.run_log().strip().splitlines()[-1]
        return _finish(fig, daemon, sub, started)


def sigterm_while_down(work: Path, store: Path, *, down: float = 5.0) -> Figures:
    """SIGTERM while the broker is away: exit 0, rows wait; start again with the broker up: all arrive."""
    fig = Figures("SIGTERM while the broker is down, restart with it up")
    started = time.monotonic()
    port = free_port()
    with Mosquitto(port) as broker, Collector(port) as sub, \
            Daemon(work, store, port) as daemon:
        daemon.start()
        time.sleep(2)
        broker.stop()
        time.sleep(down)
        fig.exit_codes.append(daemon.terminate())
        fig.notes["stop_log_line"] = daemon.run_log().strip().splitlines()[-1]
        broker.start()
        back = time.monotonic()
        daemon.start()
        time.sleep(3)
        fig.reconnect_s = _round(sub.first_arrival_after(back))
        fig.exit_codes.append(daemon.terminate())
        fig.notes["final_log_line"] = daemon.run_log().strip().splitlines()[-1]
        return _finish(fig, daemon, sub, started)


def storage_fault(work: Path, store: Path, *, kind: str) -> Figures:
    """State folder read-only from the start (``readonly``) or a tiny filesystem filled up while producing (``full``).

    Runs the daemon in its own mount namespace (``unshare -m``): the state folder is a bind mount
    (read-only case) or a 8 MiB tmpfs (full case) that only the daemon sees; the test changes it
    with ``nsenter``. Then storage comes back and the daemon recovers.
    """
    fig = Figures(f"state folder {'read-only at start' if kind == 'readonly' else 'full (ENOSPC, 8 MiB tmpfs)'}")
    started = time.monotonic()
    port = free_port()
    state = work / "state"
    state.mkdir(parents=True)
    # A read-write file cannot be remounted read-only under an open database (EBUSY): the read-only
    # case starts read-only and is remounted read-write while the daemon runs.
    mount = (f'mount --bind "{state}" "{state}" && mount -o remount,ro,bind "{state}"' if kind == "readonly"
             else f'mount -t tmpfs -o size=8m tmpfs "{state}"')
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mount} && exec "$@"', "sh"]
    with Mosquitto(port) as _broker, Collector(port) as sub, \
            Daemon(work, store, port, wrap=wrap) as daemon:
        daemon.start()
        time.sleep(2)
        assert daemon.proc is not None
        pid = daemon.proc.pid

        def ns(*cmd: str) -> None:
            done = subprocess.run(["nsenter", "-t", str(pid), "-m", *cmd], capture_output=True, encoding="utf-8",
                                  check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} in the daemon's namespace failed: {done.stderr.strip()}")

        if kind == "full":  # fill the tmpfs: the spool's next writes fail with ENOSPC
            ns("sh", "-c", f'dd if=/dev/zero of="{state}/filler" bs=64k 2>/dev/null; true')
        _wait(lambda: any(s.get("state") == "degraded" for s in sub.statuses), 30)
        time.sleep(4)
        if kind == "readonly":
            ns("mount", "-o", "remount,rw,bind", str(state))
        else:
            ns("rm", "-f", f"{state}/filler")
        _wait(lambda: bool(sub.statuses) and sub.statuses[-1].get("state") == "online", 30)
        time.sleep(2)
        fig.exit_codes.append(daemon.terminate())
        text = daemon.run_log()
        fig.notes["degraded_log_lines"] = text.count("results cannot be stored")
        fig.notes["recovered_log_lines"] = text.count("results are stored again")
        fig.notes["tracebacks"] = text.count("Traceback")
        fig.notes["alarms"] = [(a["alarm"], a["active"]) for a in sub.alarms]
        fig.notes["states"] = _changes([s.get("state") for s in sub.statuses])
        fig.notes["final_log_line"] = text.strip().splitlines()[-1]
        fig.notes["error_reasons"] = sorted(set(sub.errors.values()))[:3]
        fig.notes["log"] = text[-4000:]
        return _finish(fig, _Outside(daemon, kind), sub, started)


class _Outside(Daemon):
    """Reads the spool that lived in the daemon's namespace: the bind case sees it, the tmpfs case cannot."""

    def __init__(self, inner: Daemon, kind: str) -> None:
        self.__dict__.update(inner.__dict__)
        self.kind = kind
        self.inner = inner

    def produced(self) -> int:
        if self.kind == "readonly":
            return self.inner.produced()
        # the tmpfs vanished with the daemon's namespace: the highest seq it logged is the count
        marks = [int(m) for m in re.findall(r"last seq (\d+)", self.log_path.read_text(errors="replace"))]
        return max(marks, default=0)


def _changes(states: list[Any]) -> list[Any]:
    out: list[Any] = []
    for s in states:
        if not out or out[-1] != s:
            out.append(s)
    return out


def _wait(cond: Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not cond():
        time.sleep(0.1)


def quota_full(work: Path, store: Path, *, quota: int = 60_000) -> Figures:
    """A small ``[spool] quota_bytes`` fills while the broker is away; it comes back and the daemon recovers."""
    fig = Figures(f"spool quota full ({quota // 1000} kB in config)")
    started = time.monotonic()
    port = free_port()
    with Mosquitto(port) as broker, Collector(port) as sub, \
            Daemon(work, store, port, extra=f"quota_bytes = {quota}") as daemon:
        daemon.start()
        time.sleep(2)
        broker.stop()
        deadline = time.monotonic() + 60
        while "results cannot be stored" not in daemon.run_log() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        broker.start()
        back = time.monotonic()
        _wait(lambda: bool(sub.statuses) and sub.statuses[-1].get("state") == "online"
              and any(s.get("state") == "degraded" for s in sub.statuses), 60)
        fig.reconnect_s = _round(sub.first_arrival_after(back))
        time.sleep(2)
        fig.exit_codes.append(daemon.terminate())
        text = daemon.run_log()
        fig.notes["degraded_log_lines"] = text.count("results cannot be stored")
        fig.notes["states"] = _changes([s.get("state") for s in sub.statuses])
        fig.notes["error_reasons"] = sorted(set(sub.errors.values()))[:3]
        fig.notes["final_log_line"] = text.strip().splitlines()[-1]
        return _finish(fig, daemon, sub, started)


def corrupt_spool(work: Path, store: Path) -> Figures:
    """The spool file is garbage at start: set aside with an alarm, a fresh spool numbers above the mark."""
    fig = Figures("spool file corrupt at start")
    started = time.monotonic()
    port = free_port()
    with Mosquitto(port) as _broker, Collector(port) as sub, Daemon(work, store, port) as daemon:
        daemon.start()
        time.sleep(2)
        fig.exit_codes.append(daemon.terminate())
        first_last = daemon.produced()
        mark = int((daemon.state / "seq").read_text(encoding="ascii"))
        db = daemon.state / "spool.db"
        with db.open("r+b") as fh:  # overwrite the header and the first pages
            fh.write(b"\xde\xad\xbe\xef" * 4096)
        daemon.start()
        time.sleep(2)
        fig.exit_codes.append(daemon.terminate())
        last = daemon.produced()
        expected = set(range(1, first_last + 1)) | set(range(mark + 1, last + 1))
        sub.wait_for(expected)
        with sub.lock:
            seen = Counter(sub.seen)
            fig.notes["alarms"] = [(a["alarm"], a["active"]) for a in sub.alarms]
        fig.produced = len(expected)
        fig.received_unique = len(expected & set(seen))
        fig.duplicates = sum(n - 1 for n in seen.values())
        fig.missing = fig.produced - fig.received_unique
        fig.notes["unexpected"] = sorted(set(seen) - expected)[:5]
        fig.notes["set_aside"] = [p.name for p in daemon.state.glob("spool.db.corrupt-*")
                                  if not p.name.endswith(("-wal", "-shm"))]
        fig.notes["first_seq_after"] = min((s for s in seen if s > first_last), default=None)
        fig.notes["mark"] = mark
        fig.notes["tracebacks"] = daemon.log_path.read_text(errors="replace").count("Traceback")
        fig.duration_s = round(time.monotonic() - started, 1)
        return fig
