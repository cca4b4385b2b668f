"""Still images from a folder, as if a camera had taken them.

Two ways, chosen by ``watch``:

* **listing** (default): every image found on opening, in name order; ends (or loops) after the
  last. Reopening (after a failure) goes on after the last image delivered: none is read twice.
* **watching** a drop folder: wait for images to appear, read each once, in arrival order, only
  after it is completely written — its size and modification time unchanged for ``settle``
  seconds. Writers that can should write under another name (``.x.png``, ``x.png.part``) and
  rename into place. Each file read is then moved into ``done/`` (``failed/`` when it is no usable
  image) inside the folder (as ``<stem>~N<suffix>`` when that name is already there: nothing is
  overwritten), or, with ``after = "keep"``, left and listed in ``.ovedge-read`` so a restart does
  not read it again.

A file that cannot be read or decoded, or a frame the limits reject, is a frame with ``error``
set (an ``ERROR`` result naming the file), and reading goes on with the next file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Final, Self

import cv2
import numpy as np

from camera._pacing import Pacer
from camera.config import ImageFolderSourceConfig
from camera.errors import SourceError, SourceNotOpenError
from camera.frame import ClosedOnExit, Frame
from camera.validate import FrameCheck, failed_frame

__all__ = ["DONE_DIR", "FAILED_DIR", "IMAGE_SUFFIXES", "LEDGER", "ImageFolderSource"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: Final = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm", ".pnm"}
)
"""With the default pattern ``*``, only files with these suffixes are taken (a stray README is not a frame)."""
DONE_DIR: Final = "done"
FAILED_DIR: Final = "failed"
LEDGER: Final = ".ovedge-read"
"""With ``after = "keep"``: one line per file read (name, size, mtime in ns), so a restart skips it."""


class ImageFolderSource(ClosedOnExit):
    """Images of a folder: listed once in name order, or watched as a drop folder (see the module)."""

    def __init__(self, config: ImageFolderSourceConfig) -> None:
        self.path = config.path
        self.config = config
        self._check = FrameCheck.of(config)
        self._pacer = Pacer(config.fps)
        self._open = False
        self._files: list[Path] = []
        self._next = 0
        self._index = 0  # frame index: keeps counting across reopens
        self._last: str | None = None  # listing: name of the last image delivered
        self._taken: set[str] = set()  # watching: "name\tsize\tmtime_ns" of files read that could not be moved
        self._ledger: set[str] = set()  # watching with after="keep": "name\tsize\tmtime_ns" of files read
        self._stable: dict[str, tuple[int, int, float]] = {}  # watching: name -> (size, mtime_ns, unchanged since)
        self._interrupted = threading.Event()

    @property
    def description(self) -> str:
        """``image folder <path> (<pattern>)``, or ``watched folder ...``."""
        return f"{'watched' if self.config.watch else 'image'} folder {self.path} ({self.config.pattern})"

    @property
    def files(self) -> tuple[Path, ...]:
        """Listing: the images still to read in this pass, in reading order."""
        return tuple(self._files[self._next :])

    def _candidates(self) -> list[Path]:
        pattern = self.config.pattern
        found = [p for p in self.path.glob(pattern) if not p.name.startswith(".") and p.is_file()]
        if pattern == "*":
            found = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        return found

    def __enter__(self) -> Self:
        if not self.path.is_dir():
            raise SourceError(what=self.description, problem="does not exist", fix="fix the camera's `path`")
        self._pacer.reset()
        self._interrupted.clear()
        if self.config.watch:
            self._enter_watch()
        else:
            self._enter_listing()
        self._open = True
        return self

    def _enter_listing(self) -> None:
        found = sorted(self._candidates(), key=lambda p: p.name)
        if not found:
            raise SourceError(
                what=self.description,
                problem="holds no images",
                detail=f"with '*', files ending in {', '.join(sorted(IMAGE_SUFFIXES))} are taken",
                fix="add some or fix `pattern`",
            )
        self._files = found
        # A reopen goes on after the last image delivered: nothing already inspected comes again.
        last = self._last
        self._next = 0 if last is None else sum(1 for p in found if p.name <= last)
        log.info("opened %s: %d images, %d to read", self.description, len(found), len(found) - self._next)

    def _enter_watch(self) -> None:
        if self.config.after == "move":
            for sub in (DONE_DIR, FAILED_DIR):
                try:
                    (self.path / sub).mkdir(exist_ok=True)
                except OSError as exc:
                    raise SourceError(
                        what=self.description,
                        problem=f"cannot create {sub}/",
                        detail=exc.strerror,
                        fix='let this user write the folder or set after = "keep"',
                    ) from exc
        else:
            ledger = self.path / LEDGER
            try:
                lines = ledger.read_text(encoding="utf-8").splitlines() if ledger.exists() else []
            except OSError as exc:
                raise SourceError(
                    what=self.description,
                    problem=f"cannot read {LEDGER} (its list of the files already read)",
                    detail=exc.strerror,
                    fix="let this user read and write it",
                ) from exc
            self._ledger = set(lines)
        self._stable.clear()
        log.info("watching %s", self.description)

    def close(self) -> None:
        """Forget the listing; a new ``with`` lists again (idempotent)."""
        self._open = False
        self._files = []

    def interrupt(self) -> None:
        """Make a waiting (or the next) :meth:`read` return ``None`` once (another thread may call this)."""
        self._interrupted.set()

    def read(self) -> Frame | None:
        """The next image as a frame; ``None`` after the last (listing, no loop) or when interrupted."""
        if not self._open:
            raise SourceNotOpenError(self.description)
        if self.config.watch:
            return self._read_watched()
        if self._next >= len(self._files):
            if not self.config.loop:
                return None
            self._next = 0
        self._pacer.wait()
        path = self._files[self._next]
        self._next += 1
        self._last = path.name
        return self._load(path)

    # -- both ways ----------------------------------------------------------------------------------

    def _load(self, path: Path) -> Frame:
        index = self._index
        self._index += 1
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            return failed_frame(f"image {path} cannot be read ({exc.strerror})", index=index, ref=path.name)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if image is None:
            return failed_frame(
                f"image {path} is not a readable image (truncated, empty or not an image file)",
                index=index,
                ref=path.name,
            )
        return self._check.frame(image, index=index, ref=path.name)

    # -- watching -------------------------------------------------------------------------------------

    def _read_watched(self) -> Frame | None:
        while not self._interrupted.is_set():
            path = self._next_settled()
            if path is None:
                self._interrupted.wait(self.config.poll)
                continue
            self._pacer.wait()
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # taken away by someone else meanwhile: it was never ours
            frame = self._load(path)
            self._stable.pop(path.name, None)
            self._done_with(path, st, failed=frame.error is not None)
            return frame
        self._interrupted.clear()  # one interrupt, one None
        return None

    def _next_settled(self) -> Path | None:
        """The oldest file whose size and time have not changed for ``settle`` seconds."""
        now = time.monotonic()
        settled: list[tuple[int, str, Path]] = []
        seen: set[str] = set()
        for path in self._candidates():
            name = path.name
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            line = _ledger_line(name, st)  # the same name with another size or time is another file
            if line in self._taken or line in self._ledger:
                continue
            seen.add(name)
            sig = (st.st_size, st.st_mtime_ns)
            before = self._stable.get(name)
            if before is None or before[:2] != sig:
                self._stable[name] = (*sig, now)
            elif st.st_size > 0 and now - before[2] >= self.config.settle:
                settled.append((st.st_mtime_ns, name, path))
        for gone in set(self._stable) - seen:
            del self._stable[gone]
        return min(settled)[2] if settled else None

    def _done_with(self, path: Path, st: os.stat_result, *, failed: bool) -> None:
        if self.config.after == "keep":
            line = _ledger_line(path.name, st)
            self._ledger.add(line)
            try:
                with (self.path / LEDGER).open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                log.error(  # noqa: TRY400 - a one-line message for the user, not a bug
                    "%s: cannot record %s in %s (%s); a restart would read it again",
                    self.description, path.name, LEDGER, exc.strerror,
                )
            return
        target = _free_name(self.path / (FAILED_DIR if failed else DONE_DIR) / path.name)
        try:
            path.rename(target)
        except OSError as exc:
            self._taken.add(_ledger_line(path.name, st))
            log.error(  # noqa: TRY400 - a one-line message for the user, not a bug
                "%s: cannot move %s into %s/ (%s); it is not read again by this process, but a restart would read it",
                self.description, path.name, target.parent.name, exc.strerror,
            )


def _free_name(target: Path) -> Path:
    """``target``, or ``<stem>~N<suffix>`` when a file of that name was already moved there (never overwrite)."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}~{n}{target.suffix}")
    return candidate


def _ledger_line(name: str, st: os.stat_result) -> str:
    return f"{name}\t{st.st_size}\t{st.st_mtime_ns}"
