"""Common ground of the ovedge distribution.

The three product packages stand on this one and on nothing of each other's, except that
``daemon`` uses ``camera``:

* ``ovedge.errors`` -- the one exception hierarchy of the project.
* ``ovedge.irmeta`` -- the IR metadata schema: what the converter writes into the IR's
  ``rt_info`` and ``manifest.json`` and what the daemon reads back.
* ``ovedge.store`` -- the versioned model store layout (``ir_models/<name>/<version>/``).

Nothing here imports torch, onnx or OpenVINO's runtime at import time.
"""

from ovedge.errors import (
    CameraError,
    ConfigError,
    ConvertError,
    ModelError,
    OvedgeError,
    PublishError,
)

__all__ = [
    "CameraError",
    "ConfigError",
    "ConvertError",
    "ModelError",
    "OvedgeError",
    "PublishError",
]
__version__ = "0.1.0"
