"""A private Mosquitto broker on a free loopback port, for the demo and the tests.

Options for the security tests: no anonymous access, a password file (:func:`make_password_file`
runs the real ``mosquitto_passwd``), an ACL file, a TLS listener (:class:`TlsListener`).

Debian's mosquitto needs ``user root`` (or a writable pid/persistence folder) in its config, and
another broker may already hold 1883: so each broker gets a temp folder and a free port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL_HINT = "install it with: sudo apt-get install -y mosquitto (Debian/Ubuntu)"


@dataclass(frozen=True)
class TlsListener:
    """TLS on the broker's listener: its certificate and key, the CA that signs clients' certificates."""

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False  # mutual TLS: a client without a certificate signed by cafile is refused

    def lines(self) -> list[str]:
        return [f"cafile {self.cafile}", f"certfile {self.certfile}", f"keyfile {self.keyfile}",
                f"require_certificate {'true' if self.require_certificate else 'false'}"]


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    """A Mosquitto password file made with the real ``mosquitto_passwd`` (hashed entries)."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise FileNotFoundError(f"mosquitto_passwd is not installed; {INSTALL_HINT}")
    path.write_text("", encoding="utf-8")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
    return path


def find_mosquitto() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, what: str, log: Path, seconds: float = 10.0) -> None:
    """Until ``proc`` accepts connections on ``127.0.0.1:port``; its log's tail in the error if it exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start: {log.read_text(errors='replace')[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds:g} s")


def terminate(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM ``proc`` (if it still runs) and wait; SIGKILL after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Mosquitto:
    """``with Mosquitto() as broker: broker.port`` — started, ready, stopped and cleaned up."""

    def __init__(self, port: int | None = None, *, persistence: bool = True, extra: str = "",
                 anonymous: bool = True, password_file: Path | None = None, acl_file: Path | None = None,
                 tls: TlsListener | None = None, conf: str | None = None) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise FileNotFoundError(f"mosquitto is not installed; {INSTALL_HINT}")
        self.binary = binary
        self.port = port or free_port()
        self.persistence = persistence
        self.extra = extra
        self.anonymous = anonymous
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.conf = conf  # a whole config of the caller's (e.g. deploy/mosquitto/ovedge.conf): used as is
        self.dir = Path(tempfile.mkdtemp(prefix="ovedge-mosquitto-"))
        self.log_path = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        if self.conf is not None:  # the caller's file; we only add what running unprivileged here needs
            return "\n".join([self.conf, "user root" if os.geteuid() == 0 else "",
                              f"pid_file {self.dir}/mosquitto.pid", ""])
        return "\n".join([
            f"listener {self.port} 127.0.0.1",
            *(self.tls.lines() if self.tls is not None else []),
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            f"password_file {self.password_file}" if self.password_file else "",
            f"acl_file {self.acl_file}" if self.acl_file else "",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "user root" if os.geteuid() == 0 else "",
            f"pid_file {self.dir}/mosquitto.pid",
            "log_dest stderr",
            self.extra,
            "",
        ])

    def start(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.config_text(), encoding="utf-8")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log,
                                     start_new_session=True)
        wait_listening(self.proc, self.port, "mosquitto", self.log_path)

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its sockets open but answers nothing (a hung broker)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, so no persistence save beyond the last autosave."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Start again on the same port with the same folder (the persistence file, if any)."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen broker cannot act on SIGTERM
        terminate(self.proc, 5.0)
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
