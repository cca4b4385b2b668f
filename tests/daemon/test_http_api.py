"""The HTTP API, request by request (FastAPI's TestClient) on a real compiled demo model.

The daemon is represented by ``DemoView`` (tests/daemon/http_parts.py), the Protocol the API is
built against; the model, rules, decoding and counters are the real ones.
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from camera.frame import Frame
from daemon.config import Rules
from daemon.config.http import HttpConfig
from daemon.decision import Decider
from daemon.engine import ActiveModel, Engine, LoadedModel
from daemon.http import Latest, create_app
from daemon.result import DefectOut, FrameOut, ModelOut, ResultRecord, TimingsOut, Verdict
from tests.daemon.http_parts import CAMERAS, DemoView, load_demo, png_bytes, synthetic_jpeg

CFG = HttpConfig(enabled=True)


@pytest.fixture(scope="module")
def demo_model(demo_store: Path) -> LoadedModel:
    return load_demo(demo_store)


@pytest.fixture
def view(demo_model: LoadedModel) -> DemoView:
    return DemoView(demo_model)


@pytest.fixture
def client(view: DemoView) -> TestClient:
    return TestClient(create_app(view, CFG), raise_server_exceptions=False)


def _upload(client: TestClient, data: bytes, name: str = "part.jpg", path: str = "/infer") -> object:
    return client.post(path, files={"file": (name, data, "image/jpeg")})


# ------------------------------------------------------------------------------------ health


def test_liveness_readiness_and_status(client: TestClient, view: DemoView) -> None:
    """/healthz answers alive; /readyz is 200 with the model when loaded, 503 with reasons when not;
    /status is the view's status document."""
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["model"] == "demo v1 on CPU"
    assert [c["id"] for c in ready.json()["cameras"]] == list(CAMERAS)
    assert client.get("/status").json() == view.status()

    cold = TestClient(create_app(DemoView(None), CFG), raise_server_exceptions=False)
    not_ready = cold.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["reasons"] == ["the model is not loaded yet"]


def test_openapi_document_lists_every_route(client: TestClient) -> None:
    """The OpenAPI document is served and describes each endpoint, /infer with both body kinds."""
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) == {
        "/healthz", "/readyz", "/metrics", "/status", "/cameras/{camera}/latest.jpg", "/infer", "/run", "/cvat",
        "/", "/live",
    }
    body = doc["paths"]["/infer"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "image/*"}
    assert doc["paths"]["/run"]["post"]["requestBody"] == doc["paths"]["/infer"]["post"]["requestBody"]
    assert "503" in doc["paths"]["/infer"]["post"]["responses"]
    assert client.get("/docs").status_code == 200


def test_metrics_parse_with_prometheus_parser(client: TestClient, view: DemoView) -> None:
    """/metrics is valid Prometheus text: per-camera frames, verdicts, latency histogram, PUBACK
    outcomes, reconnects, the model as an info metric, and ad-hoc inference counts."""
    for ms in (0.5, 3.0, 7.0, 7.5, 4000.0):
        view.histogram.observe(ms)
    view.verdicts.update({"OK": 5, "NG": 3, "ERROR": 1})
    assert _upload(client, synthetic_jpeg(0)).status_code == 200
    assert _upload(client, b"").status_code == 400
    text = client.get("/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert samples[("ovedge_frames_captured_total", (("camera", "cam1"),))] == 11
    assert samples[("ovedge_frames_inferred_total", (("camera", "cam0"),))] == 9
    assert samples[("ovedge_frames_dropped_total", (("camera", "cam0"),))] == 1
    assert samples[("ovedge_camera_reconnects_total", (("camera", "cam1"),))] == 1
    assert samples[("ovedge_results_total", (("camera", "cam0"), ("verdict", "NG")))] == 3
    hist = {k[1]: v for k, v in samples.items() if k[0] == "ovedge_inference_latency_seconds_bucket"}
    assert hist[(("camera", "cam0"), ("le", "0.001"))] == 1
    assert hist[(("camera", "cam0"), ("le", "0.005"))] == 2
    assert hist[(("camera", "cam0"), ("le", "0.01"))] == 4
    assert hist[(("camera", "cam0"), ("le", "+Inf"))] == 5
    assert samples[("ovedge_inference_latency_seconds_count", (("camera", "cam0"),))] == 5
    assert samples[("ovedge_inference_latency_seconds_sum", (("camera", "cam0"),))] == pytest.approx(4.018)
    assert samples[("ovedge_mqtt_puback_total", (("outcome", "no_subscribers"),))] == 1
    assert samples[("ovedge_mqtt_puback_total", (("outcome", "delivered"),))] == 17
    assert samples[("ovedge_mqtt_reconnects_total", ())] == 2
    assert samples[("ovedge_mqtt_connected", ())] == 1
    info = [k for k in samples if k[0] == "ovedge_model_info"]
    assert dict(info[0][1]) == {"name": "demo", "version": "1", "device": "CPU", "requested_device": "CPU"}
    assert samples[("ovedge_http_inferences_total", (("endpoint", "/infer"), ("outcome", "ok")))] == 1
    assert samples[("ovedge_http_inferences_total", (("endpoint", "/infer"), ("outcome", "rejected")))] == 1
    assert any(k[0] == "process_resident_memory_bytes" for k in samples)


# ------------------------------------------------------------------------------------ latest frame


def test_latest_frame_is_drawn_on_request(client: TestClient, view: DemoView) -> None:
    """latest.jpg: 404 for an unknown camera, 503 before a frame, then a JPEG of the frame's size
    with the defect box drawn (the kept frame itself is not modified)."""
    assert client.get("/cameras/nope/latest.jpg").status_code == 404
    assert client.get("/cameras/cam0/latest.jpg").status_code == 503
    image = np.full((120, 160, 3), 128, np.uint8)
    record = ResultRecord(
        seq=7, station="s", camera="cam0", time="2026-11-30T00:00:00.000000Z",
        frame=FrameOut(index=7, ref=None, captured="2026-11-30T00:00:00.000000Z", width=160, height=120),
        model=ModelOut(name="demo", version=1, device="CPU"), verdict=Verdict.NG,
        defects=(DefectOut(label="scratch", score=0.9, box=(40, 30, 100, 90)),),
        timings=TimingsOut(inference_ms=1.0, capture_to_result_ms=2.0),
    )
    view.latest_frames["cam0"] = Latest(image, record)
    got = client.get("/cameras/cam0/latest.jpg")
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(got.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (120, 160, 3)
    assert np.abs(decoded[60, 40].astype(int) - 128).max() > 40  # the box's left edge is drawn
    assert np.abs(decoded[60, 70].astype(int) - 128).max() < 20  # inside the box: the frame
    assert (image == 128).all()


# ------------------------------------------------------------------------------------ /infer


def test_infer_matches_the_camera_path(client: TestClient, demo_model: LoadedModel) -> None:
    """POST /infer judges an upload exactly as the engine + [rules] judge the same pixels from a
    camera: same verdict, same defects; camera "http", seq 0, the file name as ref."""
    data = synthetic_jpeg(5)
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    engine = Engine(ActiveModel(demo_model, {}, golden_diff=0.0))
    assert engine.submit(Frame(frame, 0, time.time(), time.monotonic()), "cam", timeout=5)
    done = engine.take(timeout=10)
    assert done is not None
    assert done.outputs is not None
    detections = demo_model.postprocess(done.outputs, frame.shape[:2])
    verdict, counted = Decider.build(Rules(), demo_model.meta, camera="http").decide(detections)

    got = _upload(client, data, name="part-5.jpg")
    assert got.status_code == 200
    body = got.json()
    assert body["schema"] == "ovedge.result/1"
    assert body["camera"] == "http"
    assert body["seq"] == 0
    assert body["frame"]["ref"] == "upload:part-5.jpg"
    assert (body["frame"]["width"], body["frame"]["height"]) == (160, 160)
    assert body["model"] == {"name": "demo", "version": 1, "device": "CPU"}
    assert body["verdict"] == verdict.value
    assert [(d["label"], d["box"]) for d in body["defects"]] == [(d.label, d.box) for d in counted]
    for mine, theirs in zip(body["defects"], counted, strict=True):
        assert mine["score"] == pytest.approx(theirs.score, abs=1e-5)
    ResultRecord.model_validate(body)  # the MQTT schema


def test_run_alias_and_raw_image_body(client: TestClient) -> None:
    """The seed's route /run takes the same multipart upload; a raw image/* body works on both."""
    data = synthetic_jpeg(6)
    by_form = _upload(client, data, path="/run").json()
    raw = client.post("/infer", content=data, headers={"content-type": "image/jpeg"}).json()
    raw_run = client.post("/run", content=png_bytes(cv2.imdecode(np.frombuffer(data, np.uint8), 1)),
                          headers={"content-type": "image/png"}).json()
    assert by_form["verdict"] == raw["verdict"] == raw_run["verdict"]
    assert raw["frame"]["ref"] == "upload"


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width x height`` (a decompression bomb's calling card)."""
    raw = png_bytes(np.zeros((1, 1, 3), np.uint8))
    ihdr = struct.pack(">II", width, height) + raw[24:29]
    chunk = b"IHDR" + ihdr
    return raw[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[33:]


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("zero bytes", 400, "is empty (0 bytes)"),
        ("not an image", 415, "is not an image"),
        ("truncated jpeg", 400, "truncated or corrupt"),
        ("truncated png", 400, "truncated or corrupt"),
        ("bomb header", 413, "too large to decode"),
        ("too many real pixels", 413, "too large to decode"),
        ("oversized body", 413, "larger than 65536 bytes"),
        ("missing field", 400, "no complete file in field 'file'"),
        ("truncated multipart", 400, "no complete file in field 'file'"),
        ("wrong content type", 415, "is not accepted"),
    ],
)
def test_bad_uploads_get_a_4xx_with_a_message(view: DemoView, case: str, status: int, message: str) -> None:
    """Each bad upload gets its own 4xx and a one-line JSON message, never a 500."""
    cfg = HttpConfig(enabled=True, max_body_bytes=65536, max_pixels=1_000_000)
    client = TestClient(create_app(view, cfg), raise_server_exceptions=False)
    jpeg = synthetic_jpeg(1)
    png = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    if case == "missing field":
        got = client.post("/infer", files={"image": ("a.jpg", jpeg, "image/jpeg")})
    elif case == "truncated multipart":
        body = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n" + jpeg)  # the closing boundary never comes
        got = client.post("/infer", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    elif case == "wrong content type":
        got = client.post("/infer", content=jpeg, headers={"content-type": "text/plain"})
    else:
        data = {
            "zero bytes": b"",
            "not an image": b"%PDF-1.7 this is a document, not a picture",
            "truncated jpeg": jpeg[: len(jpeg) // 2],
            "truncated png": png[: len(png) // 2],
            "bomb header": _png_header_claiming(100_000, 100_000),
            "too many real pixels": png_bytes(np.zeros((1100, 1000, 3), np.uint8)),
            "oversized body": b"\xff\xd8" + bytes(70_000),
        }[case]
        got = _upload(client, data)
    assert got.status_code == status, got.text
    assert message in got.json()["detail"]
    assert "Traceback" not in got.text


def test_saturation_answers_503_with_retry_after(demo_model: LoadedModel) -> None:
    """With every ad-hoc slot and queue place taken, the next request gets 503 + Retry-After at
    once; when the slot frees, requests succeed again."""
    gate = threading.Event()
    view = DemoView(demo_model, gate=gate)
    cfg = HttpConfig(enabled=True, infer_concurrency=1, infer_queue=0, retry_after=3)
    client = TestClient(create_app(view, cfg), raise_server_exceptions=False)
    data = synthetic_jpeg(2)
    first: dict[str, int] = {}
    holder = threading.Thread(target=lambda: first.update(status=_upload(client, data).status_code))
    holder.start()
    assert view.entered.acquire(timeout=30)  # the first request is inside the only slot
    busy = _upload(client, data)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "3"
    assert "busy: 1 ad-hoc inference(s) running and 0 waiting" in busy.json()["detail"]
    gate.set()
    holder.join(30)
    assert first == {"status": 200}
    assert _upload(client, data).status_code == 200


def test_model_not_loaded_is_503(client: TestClient) -> None:
    """Before the model is loaded, /infer answers 503 with a message, not a 500."""
    cold = TestClient(create_app(DemoView(None), CFG), raise_server_exceptions=False)
    got = _upload(cold, synthetic_jpeg(0))
    assert got.status_code == 503
    assert got.json()["detail"] == "the model is not available yet; retry shortly"


def test_a_bug_is_a_500_without_its_text(demo_model: LoadedModel) -> None:
    """An unexpected exception inside a handler becomes 500 with a fixed message: neither the
    exception's text nor a stack trace reaches the client."""

    class Broken(DemoView):
        def status(self) -> dict[str, object]:
            raise RuntimeError("secret internals at 0xdeadbeef")

    client = TestClient(create_app(Broken(demo_model), CFG), raise_server_exceptions=False)
    got = client.get("/status")
    assert got.status_code == 500
    assert got.json() == {"detail": "internal error; the daemon's log has the details"}
    assert "deadbeef" not in got.text


# ------------------------------------------------------------------------------------ token


def test_bearer_token_guards_everything_but_liveness(view: DemoView) -> None:
    """With a token, every route but /healthz needs ``Authorization: Bearer <token>``: missing or
    wrong -> 401 with WWW-Authenticate; right -> served. The OpenAPI document says so."""
    client = TestClient(create_app(view, CFG, token="s3cret-token"), raise_server_exceptions=False)
    assert client.get("/healthz").status_code == 200
    for path in ("/readyz", "/metrics", "/status", "/openapi.json", "/cameras/cam0/latest.jpg"):
        denied = client.get(path)
        assert denied.status_code == 401, path
        assert denied.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/status", headers={"Authorization": "Basic s3cret-token"}).status_code == 401
    assert _upload(client, synthetic_jpeg(0)).status_code == 401
    auth = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/status", headers=auth).status_code == 200
    got = client.post("/infer", files={"file": ("a.jpg", synthetic_jpeg(0), "image/jpeg")}, headers=auth)
    assert got.status_code == 200
    doc = client.get("/openapi.json", headers=auth).json()
    assert doc["paths"]["/status"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]

