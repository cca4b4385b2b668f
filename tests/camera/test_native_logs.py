"""OpenCV's and FFmpeg's own stderr lines: silent for users, present at DEBUG (run in subprocesses,
because FFmpeg's level is fixed for a process at its first capture)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.mosquitto import free_port

# Opens a stream through our registry and source, the way the daemon does, with the daemon's log
# format; a CameraError becomes one line on stderr, like the CLIs print it.
SCRIPT = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=sys.argv[2], format="%(levelname)s %(name)s: %(message)s")
    from camera import StreamSourceConfig, open_source
    from ovedge.errors import CameraError
    try:
        with open_source(StreamSourceConfig(url=sys.argv[1])):
            pass
    except CameraError as exc:
        print(f"OURS: {exc}", file=sys.stderr)
""")


def _open(url: str, level: str, repo_root: Path) -> list[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo_root)}  # no OPENCV_* from the caller
    done = subprocess.run([sys.executable, "-c", SCRIPT, url, level], capture_output=True, text=True,
                          cwd=repo_root, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_a_refused_stream_prints_only_our_line(scheme: str, repo_root: Path) -> None:
    """At the normal log level a refused stream gives exactly one stderr line, ours, naming the
    stream with its credentials scrubbed: nothing from OpenCV or FFmpeg, no password anywhere."""
    url = f"{scheme}://admin:hunter2@127.0.0.1:{free_port()}/cam"
    lines = _open(url, "INFO", repo_root)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"OURS: stream {scheme}://***@127.0.0.1:")
    assert "hunter2" not in lines[0]


def test_at_debug_their_own_lines_are_kept(repo_root: Path) -> None:
    """With our log level at DEBUG, OpenCV's/FFmpeg's own output is left on: stderr holds lines that
    are neither ours nor our logging's."""
    lines = _open(f"http://127.0.0.1:{free_port()}/cam", "DEBUG", repo_root)
    assert any(line.startswith("OURS: stream http://127.0.0.1:") for line in lines)
    theirs = [line for line in lines if not line.startswith(("OURS: ", "DEBUG ", "INFO ", "WARNING ", "ERROR "))]
    assert theirs, lines
