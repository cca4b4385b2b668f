"""Output layouts: what a model's raw outputs mean, in one place (numpy and OpenCV only).

* :mod:`~ovedge.layouts.geometry`: the letterbox / crop / stretch maps between frame and input
  pixels; the converter builds its in-graph resize from the same :func:`~ovedge.layouts.geometry.fit`.
* :mod:`~ovedge.layouts.shapes`: output shapes read once, checked at load time.
* one decoder module per layout family, behind the explicit registry :data:`DECODERS` keyed by
  :class:`~ovedge.irmeta.OutputLayout`; :func:`build_postprocessor` picks and checks one at load time.
* :mod:`~ovedge.layouts.recognise`: which layouts static output shapes fit (``--task auto``).

The daemon decodes frames with these decoders, and the converter's parity check decodes the
reference's and the IR's outputs with the very same ones.
"""

from ovedge.layouts.geometry import affine, fit, input_to_frame
from ovedge.layouts.recognise import candidates, label_count
from ovedge.layouts.records import ANOMALY_LABEL, Detection, PostProcessor
from ovedge.layouts.registry import DECODERS, build_postprocessor
from ovedge.layouts.shapes import Shape, output_shapes

__all__ = [
    "ANOMALY_LABEL",
    "DECODERS",
    "Detection",
    "PostProcessor",
    "Shape",
    "affine",
    "build_postprocessor",
    "candidates",
    "fit",
    "input_to_frame",
    "label_count",
    "output_shapes",
]
