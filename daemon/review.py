"""Frames kept for re-labelling, as a CVAT task: ``ovedged export-review``.

The evidence writer keeps a frame the model was unsure about (``[evidence] uncertain_margin``) as
``<state>/evidence/<camera>/review/<time>-f<index>.png``, exactly as shot, with a JSON beside it:
what the model found, as CVAT shapes (:func:`daemon.cvat.cvat_shapes`, the mapping CVAT's
auto-annotation endpoint uses), the model and its labels. :func:`write_cvat_task` packs them in
CVAT's "CVAT for images 1.1" layout (docs.cvat.ai, "XML annotation format"):

    task.zip/
    ├── annotations.xml            <image> per frame, the model's findings as source="auto" shapes
    └── images/<camera>/<time>-f<index>.png

An annotator creates a task from the images (or imports the zip as a dataset) and corrects the
pre-annotations; the corrected task exported from CVAT is the next training set. Boxes are
``<box>``, regions ``<polygon>`` (their outline, or their box's corners), whole-frame findings (a
classifier's label) ``<tag>``. A JSON whose PNG is gone (expired meanwhile) is left out, said in
the summary.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from daemon.evidence import FOLDER, REVIEW, REVIEW_SCHEMA
from ovedge.errors import OvedgeError

__all__ = ["Kept", "NothingKeptError", "ReviewExportError", "TaskExistsError", "TaskWriteError",
           "UnknownCamerasError", "collect", "write_cvat_task"]


class ReviewExportError(OvedgeError):
    """``export-review`` cannot do what was asked; the message says what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"export-review: {problem}; {fix}")


class NothingKeptError(ReviewExportError):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        super().__init__(f"no frames are kept for re-labelling under {state_dir / FOLDER}/*/{REVIEW}/",
                         "set [evidence] enabled = true and uncertain_margin (e.g. 0.1), and let the line run")


class TaskExistsError(ReviewExportError):
    def __init__(self, out: Path) -> None:
        self.out = out
        super().__init__(f"{out} exists", "pass --force to replace it, or another --out")


class TaskWriteError(ReviewExportError):
    def __init__(self, out: Path, reason: str) -> None:
        self.out = out
        self.reason = reason
        super().__init__(f"cannot write {out} ({reason})", "choose a writable --out with room for the images")


class UnknownCamerasError(ReviewExportError):
    def __init__(self, unknown: Sequence[str], known: Sequence[str], config: Path) -> None:
        self.unknown = tuple(unknown)
        self.known = tuple(known)
        super().__init__(f"--camera {', '.join(unknown)} is not in {config}", f"cameras there: {', '.join(known)}")


@dataclass(frozen=True, slots=True)
class Kept:
    """One frame kept for re-labelling: its image and what the model found on it."""

    image: Path
    camera: str
    time: str  # ISO 8601 UTC, as in the result
    width: int
    height: int
    labels: tuple[str, ...]
    shapes: tuple[dict[str, Any], ...]


def collect(state_dir: Path, *, cameras: Sequence[str] = (), since: datetime | None = None) -> tuple[list[Kept], int]:
    """The frames kept under ``state_dir`` (oldest first), of ``cameras`` (all when empty), from
    ``since`` on; and how many JSONs were left out (their image expired, or they are unreadable)."""
    kept: list[Kept] = []
    skipped = 0
    for sidecar in sorted((state_dir / FOLDER).glob(f"*/{REVIEW}/*.json")):
        camera = sidecar.parent.parent.name
        if cameras and camera not in cameras:
            continue
        try:
            one, when = _read(sidecar, camera)
        except (OSError, KeyError, TypeError, ValueError):
            skipped += 1
            continue
        if since is None or when >= since:
            kept.append(one)
    kept.sort(key=lambda k: (k.time, k.camera, k.image.name))
    return kept, skipped


_POINTS = {"tag": lambda n: n == 0, "rectangle": lambda n: n == 4, "polygon": lambda n: n >= 6 and n % 2 == 0}


def _read(sidecar: Path, camera: str) -> tuple[Kept, datetime]:
    """One review JSON and its image; ValueError (or KeyError/TypeError/OSError) when either is unusable."""
    body = json.loads(sidecar.read_text(encoding="utf-8"))
    image = sidecar.with_suffix(".png")
    if body["schema"] != REVIEW_SCHEMA or not image.is_file():
        raise ValueError(sidecar)
    shapes = tuple(body["shapes"])
    for shape in shapes:
        if not _POINTS[shape["type"]](len(shape["points"])):
            raise ValueError(shape)
    taken = str(body["time"])
    kept = Kept(image, camera, taken, int(body["frame"]["width"]), int(body["frame"]["height"]),
                tuple(body["labels"]), shapes)
    return kept, datetime.fromisoformat(taken.replace("Z", "+00:00"))


def _labels(kept: Iterable[Kept]) -> list[str]:
    seen: dict[str, None] = {}
    for k in kept:
        for label in k.labels:
            seen.setdefault(label, None)
        for shape in k.shapes:  # e.g. "anomaly", which is not in an anomaly model's label list
            seen.setdefault(shape["label"], None)
    return list(seen)


def annotations_xml(kept: Sequence[Kept], *, name: str) -> bytes:
    """``annotations.xml`` in CVAT for images 1.1 for ``kept`` (image names relative to images/)."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "name").text = name
    ET.SubElement(task, "size").text = str(len(kept))
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for label in _labels(kept):
        node = ET.SubElement(labels, "label")
        ET.SubElement(node, "name").text = label
        ET.SubElement(node, "attributes")
    for index, k in enumerate(kept):
        image = ET.SubElement(root, "image", id=str(index), name=f"{k.camera}/{k.image.name}",
                              width=str(k.width), height=str(k.height))
        for shape in k.shapes:
            _shape(image, shape)
    ET.indent(root)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n").encode()


def _shape(image: ET.Element, shape: dict[str, Any]) -> None:
    common = {"label": str(shape["label"]), "source": "auto"}
    points = [float(v) for v in shape["points"]]
    if shape["type"] == "tag":
        ET.SubElement(image, "tag", common)
    elif shape["type"] == "rectangle":
        xtl, ytl, xbr, ybr = points
        ET.SubElement(image, "box", {**common, "occluded": "0", "z_order": "0", "xtl": f"{xtl:.2f}",
                                     "ytl": f"{ytl:.2f}", "xbr": f"{xbr:.2f}", "ybr": f"{ybr:.2f}"})
    else:  # a polygon (collect checked the type and the points)
        pairs = ";".join(f"{x:.2f},{y:.2f}" for x, y in zip(points[0::2], points[1::2], strict=True))
        ET.SubElement(image, "polygon", {**common, "occluded": "0", "z_order": "0", "points": pairs})


def write_cvat_task(kept: Sequence[Kept], out: Path, *, name: str, force: bool = False) -> int:
    """``out`` (a zip) holding ``images/`` and ``annotations.xml`` for the images it holds; written
    under a temporary name and renamed, so a half-written task never lies there. An image that
    expired since :func:`collect` (the daemon keeps running) is left out of both. Returns the number
    of images packed; with none, nothing is written and 0 is returned."""
    if out.exists() and not force:
        raise TaskExistsError(out)
    tmp = out.with_name(f".{out.name}.tmp")
    packed: list[Kept] = []
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for k in kept:
                try:
                    data = k.image.read_bytes()
                except FileNotFoundError:
                    continue
                zf.writestr(f"images/{k.camera}/{k.image.name}", data)
                packed.append(k)
            zf.writestr("annotations.xml", annotations_xml(packed, name=name), compress_type=zipfile.ZIP_DEFLATED)
        if not packed:
            tmp.unlink()
            return 0
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TaskWriteError(out, str(exc.strerror or exc)) from exc
    return len(packed)
