"""One image in, one answer out: ad-hoc inspection beside the cameras (HTTP ``/infer``, ``/cvat``, Nuclio).

The pieces every ad-hoc caller shares, free of any web framework:

* :func:`decode_image`: bytes from a client -> a u8 BGR frame, or an :class:`BadImageError`
  naming what is wrong (empty, not an image, truncated or corrupt, too many pixels). The header is
  read first, so a decompression bomb is refused before a pixel is decoded.
* :class:`RequestCache`: infer requests of the *running* compiled model, created on first use and
  reused; after a hot swap the next call uses the new model and the old requests are let go.
* :func:`infer_image`: one synchronous inference (OpenVINO releases the GIL) and the model's own
  post-processor, so an ad-hoc answer is decoded exactly like a camera frame.
* :func:`adhoc_record`: the verdict under the configured rules as a :class:`ResultRecord` with
  ``camera = "http"`` and ``seq = 0``: an ad-hoc result is not a line result, it is never
  published, spooled or counted in the station's sequence.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from daemon.decision import Decider
from daemon.engine import LoadedModel
from daemon.result import DefectOut, FrameOut, ModelOut, ResultRecord, TimingsOut, Verdict, utc_iso
from ovedge.errors import OvedgeError
from ovedge.layouts import Detection

__all__ = [
    "ADHOC_CAMERA",
    "FORMATS",
    "AdhocModel",
    "BadImageError",
    "RequestCache",
    "adhoc_record",
    "decode_image",
    "infer_image",
]

ADHOC_CAMERA = "http"
# Formats we decode; anything else is "not an image we accept" (a smaller attack surface than all of Pillow).
FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "PPM")

Problem = Literal["empty", "not_image", "corrupt", "too_many_pixels"]
BgrImage = npt.NDArray[np.uint8]


class BadImageError(OvedgeError):
    """An uploaded image cannot be inspected; ``problem`` says why, the message says what to do."""

    def __init__(self, problem: Problem, what: str, detail: str = "") -> None:
        self.problem = problem
        self.what = what
        self.detail = detail
        text = {
            "empty": f"{what} is empty (0 bytes): send the image's bytes",
            "not_image": f"{what} is not an image in a format we read ({', '.join(FORMATS)})",
            "corrupt": f"{what} is truncated or corrupt and cannot be decoded",
            "too_many_pixels": f"{what} is too large to decode",
        }[problem]
        super().__init__(f"{text}{f' ({detail})' if detail else ''}")


def decode_image(data: bytes, *, max_pixels: int, what: str = "the upload") -> BgrImage:
    """Decode ``data`` into a C-contiguous ``[H, W, 3]`` u8 BGR frame (what cameras deliver).

    Refuses, each with its own :class:`BadImageError`: zero bytes; bytes that no accepted decoder
    recognises; more than ``max_pixels`` pixels (checked on the header, before decoding); data
    that ends early or does not decode. Only the first frame of a multi-frame file is used; EXIF
    orientation is not applied (pixels are inspected as stored).
    """
    if not data:
        raise BadImageError("empty", what)
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)  # the header only
    except UnidentifiedImageError as exc:
        raise BadImageError("not_image", what) from exc
    except Image.DecompressionBombError as exc:
        raise BadImageError("too_many_pixels", what, str(exc).split(",")[0]) from exc
    except Exception as exc:
        raise BadImageError("corrupt", what, _short(exc)) from exc
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise BadImageError("too_many_pixels", what, f"{width}x{height} pixels, the limit is {max_pixels}")
        try:
            img.load()
            rgb = img.convert("RGB")
        except Exception as exc:  # any decoder failure on client data is the client's problem
            raise BadImageError("corrupt", what, _short(exc)) from exc
    return np.asarray(cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR), dtype=np.uint8)  # fresh, C-contiguous


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class AdhocModel:
    """The running model and the rules ad-hoc images are judged by (``[rules]``, the defaults)."""

    model: LoadedModel
    decider: Decider


class RequestCache:
    """Idle infer requests of the current compiled model, one taken per call and given back.

    Callers bound their own concurrency; this only avoids creating a request per image. When the
    model changes (hot swap), requests of the old one are dropped as they come back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiled: Any = None
        self._idle: list[Any] = []

    @contextmanager
    def request(self, model: LoadedModel) -> Iterator[Any]:
        compiled = model.compiled
        with self._lock:
            if compiled is not self._compiled:
                self._compiled, self._idle = compiled, []
            request = self._idle.pop() if self._idle else None
        if request is None:
            request = compiled.create_infer_request()
        try:
            yield request
        finally:
            with self._lock:
                if compiled is self._compiled:
                    self._idle.append(request)


@dataclass(frozen=True, slots=True)
class Inferred:
    detections: list[Detection]
    latency_ms: float


def infer_image(model: LoadedModel, request: Any, image: BgrImage, *, outlines: bool = False) -> Inferred:
    """Infer one BGR frame on ``request`` (of ``model.compiled``) and post-process it like a camera frame.

    ``outlines``: decode with :attr:`LoadedModel.annotate`, the same decoder whose regions also
    carry their outlines (for annotation).
    """
    request.infer({0: image[np.newaxis]}, share_inputs=True)
    outputs = [np.array(t.data, copy=True) for t in request.output_tensors]
    decode = model.annotate if outlines else model.postprocess
    return Inferred(decode(outputs, (int(image.shape[0]), int(image.shape[1]))), float(request.latency))


def adhoc_record(
    adhoc: AdhocModel,
    inferred: Inferred,
    image: BgrImage,
    *,
    station: str,
    ref: str | None,
    received: float,
    received_monotonic: float,
) -> ResultRecord:
    """The :class:`ResultRecord` of an ad-hoc inspection (``camera = "http"``, ``seq = 0``)."""
    verdict, counted = adhoc.decider.decide(inferred.detections)
    m = adhoc.model
    h, w = image.shape[:2]
    return ResultRecord(
        seq=0,
        station=station,
        camera=ADHOC_CAMERA,
        time=utc_iso(time.time()),
        frame=FrameOut(index=0, ref=ref, captured=utc_iso(received), width=w, height=h),
        model=ModelOut(name=m.name, version=m.version.version, device=m.device.device),
        verdict=Verdict(verdict),
        defects=tuple(_defect(d) for d in counted),
        timings=TimingsOut(
            inference_ms=round(inferred.latency_ms, 3),
            capture_to_result_ms=round((time.monotonic() - received_monotonic) * 1000.0, 3),
        ),
    )


def _defect(d: Detection) -> DefectOut:
    return DefectOut(label=d.label, score=min(1.0, max(0.0, float(d.score))), box=d.box, area=d.area)

