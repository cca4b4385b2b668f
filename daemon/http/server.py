"""uvicorn in a named thread (``http``), as a context manager for the daemon's ExitStack.

The socket is bound in :meth:`HttpServer.__enter__`, so a port already taken or an address that
does not exist fails start-up with one line (:class:`HttpBindError`), and ``port = 0`` yields the
real port in :attr:`HttpServer.port`. uvicorn installs no signal handlers off the main thread:
the daemon's own SIGTERM handling stays in charge; leaving the context stops the server
(connections get uvicorn's graceful close, bounded by ``shutdown_timeout``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from daemon.config.http import HttpConfig
from ovedge.errors import OvedgeError

__all__ = ["HttpBindError", "HttpServer"]

log = logging.getLogger(__name__)


class HttpBindError(OvedgeError):
    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"HTTP API cannot listen on {host}:{port} ({reason}); change http.host/http.port "
                         "or set http.enabled = false")


class HttpServer:
    """Serves ``app`` on ``cfg.host:cfg.port`` from a thread named ``http`` while the context is open."""

    def __init__(self, app: Any, cfg: HttpConfig, *, start_timeout: float = 10.0,
                 shutdown_timeout: int = 3) -> None:
        self._cfg = cfg
        self._start_timeout = start_timeout
        self._config = uvicorn.Config(
            app,
            log_config=None,  # our logging setup, not uvicorn's
            access_log=False,
            lifespan="off",
            limit_concurrency=cfg.max_connections,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=shutdown_timeout,
            server_header=False,
            proxy_headers=False,
        )
        self._server = uvicorn.Server(self._config)
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port = cfg.port

    @property
    def socket(self) -> socket.socket | None:
        """The listening socket while the server runs (a TCP socket: see ``__enter__``)."""
        return self._socket

    @property
    def url(self) -> str:
        host = self._cfg.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def __enter__(self) -> Self:
        host, port = self._cfg.host, self._cfg.port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            # proto=IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
            # they are TCP; without it every response waited ~40 ms for the client's delayed ACK.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            raise HttpBindError(host, port, exc.strerror or str(exc)) from exc
        sock.set_inheritable(True)
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._close()
                raise HttpBindError(host, self.port, "the server did not start")
            time.sleep(0.01)
        log.info("HTTP API on %s", self.url)
        return self

    def _serve(self) -> None:
        assert self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except Exception:
            log.exception("HTTP server failed (bug)")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()

    def _close(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                log.warning("HTTP server thread did not stop within 10 s")
        if self._socket is not None:
            self._socket.close()
            self._socket = None
