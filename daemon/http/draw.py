"""A judged frame as a JPEG with its defects drawn: done on request, never on the hot path.

The drawing itself is :func:`daemon.draw.annotated_jpeg` (shared with the NG evidence images).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from daemon import draw
from daemon.result import ResultRecord

__all__ = ["annotated_jpeg"]


def annotated_jpeg(image: npt.NDArray[np.uint8], record: ResultRecord, *, quality: int) -> bytes:
    """``image`` (left untouched) with a verdict border, each defect's box and label, as JPEG bytes."""
    return draw.annotated_jpeg(image, record.verdict, record.defects, quality=quality)
