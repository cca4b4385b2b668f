"""The capture thread (daemon.capture.CameraWorker) with real sources: bad files, reconnects, stalls, rate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera import DefectGenerator, Frame
from camera.config import StreamSourceConfig, SyntheticSourceConfig
from daemon.capture import CameraWorker, Health
from daemon.config import CameraConfig, CameraMode
from daemon.slots import FrameHub
from tools.mjpeg_server import MjpegServer
from tools.rtsp import RtspCamera

HANG_GUARD = 120.0  # seconds: a test that waits longer has hung; never a speed requirement


def _worker(source: object, tmp_path: Path, *, mode: CameraMode = CameraMode.EVERY_FRAME,
            rate_window: float = 5.0, on_change: Callable[[], None] | None = None,
            ) -> tuple[CameraWorker, FrameHub[str], threading.Event]:
    hub: FrameHub[str] = FrameHub()
    stop = threading.Event()
    cfg = CameraConfig.model_validate({"id": "cam", "source": source, "mode": mode})
    return CameraWorker(cfg, hub, stop, rate_window=rate_window, on_change=on_change), hub, stop


def _take(hub: FrameHub[str], until: object, *, guard: float = HANG_GUARD) -> list[tuple[float, Frame]]:
    """Frames taken from the hub (with the time taken) until ``until()`` is true."""
    got: list[tuple[float, Frame]] = []
    deadline = time.monotonic() + guard
    while not until():  # type: ignore[operator]
        assert time.monotonic() < deadline, "hang guard"
        item = hub.get(timeout=0.05)
        if item is not None:
            got.append((time.monotonic(), item[1]))
    return got


def test_bad_files_in_a_folder_are_error_frames_and_the_camera_ends(tmp_path: Path) -> None:
    """Good, garbage, empty and tiny images: each delivered exactly once, errors counted, no reopen loop, the end."""
    gen = DefectGenerator(1, 64, 48, 0.5)
    for i in (0, 2, 4):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), gen.render(i)[0])
    (tmp_path / "p1.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "p3.png").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "p5.png"), np.zeros((1, 1, 3), np.uint8))
    worker, hub, _stop = _worker({"type": "folder", "path": str(tmp_path)}, tmp_path)
    worker.start()
    got = _take(hub, lambda: worker.finished.is_set() and hub.is_empty())
    worker.join()
    refs = [f.source_ref for _, f in got]
    assert refs == ["p0.png", "p1.jpg", "p2.png", "p3.png", "p4.png", "p5.png"]
    assert [f.source_ref for _, f in got if f.error is not None] == ["p1.jpg", "p3.png", "p5.png"]
    assert worker.rejected == 3 and worker.frames == 6
    assert worker.failures == 0 and worker.health is Health.ENDED


def test_interrupt_wakes_a_watched_folder_so_the_camera_stops(tmp_path: Path) -> None:
    """A watched folder waits for files; stop + interrupt() ends its thread promptly, as the daemon's shutdown does."""
    worker, _hub, stop = _worker({"type": "folder", "path": str(tmp_path), "watch": True, "poll": 30}, tmp_path)
    worker.start()
    deadline = time.monotonic() + HANG_GUARD
    while worker.health is not Health.ONLINE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stop.set()
    worker.interrupt()
    worker.join(timeout=HANG_GUARD)
    assert not worker.alive
    assert worker.health is Health.OFFLINE  # stopped, not "ended": the folder had no end


def test_rate_below_the_configured_one_is_flagged_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A synthetic camera asked for far more than any CPU renders: below_rate set, one warning over many windows."""
    source = SyntheticSourceConfig(width=256, height=256, fps=1_000_000).model_dump()
    worker, hub, stop = _worker(source, tmp_path, mode=CameraMode.FREE_RUN, rate_window=0.2)
    with caplog.at_level(logging.WARNING, logger="daemon.capture"):
        worker.start()
        deadline = time.monotonic() + HANG_GUARD
        while worker.fps is None:
            assert time.monotonic() < deadline
            hub.get(timeout=0.05)
        more = time.monotonic() + 1.0  # several more 0.2 s windows, all below the rate
        while time.monotonic() < more:
            hub.get(timeout=0.05)
        stop.set()
        worker.join(timeout=HANG_GUARD)
    assert worker.below_rate and worker.below_rate_episodes == 1
    assert worker.expected_fps == 1_000_000
    warnings = [r for r in caplog.records if "configured 1e+06 fps" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


def test_rtsp_camera_killed_and_restarted_reconnects(tmp_path: Path) -> None:
    """RTSP server killed mid-run: the camera goes reconnecting, then online again with frames once it is back."""
    with RtspCamera() as server:
        worker, hub, stop = _worker(StreamSourceConfig(url=server.url).model_dump(), tmp_path,
                                    mode=CameraMode.FREE_RUN)
        worker.start()
        try:
            before = _take(hub, lambda: worker.frames >= 10)
            server.kill()
            _take(hub, lambda: worker.health is Health.RECONNECTING)
            assert worker.last_error is not None and "stopped delivering frames" in worker.last_error
            server.start()
            frames_at_restart = worker.frames
            after = _take(hub, lambda: worker.frames >= frames_at_restart + 10)
        finally:
            stop.set()
            worker.join(timeout=HANG_GUARD)
    assert len(before) >= 1 and len(after) >= 1
    assert worker.reconnects == 1 and worker.failures >= 1
    assert all(f.error is None and f.image.shape == (240, 320, 3) for _, f in after)


def test_stalled_mjpeg_stream_is_detected_and_reconnected(tmp_path: Path) -> None:
    """An HTTP MJPEG camera that hangs: stalled after stall_timeout, then a reconnect brings frames back; each
    change is told to on_change."""
    jpg = cv2.imencode(".jpg", DefectGenerator(2, 64, 48, 0.5).render(0)[0])[1].tobytes()
    with MjpegServer([jpg]) as server:
        source = StreamSourceConfig(url=server.url, stall_timeout=0.5).model_dump()
        told: list[str] = []
        worker, hub, stop = _worker(source, tmp_path, mode=CameraMode.FREE_RUN,
                                    on_change=lambda: told.append(worker.health.value))
        worker.start()
        try:
            _take(hub, lambda: worker.frames >= 5)
            server.stall()
            _take(hub, lambda: worker.health is Health.STALLED)
            assert "stalled: no frame for 0.5 s" in (worker.last_error or "")
            server.resume()
            stalled_at = worker.frames
            _take(hub, lambda: worker.frames >= stalled_at + 5)
        finally:
            stop.set()
            worker.join(timeout=HANG_GUARD)
    assert worker.health is Health.OFFLINE and worker.reconnects == 1
    assert server.connections == 2
    assert told == ["online", "stalled", "online", "offline"]  # each change told once, as it happened


def test_an_outage_is_logged_once_however_many_attempts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stream whose server is gone: every reopen fails (back-off 1 s, 2 s, ...) but the outage is one ERROR
    line; the camera says reconnecting with the last error and counts each failed attempt."""
    jpg = cv2.imencode(".jpg", DefectGenerator(2, 64, 48, 0.5).render(0)[0])[1].tobytes()
    with MjpegServer([jpg]) as server:
        url = server.url
    worker, _hub, stop = _worker(StreamSourceConfig(url=url, open_timeout=1.0).model_dump(), tmp_path,
                                 mode=CameraMode.FREE_RUN)
    with caplog.at_level(logging.DEBUG, logger="daemon.capture"):
        worker.start()
        try:
            deadline = time.monotonic() + HANG_GUARD
            while worker.failures < 3:
                assert time.monotonic() < deadline, "hang guard"
                time.sleep(0.05)
            assert worker.health is Health.RECONNECTING and worker.last_error
        finally:
            stop.set()
            worker.join(timeout=HANG_GUARD)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "daemon.capture"]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "back-off" in errors[0].getMessage()


def test_a_failing_state_listener_neither_stops_capture_nor_escapes_the_thread(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``on_change`` (the daemon republishing the camera's status) raising is a bug in bookkeeping:
    it is logged with its traceback, every frame is still delivered and the camera still ends
    normally, and nothing escapes to the thread's own excepthook."""
    gen = DefectGenerator(1, 64, 48, 0.5)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), gen.render(i)[0])
    escaped: list[threading.ExceptHookArgs] = []
    hook, threading.excepthook = threading.excepthook, escaped.append

    def broken() -> None:
        raise RuntimeError("status publisher bug")

    try:
        worker, hub, _stop = _worker({"type": "folder", "path": str(tmp_path)}, tmp_path, on_change=broken)
        with caplog.at_level(logging.ERROR, logger="daemon.capture"):
            worker.start()
            got = _take(hub, lambda: worker.finished.is_set() and hub.is_empty())
            worker.join()
    finally:
        threading.excepthook = hook
    assert [f.source_ref for _, f in got] == ["p0.png", "p1.png", "p2.png"]
    assert worker.health is Health.ENDED and worker.last_error is None
    assert escaped == []
    bugs = [r for r in caplog.records if "bug while announcing its state" in r.getMessage()]
    assert bugs and all(r.exc_info and "status publisher bug" in str(r.exc_info[1]) for r in bugs)
