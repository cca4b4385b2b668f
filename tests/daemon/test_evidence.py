"""NG evidence images: which frames are saved, the drop policy, retention, the shared spool quota."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from daemon.config import EvidenceConfig, SpoolConfig
from daemon.evidence import EvidenceStore, EvidenceWriter, Review
from daemon.result import DefectData, Result, Verdict
from daemon.spool import ROW_OVERHEAD, Spool
from ovedge.layouts import Detection


def _draft(index: int, verdict: Verdict, camera: str = "cam0") -> Result:
    defects = (DefectData(label="scratch", score=0.9, box=(10, 10, 40, 30)),) if verdict is Verdict.NG else ()
    return Result(
        seq=0, station="s1", camera=camera, time=1_767_225_600.0 + index % 60 + index / 1e6,
        frame_index=index, frame_ref=None, captured=1_767_225_600.0, width=64, height=48,
        model_name="demo", model_version=1, device="CPU", verdict=verdict, defects=defects,
        inference_ms=1.0, capture_to_result_ms=2.0,
    )


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _wait(predicate: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds  # a hang guard, not a speed requirement
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_ng_frames_are_saved_with_the_defects_drawn_on_a_copy(tmp_path: Path) -> None:
    """An NG result names a JPEG under <state>/evidence/<camera>/ that exists once written, shows the drawn
    box (it differs from the frame), and the frame handed in is left untouched; OK frames are not saved."""
    cfg = EvidenceConfig(enabled=True, quality=95)
    image = _image()
    before = image.copy()
    with EvidenceWriter(cfg, EvidenceStore(tmp_path, cfg)) as writer:
        ng = writer.offer(_draft(1, Verdict.NG), image)
        ok = writer.offer(_draft(2, Verdict.OK), image)
        error = writer.offer(_draft(3, Verdict.ERROR), image)
    assert ok.evidence is None and error.evidence is None
    assert ng.evidence is not None and ng.evidence.startswith("evidence/cam0/") and ng.evidence.endswith("-f1.jpg")
    saved = cv2.imread(str(tmp_path / ng.evidence))
    assert saved is not None and saved.shape == image.shape
    assert np.array_equal(image, before)
    box_edge = saved[10, 10:40].astype(int)
    assert np.abs(box_edge - image[10, 10:40].astype(int)).mean() > 40  # the box is drawn there
    assert writer.written == 1


def test_every_nth_ok_frame_is_sampled_per_camera(tmp_path: Path) -> None:
    """ok_every = 3 saves OK frames 3 and 6 of each camera, counted per camera."""
    cfg = EvidenceConfig(enabled=True, ok_every=3)
    with EvidenceWriter(cfg, EvidenceStore(tmp_path, cfg)) as writer:
        named = {cam: [i for i in range(1, 7) if writer.offer(_draft(i, Verdict.OK, cam), _image()).evidence]
                 for cam in ("cam0", "cam1")}
    assert named == {"cam0": [3, 6], "cam1": [3, 6]}
    assert len(list((tmp_path / "evidence").rglob("*.jpg"))) == 4


def test_a_full_queue_drops_the_new_image_counts_it_and_never_waits(tmp_path: Path) -> None:
    """Drop policy: with the writer not running and the queue (2) full, a new NG image is dropped and
    counted, and its result says evidence null; the two queued ones are written once the writer runs."""
    cfg = EvidenceConfig(enabled=True, queue=2)
    writer = EvidenceWriter(cfg, EvidenceStore(tmp_path, cfg))
    drafts = [writer.offer(_draft(i, Verdict.NG), _image(i)) for i in range(4)]
    assert [d.evidence is not None for d in drafts] == [True, True, False, False]
    assert writer.dropped == 2
    with writer:
        pass
    assert writer.written == 2
    assert all((tmp_path / d.evidence).is_file() for d in drafts[:2] if d.evidence)


def test_retention_keeps_the_newest_within_count_and_bytes(tmp_path: Path) -> None:
    """max_files = 3: after five NG images only the three newest files are left, and the store counts them."""
    cfg = EvidenceConfig(enabled=True, max_files=3)
    store = EvidenceStore(tmp_path, cfg)
    with EvidenceWriter(cfg, store) as writer:
        names = [writer.offer(_draft(i, Verdict.NG), _image(i)).evidence for i in range(5)]
    left = sorted(p.name for p in (tmp_path / "evidence" / "cam0").glob("*.jpg"))
    assert left == sorted(Path(n).name for n in names[2:] if n)
    assert len(store) == 3 and store.expired == 2
    assert store.nbytes == sum(p.stat().st_size for p in (tmp_path / "evidence").rglob("*.jpg"))


def test_files_left_by_an_earlier_run_count_and_expire_by_age(tmp_path: Path) -> None:
    """At start the writer takes stock of existing files; one older than max_age is removed."""
    old = tmp_path / "evidence" / "cam0" / "old.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x" * 100)
    fresh = old.with_name("fresh.jpg")
    fresh.write_bytes(b"y" * 50)
    past = time.time() - 3600
    os.utime(old, (past, past))
    cfg = EvidenceConfig(enabled=True, max_age=600)
    store = EvidenceStore(tmp_path, cfg)
    with EvidenceWriter(cfg, store):
        pass
    assert not old.exists() and fresh.exists()
    assert store.nbytes == 50


def test_evidence_goes_first_when_results_need_the_quota(tmp_path: Path) -> None:
    """Shared quota: evidence files count against [spool] quota_bytes; a batch of results that does not fit
    evicts the oldest evidence files (not the results), and the results are stored."""
    spool_cfg = SpoolConfig(quota_bytes=60_000)
    cfg = EvidenceConfig(enabled=True, quality=100)
    store = EvidenceStore(tmp_path, cfg)
    with Spool(tmp_path, spool_cfg) as spool:
        spool.evidence = store
        with EvidenceWriter(cfg, store, space=spool) as writer:
            for i in range(4):
                writer.offer(_draft(i, Verdict.NG), _image(i))
        assert writer.written == 4
        before = store.nbytes
        assert before > 0
        need = spool_cfg.quota_bytes - before + 5_000  # results that only fit once evidence goes
        drafts = [_draft(100 + i, Verdict.OK) for i in range(need // 500 + 1)]
        records = spool.commit(drafts)
        assert len(records) == len(drafts)
        assert store.evicted >= 1 and store.nbytes < before
        assert spool.stored_bytes + store.nbytes <= spool_cfg.quota_bytes


def test_an_image_is_not_written_when_results_fill_the_quota(tmp_path: Path) -> None:
    """Verdicts never go for evidence: with the quota taken by undelivered results the writer skips the
    image (counted) instead of pushing results out."""
    spool_cfg = SpoolConfig(quota_bytes=20_000)
    cfg = EvidenceConfig(enabled=True)
    store = EvidenceStore(tmp_path, cfg)
    with Spool(tmp_path, spool_cfg) as spool:
        spool.evidence = store
        row = len(_draft(0, Verdict.OK).to_json()) + ROW_OVERHEAD
        fits = 19_000 // row  # ~ 19 kB of undelivered results: no room left for a JPEG
        spool.commit([_draft(i, Verdict.OK) for i in range(fits)])
        with EvidenceWriter(cfg, store, space=spool) as writer:
            writer.offer(_draft(999, Verdict.NG), _image())
        assert writer.skipped == 1 and writer.written == 0
        assert spool.depth == fits


def _review(*found: Detection) -> Review:
    return Review(found, ("ok", "scratch"), "demo v1")


def test_an_uncertain_frame_is_kept_unmarked_with_what_the_model_found(tmp_path: Path) -> None:
    """Offered with a Review, a frame is kept as shot (PNG, pixel for pixel) under
    evidence/<camera>/review/ with a JSON of every finding as CVAT shapes (best first), the model and
    its labels; the result is unchanged (an OK one names no evidence; an NG one still gets its drawn
    JPEG). Retention counts an image and its JSON as one file and removes both; a restart counts them."""
    cfg = EvidenceConfig(enabled=True)
    ok_frame, ng_frame = _image(1), _image(2)
    with EvidenceWriter(cfg, EvidenceStore(tmp_path, cfg)) as writer:
        ok = writer.offer(_draft(1, Verdict.OK), ok_frame,
                          _review(Detection("ok", 0.55, None), Detection("scratch", 0.45, (4, 5, 20, 30))))
        ng = writer.offer(_draft(2, Verdict.NG), ng_frame, _review(Detection("scratch", 0.52, (10, 10, 40, 30))))
    assert ok == _draft(1, Verdict.OK)  # nothing in the result changes
    assert ng.evidence is not None and ng.evidence.endswith("-f2.jpg")
    reviews = sorted((tmp_path / "evidence" / "cam0" / "review").glob("*.png"))
    assert [p.name.split("-f")[-1] for p in reviews] == ["1.png", "2.png"]
    assert np.array_equal(cv2.imread(str(reviews[0])), ok_frame)  # unmarked and lossless
    body = json.loads(reviews[0].with_suffix(".json").read_text())
    assert body["schema"] == "ovedge.review/1" and body["camera"] == "cam0" and body["frame"]["index"] == 1
    assert body["model"] == "demo v1" and body["labels"] == ["ok", "scratch"] and body["verdict"] == "OK"
    assert body["shapes"] == [{"confidence": 0.55, "label": "ok", "points": [], "type": "tag"},
                              {"confidence": 0.45, "label": "scratch", "points": [4, 5, 20, 30], "type": "rectangle"}]
    assert writer.reviews == 2 and writer.written == 3

    # Retention at the next start with max_files = 2: the oldest file (the first review) goes, its JSON too.
    past = time.time() - 60
    os.utime(reviews[0], (past, past))
    store = EvidenceStore(tmp_path, EvidenceConfig(enabled=True, max_files=2))
    store.scan()
    on_disk = sum(p.stat().st_size for p in (tmp_path / "evidence").rglob("*") if p.is_file())
    assert len(store) == 3 and store.nbytes == on_disk  # an image and its JSON count as one file
    assert store.enforce() == 1
    assert not reviews[0].exists() and not reviews[0].with_suffix(".json").exists()
    assert reviews[1].exists() and reviews[1].with_suffix(".json").exists()
    assert store.nbytes == sum(p.stat().st_size for p in (tmp_path / "evidence").rglob("*") if p.is_file())
