"""CVAT's auto-annotation contract, shared by ``POST /cvat`` and the generated Nuclio function.

CVAT sends a detector ``{"image": "<base64>", "threshold": <float>}`` and expects a JSON list of
``{"confidence", "label", "points", "type"}``. Our detections map onto it by what they are:

* a box from a detector (``box`` set, no ``area``) -> ``"rectangle"``, points ``[xtl, ytl, xbr, ybr]``;
* a region from a segmentation or anomaly map (``box`` and ``area`` set) -> ``"polygon"``, points
  ``[x0, y0, x1, y1, ...]``: the region's outer outline (decoded with
  :attr:`LoadedModel.annotate`, the same decoder with outlines on), or its box's four corners when
  the region is too thin to have an outline;
* a whole-frame finding (``box`` is None: classification, whole-image anomaly) -> ``"tag"``, no points.

Only detections with ``score >= threshold`` are returned; labels are the model's labels (plus
``"anomaly"`` for anomaly models). :class:`CvatDetector` is the Nuclio side: it loads an IR from a
model folder once and answers through exactly the same decode -> infer -> post-process path as
the daemon.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from daemon.adhoc import RequestCache, decode_image, infer_image
from daemon.engine import LoadedModel
from ovedge.errors import OvedgeError
from ovedge.irmeta import IRMeta
from ovedge.layouts import Detection

__all__ = ["CvatDetector", "CvatRequest", "CvatRequestError", "cvat_shapes", "decode_base64_image", "label_spec"]

DEFAULT_THRESHOLD = 0.5


class CvatRequest(BaseModel):
    """The body CVAT posts to a detector function."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # CVAT may send more keys; we need these

    image: str = Field(description="the image file's bytes, base64-encoded")
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0, description="smallest confidence returned")


class CvatRequestError(OvedgeError):
    """The ``image`` field is not base64."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"field 'image' is not valid base64 ({detail})")


def decode_base64_image(text: str, *, max_pixels: int) -> Any:
    """The ``image`` field -> a BGR frame, or :class:`CvatRequestError` / :class:`daemon.adhoc.BadImageError`."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CvatRequestError(str(exc)) from exc
    return decode_image(data, max_pixels=max_pixels, what="field 'image'")


def cvat_shapes(detections: Sequence[Detection], threshold: float) -> list[dict[str, Any]]:
    """Our detections as CVAT shapes, best first, those below ``threshold`` left out."""
    shapes: list[dict[str, Any]] = []
    for d in sorted(detections, key=lambda d: -d.score):
        score = float(d.score)
        if not math.isfinite(score) or score < threshold:
            continue
        confidence = round(min(1.0, max(0.0, score)), 6)
        if d.box is None:
            shapes.append({"confidence": confidence, "label": d.label, "points": [], "type": "tag"})
        elif d.area is None:
            x0, y0, x1, y1 = (int(v) for v in d.box)
            shapes.append({"confidence": confidence, "label": d.label, "points": [x0, y0, x1, y1],
                           "type": "rectangle"})
        else:
            x0, y0, x1, y1 = (int(v) for v in d.box)
            points = list(d.outline) if d.outline else [x0, y0, x1, y0, x1, y1, x0, y1]
            shapes.append({"confidence": confidence, "label": d.label, "points": points, "type": "polygon"})
    return shapes


def label_spec(meta: IRMeta) -> list[dict[str, Any]]:
    """The ``spec`` CVAT reads from ``function.yaml``: every label the function can return, with ids."""
    task = meta.task.value
    if task == "anomaly":
        names: list[str] = ["anomaly"]
    elif task == "segmentation":
        ok = set(meta.ok_labels or meta.labels[:1])
        names = [n for n in meta.labels if n not in ok]  # background produces no region
    else:
        names = list(meta.labels)
    kind = {"classification": "tag", "detection": "rectangle", "segmentation": "polygon", "anomaly": "polygon"}[task]
    return [{"id": i, "name": n, "type": kind} for i, n in enumerate(names)]


class CvatDetector:
    """One IR loaded once; :meth:`annotate` answers a CVAT request (the Nuclio function's body)."""

    def __init__(self, model: LoadedModel, *, max_pixels: int = 50_000_000) -> None:
        self.model = model
        self.max_pixels = max_pixels
        self._requests = RequestCache()

    @classmethod
    def load(cls, model_dir: Path, *, device: str = "CPU") -> CvatDetector:
        """Load the newest version of the one model under ``model_dir`` (a model store)."""
        import openvino as ov

        from daemon.config import ModelConfig
        from ovedge.store import ModelStore

        store = ModelStore(model_dir)
        names = store.names()
        if len(names) != 1:
            raise CvatModelFolderError(model_dir, names)
        version = store.resolve(names[0], "latest")
        version.verify_files()
        cfg = ModelConfig(name=names[0], device=device, num_requests=1, cache=False)
        return cls(LoadedModel.load(ov.Core(), version, cfg, cache_dir=None))

    def annotate(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """``{"image": base64, "threshold": float}`` -> the shapes (see :func:`cvat_shapes`)."""
        request = CvatRequest.model_validate(body)
        image = decode_base64_image(request.image, max_pixels=self.max_pixels)
        with self._requests.request(self.model) as infer_request:
            inferred = infer_image(self.model, infer_request, image, outlines=True)
        return cvat_shapes(inferred.detections, request.threshold)


class CvatModelFolderError(OvedgeError):
    """The function's model folder does not hold exactly one model."""

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.folder = folder
        self.names = list(names)
        found = ", ".join(self.names) or "none"
        super().__init__(f"{folder} must hold exactly one model (<name>/<version>/model.xml), found: {found}")
