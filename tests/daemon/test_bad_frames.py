"""End to end: frames a camera cannot deliver usefully become named ERROR results, once each, and the run ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from camera.synthetic import DefectGenerator
from daemon.result import ResultRecord, Verdict
from tests.configs import write_config
from tests.waiting import receive_all
from tools.subscriber import Subscriber

BIN = Path(sys.executable).parent


def test_folder_with_unreadable_and_odd_images_ends_with_one_result_per_file(
    demo_store: Path, broker, tmp_path: Path, repo_root: Path
) -> None:
    """Garbage, empty, 1x1 and 1000x37 files are ERROR results naming why; grey and 16-bit are judged; no repeats.

    This was an endless re-publish loop on main: the folder reopened from its first image every
    second and ``--until-sources-end`` never ended.
    """
    folder = tmp_path / "parts"
    folder.mkdir()
    gen = DefectGenerator(11, 320, 240, 0.5)
    good = [gen.render(i)[0] for i in range(3)]
    cv2.imwrite(str(folder / "a_good.png"), good[0])
    (folder / "b_truncated.jpg").write_bytes(cv2.imencode(".jpg", good[1])[1].tobytes()[:200])
    (folder / "c_empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "d_tiny.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(folder / "e_strip.png"), np.zeros((37, 1000, 3), np.uint8))
    cv2.imwrite(str(folder / "f_grey.png"), cv2.cvtColor(good[1], cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "g_deep.png"), good[2].astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "h_good.png"), good[2])
    cfg = write_config(
        tmp_path,
        station={"name": "st-bad", "topic_prefix": "ovt"},
        model={"store": demo_store, "name": "demo", "cache_dir": tmp_path / "cache"},
        cameras=[{"id": "folder", "mode": "every-frame", "source": {"type": "folder", "path": folder}}],
        mqtt={"port": broker.port, "connect_timeout": 5},
        state={"dir": tmp_path / "state"},
    )
    with Subscriber(broker.port, ["ovt/st-bad/+/result"]) as sub:
        done = subprocess.run([str(BIN / "ovedged"), "run", "--config", str(cfg), "--until-sources-end"],
                              capture_output=True, text=True, cwd=repo_root, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        results = receive_all(sub, 8, ResultRecord.model_validate_json)
    by_ref = {r.frame.ref: r for r in results}
    assert len(results) == 8 and len(by_ref) == 8, [r.frame.ref for r in results]  # each file exactly once
    errors = {ref: r.error or "" for ref, r in by_ref.items() if r.verdict is Verdict.ERROR}
    assert set(errors) == {"b_truncated.jpg", "c_empty.png", "d_tiny.png", "e_strip.png"}, errors
    assert "b_truncated.jpg is not a readable image" in errors["b_truncated.jpg"]
    assert "c_empty.png is not a readable image" in errors["c_empty.png"]
    assert "smaller than the minimum" in errors["d_tiny.png"]
    assert "aspect ratio" in errors["e_strip.png"]
    assert (by_ref["e_strip.png"].frame.width, by_ref["e_strip.png"].frame.height) == (1000, 37)
    for ref in ("a_good.png", "f_grey.png", "g_deep.png", "h_good.png"):
        assert by_ref[ref].verdict in (Verdict.OK, Verdict.NG), by_ref[ref].error
        assert (by_ref[ref].frame.width, by_ref[ref].frame.height) == (320, 240)
    assert "grey -> BGR" in done.stderr and "16-bit -> 8-bit" in done.stderr  # said once, not silently
    assert "Traceback" not in done.stderr
