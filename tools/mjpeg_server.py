"""A tiny HTTP MJPEG camera (``multipart/x-mixed-replace``) for tests and benchmarks; it can stall on demand.

``MjpegServer(jpegs)`` serves the pictures in turn at about ``fps`` to every client, on a free port
of 127.0.0.1, until closed. ``stall()`` makes every open connection stop sending (it stays open,
as a hung camera's does); connections made after ``resume()`` stream again.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class MjpegServer:
    def __init__(self, jpegs: list[bytes], *, fps: float = 50.0) -> None:
        self.closed = threading.Event()
        self._stalled = threading.Event()
        self._generation = 0  # bumped by stall(): connections of an older generation hang
        self.connections = 0
        self.last_sent: float | None = None  # time.monotonic() of the last part written
        outer = self
        period = 1.0 / fps

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                import time

                outer.connections += 1
                generation = outer._generation
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not outer.closed.is_set():
                        if outer._stalled.is_set() or generation != outer._generation:
                            outer.closed.wait(0.05)  # hung: connected, silent
                            continue
                        jpg = jpegs[i % len(jpegs)]
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpg + b"\r\n")
                        self.wfile.flush()
                        outer.last_sent = time.monotonic()
                        i += 1
                        outer.closed.wait(period)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._thread = threading.Thread(target=self.server.serve_forever, name="mjpeg-server", daemon=True)

    def stall(self) -> None:
        """Every open connection stops sending and stays open; new ones hang too until :meth:`resume`."""
        self._generation += 1
        self._stalled.set()

    def resume(self) -> None:
        """New connections stream again (the stalled ones stay hung)."""
        self._stalled.clear()

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
