"""The durable result spool: SQLite in WAL mode in the state folder.

Every result gets its per-station sequence number here, in the same transaction that stores it,
before anyone publishes it (:meth:`Spool.commit`, one transaction per batch). A row is marked
delivered only when the broker's PUBACK says success (:meth:`Spool.mark`); until then it is
handed out again by :meth:`Spool.pending`, in sequence order, after a reconnect or a restart.
A stored batch is committed with ``[spool] synchronous`` (``full``: fsync'd, survives a power cut);
a mark is committed without an fsync of its own (a lost mark only sends a result again, and the
next stored batch's fsync covers it: one WAL), ~40 us of CPU instead of ~180 us a transaction.
Delivered rows stay for the retention window and can be replayed with :meth:`Spool.since`.

Numbering: the next number lives in the database (``meta.next_seq``), so a restart continues
exactly where the last stored result stopped. As a second line, ``<state>/seq`` holds a mark
reserved ahead in blocks (the file the old block counter used; its mark is migrated on the first
start): a spool that had to be set aside as corrupt restarts above it, so numbers never go back.

Quota policy (``[spool] quota_bytes``, bytes = payload + :data:`ROW_OVERHEAD` per row): a batch
that does not fit first frees evidence images (:meth:`Spool.evict_evidence`, the hook for NG
evidence), then delivered rows, oldest first; undelivered results are never dropped. If it still
does not fit, the commit fails with :class:`SpoolStorageError` and the caller turns the batch
into ``ERROR`` results (``daemon.delivery``). The same happens when the disk is full or the
folder is read-only; a failed write is retried at most every :data:`RETRY_STORAGE` seconds, so a
broken disk costs no I/O per frame.

A spool file SQLite calls corrupt is renamed ``spool.db.corrupt-<time>`` (with its WAL), an alarm
is raised through ``on_alarm`` and a fresh file is started: never a crash loop.

Thread use: ``commit`` (decide thread), ``pending`` (mqtt-send), ``mark`` and ``prune``
(mqtt-acks), ``stats``/``since`` (anyone). One connection behind one lock; every call is short.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Protocol, Self

from daemon.config import SpoolConfig
from daemon.result import Publishable, Unnumbered
from ovedge.errors import OvedgeError, StateError

log = logging.getLogger(__name__)

ROW_OVERHEAD = 100  # bytes counted per row on top of its payload (keys, index entries, page slack)
SEQ_RESERVE = 10_000  # numbers reserved ahead in <state>/seq (only used after a corrupt spool)
RETRY_STORAGE = 1.0  # seconds between attempts to write to a spool that failed
PRUNE_CHUNK = 500
QUOTA_RESUME = 0.9  # after the quota was full, storing resumes below this share of it (no flapping)
WAL_CHECKPOINT_PAGES = 256  # SQLite's default is 1000 pages (4 MiB of WAL before the first checkpoint)
WAL_LIMIT_BYTES = 2 * 1024 * 1024  # the WAL file is truncated back to this after a checkpoint

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    created REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    acked REAL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS results_undelivered ON results(seq) WHERE state != 1;
"""


class EvidenceSpace(Protocol):
    """The evidence images' side of the quota (:class:`daemon.evidence.EvidenceStore`)."""

    @property
    def nbytes(self) -> int: ...

    def evict(self, nbytes: int) -> int: ...


class _FreshSpoolError(Exception):
    """A corrupt spool was replaced by a fresh one during a write: try the batch again."""


class RowState(IntEnum):
    PENDING = 0  # stored, no PUBACK yet
    DELIVERED = 1  # PUBACK with a success code
    NO_SUBSCRIBER = 2  # PUBACK 0x10: kept, sent again after retry_interval / reconnect / restart
    REJECTED = 3  # PUBACK failure (0x87 not authorised, ...): kept, alarm raised


class SpoolStorageError(OvedgeError):
    """Results cannot be stored right now (quota, disk full, read-only, unopenable)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"result spool unavailable: {reason}")


class StateFolderError(StateError):
    """The state folder cannot hold the spool (``check-config``)."""

    def __init__(self, folder: Path, problem: str) -> None:
        super().__init__(folder, f"state folder {problem}, results cannot be spooled",
                         "free space, fix its permissions or set [state] dir")


class SequenceMarkError(StateError):
    """``<state>/seq`` does not hold a number."""

    def __init__(self, path: Path, text: str) -> None:
        self.text = text
        super().__init__(path, f"corrupt ({text[:20]!r}): it holds the highest sequence number handed out",
                         "put a number above every published seq in it")


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    camera: str
    model: str
    version: int
    payload: bytes
    state: RowState


@dataclass(frozen=True, slots=True)
class SpoolStats:
    depth: int  # rows not yet delivered
    high_water: int  # largest depth seen in this run
    oldest_seq: int | None
    oldest_age_s: float | None
    undelivered_bytes: int
    delivered_bytes: int
    next_seq: int
    problem: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "depth": self.depth, "high_water": self.high_water, "oldest_seq": self.oldest_seq,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 1),
            "bytes": self.undelivered_bytes + self.delivered_bytes, "problem": self.problem,
        }


_SQLITE_REASONS = (  # error-name prefix -> what the operator reads (format: folder, file)
    ("SQLITE_FULL", "disk full under {0}"),
    ("SQLITE_READONLY", "state folder {0} is read-only"),
    ("SQLITE_CANTOPEN", "spool file {1} cannot be opened (is {0} writable?)"),
)
_OS_REASONS = {errno.ENOSPC: "disk full under {0}", errno.EROFS: "state folder {0} is read-only"}


def describe_storage_error(exc: BaseException, where: Path) -> tuple[str, bool]:
    """One line naming what is wrong with the spool's storage, and whether the file is corrupt."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return f"spool file {where} is corrupt ({exc})", True
        if _read_only(where.parent):
            return f"state folder {where.parent} is read-only", False
        for prefix, text in _SQLITE_REASONS:
            if name.startswith(prefix):
                return text.format(where.parent, where), False
        return f"spool file {where}: {exc} ({name or type(exc).__name__})", False
    if isinstance(exc, OSError):
        text = _OS_REASONS.get(exc.errno or 0, "state folder {0}: {2}")
        return text.format(where.parent, where, exc.strerror or exc), False
    return f"spool file {where}: {exc}", False


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class Spool:
    """Context manager: opens (or repairs) the spool on enter, closes it on exit."""

    def __init__(self, state_dir: Path, cfg: SpoolConfig, *,
                 on_alarm: Callable[[str, str], object] | None = None,
                 clock: Callable[[], float] = time.time, retry_storage: float = RETRY_STORAGE) -> None:
        self.dir = state_dir
        self.path = state_dir / "spool.db"
        self._mark_path = state_dir / "seq"
        self._cfg = cfg
        self._on_alarm = on_alarm
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.problem: str | None = None  # why results cannot be stored now; None = they can
        self._retry_at = 0.0
        self._retry_storage = retry_storage
        self._next = 1
        self._reserved = 0  # the mark in <state>/seq: every number handed out is <= it
        self._depth = 0
        self._undelivered_bytes = 0
        self._delivered_bytes = 0
        self.high_water = 0
        self._quota_full = False
        self.set_aside: list[Path] = []
        self.evidence: EvidenceSpace | None = None  # NG evidence images: share the quota, go first

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        with self._lock:
            self._open()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _open(self) -> None:
        mark = self._read_mark()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            db = self._connect()
        except (sqlite3.Error, OSError) as exc:
            reason, corrupt = describe_storage_error(exc, self.path)
            if not corrupt:
                self._unavailable(reason)
                salvaged = self._salvage_next()
                self._next = max(self._next, mark + 1 if salvaged is None else salvaged)
                return
            fresh_db = self._replace_corrupt(reason)
            if fresh_db is None:
                return
            db = fresh_db
        self._db = db
        stored = self._meta_next(db)
        fresh = stored is None
        self._next = max(self._next, stored or 1, mark + 1 if fresh else 1)
        if fresh:
            try:
                self._write_meta(db)
            except sqlite3.Error as exc:
                self._unavailable(describe_storage_error(exc, self.path)[0])
                return
        self._count(db)
        self.problem = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            self._prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            msg = f"journal mode stays {mode!r}"  # an sqlite3.Error like the others: the callers word it
            raise sqlite3.OperationalError(msg)
        db.execute(f"PRAGMA synchronous={self._cfg.synchronous.upper()}")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")  # a small WAL: small disks recover
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        db.executescript(_SCHEMA)
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            err = sqlite3.DatabaseError(f"quick_check: {check}")
            err.sqlite_errorname = "SQLITE_CORRUPT"
            raise err

    def _replace_corrupt(self, reason: str) -> sqlite3.Connection | None:
        """Move the corrupt file (and its WAL) aside, raise an alarm, start a fresh spool."""
        self._next = max(self._next, self._salvage_next() or 1)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    src.replace(Path(f"{aside}{suffix}"))
            self.set_aside.append(aside)
            db = self._connect()
        except (sqlite3.Error, OSError) as exc:
            self._unavailable(describe_storage_error(exc, self.path)[0])
            return None
        log.error("%s: moved aside to %s, a fresh spool was started", reason, aside.name)
        if self._on_alarm is not None:
            self._on_alarm("spool-corrupt", f"{reason}; moved aside to {aside}")
        return db

    def _salvage_next(self) -> int | None:
        """Best effort: the next number recorded in a spool we cannot (or may not) write; None = unknown."""
        if not self.path.exists():
            return None
        wal = Path(f"{self.path}-wal")
        # mode=ro reads the WAL but needs its shared-memory file; immutable ignores the WAL, so it
        # is only trusted when there is no WAL left (a clean close checkpoints and removes it).
        modes = ["mode=ro"] + ([] if wal.exists() and wal.stat().st_size else ["mode=ro&immutable=1"])
        for mode in modes:
            try:
                db = sqlite3.connect(f"file:{self.path}?{mode}", uri=True)
                try:
                    stored = self._meta_next(db)
                    top = db.execute("SELECT max(seq) FROM results").fetchone()[0]
                finally:
                    db.close()
            except sqlite3.Error:
                continue
            return None if stored is None else max(stored, (top or 0) + 1)
        return None

    @staticmethod
    def _meta_next(db: sqlite3.Connection) -> int | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return None if row is None else int(row[0])

    def _write_meta(self, db: sqlite3.Connection) -> None:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('next_seq', ?)", (self._next,))

    def _count(self, db: sqlite3.Connection) -> None:
        for state, n, size in db.execute(
            "SELECT state = 1, count(*), coalesce(sum(length(payload)), 0) FROM results GROUP BY state = 1"
        ):
            if state:
                self._delivered_bytes = int(size) + ROW_OVERHEAD * int(n)
            else:
                self._depth = int(n)
                self._undelivered_bytes = int(size) + ROW_OVERHEAD * int(n)
        self.high_water = max(self.high_water, self._depth)

    def _read_mark(self) -> int:
        try:
            text = self._mark_path.read_text(encoding="ascii").strip() if self._mark_path.exists() else "0"
        except OSError:
            return 0
        try:
            mark = int(text or "0")
        except ValueError as exc:
            raise SequenceMarkError(self._mark_path, text) from exc
        self._reserved = mark
        return mark

    def _reserve(self, upto: int) -> None:
        """Keep ``<state>/seq`` at or above every number handed out (written before they are used)."""
        if upto <= self._reserved:
            return
        mark = upto + SEQ_RESERVE
        tmp = self._mark_path.with_suffix(".tmp")
        with tmp.open("w", encoding="ascii") as fh:
            fh.write(f"{mark}\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self._mark_path)
        self._reserved = mark

    def _unavailable(self, reason: str) -> None:
        self.problem = reason
        self._retry_at = time.monotonic() + self._retry_storage

    # -- writing --------------------------------------------------------------------------------

    def commit(self, drafts: Sequence[Unnumbered]) -> list[Publishable]:
        """Number and store a batch in one transaction; returns the numbered records.

        Raises :class:`SpoolStorageError` (nothing stored, no number used) when the batch cannot
        be stored; the caller decides what the results become.
        """
        if not drafts:
            return []
        with self._lock:
            try:
                return self._insert(self._writable(), drafts)
            except _FreshSpoolError:
                return self._insert(self._writable(), drafts)  # once more, on the fresh file

    def _insert(self, db: sqlite3.Connection, drafts: Sequence[Unnumbered]) -> list[Publishable]:
        first = self._next
        records = [d.numbered(first + i) for i, d in enumerate(drafts)]
        now = self._clock()
        rows = [(r.seq, r.camera, r.model_name, r.model_version, now, r.to_json()) for r in records]
        size = sum(len(r[5]) for r in rows) + ROW_OVERHEAD * len(rows)
        try:
            self._make_room(db, size)
            self._reserve(first + len(rows) - 1)
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO results(seq, camera, model, version, created, payload) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._next = first + len(rows)
                self._write_meta(db)
                db.execute("COMMIT")
            except BaseException:
                self._next = first
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            if describe_storage_error(exc, self.path)[0].startswith("disk full"):
                with contextlib.suppress(sqlite3.Error):  # disk full: delivered rows go (quota policy order)
                    if self._delivered_bytes:
                        self._delete_delivered(db, "ORDER BY seq LIMIT ?", (PRUNE_CHUNK,))
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._failed(exc)
        self._depth += len(rows)
        self._undelivered_bytes += size
        self.high_water = max(self.high_water, self._depth)
        self.problem = None
        return records

    def _writable(self) -> sqlite3.Connection:
        if self.problem is not None and time.monotonic() < self._retry_at:
            raise SpoolStorageError(self.problem)
        if self._db is None:
            self._open()
            if self._db is None:
                raise SpoolStorageError(self.problem or "not open")
        return self._db

    def _failed(self, exc: BaseException) -> NoReturn:
        reason, corrupt = describe_storage_error(exc, self.path)
        if corrupt:
            self._close()
            self._db = self._replace_corrupt(reason)
            if self._db is not None:
                self._depth = self._undelivered_bytes = self._delivered_bytes = 0
                self._write_meta(self._db)
                self.problem = None
                raise _FreshSpoolError from exc
        self._unavailable(reason)
        raise SpoolStorageError(reason) from exc

    def _make_room(self, db: sqlite3.Connection, size: int) -> None:
        """The quota policy: evidence first, then delivered rows; undelivered results never."""
        quota = self._cfg.quota_bytes
        limit = int(quota * QUOTA_RESUME) if self._quota_full else quota
        evidence = self.evidence.nbytes if self.evidence is not None else 0
        excess = self._undelivered_bytes + self._delivered_bytes + evidence + size - limit
        if excess <= 0:
            return
        excess -= self.evict_evidence(excess)
        while excess > 0 and self._delivered_bytes > 0:
            rows = db.execute("SELECT seq, length(payload) FROM results WHERE state = 1 ORDER BY seq LIMIT ?",
                              (PRUNE_CHUNK,)).fetchall()
            upto, need = 0, excess
            for seq, n in rows:
                upto, need = int(seq), need - int(n) - ROW_OVERHEAD
                if need <= 0:
                    break
            if not rows:
                break
            excess -= self._delete_delivered(db, "AND seq <= ?", (upto,))
        self._quota_full = excess > 0
        if excess > 0:
            reason = f"spool quota of {quota // 1024} KiB is full of undelivered results ([spool] quota_bytes)"
            self._unavailable(reason)
            self._retry_at = 0.0  # in-memory check: try again with the next batch
            raise SpoolStorageError(reason)

    def evict_evidence(self, nbytes: int) -> int:
        """NG evidence images share the quota and go first (oldest first). Returns bytes freed."""
        return self.evidence.evict(nbytes) if self.evidence is not None else 0

    @property
    def quota_bytes(self) -> int:
        return self._cfg.quota_bytes

    @property
    def stored_bytes(self) -> int:
        """Bytes the results take under the quota (payload + overhead), delivered or not."""
        return self._undelivered_bytes + self._delivered_bytes

    def number_unstored(self, count: int) -> list[int]:
        """Numbers for results that could not be stored (they go out as ``ERROR`` results).

        Kept in the database when it can still be written (quota case); otherwise only in memory.
        """
        with self._lock:
            first = self._next
            self._next += count
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error, OSError):
                    self._reserve(self._next - 1)
                    self._write_meta(self._db)
            return list(range(first, first + count))

    def mark(self, outcomes: Iterable[tuple[int, RowState]]) -> int:
        """Record PUBACK outcomes in one transaction; returns how many rows became delivered.

        A failure here loses nothing: the rows stay undelivered and are sent again (duplicates).
        """
        delivered = [seq for seq, state in outcomes if state is RowState.DELIVERED]
        other = [(int(state), seq) for seq, state in outcomes if state is not RowState.DELIVERED]
        with self._lock:
            db = self._db
            if db is None:
                return 0
            now = self._clock()
            # No fsync of its own: a mark lost in a power cut only sends those results again (at
            # least once), and the next stored batch's fsync makes it durable anyway (one WAL).
            relax = self._cfg.synchronous == "full"
            try:
                if relax:
                    db.execute("PRAGMA synchronous=NORMAL")
                db.execute("BEGIN IMMEDIATE")
                try:
                    n = size = 0
                    for chunk in _chunks(delivered, 500):
                        marks = ",".join("?" * len(chunk))
                        got = db.execute(f"SELECT count(*), coalesce(sum(length(payload)), 0) FROM results "  # noqa: S608
                                         f"WHERE state != 1 AND seq IN ({marks})", chunk).fetchone()
                        n += int(got[0])
                        size += int(got[1])
                        db.execute(f"UPDATE results SET state = 1, acked = ? WHERE state != 1 AND seq IN ({marks})",  # noqa: S608
                                   (now, *chunk))
                    if other:
                        db.executemany("UPDATE results SET state = ? WHERE state != 1 AND seq = ?", other)
                    db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                log.debug("PUBACK outcomes not recorded (%s); those results will be sent again", exc)
                return 0
            finally:
                if relax:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("PRAGMA synchronous=FULL")
            moved = size + ROW_OVERHEAD * n
            self._depth -= n
            self._undelivered_bytes -= moved
            self._delivered_bytes += moved
            return n

    def prune(self) -> int:
        """Retention for delivered rows: older than ``retention`` or beyond ``retention_bytes`` go."""
        with self._lock:
            db = self._db
            if db is None:
                return 0
            before = self._delivered_bytes
            cutoff = self._clock() - self._cfg.retention
            try:
                self._delete_delivered(db, "AND created < ? ORDER BY seq LIMIT ?", (cutoff, 1_000_000))
                while self._delivered_bytes > self._cfg.retention_bytes:
                    if self._delete_delivered(db, "ORDER BY seq LIMIT ?", (PRUNE_CHUNK,)) == 0:
                        break
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # keep the WAL file small
            except sqlite3.Error as exc:
                log.debug("retention pruning failed (%s); will try again", exc)
            return before - self._delivered_bytes

    def _delete_delivered(self, db: sqlite3.Connection, where: str, args: tuple[float | int, ...]) -> int:
        sel = f"SELECT seq, length(payload) FROM results WHERE state = 1 {where}"  # noqa: S608  # fixed fragments
        doomed = db.execute(sel, args).fetchall()
        if not doomed:
            return 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in _chunks([s for s, _ in doomed], 500):
                db.execute(f"DELETE FROM results WHERE seq IN ({','.join('?' * len(chunk))})", chunk)  # noqa: S608
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        freed = sum(int(n) for _, n in doomed) + ROW_OVERHEAD * len(doomed)
        self._delivered_bytes -= freed
        return freed

    # -- reading --------------------------------------------------------------------------------

    def pending(self, after: int, limit: int, skip: frozenset[int] | set[int] = frozenset()) -> list[Row]:
        """Up to ``limit`` undelivered rows above ``after``, in sequence order, leaving out ``skip``."""
        with self._lock:
            if self._db is None or limit <= 0:
                return []
            try:
                got = self._db.execute(
                    "SELECT seq, camera, model, version, payload, state FROM results "
                    "WHERE state != 1 AND seq > ? ORDER BY seq LIMIT ?", (after, limit + len(skip)),
                ).fetchall()
            except sqlite3.Error as exc:
                log.debug("reading undelivered results failed (%s)", exc)
                return []
        rows = [Row(s, c, m, v, p, RowState(st)) for s, c, m, v, p, st in got if s not in skip]
        return rows[:limit]

    def since(self, seq: int, limit: int = 1000) -> list[Row]:
        """Stored rows (delivered or not) with a sequence number above ``seq``, oldest first.

        For replay requests (MQTT ``cmd/replay``, HTTP ``?since=``): what is still inside the
        retention window; a caller that gets fewer rows than it asked for has everything.
        """
        with self._lock:
            if self._db is None:
                return []
            got = self._db.execute(
                "SELECT seq, camera, model, version, payload, state FROM results WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [Row(s, c, m, v, p, RowState(st)) for s, c, m, v, p, st in got]

    def stats(self) -> SpoolStats:
        with self._lock:
            oldest = None
            if self._db is not None and self._depth > 0:
                with contextlib.suppress(sqlite3.Error):
                    oldest = self._db.execute(
                        "SELECT seq, created FROM results WHERE state != 1 ORDER BY seq LIMIT 1"
                    ).fetchone()
            return SpoolStats(
                depth=self._depth, high_water=self.high_water,
                oldest_seq=None if oldest is None else int(oldest[0]),
                oldest_age_s=None if oldest is None else max(0.0, self._clock() - float(oldest[1])),
                undelivered_bytes=self._undelivered_bytes, delivered_bytes=self._delivered_bytes,
                next_seq=self._next, problem=self.problem,
            )

    @property
    def depth(self) -> int:
        return self._depth


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def check_state_dir(state_dir: Path, cfg: SpoolConfig, *, min_free: int = 16 * 1024 * 1024) -> str:
    """For ``check-config``: the state folder exists or can be made, is writable and has room.

    Returns a one-line summary; raises :class:`ConfigError` naming the folder and the fix.
    """
    probe = state_dir / ".ovedge-write-test"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
        st = os.statvfs(state_dir)
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise StateFolderError(state_dir, f"is not writable ({exc.strerror or exc})") from exc
    free = st.f_bavail * st.f_frsize
    if free < min_free:
        raise StateFolderError(state_dir, f"has only {free // 1024} KiB free, the spool needs at least "
                                          f"{min_free // (1024 * 1024)} MiB")
    note = "" if free >= cfg.quota_bytes else (
        f" (less than [spool] quota_bytes = {cfg.quota_bytes // (1024 * 1024)} MiB: the disk fills first)")
    return f"state folder {state_dir} writable, {free // (1024 * 1024)} MiB free{note}"
