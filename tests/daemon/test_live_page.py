"""The live page: ``GET /`` and ``GET /live``, request by request and in a real headless Chromium
against a real ``ovedged run`` (synthetic cameras, a real Mosquitto, the demo IR)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from daemon.config.http import HttpConfig
from daemon.http import Latest, create_app
from daemon.http.live import LiveSnapshot
from daemon.metrics import RECENT_NOT_OK, CameraTally
from daemon.result import DefectData, Result, Verdict
from tests.daemon.http_parts import CAMERAS, DemoView, load_demo
from tools.mosquitto import Mosquitto, free_port

CFG = HttpConfig(enabled=True)
BIN = Path(sys.executable).parent


def _record(seq: int, camera: str, verdict: Verdict) -> Result:
    return Result(
        seq=seq, station="s", camera=camera, time=1764460800.0 + seq, frame_index=seq, frame_ref=None,
        captured=1764460800.0, width=160, height=120, model_name="demo", model_version=1, device="CPU",
        verdict=verdict,
        defects=(DefectData(label="scratch", score=0.9, box=(40, 30, 100, 90)),) if verdict is Verdict.NG else (),
        inference_ms=1.5, capture_to_result_ms=2.0,
        error="post-processing failed: x" if verdict is Verdict.ERROR else None,
    )


@pytest.fixture
def view(demo_store: Path) -> DemoView:
    return DemoView(load_demo(demo_store))


# ------------------------------------------------------------------------------------ request level


def test_live_snapshot_reads_the_view(view: DemoView) -> None:
    """GET /live reports, from the view alone: station, readiness, model, broker counters, each
    configured camera with its state, counts by verdict, latency count/sum and last record, and the
    view's recent not-OK results in order; a camera without a frame yet has ``last`` null."""
    for ms in (2.0, 4.0):
        view.histogram.observe(ms)
    view.verdicts.update({"OK": 6, "NG": 2, "ERROR": 1})
    view.latest_frames["cam0"] = Latest(np.zeros((120, 160, 3), np.uint8), _record(9, "cam0", Verdict.NG).record())
    view.not_ok = [_record(9, "cam0", Verdict.NG).record(), _record(8, "cam1", Verdict.ERROR).record()]
    client = TestClient(create_app(view, CFG), raise_server_exceptions=False)

    got = client.get("/live")
    assert got.status_code == 200
    body = LiveSnapshot.model_validate(got.json())
    assert body.station == view.station
    assert body.ready is True
    assert body.model is not None
    assert (body.model.name, body.model.version, body.model.device) == ("demo", 1, "CPU")
    assert body.mqtt is not None
    assert (body.mqtt.connected, body.mqtt.published, body.mqtt.delivered) == (True, 19, 17)
    assert [c.id for c in body.cameras] == list(CAMERAS)
    cam0, cam1 = body.cameras
    assert (cam0.state, cam0.ok, cam0.ng, cam0.errors, cam0.inferred, cam0.dropped) == ("running", 6, 2, 1, 9, 1)
    assert (cam0.latency_count, cam0.latency_sum_ms) == (2, 6.0)
    assert cam0.last is not None
    assert cam0.last.seq == 9
    assert cam1.last is None
    assert [(r.camera, r.seq, r.verdict) for r in body.recent] == [("cam0", 9, Verdict.NG), ("cam1", 8, Verdict.ERROR)]
    later = LiveSnapshot.model_validate(client.get("/live").json())
    assert later.clock >= body.clock


def test_page_is_served_without_the_token_its_data_is_not(view: DemoView) -> None:
    """GET / is the HTML page and holds no data, so it needs no token; GET /live does, and the
    OpenAPI document marks /live (not /) as needing it."""
    client = TestClient(create_app(view, CFG, token="s3cret-token"), raise_server_exceptions=False)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="cameras"' in page.text
    assert 'get("live")' in page.text  # the page polls the JSON endpoint, relative to itself (a proxy's prefix)
    assert client.get("/live").status_code == 401
    auth = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/live", headers=auth).status_code == 200
    doc = client.get("/openapi.json", headers=auth).json()
    assert doc["paths"]["/live"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/"]["get"]


def test_tally_keeps_the_last_not_ok_records() -> None:
    """CameraTally keeps the records of the last RECENT_NOT_OK NG/ERROR results, oldest first, and
    never an OK one; every update replaces the tuple (a reader never sees a half-written one)."""
    tally = CameraTally()
    image = np.zeros((4, 4, 3), np.uint8)
    seen = []
    for seq in range(1, 60):
        verdict = (Verdict.OK, Verdict.NG, Verdict.ERROR)[seq % 3]
        record = _record(seq, "cam0", verdict)
        before = tally.recent_not_ok
        tally.note(image, record, verdict.value, 1.0)
        if verdict is not Verdict.OK:
            seen.append(seq)
            assert tally.recent_not_ok is not before
    assert [r.seq for r in tally.recent_not_ok] == seen[-RECENT_NOT_OK:]
    assert tally.inferred == 59


# ------------------------------------------------------------------------------------ Chromium
# (the `chrome` fixture is in tests/conftest.py)


def _wait(predicate: Callable[[], object], what: str, proc: subprocess.Popen[str], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds  # a hang guard, not a speed requirement
    last: BaseException | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"daemon exited while waiting for {what}"
        try:
            if predicate():
                return
        except Exception as exc:  # the page may be mid-render: keep polling
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


def test_live_page_in_headless_chromium(chrome: object, demo_store: Path, broker: Mosquitto, tmp_path: Path,
                                        repo_root: Path, write_config: Callable[..., Path]) -> None:
    """A real ovedged (two synthetic cameras, a real broker, the demo IR, HTTP on) and a real
    Chromium on GET /: the page shows every configured camera with its state, the model and the
    broker; each camera's frame is displayed; the counters move while the daemon runs; recent NG
    results are listed. A screenshot is saved beside the test's files."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(chrome, WebDriver)
    port = free_port()
    cameras = ("line-a", "line-b")
    cfg = write_config(
        station={"name": "st-live"},
        model={"store": demo_store, "cache": False},
        cameras=[{"id": cam, "mode": "every-frame",
                  "source": {"type": "synthetic", "seed": 11 + i, "fps": 4, "defect_rate": 0.6}}
                 for i, cam in enumerate(cameras)],
        mqtt={"port": broker.port, "connect_timeout": 5},
        state={"dir": tmp_path / "state"},
        http={"enabled": True, "port": port},
    )
    proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(cfg)], cwd=repo_root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shot = tmp_path / "live-page.png"
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _http_ok(base + "/healthz"), "the HTTP API", proc)
        chrome.get(base + "/")

        def field(cam: str, name: str) -> str:
            return str(chrome.find_element(By.CSS_SELECTOR, f'.camera[data-camera="{cam}"] [data-field="{name}"]').text)

        def count(cam: str, name: str) -> int:
            text = field(cam, name)
            return int(text) if text.isdigit() else -1

        _wait(lambda: all(count(c, "inferred") >= 3 for c in cameras), "three results per camera", proc)
        shown = [e.get_attribute("data-camera") for e in chrome.find_elements(By.CSS_SELECTOR, "section.camera")]
        assert shown == list(cameras)
        first = {c: count(c, "inferred") for c in cameras}
        _wait(lambda: all(count(c, "inferred") > first[c] for c in cameras), "the counters to move", proc)
        for c in cameras:
            assert field(c, "state") == "running"
            assert count(c, "ok") + count(c, "ng") + count(c, "errors") > 0
            assert field(c, "ng_rate").endswith("%")
        _wait(lambda: all(float(field(c, "fps")) > 0 for c in cameras), "a frame rate", proc)
        _wait(lambda: all(float(field(c, "latency")) > 0 for c in cameras), "a latency", proc)
        _wait(lambda: all(chrome.execute_script(
            "const i = document.querySelector(arguments[0]); return i.complete && i.naturalWidth",
            f'.camera[data-camera="{c}"] img') == 256 for c in cameras), "each camera's frame", proc)
        assert chrome.find_element(By.ID, "model").text == "demo v1 on CPU"
        assert chrome.find_element(By.ID, "broker").text == "connected"
        assert chrome.find_element(By.ID, "ready").text == "ready"
        # the table is rebuilt at every poll: read a row in one script call, not element by element
        first_row = "const r = document.querySelector('#recent tr'); return r && [r.dataset.camera, r.innerText]"
        _wait(lambda: chrome.execute_script(first_row), "a recent NG row", proc)
        camera, text = chrome.execute_script(first_row)
        assert camera in cameras
        assert "NG" in text or "ERROR" in text
        assert not chrome.find_element(By.ID, "banner").is_displayed()
        chrome.save_screenshot(str(shot))
        print(f"live page screenshot: {shot}")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert shot.stat().st_size > 10_000


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False
