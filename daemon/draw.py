"""A judged frame with its defects drawn, as JPEG: the one home for the drawing.

Used by the NG evidence images (:mod:`daemon.evidence`) and the HTTP API's annotated frames
(:mod:`daemon.http.draw` calls :func:`annotated_jpeg`). The frame passed in is never changed: the
drawing is done on a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from daemon.result import Verdict

__all__ = ["annotated_jpeg", "draw_defects"]



class Drawable(Protocol):
    """A defect as drawn: :class:`daemon.result.DefectData` or :class:`daemon.result.DefectOut`."""

    @property
    def label(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def box(self) -> tuple[int, int, int, int] | None: ...


_COLOURS = {Verdict.OK: (60, 180, 60), Verdict.NG: (40, 40, 230), Verdict.ERROR: (0, 170, 255)}  # BGR


class JpegEncodeError(RuntimeError):
    """OpenCV could not encode the image (not expected for an 8-bit BGR or grey frame)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        super().__init__(f"JPEG encoding failed for an image of shape {shape}")


def draw_defects(image: npt.NDArray[np.uint8], verdict: Verdict,
                 defects: Sequence[Drawable]) -> npt.NDArray[np.uint8]:
    """A BGR copy of ``image`` with a verdict border, each defect's box and label and a banner."""
    out: npt.NDArray[np.uint8] = (
        np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8) if image.ndim == 2
        else np.array(image, copy=True)
    )
    colour = _COLOURS[verdict]
    h, w = out.shape[:2]
    thickness = max(1, round(min(h, w) / 160))
    scale = max(0.35, min(h, w) / 640)
    cv2.rectangle(out, (0, 0), (w - 1, h - 1), colour, thickness * 2)
    banner = [verdict.value]
    for d in defects:
        text = f"{d.label} {d.score:.2f}"
        if d.box is None:
            banner.append(text)
            continue
        x0, y0, x1, y1 = d.box
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, thickness)
        cv2.putText(out, text, (x0, max(y0 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                    cv2.LINE_AA)
    cv2.putText(out, "  ".join(banner), (4 + thickness * 2, int(14 * scale / 0.35)), cv2.FONT_HERSHEY_SIMPLEX,
                scale, colour, thickness, cv2.LINE_AA)
    return out


def annotated_jpeg(image: npt.NDArray[np.uint8], verdict: Verdict, defects: Sequence[Drawable], *,
                   quality: int) -> bytes:
    """:func:`draw_defects` encoded as JPEG at ``quality``."""
    drawn = draw_defects(image, verdict, defects)
    ok, encoded = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any u8 BGR image
        raise JpegEncodeError(tuple(drawn.shape))
    return bytes(encoded.tobytes())
