"""A watched drop folder (folder source, watch = true) fed by real writers while it is read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from camera import DefectGenerator, Frame, ImageFolderSource, ImageFolderSourceConfig
from camera.folder import DONE_DIR, FAILED_DIR, LEDGER

HANG_GUARD = 120.0


def _png(i: int) -> bytes:
    image = DefectGenerator(5, 64, 48, 0.5).render(i)[0]
    return cv2.imencode(".png", image)[1].tobytes()


def _read_until(src: ImageFolderSource, done: Callable[[list[Frame]], bool], *, quiet: float = 0.0) -> list[Frame]:
    """Frames read until ``done(frames)``; then ``quiet`` more seconds in which nothing else may arrive."""
    frames: list[Frame] = []
    deadline = time.monotonic() + HANG_GUARD

    def interrupt_later() -> None:
        while not done(frames):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        time.sleep(quiet)
        src.interrupt()

    t = threading.Thread(target=interrupt_later, name="test-interrupter", daemon=True)
    t.start()
    while (frame := src.read()) is not None:
        frames.append(frame)
    t.join()
    return frames


def test_files_are_read_once_each_and_moved_to_done_or_failed(tmp_path: Path) -> None:
    """Five images and one garbage file dropped: six frames (one error), moved into done/ and failed/, none again."""
    cfg = ImageFolderSourceConfig(path=tmp_path, watch=True, settle=0.2, poll=0.05)
    for i in range(5):
        (tmp_path / f"part{i}.png").write_bytes(_png(i))
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with ImageFolderSource(cfg) as src:
        frames = _read_until(src, lambda f: len(f) >= 6, quiet=0.6)
    refs = sorted(f.source_ref or "" for f in frames)
    assert refs == ["junk.png", *(f"part{i}.png" for i in range(5))]
    assert [f.source_ref for f in frames if f.error is not None] == ["junk.png"]
    assert sorted(p.name for p in (tmp_path / DONE_DIR).iterdir()) == [f"part{i}.png" for i in range(5)]
    assert [p.name for p in (tmp_path / FAILED_DIR).iterdir()] == ["junk.png"]
    assert not list(tmp_path.glob("*.png"))


def test_a_file_still_being_written_is_not_read_until_it_settles(tmp_path: Path) -> None:
    """A PNG written a few bytes at a time over longer than `settle` is read once, whole, after the last write."""
    data = _png(7)
    cfg = ImageFolderSourceConfig(path=tmp_path, watch=True, settle=1.5, poll=0.05)
    finished = threading.Event()
    finished_at: list[float] = []

    def slow_writer() -> None:
        with (tmp_path / "slow.png").open("wb") as f:
            step = max(1, len(data) // 40)
            for k in range(0, len(data), step):
                f.write(data[k : k + step])
                f.flush()
                time.sleep(0.1)  # 40 writes over ~4 s: never quiet for `settle`
        finished_at.append(time.monotonic())
        finished.set()

    with ImageFolderSource(cfg) as src:
        writer = threading.Thread(target=slow_writer, name="test-writer", daemon=True)
        writer.start()
        frames = _read_until(src, lambda f: len(f) >= 1, quiet=2.0)
        read_at = time.monotonic()
        writer.join()
    assert finished.is_set() and finished_at[0] < read_at
    assert len(frames) == 1
    assert frames[0].error is None, frames[0].error
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(frames[0].image, expected)


def test_renamed_into_place_and_temporary_names_are_ignored(tmp_path: Path) -> None:
    """A writer using a dot-name or a .part name, then renaming: only the final name is read, once."""
    cfg = ImageFolderSourceConfig(path=tmp_path, watch=True, settle=0.2, poll=0.05)
    (tmp_path / ".incoming.png").write_bytes(_png(1)[:100])
    (tmp_path / "b.png.part").write_bytes(_png(2)[:100])
    with ImageFolderSource(cfg) as src:
        assert _read_until(src, lambda f: True, quiet=0.6) == []  # nothing complete yet
        (tmp_path / "a.png").write_bytes(_png(1))
        frames = _read_until(src, lambda f: len(f) >= 1, quiet=0.5)
    assert [f.source_ref for f in frames] == ["a.png"]
    assert (tmp_path / ".incoming.png").exists() and (tmp_path / "b.png.part").exists()


@pytest.mark.parametrize("after", ["move", "keep"])
def test_a_restart_does_not_read_a_file_twice(tmp_path: Path, after: str) -> None:
    """A new source on the same folder (a daemon restart) reads only files that arrived since, with move or keep."""
    cfg = ImageFolderSourceConfig(path=tmp_path, watch=True, settle=0.2, poll=0.05, after=after)  # type: ignore[arg-type]
    for i in range(3):
        (tmp_path / f"first{i}.png").write_bytes(_png(i))
    with ImageFolderSource(cfg) as src:
        first = _read_until(src, lambda f: len(f) >= 3, quiet=0.4)
    (tmp_path / "second.png").write_bytes(_png(9))
    with ImageFolderSource(cfg) as again:  # a fresh object: nothing remembered in memory
        second = _read_until(again, lambda f: len(f) >= 1, quiet=0.6)
    assert sorted(f.source_ref or "" for f in first) == ["first0.png", "first1.png", "first2.png"]
    assert [f.source_ref for f in second] == ["second.png"]
    if after == "keep":
        assert len((tmp_path / LEDGER).read_text().splitlines()) == 4
        assert len(list(tmp_path.glob("*.png"))) == 4  # all left in place
    else:
        assert len(list((tmp_path / DONE_DIR).glob("*.png"))) == 4


def test_watch_and_loop_cannot_be_combined() -> None:
    """watch reads each file once, so loop is refused at load, naming both keys."""
    with pytest.raises(ValidationError, match="cannot loop"):
        ImageFolderSourceConfig(path=Path(), watch=True, loop=True)


def test_a_name_dropped_again_is_read_again_and_both_are_kept_in_done(tmp_path: Path) -> None:
    """A PLC reusing a file name: the second file is a new part, read, and moved beside the first as name~1."""
    cfg = ImageFolderSourceConfig(path=tmp_path, watch=True, settle=0.2, poll=0.05)
    with ImageFolderSource(cfg) as src:
        (tmp_path / "part.png").write_bytes(_png(1))
        first = _read_until(src, lambda f: len(f) >= 1, quiet=0.3)
        (tmp_path / "part.png").write_bytes(_png(2))
        second = _read_until(src, lambda f: len(f) >= 1, quiet=0.3)
    assert [f.source_ref for f in first + second] == ["part.png", "part.png"]
    assert not np.array_equal(first[0].image, second[0].image)
    assert sorted(p.name for p in (tmp_path / DONE_DIR).iterdir()) == ["part.png", "part~1.png"]
