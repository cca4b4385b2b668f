"""The HTTP API through a real uvicorn socket on a free loopback port, with a real HTTP client."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from daemon.config import load_config
from daemon.config.http import HttpConfig, TokenFileError, TokenRequiredError, is_loopback
from daemon.engine import LoadedModel
from daemon.http import HttpBindError, HttpServer, create_app, resolve_token
from ovedge.errors import ConfigError
from tests.daemon.http_parts import DemoView, load_demo, synthetic_jpeg

TOKEN = "tok-7f3a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def demo_model(demo_store: Path) -> LoadedModel:
    return load_demo(demo_store)


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_real_socket_round_trip_and_clean_stop(demo_model: LoadedModel) -> None:
    """Served from a thread named ``http`` on the bound port: liveness without a token, 401 without
    it elsewhere, a real multipart /infer and a /cvat call with it; leaving the context stops the
    thread and frees the port."""
    cfg = HttpConfig(enabled=True, port=0)
    with HttpServer(create_app(DemoView(demo_model), cfg, token=TOKEN), cfg) as server:
        assert server.port > 0
        assert len(_threads_named("http")) == 1
        # Declared TCP, so that asyncio switches Nagle off on every accepted connection (with proto 0
        # it does not, and each response waited for the client's delayed ACK, ~40 ms).
        assert server.socket is not None
        assert server.socket.proto == socket.IPPROTO_TCP
        with httpx2.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/healthz").json() == {"status": "alive"}
            assert client.get("/status").status_code == 401
            got = client.post("/infer", files={"file": ("p.jpg", synthetic_jpeg(4), "image/jpeg")}, headers=AUTH)
            assert got.status_code == 200
            assert got.json()["camera"] == "http"
            shapes = client.post("/cvat", json={"image": base64.b64encode(synthetic_jpeg(4)).decode(),
                                                "threshold": 0.0}, headers=AUTH)
            assert shapes.status_code == 200
            assert [s["type"] for s in shapes.json()] == ["tag"]  # a classifier: its top label for the image
            assert shapes.json()[0]["label"] in demo_model.meta.labels
        port = server.port
    assert _threads_named("http") == []
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # free again


def test_streamed_body_over_the_limit_is_413(demo_model: LoadedModel) -> None:
    """A chunked upload without Content-Length is cut off at http.max_body_bytes with 413."""
    cfg = HttpConfig(enabled=True, port=0, max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"\xff" * 1024

    with HttpServer(create_app(DemoView(demo_model), cfg), cfg) as server, \
            httpx2.Client(base_url=server.url, timeout=30) as client:
        got = client.post("/infer", content=chunks(), headers={"content-type": "image/jpeg"})
        assert got.status_code == 413
        assert "larger than 4096 bytes" in got.json()["detail"]
        declared = client.post("/infer", content=b"\xff" * 5000, headers={"content-type": "image/jpeg"})
        assert declared.status_code == 413


def test_request_timeout_is_504_and_the_slot_comes_back(demo_model: LoadedModel) -> None:
    """An inference held past http.request_timeout answers 504; once it really finishes its slot is
    free again (the concurrency bound is kept by the worker, not by the abandoned request)."""
    gate = threading.Event()
    view = DemoView(demo_model, gate=gate)
    cfg = HttpConfig(enabled=True, port=0, request_timeout=0.5, infer_concurrency=1, infer_queue=0)
    app = create_app(view, cfg)
    with HttpServer(app, cfg) as server, httpx2.Client(base_url=server.url, timeout=30) as client:
        slow = client.post("/infer", content=synthetic_jpeg(1), headers={"content-type": "image/jpeg"})
        assert slow.status_code == 504
        assert "longer than 0.5 s" in slow.json()["detail"]
        assert app.state.runner.admitted == 1  # still running in its worker thread
        gate.set()
        view.gate = None
        for _ in range(200):
            if app.state.runner.admitted == 0:
                break
            threading.Event().wait(0.05)
        assert app.state.runner.admitted == 0
        ok = client.post("/infer", content=synthetic_jpeg(1), headers={"content-type": "image/jpeg"})
        assert ok.status_code == 200


def test_port_in_use_is_one_clear_error(demo_model: LoadedModel) -> None:
    """A port another process holds fails start-up with HttpBindError naming host and port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = HttpConfig(enabled=True, port=port)
        with pytest.raises(HttpBindError, match=rf"cannot listen on 127\.0\.0\.1:{port} \(Address already in use\)"):
            HttpServer(create_app(DemoView(demo_model), cfg), cfg).__enter__()
    assert _threads_named("http") == []


# ------------------------------------------------------------------------------------ the token rule


def test_loopback_detection() -> None:
    """Loopback is 127.0.0.0/8, ::1 and localhost; the wildcard and other addresses are not."""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "station.local"))


def test_binding_off_loopback_requires_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off loopback: no token file and an empty token variable refuse to start; a token file or the
    variable provides it. On loopback no token is needed, but one that is given is used."""
    monkeypatch.delenv("OVEDGE_HTTP_TOKEN", raising=False)
    wide = HttpConfig(enabled=True, host="0.0.0.0")
    with pytest.raises(TokenRequiredError, match="not loopback, so a bearer token is required"):
        resolve_token(wide)
    monkeypatch.setenv("OVEDGE_HTTP_TOKEN", " from-env \n")
    assert resolve_token(wide) == "from-env"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n", encoding="utf-8")
    assert resolve_token(HttpConfig(enabled=True, host="0.0.0.0", token_file=token_file)) == "from-file"
    with pytest.raises(TokenFileError, match="cannot be read"):
        resolve_token(HttpConfig(enabled=True, token_file=tmp_path / "missing"))
    monkeypatch.delenv("OVEDGE_HTTP_TOKEN")
    assert resolve_token(HttpConfig(enabled=True)) is None


def test_config_refuses_open_binding_without_any_token_source(write_config: Callable[..., Path]) -> None:
    """``[http]`` with a non-loopback host and neither token_file nor token_env is a config error."""
    path = write_config(http={"enabled": True, "host": "0.0.0.0", "token_env": ""})
    with pytest.raises(ConfigError, match=r"http\.host '0\.0\.0\.0' is not loopback"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"http\.port"):
        load_config(write_config(http={"port": 99999}))
    relative = load_config(write_config(http={"token_file": "secret/token"}))
    assert relative.http.token_file == path.parent / "secret" / "token"  # resolved against the config's folder
