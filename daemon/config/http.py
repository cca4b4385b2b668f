"""``[http]``: the local HTTP API (health, readiness, metrics, status, ad-hoc inspection, CVAT).

Validators do no I/O: whether the token file can be read, or the token variable is set, is
checked by :func:`resolve_token` in the daemon's preflight (``run`` and ``check-config``).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import Field, model_validator

from daemon.config._base import Section
from ovedge.errors import ConfigError
from ovedge.paths import ConfigPath

__all__ = ["HttpConfig", "TokenFileError", "TokenRequiredError", "is_loopback", "resolve_token"]


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``; anything else (``0.0.0.0`` too) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class HttpConfig(Section):
    """The local HTTP API. Off unless enabled; loopback only unless a bearer token is configured."""

    enabled: bool = Field(False, description="serve the HTTP API (GET /healthz, /readyz, /metrics, /status, ...)")
    host: str = Field(
        "127.0.0.1",
        description="address to bind; anything but loopback (127.0.0.1, ::1, localhost) needs a bearer token",
    )
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 = any free port (logged at start)")
    token_file: ConfigPath | None = Field(
        None, description="file holding the bearer token (first line); required off loopback unless token_env is set"
    )
    token_env: str = Field(
        "OVEDGE_HTTP_TOKEN",
        description="environment variable holding the bearer token, read at start when token_file is unset; "
        "when a token is found it is required on every endpoint but GET /healthz, loopback included",
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest request body in bytes; larger ones get 413"
    )
    max_pixels: int = Field(
        50_000_000, ge=1,
        description="largest decoded image (width x height); larger ones get 413 (decompression bombs)",
    )
    request_timeout: float = Field(
        30.0, gt=0, description="seconds a request may take, upload included; then 504"
    )
    infer_concurrency: int = Field(
        2, ge=1, le=16,
        description="ad-hoc inferences (POST /infer, /run, /cvat) running at once on the cameras' compiled model",
    )
    infer_queue: int = Field(
        8, ge=0, le=64, description="ad-hoc inferences allowed to wait for a free slot; beyond that 503 + Retry-After"
    )
    retry_after: int = Field(1, ge=1, description="seconds sent in Retry-After with a 503")
    max_connections: int = Field(64, ge=1, description="open connections at once; beyond that uvicorn answers 503")
    jpeg_quality: int = Field(80, ge=1, le=100, description="JPEG quality of GET /cameras/{id}/latest.jpg")
    root_path: str = Field(
        "", pattern=r"^(/[A-Za-z0-9._~-]+)*$",
        description="the URL prefix a reverse proxy serves this daemon under, e.g. \"/station1\" behind "
        "deploy/nginx/ovedge.conf (which strips it): Swagger UI at /docs and the OpenAPI document then name it; "
        "empty = served at the root",
    )

    @model_validator(mode="after")
    def _token_off_loopback(self) -> HttpConfig:
        if self.enabled and not is_loopback(self.host) and self.token_file is None and not self.token_env:
            msg = (
                f"http.host {self.host!r} is not loopback: set http.token_file (or http.token_env) so that "
                "requests need a bearer token, or bind to 127.0.0.1"
            )
            raise ValueError(msg)
        return self


class TokenRequiredError(ConfigError):
    def __init__(self, host: str, where: str) -> None:
        self.host = host
        self.where = where
        super().__init__(f"http.host {host!r} is not loopback, so a bearer token is required, but {where}; "
                         "put the token in http.token_file or the environment variable, or bind to 127.0.0.1")


class TokenFileError(ConfigError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"http.token_file {path} cannot be read ({reason})")


def resolve_token(cfg: HttpConfig) -> str | None:
    """The bearer token from ``token_file`` or ``$token_env``; required when not on loopback."""
    token: str | None = None
    if cfg.token_file is not None:
        path = cfg.token_file  # absolute: resolved when the config was loaded
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise TokenFileError(path, exc.strerror or str(exc)) from exc
        token = lines[0].strip() if lines else ""
        if not token:
            raise TokenRequiredError(cfg.host, f"{path} is empty") if not is_loopback(cfg.host) else \
                TokenFileError(path, "the file is empty")
    elif cfg.token_env:
        token = os.environ.get(cfg.token_env, "").strip() or None
    if token is None and not is_loopback(cfg.host):
        where = f"http.token_file is unset and ${cfg.token_env or '(no token_env)'} is empty"
        raise TokenRequiredError(cfg.host, where)
    return token
