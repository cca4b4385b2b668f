"""Per-station sequence numbers that keep increasing across restarts.

Until the durable spool lands (it will assign sequence numbers in its own transaction), numbers are
reserved in blocks: a high-water mark is written to ``<state>/seq`` (atomically, fsynced) before any
number of the block is handed out. A restart continues above the mark, so numbers never repeat;
they may skip up to one block after a restart.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ovedge.errors import StateError

BLOCK = 1000


class SequenceCounter:
    def __init__(self, state_dir: Path, block: int = BLOCK) -> None:
        self._path = state_dir / "seq"
        self._block = block
        self._lock = threading.Lock()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            text = self._path.read_text(encoding="ascii").strip() if self._path.exists() else "0"
        except OSError as exc:
            problem = f"state folder not usable ({exc.strerror})"
            raise StateError(state_dir, problem, "set [state] dir to a writable folder") from exc
        try:
            mark = int(text)
        except ValueError as exc:
            raise StateError(self._path, f"corrupt ({text[:20]!r})", "delete it to restart numbering") from exc
        self._next = mark + 1
        self._limit = mark  # nothing reserved yet in this run

    def next(self) -> int:
        with self._lock:
            if self._next > self._limit:
                self._reserve(self._next - 1 + self._block)
            value = self._next
            self._next += 1
            return value

    def _reserve(self, mark: int) -> None:
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("w", encoding="ascii") as fh:
            fh.write(f"{mark}\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._path)
        self._limit = mark
