"""A judged frame as a JPEG with its defects drawn: done on request, never on the hot path."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from daemon.result import ResultRecord, Verdict

__all__ = ["annotated_jpeg"]

# BGR
_COLOURS = {Verdict.OK: (60, 180, 60), Verdict.NG: (40, 40, 230), Verdict.ERROR: (0, 170, 255)}


def annotated_jpeg(image: npt.NDArray[np.uint8], record: ResultRecord, *, quality: int) -> bytes:
    """``image`` (left untouched) with a verdict border, each defect's box and label, as JPEG bytes."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else np.array(image, copy=True)
    colour = _COLOURS[record.verdict]
    h, w = out.shape[:2]
    thickness = max(1, round(min(h, w) / 160))
    scale = max(0.35, min(h, w) / 640)
    cv2.rectangle(out, (0, 0), (w - 1, h - 1), colour, thickness * 2)
    banner = [record.verdict.value]
    for d in record.defects:
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
    ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any u8 BGR image
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()
