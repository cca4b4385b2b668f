"""Start, kill and restart the GStreamer RTSP test camera (:mod:`tools.rtsp_server`) from the venv.

The server runs under the system interpreter, which has PyGObject (Debian ``python3-gi``).
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from types import TracebackType

from tools.mosquitto import free_port

SYSTEM_PYTHON = Path("/usr/bin/python3")
SERVER = Path(__file__).with_name("rtsp_server.py")
PACKAGES = (
    "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly "
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi"
)


class RtspServerError(RuntimeError):
    def __init__(self, detail: str) -> None:
        super().__init__(f"the GStreamer RTSP test server did not start ({detail}); apt-get install -y {PACKAGES}")


class RtspCamera:
    """``rtsp://127.0.0.1:<port>/cam``; :meth:`kill` and :meth:`start` again keep the port."""

    def __init__(self, *, tcp_only: bool = False) -> None:
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self._args = [str(SYSTEM_PYTHON), str(SERVER), str(self.port), *(["--tcp-only"] if tcp_only else [])]
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        if not SYSTEM_PYTHON.exists():
            raise RtspServerError(f"{SYSTEM_PYTHON} is missing")
        proc = self._proc = subprocess.Popen(
            self._args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace"
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready", or "" when the server died first
        if line.strip() != "ready":
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
            err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
            self.kill()
            raise RtspServerError((err.strip().splitlines() or [line.strip() or "no output"])[-1])

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a camera losing power."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> RtspCamera:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
