"""Several daemons behind one nginx: ``deploy/nginx/ovedge.conf`` as shipped (only its ports changed)
in front of two real ``ovedged run`` processes, a real Mosquitto, the demo IR and a real Chromium."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2

from tests.daemon.http_parts import synthetic_jpeg
from tools.mosquitto import Mosquitto, free_port
from tools.nginx import Nginx

BIN = Path(sys.executable).parent
TOKEN = "line-7-secret"


@contextmanager
def _daemon(config: Path, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(config)], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _until(predicate: Callable[[], object], what: str, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a speed requirement
    last: BaseException | None = None
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), f"a daemon exited while waiting for {what}"
        try:
            if predicate():
                return
        except Exception as exc:  # a daemon still starting, a page mid-render: keep polling
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def test_two_stations_behind_the_shipped_nginx_config(chrome: object, demo_store: Path, broker: Mosquitto,
                                                      tmp_path: Path, repo_root: Path,
                                                      write_config: Callable[..., Path]) -> None:
    """station1 (with a bearer token and its prefix as [http] root_path) and station2, each an ovedged
    on its own loopback port, behind one nginx: every endpoint answers under its station's prefix for
    that station only; the token passes through (and is required: the daemon sees nginx's loopback
    address); station1's Swagger UI and OpenAPI document name its prefix; an oversize upload gets
    nginx's JSON 413 naming both limits; each station's live page works under its prefix (its data
    paths are relative); a station that is down gets a 502 naming it while the other goes on."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(chrome, WebDriver)
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    ports = {"station1": free_port(), "station2": free_port()}
    configs = {
        station: write_config(
            station={"name": station},
            model={"store": demo_store, "cache": False},
            cameras=[{"id": "cam0", "mode": "every-frame",
                      "source": {"type": "synthetic", "seed": 3 + i, "fps": 4, "defect_rate": 0.5}}],
            mqtt={"port": broker.port, "connect_timeout": 5},
            state={"dir": tmp_path / station},
            http={"enabled": True, "port": port,
                  **({"token_file": tmp_path / "token", "root_path": "/station1"} if station == "station1" else {})},
            filename=f"{station}.toml",
        )
        for i, (station, port) in enumerate(ports.items())
    }
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with ExitStack() as stack:
        procs = {s: stack.enter_context(_daemon(c, repo_root)) for s, c in configs.items()}
        proxy = stack.enter_context(Nginx(upstreams=ports))
        client = stack.enter_context(httpx2.Client(base_url=f"http://127.0.0.1:{proxy.port}", timeout=30))
        running = list(procs.values())
        _until(lambda: client.get("/station1/readyz", headers=auth).status_code == 200, "station1 ready", running)
        _until(lambda: client.get("/station2/readyz").status_code == 200, "station2 ready", running)

        # Each prefix reaches its own daemon, and only it.
        assert client.get("/station1/status", headers=auth).json()["station"] == "station1"
        assert client.get("/station2/status").json()["station"] == "station2"
        # The token passes through nginx unchanged and station1 still requires it.
        assert client.get("/station1/status").status_code == 401
        assert client.get("/station1/healthz").status_code == 200  # liveness needs no token
        moved = client.get("/station1", follow_redirects=False)
        assert moved.status_code == 301 and moved.headers["location"].endswith("/station1/")
        # station1 knows its prefix ([http] root_path): Swagger UI asks for its OpenAPI document under
        # it, and the document names it as the server; routing is unchanged (nginx strips the prefix).
        assert "/station1/openapi.json" in client.get("/station1/docs", headers=auth).text
        assert client.get("/station1/openapi.json", headers=auth).json()["servers"] == [{"url": "/station1"}]

        # The seed's /run through the proxy: a result of station2's model.
        answer = client.post("/station2/run", files={"file": ("part.jpg", synthetic_jpeg(1), "image/jpeg")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["verdict"] in ("OK", "NG")
        assert answer.json()["model"]["name"] == "demo"
        # Oversize: nginx answers 413 itself (same limit as [http] max_body_bytes), naming both settings.
        big = client.post("/station2/run", content=b"\xff" * (16 * 1024 * 1024 + 1),
                          headers={"content-type": "image/jpeg"})
        assert big.status_code == 413
        assert "http.max_body_bytes" in big.json()["error"]

        # Each live page under its prefix: its counters move (GET live, relative to the page).
        counter = '.camera[data-camera="cam0"] [data-field="inferred"]'

        def inferred() -> int:
            text = str(chrome.find_element(By.CSS_SELECTOR, counter).text)
            return int(text) if text.isdigit() else -1

        for station, page in (("station1", f"/station1/#token={TOKEN}"), ("station2", "/station2/")):
            chrome.get(f"http://127.0.0.1:{proxy.port}{page}")
            _until(lambda: inferred() >= 2, f"{station}'s live page counting", running)
            first = inferred()

            def moved_on(first: int = first) -> bool:
                return inferred() > first

            _until(moved_on, f"{station}'s live counter to move", running)
            _until(lambda: chrome.execute_script(
                "const i = document.querySelector('.camera img'); return i.complete && i.naturalWidth") == 256,
                f"{station}'s latest frame through the proxy", running)

        # station2 stops: its prefix says so by name; station1 goes on.
        procs["station2"].send_signal(signal.SIGTERM)
        assert procs["station2"].wait(60) == 0
        down = client.get("/station2/healthz")
        assert down.status_code == 502
        assert "station2: ovedged is not answering" in down.json()["error"]
        assert client.get("/station1/readyz", headers=auth).status_code == 200
