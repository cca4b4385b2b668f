"""The durable spool on its own: numbering, storage, PUBACK outcomes, quota, retention, repair."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon.config import SpoolConfig
from daemon.result import FrameOut, ModelOut, ResultDraft, TimingsOut, Verdict
from daemon.spool import ROW_OVERHEAD, RowState, Spool, SpoolStorageError


def _draft(i: int, camera: str = "cam0") -> ResultDraft:
    return ResultDraft(
        station="s1", camera=camera, time="2026-01-01T00:00:00.000000Z",
        frame=FrameOut(index=i, ref=f"synthetic:1:{i}", captured="2026-01-01T00:00:00.000000Z", width=8, height=8),
        model=ModelOut(name="demo", version=3, device="CPU"), verdict=Verdict.NG if i % 2 else Verdict.OK,
        defects=(), timings=TimingsOut(inference_ms=1.0, capture_to_result_ms=2.0),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_commit_numbers_stores_and_a_reopen_continues_without_a_gap(tmp_path: Path) -> None:
    """Numbers come from the spool in commit order; after a reopen the next number follows the last one."""
    with Spool(tmp_path, SpoolConfig()) as spool:
        first = spool.commit([_draft(i) for i in range(5)])
        second = spool.commit([_draft(5)])
        assert [r.seq for r in first + second] == [1, 2, 3, 4, 5, 6]
        assert spool.depth == 6
    with Spool(tmp_path, SpoolConfig()) as spool:
        assert [r.seq for r in spool.commit([_draft(9)])] == [7]
        rows = spool.pending(after=0, limit=100)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0].camera == "cam0" and rows[0].model == "demo" and rows[0].version == 3
    assert b'"seq":1,' in rows[0].payload


def test_old_sequence_mark_is_migrated_so_numbers_never_go_back(tmp_path: Path) -> None:
    """The first start continues above the high-water mark the old block counter left in <state>/seq."""
    (tmp_path / "seq").write_text("1500\n", encoding="ascii")
    with Spool(tmp_path, SpoolConfig()) as spool:
        assert [r.seq for r in spool.commit([_draft(0), _draft(1)])] == [1501, 1502]
    with Spool(tmp_path, SpoolConfig()) as spool:  # the database is the truth from now on: no block skip
        assert [r.seq for r in spool.commit([_draft(2)])] == [1503]


def test_only_a_success_puback_delivers(tmp_path: Path) -> None:
    """Delivered rows leave the pending list; 'no subscribers' and refused rows stay for the next attempt."""
    with Spool(tmp_path, SpoolConfig()) as spool:
        spool.commit([_draft(i) for i in range(4)])
        assert spool.mark([(1, RowState.DELIVERED), (2, RowState.NO_SUBSCRIBER), (3, RowState.REJECTED)]) == 1
        assert spool.mark([(1, RowState.DELIVERED)]) == 0  # a duplicate PUBACK counts once
        pending = spool.pending(after=0, limit=10)
        assert [(r.seq, r.state) for r in pending] == [
            (2, RowState.NO_SUBSCRIBER), (3, RowState.REJECTED), (4, RowState.PENDING)]
        assert [r.seq for r in spool.pending(after=0, limit=10, skip={3})] == [2, 4]
        assert [r.seq for r in spool.pending(after=2, limit=1)] == [3]
        assert spool.depth == 3
        assert [r.seq for r in spool.since(0)] == [1, 2, 3, 4]
        assert [r.seq for r in spool.since(2)] == [3, 4]
        stats = spool.stats()
    assert stats.depth == 3 and stats.oldest_seq == 2 and stats.high_water == 4


def test_quota_evicts_delivered_rows_first_and_never_undelivered_ones(tmp_path: Path) -> None:
    """Over the quota, delivered rows go oldest first; when only undelivered rows are left, the commit fails."""
    with Spool(tmp_path, SpoolConfig()) as probe:
        row_size = len(probe.commit([_draft(0)])[0].to_json()) + ROW_OVERHEAD
    shutil_dir = tmp_path / "q"
    cfg = SpoolConfig(quota_bytes=row_size * 10 + row_size // 2)
    with Spool(shutil_dir, cfg) as spool:
        spool.commit([_draft(i) for i in range(10)])
        spool.mark([(s, RowState.DELIVERED) for s in range(1, 6)])
        spool.commit([_draft(i) for i in range(10, 13)])  # needs 3 rows of room: delivered 1..3 go
        assert [r.seq for r in spool.since(0)][:3] == [4, 5, 6]
        assert spool.depth == 8
        spool.mark([(s, RowState.DELIVERED) for s in (6, 7)])
        with pytest.raises(SpoolStorageError, match="quota"):
            spool.commit([_draft(i) for i in range(20, 26)])  # 6 rows: only 4 delivered rows could go
        assert [r.seq for r in spool.pending(after=0, limit=100)] == [8, 9, 10, 11, 12, 13]
        assert spool.problem is not None and "quota" in spool.problem
        spool.mark([(s, RowState.DELIVERED) for s in range(8, 14)])
        again = spool.commit([_draft(30)])  # room again: stored, the problem is gone
        assert spool.problem is None
    assert again[0].seq == 14


def test_retention_prunes_old_and_excess_delivered_rows_only(tmp_path: Path) -> None:
    """Delivered rows older than the retention window, or beyond its byte budget, go; undelivered stay."""
    clock = Clock()
    with Spool(tmp_path, SpoolConfig(retention=60), clock=clock) as spool:
        spool.commit([_draft(i) for i in range(4)])
        spool.mark([(1, RowState.DELIVERED), (2, RowState.DELIVERED)])
        clock.now += 30
        spool.commit([_draft(4)])
        spool.mark([(5, RowState.DELIVERED)])
        clock.now += 45
        spool.prune()
        assert [r.seq for r in spool.since(0)] == [3, 4, 5]
    with Spool(tmp_path, SpoolConfig(retention_bytes=0), clock=clock) as spool:
        spool.prune()
        assert [r.seq for r in spool.since(0)] == [3, 4]


def test_corrupt_spool_is_moved_aside_with_an_alarm_and_numbering_goes_on(tmp_path: Path) -> None:
    """A garbage spool file is renamed, an alarm raised, a fresh spool started above every number handed out."""
    with Spool(tmp_path, SpoolConfig()) as spool:
        spool.commit([_draft(i) for i in range(3)])
    db = tmp_path / "spool.db"
    for extra in ("spool.db-wal", "spool.db-shm"):
        (tmp_path / extra).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    alarms: list[tuple[str, str]] = []
    with Spool(tmp_path, SpoolConfig(), on_alarm=lambda kind, text: alarms.append((kind, text))) as spool:
        seq = spool.commit([_draft(9)])[0].seq
    assert len(alarms) == 1 and alarms[0][0] == "spool-corrupt" and "corrupt" in alarms[0][1]
    aside = list(tmp_path.glob("spool.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert seq > 3


def test_unusable_state_folder_fails_commits_and_recovers_when_it_is_fixed(tmp_path: Path) -> None:
    """A state 'folder' that is a file: every commit fails with the reason, no number is used, then it recovers."""
    state = tmp_path / "state"
    state.write_text("not a folder", encoding="utf-8")
    with Spool(state, SpoolConfig(), retry_storage=0.0) as spool:
        assert spool.problem is not None and str(state) in spool.problem
        with pytest.raises(SpoolStorageError):
            spool.commit([_draft(0)])
        unstored = spool.number_unstored(2)
        state.unlink()
        stored = spool.commit([_draft(1)])
        assert spool.problem is None
    assert unstored == [1, 2]
    assert stored[0].seq == 3  # numbers handed out while storage was away are not reused
    with sqlite3.connect(state / "spool.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_check_state_dir_reports_room_and_refuses_an_unusable_folder(tmp_path: Path) -> None:
    """check-config's state check: a writable folder is reported with its free space; a 'folder' that is a
    file is a StateFolderError naming the folder."""
    from daemon.spool import StateFolderError, check_state_dir

    line = check_state_dir(tmp_path / "new" / "state", SpoolConfig())
    assert str(tmp_path / "new" / "state") in line and "writable" in line and "MiB free" in line
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(StateFolderError) as err:
        check_state_dir(blocker, SpoolConfig())
    assert err.value.path == blocker
    with pytest.raises(StateFolderError, match="free"):
        check_state_dir(tmp_path, SpoolConfig(), min_free=1 << 62)


def test_check_config_names_a_read_only_state_folder(tmp_path: Path) -> None:
    """`ovedged check-config` on a state folder mounted read-only (own mount namespace): exit 1, one line
    naming the folder, no traceback."""
    import shutil
    import subprocess
    import sys

    from tests.configs import write_config

    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for this test")
    state = tmp_path / "state"
    state.mkdir()
    cfg = write_config(tmp_path, state={"dir": state})
    ovedged = Path(sys.executable).parent / "ovedged"
    script = f'mount --bind "{state}" "{state}" && mount -o remount,ro,bind "{state}" && exec "$@"'
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(ovedged),
                           "check-config", "--config", str(cfg)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # a StateError: the machine, not the config file
    errors = [line for line in done.stderr.splitlines() if line.startswith("ovedged: error:")]
    assert len(errors) == 1, done.stderr
    assert str(state) in errors[0] and "not writable" in errors[0]
    assert "Traceback" not in done.stderr
