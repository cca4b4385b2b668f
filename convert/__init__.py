"""The converter: a PyTorch/ONNX checkpoint in, a verified, versioned OpenVINO IR out.

``convert.pipeline.convert(ConvertOptions(...))`` is the API; ``convert.cli`` the command line.
Import-light: torch, onnx, nncf and OpenVINO are imported inside the functions that need them.
"""

from convert.options import ConvertOptions, Precision, TaskChoice

__all__ = ["ConvertOptions", "Precision", "TaskChoice"]
