"""The local HTTP API: health, readiness, metrics, status, latest frames, ad-hoc inspection, CVAT.

:func:`create_app` builds the FastAPI application over a :class:`DaemonView` (what it needs from
the daemon); :class:`HttpServer` runs it with uvicorn in a named thread for the daemon's ExitStack.
"""

from daemon.config.http import resolve_token
from daemon.http.app import LIVENESS_PATH, create_app
from daemon.http.server import HttpBindError, HttpServer
from daemon.http.view import CameraState, DaemonView, Latest, Readiness

__all__ = [
    "LIVENESS_PATH",
    "CameraState",
    "DaemonView",
    "HttpBindError",
    "HttpServer",
    "Latest",
    "Readiness",
    "create_app",
    "resolve_token",
]
