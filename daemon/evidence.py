"""NG evidence images: JPEG files under ``<state>/evidence/<camera>/``, written off the hot path.

The decide thread calls :meth:`EvidenceWriter.offer` with a judged result and its frame; it decides
at once whether the frame is evidence (every NG, every ``ok_every``-th OK of each camera), picks
the file name the result will carry (``evidence`` field) and ``put_nowait``s the frame into a
bounded queue. **Drop policy**: when the queue is full the new image is dropped, counted
(``dropped``), logged once per episode, and its result says ``"evidence": null``: the verdict is
never held back for a picture.

The ``evidence-writer`` thread draws the defects on a copy (:mod:`daemon.draw`), makes room, writes
the file atomically (temporary name, then rename) and, for the cameras listed in
``[evidence] publish``, publishes it on ``<prefix>/<station>/<camera>/evidence``.

Frames the model was unsure about (``[evidence] uncertain_margin``: a score that close to its label's
threshold, decided by :meth:`daemon.decision.Decider.near_threshold`) are offered with a
:class:`Review`: the writer keeps them as they were shot, lossless (PNG, no drawing), under
``<state>/evidence/<camera>/review/``, each with a JSON of what the model found (CVAT shapes, the
model and its labels), for re-labelling: :mod:`daemon.review` turns them into a CVAT task. A review
is kept beside the frame's evidence image, never instead of it, and goes through the same queue and
drop policy; it does not change the result.

Retention (:class:`EvidenceStore`): at most ``max_files`` files, ``max_bytes`` bytes and
``max_age`` seconds, oldest first (a review image and its JSON count, and go, as one). The files
also count against ``[spool] quota_bytes`` and go first when it is full: the spool calls
:meth:`EvidenceStore.evict` before touching delivered results, and the writer does not write an
image that would push results out (``skipped``).
A file that cannot be written (disk full, read-only) is counted (``failed``) and logged once per
change of state; its result names a file that does not exist.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

import cv2
import numpy as np
import numpy.typing as npt

from daemon.config import EvidenceConfig
from daemon.cvat import cvat_shapes
from daemon.draw import annotated_jpeg
from daemon.result import Result, Verdict, utc_iso
from ovedge.layouts import Detection

__all__ = ["FOLDER", "REVIEW", "REVIEW_SCHEMA", "EvidenceStore", "EvidenceWriter", "Review", "SpoolSpace"]

log = logging.getLogger(__name__)

FOLDER = "evidence"
REVIEW = "review"  # <state>/evidence/<camera>/review/: frames kept for re-labelling
REVIEW_SCHEMA = "ovedge.review/1"


class Review(NamedTuple):
    """Why a frame is kept for re-labelling: everything the model found on it (not only what counted)."""

    found: tuple[Detection, ...]
    labels: tuple[str, ...]  # the model's labels: the CVAT task's label list
    model: str  # "name vN"


class SpoolSpace(Protocol):
    """What the writer asks the spool: its quota and the bytes its results take."""

    @property
    def quota_bytes(self) -> int: ...

    @property
    def stored_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    size: int
    mtime: float


class EvidenceStore:
    """The evidence files on disk, oldest first, with count/byte/age retention (thread-safe)."""

    def __init__(self, state_dir: Path, cfg: EvidenceConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.state_dir = state_dir
        self.root = state_dir / FOLDER
        self._cfg = cfg
        self._clock = clock
        self._lock = threading.Lock()
        self._files: deque[_File] = deque()
        self._bytes = 0
        self.evicted = 0  # files removed to make room for results (quota policy)
        self.expired = 0  # files removed by retention (count, bytes, age)

    def scan(self) -> None:
        """Take stock of the files left by earlier runs (oldest first)."""
        found: list[_File] = []
        if self.root.is_dir():
            for path in (*self.root.rglob("*.jpg"), *self.root.rglob("*.png")):
                with contextlib.suppress(OSError):
                    st = path.stat()
                    found.append(_File(path, st.st_size + _sidecar_size(path), st.st_mtime))
        found.sort(key=lambda f: (f.mtime, str(f.path)))
        with self._lock:
            self._files = deque(found)
            self._bytes = sum(f.size for f in found)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._files)

    def add(self, path: Path, size: int) -> None:
        with self._lock:
            self._files.append(_File(path, size, self._clock()))
            self._bytes += size

    def evict(self, nbytes: int) -> int:
        """Delete the oldest files until ``nbytes`` are freed (the spool's quota hook); returns bytes freed."""
        freed = 0
        with self._lock:
            while freed < nbytes and self._files:
                freed += self._remove(self._files.popleft())
                self.evicted += 1
        return freed

    def enforce(self) -> int:
        """Retention: too many, too many bytes or too old go, oldest first; returns files removed."""
        cfg = self._cfg
        cutoff = self._clock() - cfg.max_age
        removed = 0
        with self._lock:
            while self._files and (len(self._files) > cfg.max_files or self._bytes > cfg.max_bytes
                                   or self._files[0].mtime < cutoff):
                self._remove(self._files.popleft())
                removed += 1
            self.expired += removed
        return removed

    def _remove(self, f: _File) -> int:
        self._bytes -= f.size
        with contextlib.suppress(OSError):
            f.path.unlink()
        if f.path.suffix == ".png":  # a review image: its JSON goes with it
            with contextlib.suppress(OSError):
                f.path.with_suffix(".json").unlink()
        return f.size


def _sidecar_size(path: Path) -> int:
    if path.suffix != ".png":
        return 0
    try:
        return path.with_suffix(".json").stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True, slots=True)
class _Job:
    name: str
    camera: str
    verdict: Verdict
    draft: Result
    image: npt.NDArray[np.uint8]
    review: Review | None = None  # set: keep the frame unmarked with what the model found, for re-labelling


class EvidenceWriter:
    """Context manager owning the ``evidence-writer`` thread; on exit it writes what is queued."""

    def __init__(self, cfg: EvidenceConfig, store: EvidenceStore, *, space: SpoolSpace | None = None,
                 publish: Callable[[str, str, bytes], None] | None = None) -> None:
        self._cfg = cfg
        self.store = store
        self._space = space
        self._publish = publish
        self._publish_cameras = frozenset(cfg.publish)
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=cfg.queue)
        self._ok_seen: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
        self.written = 0
        self.reviews = 0  # frames kept for re-labelling
        self.bytes_written = 0
        self.dropped = 0  # queue full: not saved, the result says evidence null
        self.skipped = 0  # not written: it would have pushed results out of the spool quota
        self.failed = 0  # the write failed (disk full, read-only): the named file does not exist
        self._dropping = False
        self._problem: str | None = None

    def __enter__(self) -> Self:
        self.store.scan()
        self.store.enforce()
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    # -- decide thread: decide and hand off -----------------------------------------------------

    def offer(self, draft: Result, image: npt.NDArray[np.uint8], review: Review | None = None) -> Result:
        """The draft, naming its evidence file when the frame is evidence and could be queued; with
        ``review``, the frame is also queued to be kept for re-labelling (the result is unchanged)."""
        if review is not None:
            self._queue_job(_Job(f"{FOLDER}/{draft.camera}/{REVIEW}/{_stem(draft)}.png",
                                 draft.camera, draft.verdict, draft, image, review))
        if draft.verdict is Verdict.OK:
            every = self._cfg.ok_every
            if not every:
                return draft
            n = self._ok_seen.get(draft.camera, 0) + 1
            self._ok_seen[draft.camera] = n
            if n % every:
                return draft
        elif draft.verdict is not Verdict.NG:
            return draft
        name = f"{FOLDER}/{draft.camera}/{_stem(draft)}.jpg"
        if not self._queue_job(_Job(name, draft.camera, draft.verdict, draft, image)):
            return draft
        return draft._replace(evidence=name)

    def _queue_job(self, job: _Job) -> bool:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                log.warning("evidence images are dropped: the writer is behind (%d queued, [evidence] queue); "
                            "their results say evidence null (%d dropped so far)", self._cfg.queue, self.dropped)
            return False
        if self._dropping and self._queue.qsize() < self._cfg.queue // 2:
            self._dropping = False
            log.info("evidence images are saved again (%d were dropped)", self.dropped)
        return True

    # -- evidence-writer ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            try:
                self._write(job)
            except Exception:
                self.failed += 1
                log.exception("bug while writing evidence image %s", job.name)

    def _write(self, job: _Job) -> None:
        path = self.store.state_dir / job.name
        files: list[tuple[Path, bytes]]
        if job.review is None:
            data = annotated_jpeg(job.image, job.verdict, job.draft.defects, quality=self._cfg.quality)
            files = [(path, data)]
        else:
            ok, png = cv2.imencode(".png", job.image)
            if not ok:
                self.failed += 1
                self._trouble(f"{job.name}: the frame could not be encoded as PNG")
                return
            data = png.tobytes()
            # The image first: the store tracks (and expires) images; a JSON marks a review complete.
            files = [(path, data), (path.with_suffix(".json"), _review_json(job))]
        size = sum(len(b) for _, b in files)
        if not self._make_room(size):
            self.skipped += 1
            self._trouble(f"the spool quota is taken by results ({size} B needed); results come first")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for target, content in files:
                _write_atomically(target, content)
        except OSError as exc:
            self.failed += 1
            for target, _ in files:
                with contextlib.suppress(OSError):
                    target.unlink()
            self._trouble(f"{path.parent}: {exc.strerror or exc}")
            return
        if self._problem is not None:
            log.info("evidence images are written again")
            self._problem = None
        self.store.add(path, size)
        self.written += 1
        self.reviews += job.review is not None
        self.bytes_written += size
        self.store.enforce()
        if job.review is None and self._publish is not None and job.camera in self._publish_cameras:
            self._publish(job.camera, job.name, data)

    def _make_room(self, size: int) -> bool:
        """Within the spool's quota: older evidence goes; results never do."""
        if self._space is None:
            return True
        excess = self._space.stored_bytes + self.store.nbytes + size - self._space.quota_bytes
        if excess > 0:
            self.store.evict(excess)
        return self._space.stored_bytes + self.store.nbytes + size <= self._space.quota_bytes

    def _trouble(self, problem: str) -> None:
        if problem != self._problem:
            self._problem = problem
            log.error("evidence images are not saved: %s (failed %d, skipped %d so far)", problem, self.failed,
                      self.skipped)

    def stats(self) -> dict[str, int]:
        return {"written": self.written, "reviews": self.reviews, "bytes": self.store.nbytes, "files": len(self.store),
                "dropped": self.dropped, "skipped": self.skipped, "failed": self.failed,
                "evicted": self.store.evicted, "expired": self.store.expired}


def evidence_dir(state_dir: Path) -> Path:
    return state_dir / FOLDER


def _stem(draft: Result) -> str:
    """``<UTC time>-f<frame index>``: an evidence or review file's name without its suffix."""
    return f"{utc_iso(draft.time).replace('-', '').replace(':', '')}-f{draft.frame_index}"


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(content)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _review_json(job: _Job) -> bytes:
    """What the model found on a frame kept for re-labelling (read by :mod:`daemon.review`)."""
    assert job.review is not None
    draft = job.draft
    body: dict[str, Any] = {
        "schema": REVIEW_SCHEMA,
        "station": draft.station,
        "camera": draft.camera,
        "time": utc_iso(draft.time),
        "frame": {"index": draft.frame_index, "ref": draft.frame_ref, "captured": utc_iso(draft.captured),
                  "width": draft.width, "height": draft.height},
        "part_id": draft.part_id,
        "model": job.review.model,
        "labels": list(job.review.labels),
        "verdict": draft.verdict.value,
        "shapes": cvat_shapes(job.review.found, 0.0),  # all of them, best first: the pre-annotations
    }
    return json.dumps(body, ensure_ascii=False, indent=1).encode()
