"""A private nginx in front of local daemons, for tests: ``deploy/nginx/ovedge.conf`` as shipped,
with only its listen port and the stations' upstream ports changed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from tools.mosquitto import free_port, terminate, wait_listening

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "nginx" / "ovedge.conf"
INSTALL_HINT = "install it with: sudo apt-get install -y nginx (Debian/Ubuntu; .ci/run does this)"


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def render(text: str, *, listen: int, upstreams: dict[str, int]) -> str:
    """The shipped server block with ``listen`` and each station's ``127.0.0.1:PORT`` replaced
    (upstream and its down message alike); a station the file does not name is an error."""
    text, n = re.subn(r"(?m)^(\s*listen\s+)\d+;", rf"\g<1>{listen};", text)
    if n != 1:
        raise ValueError(f"expected one listen directive, found {n}")
    for station, port in upstreams.items():
        block = re.search(rf"upstream ovedge_{re.escape(station)} \{{\s*server 127\.0\.0\.1:(\d+);", text)
        if block is None:
            raise ValueError(f"{SHIPPED.name} has no upstream for {station}")
        text = text.replace(f"127.0.0.1:{block.group(1)}", f"127.0.0.1:{port}")
    return text


class Nginx:
    """``with Nginx(upstreams={"station1": 18081}) as proxy: proxy.port``: started, listening, stopped."""

    def __init__(self, *, upstreams: dict[str, int], conf: Path = SHIPPED) -> None:
        binary = find_nginx()
        if binary is None:
            raise FileNotFoundError(f"nginx is not installed; {INSTALL_HINT}")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ovedge-nginx-"))
        self.server = render(conf.read_text(encoding="utf-8"), listen=self.port, upstreams=upstreams)
        self.proc: subprocess.Popen[bytes] | None = None

    def main_config(self) -> str:
        d = self.dir
        return "\n".join([
            "user root;" if os.geteuid() == 0 else "",
            "worker_processes 1;",
            f"pid {d}/nginx.pid;",
            f"error_log {d}/error.log;",
            "events { worker_connections 64; }",
            "http {",
            "    access_log off;",
            *(f"    {kind}_temp_path {d}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
            f"    include {d}/ovedge.conf;",
            "}",
            "",
        ])

    def start(self) -> None:
        (self.dir / "ovedge.conf").write_text(self.server, encoding="utf-8")
        (self.dir / "nginx.conf").write_text(self.main_config(), encoding="utf-8")
        check = subprocess.run([self.binary, "-t", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                               capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t rejected the config: {check.stderr.strip()}")
        log = (self.dir / "stderr.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
                                      "-g", "daemon off;"], stdout=log, stderr=log, start_new_session=True)
        wait_listening(self.proc, self.port, "nginx", self.dir / "error.log")

    def stop(self) -> None:
        terminate(self.proc, 10.0)
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
