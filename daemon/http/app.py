"""The FastAPI application: routes only; the daemon is reached through :class:`DaemonView`.

``GET /`` and ``GET /live`` are the live page (:mod:`daemon.http.live`). Every error leaves as JSON
``{"detail": "..."}``: user errors with their message and a 4xx, saturation as 503 with
``Retry-After``, a bug as 500 with no text of the exception (it goes to the log).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.process_collector import ProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from daemon.adhoc import AdhocModel, BadImageError, RequestCache, adhoc_record, decode_image, infer_image
from daemon.config.http import HttpConfig
from daemon.cvat import CvatRequest, CvatRequestError, cvat_shapes, decode_base64_image
from daemon.http.draw import annotated_jpeg
from daemon.http.live import LIVE_PAGE_PATH, live_routes
from daemon.http.middleware import BearerTokenMiddleware, BodyLimitMiddleware, TimeoutMiddleware
from daemon.http.runner import AdhocRunner, SaturatedError
from daemon.http.view import DaemonView, Readiness
from daemon.metrics import SnapshotCollector
from daemon.result import ResultRecord
from ovedge.errors import OvedgeError

__all__ = ["LIVENESS_PATH", "create_app"]

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
OPEN_PATHS = frozenset({LIVENESS_PATH, LIVE_PAGE_PATH})  # no token: liveness, and the page (it holds no data)
_IMAGE_STATUS = {"empty": 400, "not_image": 415, "corrupt": 400, "too_many_pixels": 413}
_RAW_TYPES = ("image/", "application/octet-stream")

_INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the image: multipart field `file`, or the raw bytes with an image/* content type",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"],
                           "properties": {"file": {"type": "string", "format": "binary"}}},
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "empty, truncated or corrupt image; malformed request"},
    401: {"description": "bearer token missing or wrong"},
    413: {"description": "body larger than http.max_body_bytes, or image over http.max_pixels"},
    415: {"description": "not an image in an accepted format, or an unsupported content type"},
    503: {"description": "all ad-hoc slots busy (Retry-After), or the model is not loaded yet"},
}


class NotReadyError(OvedgeError):
    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is not available yet; retry shortly")


class UnsupportedUploadError(OvedgeError):
    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        super().__init__(
            f"content type {content_type or 'none'!r} is not accepted: send multipart/form-data with the "
            "image in field 'file', or the raw image bytes with an image/* content type"
        )


class MissingFileError(OvedgeError):
    def __init__(self) -> None:
        super().__init__("multipart body has no complete file in field 'file' (missing, or the upload was cut short)")


def _route(request: Request) -> str:
    """The path the app routes on: without the prefix a reverse proxy serves it under ([http] root_path)."""
    return str(request.scope["path"])


def create_app(view: DaemonView, cfg: HttpConfig, *, token: str | None = None) -> FastAPI:
    """The HTTP API over ``view``; ``token`` (when given) is required everywhere but ``/healthz`` and ``/``."""
    app = FastAPI(
        title="ovedge",
        summary="OpenVINO defect-inspection daemon: health, metrics, status, ad-hoc inspection, CVAT",
        version="1",
        docs_url="/docs",
        redoc_url=None,
        root_path=cfg.root_path,  # behind a proxy's prefix: Swagger UI and the OpenAPI servers name it
    )
    runner = AdhocRunner(concurrency=cfg.infer_concurrency, queue=cfg.infer_queue, retry_after=cfg.retry_after)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(view.metrics))
    ProcessCollector(registry=registry)
    http_counter = Counter("ovedge_http_inferences", "ad-hoc inferences by endpoint and outcome",
                           ["endpoint", "outcome"], registry=registry)
    app.state.registry = registry
    app.state.runner = runner

    _install_error_handlers(app, http_counter, cfg.retry_after)

    @app.get(LIVENESS_PATH, summary="liveness: the process answers", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    api = APIRouter()
    _health_routes(api, view, registry, cfg)
    _inspection_routes(api, view, runner, http_counter, cfg)
    app.include_router(api)
    app.include_router(live_routes(view))
    # Outermost first: token, then the clock, then the body (an unauthenticated upload is never read).
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.max_body_bytes)
    app.add_middleware(TimeoutMiddleware, seconds=cfg.request_timeout)
    if token:
        app.add_middleware(BearerTokenMiddleware, token=token, open_paths=OPEN_PATHS)
        _document_bearer(app)
    return app


def _health_routes(api: APIRouter, view: DaemonView, registry: CollectorRegistry, cfg: HttpConfig) -> None:
    @api.get("/readyz", summary="readiness: model loaded, broker connected, no camera failing",
             tags=["health"], response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz() -> JSONResponse:
        state = await run_in_threadpool(view.readiness)
        return JSONResponse(state.model_dump(mode="json"), status_code=200 if state.ready else 503)

    @api.get("/metrics", summary="Prometheus metrics", tags=["health"],
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @api.get("/status", summary="the JSON the retained MQTT status message carries", tags=["health"])
    async def status() -> dict[str, Any]:
        return await run_in_threadpool(view.status)

    @api.get("/cameras/{camera}/latest.jpg", summary="the camera's last judged frame, defects drawn",
             tags=["cameras"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such camera"},
                        503: {"description": "the camera has no judged frame yet"}})
    async def latest_jpg(camera: str) -> Response:
        if camera not in view.camera_ids():
            raise StarletteHTTPException(404, f"no camera {camera!r} (cameras: {', '.join(view.camera_ids())})")
        latest = view.latest(camera)
        if latest is None:
            raise NotReadyError(what=f"a judged frame of camera {camera!r}")
        jpeg = await run_in_threadpool(annotated_jpeg, latest.image, latest.record, quality=cfg.jpeg_quality)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _inspection_routes(
    api: APIRouter, view: DaemonView, runner: AdhocRunner, http_counter: Counter, cfg: HttpConfig
) -> None:
    requests = RequestCache()

    async def infer(request: Request) -> Response:
        data, ref = await _read_upload(request)
        received, received_mono = time.time(), time.monotonic()

        def work() -> ResultRecord:
            image = decode_image(data, max_pixels=cfg.max_pixels)
            adhoc = _model(view)
            with requests.request(adhoc.model) as infer_request:
                inferred = infer_image(adhoc.model, infer_request, image)
            return adhoc_record(adhoc, inferred, image, station=view.station, ref=ref, received=received,
                                received_monotonic=received_mono)

        record = await runner.run(work)
        http_counter.labels(_route(request), "ok").inc()
        return Response(record.to_json(), media_type="application/json")

    infer_doc = (
        "Inspect one image on the cameras' compiled model and judge it by the `[rules]` section. The answer "
        "is a result record (the MQTT schema) with `camera` = \"http\" and `seq` = 0: an ad-hoc result is "
        "not a line result and is neither published nor counted in the station's sequence."
    )
    for path, summary in (("/infer", "ad-hoc inspection of one image"),
                          ("/run", "the seed service's route: same as POST /infer")):
        api.add_api_route(path, infer, methods=["POST"], summary=summary, description=infer_doc,
                          tags=["inspection"], response_model=ResultRecord, responses=_ERRORS,
                          openapi_extra=_INFER_BODY)

    @api.post("/cvat", summary="CVAT auto-annotation (a Nuclio detector's contract)", tags=["inspection"],
              responses=_ERRORS)
    async def cvat(body: CvatRequest, request: Request) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            image = decode_base64_image(body.image, max_pixels=cfg.max_pixels)
            adhoc = _model(view)
            with requests.request(adhoc.model) as infer_request:
                inferred = infer_image(adhoc.model, infer_request, image, outlines=True)
            return cvat_shapes(inferred.detections, body.threshold)

        shapes = await runner.run(work)
        http_counter.labels("/cvat", "ok").inc()
        return shapes


def _model(view: DaemonView) -> AdhocModel:
    adhoc = view.adhoc_model()
    if adhoc is None:
        raise NotReadyError(what="the model")
    return adhoc


async def _read_upload(request: Request) -> tuple[bytes, str | None]:
    """The image bytes and a reference for the record (``upload:<file name>``)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise MissingFileError
            data = await upload.read()
            return data, f"upload:{upload.filename}" if upload.filename else "upload"
    if content_type.startswith(_RAW_TYPES):
        return await request.body(), "upload"
    raise UnsupportedUploadError(content_type)


def _install_error_handlers(app: FastAPI, counter: Counter, retry_after: int) -> None:
    def handler(status: int | Callable[[Any], int], outcome: str) -> Callable[[Request, Exception], Any]:
        async def handle(request: Request, exc: Exception) -> JSONResponse:
            code = status(exc) if callable(status) else status
            if _route(request) in ("/infer", "/run", "/cvat"):
                counter.labels(_route(request), outcome).inc()
            headers = {"Retry-After": str(retry_after)} if code == 503 else None
            return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

        return handle

    app.add_exception_handler(BadImageError, handler(lambda e: _IMAGE_STATUS[e.problem], "rejected"))
    app.add_exception_handler(CvatRequestError, handler(400, "rejected"))
    app.add_exception_handler(UnsupportedUploadError, handler(415, "rejected"))
    app.add_exception_handler(MissingFileError, handler(400, "rejected"))
    app.add_exception_handler(SaturatedError, handler(503, "saturated"))
    app.add_exception_handler(NotReadyError, handler(503, "not_ready"))

    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("HTTP %s %s failed (bug)", request.method, _route(request), exc_info=exc)
        if _route(request) in ("/infer", "/run", "/cvat"):
            counter.labels(_route(request), "error").inc()
        return JSONResponse({"detail": "internal error; the daemon's log has the details"}, status_code=500)

    app.add_exception_handler(Exception, bug)


def _document_bearer(app: FastAPI) -> None:
    """Say in the OpenAPI document that every operation but liveness and the page needs the bearer token."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, operations in schema.get("paths", {}).items():
                if path not in OPEN_PATHS:
                    for op in operations.values():
                        op["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema
