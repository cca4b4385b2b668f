"""Plain ASGI middleware: bearer token, request timeout, body size limit (outermost first).

Each answers with a JSON ``{"detail": ...}`` body of its own and never lets an exception's text
or a stack trace reach the client.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["BearerTokenMiddleware", "BodyLimitMiddleware", "TimeoutMiddleware", "send_json"]


async def send_json(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class BearerTokenMiddleware:
    """Every path but ``open_paths`` needs ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, *, token: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self._token = token.encode()
        self._open = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = credentials.strip()
                break
        if not given or not hmac.compare_digest(given, self._token):
            await send_json(send, 401, "a valid bearer token is required (Authorization: Bearer <token>)",
                            [(b"www-authenticate", b'Bearer realm="ovedge"')])
            return
        await self.app(scope, receive, send)


class TimeoutMiddleware:
    """A request that takes longer than ``seconds`` (upload included) gets 504, if nothing was sent yet."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self._seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with anyio.move_on_after(self._seconds) as timer:
            await self.app(scope, receive, tracking_send)
        if timer.cancelled_caught:
            log.warning("HTTP %s %s took longer than %.1f s: answered 504", scope["method"], scope["path"],
                        self._seconds)
            if not started:
                await send_json(send, 504, f"the request took longer than {self._seconds:g} s")


class BodyLimitMiddleware:
    """Reads the whole body first (at most ``max_bytes``; 413 beyond), then hands it to the app.

    Buffering here means the app never sees half a body, a declared ``Content-Length`` that is
    too large is refused before a byte is read, and the timeout above covers a slow upload.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than {self._max} bytes (http.max_body_bytes)"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(send, 400, "Content-Length is not a number")
                    return
                if declared > self._max:
                    await send_json(send, 413, too_large, [(b"connection", b"close")])
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-upload: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                await send_json(send, 413, too_large, [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)
