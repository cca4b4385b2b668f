"""The live page: ``GET /`` (one static HTML file) and ``GET /live`` (the JSON it polls).

Both only read what the daemon keeps anyway (:class:`DaemonView`: counters, readiness, the last
record of each camera, the last results that were not OK); nothing is added to the per-frame path.
Rates (frames/s, the latency of the last seconds) are computed by the page from two polls, using
``clock``; frames are fetched from ``GET /cameras/{id}/latest.jpg`` only when a camera's last
result changed, so an open page costs at most one JPEG encoding per camera per poll.

``GET /`` holds no data, so it is served without the bearer token (like ``/healthz``); the page
sends the token it is given (``/#token=...`` or its prompt) with every request it makes.
"""

from __future__ import annotations

import time
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from daemon.http.view import DaemonView
from daemon.metrics import RECENT_NOT_OK, CameraStats, LatencyHistogram
from daemon.result import ResultRecord, utc_iso

__all__ = ["LIVE_PAGE_PATH", "LiveSnapshot", "live_routes"]

LIVE_PAGE_PATH = "/"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LiveModel(_Frozen):
    name: str
    version: int
    device: str = Field(description="the device the model runs on")
    requested_device: str = Field(description="model.device as configured")


class LiveMqtt(_Frozen):
    connected: bool
    published: int = Field(description="results handed to the MQTT client")
    delivered: int = Field(description="PUBACKs: delivered")
    no_subscribers: int = Field(description="PUBACKs: no matching subscribers")
    rejected: int = Field(description="PUBACKs: refused by the broker")
    awaiting_puback: int
    reconnects: int


class LiveCamera(_Frozen):
    id: str
    state: str = Field(description="running | reconnecting | finished")
    error: str | None = Field(description="the source's last error while reconnecting")
    captured: int = Field(description="frames read from the source")
    inferred: int = Field(description="results judged (any verdict)")
    dropped: int = Field(description="frames replaced in a free-run slot before inference")
    reconnects: int
    ok: int
    ng: int
    errors: int = Field(description="results with verdict ERROR")
    latency_count: int = Field(description="inferences timed so far")
    latency_sum_ms: float = Field(description="their summed latency (the infer request's own), ms")
    last: ResultRecord | None = Field(description="the camera's last result; null before the first")


class LiveSnapshot(_Frozen):
    station: str
    time: str = Field(description="UTC time of this snapshot, ISO 8601")
    clock: float = Field(description="a monotonic clock, seconds: rates are differences of two snapshots")
    ready: bool
    reasons: tuple[str, ...] = Field(description="why not ready, one line each")
    model: LiveModel | None = Field(description="null until the model is loaded")
    mqtt: LiveMqtt | None = Field(description="null until the publisher is up")
    cameras: tuple[LiveCamera, ...]
    recent: tuple[ResultRecord, ...] = Field(
        description=f"the last results that were NG or ERROR, newest first (at most {RECENT_NOT_OK})"
    )


def snapshot(view: DaemonView) -> LiveSnapshot:
    """One consistent-enough reading of the view (each part is read once; no locks are taken)."""
    metrics = view.metrics()
    readiness = view.readiness()
    stats = {c.id: c for c in metrics.cameras}
    states = {c.id: c for c in readiness.cameras}
    cameras = []
    for cam in view.camera_ids():
        s = stats.get(cam) or CameraStats(cam, 0, 0, 0, 0, {}, LatencyHistogram().snapshot())
        state = states.get(cam)
        latest = view.latest(cam)
        cameras.append(LiveCamera(
            id=cam,
            state=state.state if state is not None else "unknown",
            error=state.error if state is not None else None,
            captured=s.captured, inferred=s.inferred, dropped=s.dropped, reconnects=s.reconnects,
            ok=s.verdicts.get("OK", 0), ng=s.verdicts.get("NG", 0), errors=s.verdicts.get("ERROR", 0),
            latency_count=sum(s.latency.counts), latency_sum_ms=s.latency.sum_ms,
            last=latest.record if latest is not None else None,
        ))
    m, q = metrics.model, metrics.mqtt
    return LiveSnapshot(
        station=view.station,
        time=utc_iso(time.time()),
        clock=time.monotonic(),
        ready=readiness.ready,
        reasons=readiness.reasons,
        model=LiveModel(name=m.name, version=m.version, device=m.device, requested_device=m.requested_device)
        if m is not None else None,
        mqtt=LiveMqtt(connected=q.connected, published=q.published, delivered=q.delivered,
                      no_subscribers=q.no_subscribers, rejected=q.rejected, awaiting_puback=q.awaiting_puback,
                      reconnects=q.reconnects) if q is not None else None,
        cameras=tuple(cameras),
        recent=tuple(view.recent_not_ok()[:RECENT_NOT_OK]),
    )


def live_routes(view: DaemonView) -> APIRouter:
    """``GET /`` and ``GET /live``; the page is read from the package once, here."""
    page = resources.files("daemon.http").joinpath("live.html").read_text(encoding="utf-8")
    router = APIRouter(tags=["live page"])

    @router.get(LIVE_PAGE_PATH, summary="the live page (HTML; polls GET /live)", response_class=HTMLResponse)
    async def live_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/live", summary="what the live page shows: counters, states, model, broker, recent NG",
                response_model=LiveSnapshot)
    async def live() -> LiveSnapshot:
        return await run_in_threadpool(snapshot, view)

    return router
