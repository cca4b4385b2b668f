"""OpenCV-backed sources (video file, HTTP MJPEG stream, USB) and the image folder, on real files and sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from camera import (
    DefectGenerator,
    Frame,
    ImageFolderSource,
    ImageFolderSourceConfig,
    StreamSource,
    StreamSourceConfig,
    SyntheticSource,
    SyntheticSourceConfig,
    UsbSource,
    UsbSourceConfig,
    VideoFileSource,
    VideoFileSourceConfig,
    open_source,
    scrub_url,
)
from camera.config import SOURCE_CONFIGS, SOURCE_TYPES
from camera.registry import registered
from ovedge.errors import CameraError
from ovedge.paths import path_context


def _frames(n: int, w: int = 96, h: int = 64) -> list[np.ndarray]:
    gen = DefectGenerator(seed=4, width=w, height=h, defect_rate=0.5)
    return [gen.render(i)[0] for i in range(n)]


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _read_many(source: StreamSource, n: int) -> None:
    for _ in range(n):
        source.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A real 12-frame 96x64 MJPG .avi written with cv2.VideoWriter, and the frames written."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    frames = _frames(12)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path, frames


def test_video_file_reads_every_frame_then_ends(clip: tuple[Path, list[np.ndarray]]) -> None:
    """An MJPG .avi yields its frames in order at the written size, then None."""
    path, written = clip
    source = open_source(VideoFileSourceConfig(path=path))
    assert isinstance(source, VideoFileSource)
    with source as src:
        frames = list(iter(src.read, None))
        assert src.read() is None
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].source_ref == "clip.avi#0"
    for f, w in zip(frames, written, strict=True):
        assert f.image.shape == (64, 96, 3)
        assert f.image.dtype == np.uint8
        assert _mad(f.image, w) < 8  # same picture, up to JPEG loss


def test_video_file_loops_when_asked(clip: tuple[Path, list[np.ndarray]]) -> None:
    """With loop, reading goes on past the end: indices keep counting, the picture starts again."""
    path, written = clip
    with VideoFileSource(VideoFileSourceConfig(path=path, loop=True)) as src:
        frames = [src.read() for _ in range(30)]
    assert all(f is not None for f in frames)
    got = [f for f in frames if f is not None]
    assert [f.index for f in got] == list(range(30))
    assert got[12].source_ref == "clip.avi#0"
    assert _mad(got[12].image, written[0]) < 8
    assert _mad(got[25].image, written[1]) < 8


def test_video_file_missing_or_undecodable_is_a_camera_error(tmp_path: Path) -> None:
    """A missing file and a file that is no video both fail on open with the path and a fix."""
    with pytest.raises(CameraError, match=r"nothere\.mp4 does not exist; fix"):
        VideoFileSource(VideoFileSourceConfig(path=tmp_path / "nothere.mp4")).__enter__()
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    with pytest.raises(CameraError, match=r"notes\.mp4 cannot be decoded"):
        VideoFileSource(VideoFileSourceConfig(path=bogus)).__enter__()


def test_read_before_open_is_a_programming_error(clip: tuple[Path, list[np.ndarray]]) -> None:
    """read() outside the context manager is a bug, not a camera fault."""
    with pytest.raises(RuntimeError, match="not open"):
        VideoFileSource(VideoFileSourceConfig(path=clip[0])).read()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Colour PNG, grey PNG, RGBA PNG, a JPEG, a README and a hidden file, in a folder."""
    frames = _frames(4, 40, 30)
    cv2.imwrite(str(tmp_path / "a_colour.png"), frames[0])
    cv2.imwrite(str(tmp_path / "b_grey.png"), cv2.cvtColor(frames[1], cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "c_rgba.png"), cv2.cvtColor(frames[2], cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(tmp_path / "d_photo.jpg"), frames[3])
    (tmp_path / "README.txt").write_text("not an image")
    cv2.imwrite(str(tmp_path / ".hidden.png"), frames[0])
    return tmp_path


def test_folder_reads_images_in_name_order_as_bgr(image_folder: Path) -> None:
    """Images come in name order; grey and RGBA become 3-channel BGR; non-images and dotfiles are skipped."""
    source = open_source(ImageFolderSourceConfig(path=image_folder))
    assert isinstance(source, ImageFolderSource)
    with source as src:
        frames = list(iter(src.read, None))
    assert [f.source_ref for f in frames] == ["a_colour.png", "b_grey.png", "c_rgba.png", "d_photo.jpg"]
    assert all(f.image.shape == (30, 40, 3) and f.image.dtype == np.uint8 for f in frames)
    grey = frames[1].image
    assert np.array_equal(grey[:, :, 0], grey[:, :, 1])
    assert np.array_equal(grey[:, :, 1], grey[:, :, 2])
    expected = _frames(4, 40, 30)
    assert np.array_equal(frames[0].image, expected[0])
    assert np.array_equal(frames[2].image, expected[2])  # alpha dropped, colour kept


def test_folder_pattern_and_loop(image_folder: Path) -> None:
    """`pattern` selects files; `loop` starts again after the last one with increasing indices."""
    cfg = ImageFolderSourceConfig(path=image_folder, pattern="*.png", loop=True)
    with ImageFolderSource(cfg) as src:
        refs = [f.source_ref for f in (src.read() for _ in range(5)) if f]
        assert src.read() is not None
    assert refs == ["a_colour.png", "b_grey.png", "c_rgba.png", "a_colour.png", "b_grey.png"]


def test_folder_corrupt_image_is_a_camera_error_naming_it(image_folder: Path) -> None:
    """A file that does not decode stops the source with its name, after the good ones before it."""
    (image_folder / "e_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with ImageFolderSource(ImageFolderSourceConfig(path=image_folder)) as src:
        for _ in range(4):
            assert src.read() is not None
        with pytest.raises(CameraError, match=r"e_broken\.png is not a readable image"):
            src.read()


def test_folder_empty_or_missing_is_a_camera_error(tmp_path: Path) -> None:
    """An empty folder (or one with nothing matching) and a missing folder fail on open."""
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CameraError, match="holds no images"):
        ImageFolderSource(ImageFolderSourceConfig(path=tmp_path)).__enter__()
    with pytest.raises(CameraError, match="does not exist"):
        ImageFolderSource(ImageFolderSourceConfig(path=tmp_path / "missing")).__enter__()


class _MjpegServer:
    """A tiny threaded HTTP server streaming JPEGs as multipart/x-mixed-replace until stopped."""

    def __init__(self, jpegs: list[bytes]) -> None:
        stop = threading.Event()
        self.stop = stop

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not stop.is_set():
                        jpg = jpegs[i % len(jpegs)]
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpg + b"\r\n")
                        self.wfile.flush()
                        i += 1
                        stop.wait(0.02)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="mjpeg-test-server", daemon=True)

    def __enter__(self) -> _MjpegServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mjpeg() -> Iterator[tuple[_MjpegServer, list[np.ndarray]]]:
    frames = _frames(3, 64, 48)
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for f in frames]
    with _MjpegServer(jpegs) as server:
        yield server, frames


def test_http_mjpeg_stream_is_read_and_fails_loudly_when_the_server_goes(
    mjpeg: tuple[_MjpegServer, list[np.ndarray]],
) -> None:
    """A real multipart MJPEG stream yields the served pictures; when the server stops, read() raises."""
    server, served = mjpeg
    url = f"http://viewer:s3cret@127.0.0.1:{server.port}/stream.mjpg"
    source = open_source(StreamSourceConfig(url=url))
    assert isinstance(source, StreamSource)
    assert "s3cret" not in source.description
    with source as src:
        frames = [src.read() for _ in range(6)]
        got = [f for f in frames if isinstance(f, Frame)]
        assert len(got) == 6
        matches = [min(range(3), key=lambda k, f=f: _mad(f.image, served[k])) for f in got]
        for f, k in zip(got, matches, strict=True):
            assert f.image.shape == (48, 64, 3)
            assert _mad(f.image, served[k]) < 6
        assert len(set(matches)) >= 2  # the pictures change: frames really stream
        server.close()
        with pytest.raises(CameraError, match=r"stopped delivering frames") as err:
            _read_many(src, 200)  # frames already buffered may still arrive first
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_refused_stream_is_a_camera_error_with_credentials_scrubbed(scheme: str) -> None:
    """Nothing listening: opening fails with CameraError naming the URL without its user or password."""
    url = f"{scheme}://admin:hunter2@127.0.0.1:{_free_port()}/live"
    with pytest.raises(CameraError) as err:
        StreamSource(StreamSourceConfig(url=url)).__enter__()
    message = str(err.value)
    assert f"{scheme}://***@127.0.0.1" in message
    assert "hunter2" not in message
    assert "admin" not in message
    assert "cannot be opened" in message


def test_scrub_url_hides_user_info_and_secret_query_values() -> None:
    """User info and token/password query values are masked; the rest of the URL is kept for diagnosis."""
    assert scrub_url("rtsp://user:pw@cam.local:554/h264") == "rtsp://***@cam.local:554/h264"
    assert scrub_url("rtsp://user@cam.local/x") == "rtsp://***@cam.local/x"
    assert scrub_url("http://cam/video.mjpg?user=a&password=b&ch=2") == "http://cam/video.mjpg?user=a&password=***&ch=2"
    assert scrub_url("rtsp://cam.local/stream?token=abc") == "rtsp://cam.local/stream?token=***"
    assert scrub_url("rtsp://10.0.0.1/a@b") == "rtsp://10.0.0.1/a@b"  # an @ in the path is no user info
    assert scrub_url("/dev/video0") == "/dev/video0"


def test_usb_camera_that_is_absent_is_a_camera_error() -> None:
    """No such /dev/video device, or no camera at that index: CameraError with the device and a fix."""
    with pytest.raises(CameraError, match=r"USB camera /dev/video97 does not exist; plug"):
        UsbSource(UsbSourceConfig(device="/dev/video97")).__enter__()
    with pytest.raises(CameraError, match=r"USB camera 9 cannot be opened; check"):
        UsbSource(UsbSourceConfig(device="9")).__enter__()


def test_registry_builds_the_source_for_each_type(tmp_path: Path) -> None:
    """open_source dispatches on the config's class and uses its (already absolute) path as is, without opening."""
    assert isinstance(open_source(SyntheticSourceConfig()), SyntheticSource)
    video = open_source(VideoFileSourceConfig(path=tmp_path / "v.avi"))
    assert isinstance(video, VideoFileSource)
    assert video.path == tmp_path / "v.avi"
    folder = open_source(ImageFolderSourceConfig(path=tmp_path / "imgs"))
    assert isinstance(folder, ImageFolderSource)
    assert folder.path == tmp_path / "imgs"
    assert isinstance(open_source(UsbSourceConfig(device=0)), UsbSource)
    assert isinstance(open_source(StreamSourceConfig(url="rtsp://h/x")), StreamSource)


def test_every_source_type_of_the_union_has_one_factory() -> None:
    """The `type` tags come from the SourceConfig union, and the registry covers exactly its classes."""
    assert set(registered()) == set(SOURCE_CONFIGS)
    assert tuple(c.model_fields["type"].default for c in SOURCE_CONFIGS) == SOURCE_TYPES
    assert set(SOURCE_TYPES) >= {"synthetic", "video", "folder", "stream", "usb"}


def test_source_paths_come_out_of_validation_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative source path is taken from the base folder in the validation context; without one, from the
    working directory; `~` is expanded: the sources never resolve paths themselves."""
    context = path_context(tmp_path / "etc")
    video = VideoFileSourceConfig.model_validate({"path": "line.mp4"}, context=context)
    assert video.path == tmp_path / "etc" / "line.mp4"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = ImageFolderSourceConfig.model_validate({"path": "~/parts"}, context=context)
    assert folder.path == tmp_path / "home" / "parts"
    monkeypatch.chdir(tmp_path)
    assert VideoFileSourceConfig(path=Path("v.avi")).path == tmp_path / "v.avi"
