"""Frames kept for re-labelling, end to end: a real ``ovedged run`` (demo IR, synthetic camera, real
Mosquitto) keeps the frames it was unsure about, and ``ovedged export-review`` packs them as a CVAT
for images 1.1 task. No CVAT runs here: the task is checked against the format's documentation
(docs.cvat.ai, "XML annotation format") and against the frames the camera shot."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import cv2
import numpy as np

from camera.synthetic import DefectGenerator
from tools.mosquitto import Mosquitto

BIN = Path(sys.executable).parent
FRAMES = 12
SEED = 21
LABELS = ["ok", "scratch", "spot", "crack"]  # the demo model's


def _ovedged(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ovedged"), *args], capture_output=True, text=True, timeout=300, check=False)


def test_uncertain_frames_are_kept_and_exported_as_a_cvat_task(demo_store: Path, broker: Mosquitto, tmp_path: Path,
                                                               write_config: Callable[..., Path]) -> None:
    """With min_score 0.75 and uncertain_margin 0.5 every frame is "unsure" (a 4-class top-1 score lies
    in (0.25, 1]): all 12 are kept, pixel for pixel. export-review writes a zip with annotations.xml
    (version 1.1, the task's size and the model's labels in <meta>, one <image> per frame with its
    name, width and height and the classifier's label as an auto <tag>) and every image under
    images/<camera>/; --camera narrows it; what cannot be done is one line naming the fix."""
    config = write_config(
        station={"name": "st-review"},
        model={"store": demo_store, "cache": False},
        cameras=[{"id": "cam0", "mode": "every-frame",
                  "source": {"type": "synthetic", "seed": SEED, "fps": 0, "count": FRAMES}}],
        rules={"min_score": 0.75},
        evidence={"enabled": True, "uncertain_margin": 0.5},
        mqtt={"port": broker.port, "connect_timeout": 5},
        state={"dir": tmp_path / "state"},
    )
    run = _ovedged("run", "--config", str(config), "--until-sources-end")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr

    out = tmp_path / "task.zip"
    done = _ovedged("export-review", "--config", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{out}: {FRAMES} frame(s) kept for re-labelling, as a CVAT for images 1.1 task"

    gen = DefectGenerator(SEED, 256, 256, 0.5)  # the synthetic source's defaults
    with zipfile.ZipFile(out) as task:
        root = ET.fromstring(task.read("annotations.xml"))
        images = sorted(n for n in task.namelist() if n.startswith("images/"))
        assert len(images) == FRAMES and all(n.startswith("images/cam0/") and n.endswith(".png") for n in images)
        for name in images:
            index = int(name.rsplit("-f", 1)[1].removesuffix(".png"))
            shot = cv2.imdecode(np.frombuffer(task.read(name), np.uint8), cv2.IMREAD_COLOR)
            assert np.array_equal(shot, gen.render(index)[0]), name  # as the camera shot it
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    meta = root.find("meta/task")
    assert meta is not None and meta.findtext("size") == str(FRAMES) and meta.findtext("mode") == "annotation"
    assert meta.findtext("name") == "st-review review"
    assert [label.findtext("name") for label in meta.iterfind("labels/label")] == LABELS
    entries = root.findall("image")
    assert [e.get("id") for e in entries] == [str(i) for i in range(FRAMES)]
    assert sorted(f"images/{e.get('name')}" for e in entries) == images
    for e in entries:
        assert (e.get("width"), e.get("height")) == ("256", "256")
        tags = e.findall("tag")
        assert len(tags) == 1 and len(e) == 1, ET.tostring(e)  # a classifier: its top label, nothing else
        assert tags[0].get("label") in LABELS and tags[0].get("source") == "auto"

    # What cannot be done: one line each, naming the fix.
    again = _ovedged("export-review", "--config", str(config), "--out", str(out))
    assert again.returncode != 0
    assert again.stderr.splitlines() == [
        f"ovedged: error: export-review: {out} exists; pass --force to replace it, or another --out"]
    other = _ovedged("export-review", "--config", str(config), "--out", str(out), "--camera", "cam9")
    assert other.stderr.splitlines() == [
        f"ovedged: error: export-review: --camera cam9 is not in {config}; cameras there: cam0"]
    review_dir = tmp_path / "state" / "evidence" / "cam0" / "review"
    (review_dir / "20260101T000000.000000Z-f99.json").write_text("{not json", encoding="utf-8")  # a torn file
    forced = _ovedged("export-review", "--config", str(config), "--out", str(out), "--force", "--camera", "cam0")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == (f"{out}: {FRAMES} frame(s) kept for re-labelling, as a CVAT for images 1.1 "
                                     "task (1 left out: image expired or unreadable)")
    later = _ovedged("export-review", "--config", str(config), "--out", str(tmp_path / "none.zip"),
                     "--since", "2999-01-01T00:00:00Z")
    assert later.returncode != 0 and not (tmp_path / "none.zip").exists()
    assert later.stderr.startswith("ovedged: error: export-review: no frames are kept for re-labelling under ")
    assert later.stderr.rstrip().endswith("set [evidence] enabled = true and uncertain_margin (e.g. 0.1), "
                                          "and let the line run")
