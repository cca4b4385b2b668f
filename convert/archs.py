"""Build an ``nn.Module`` from an architecture reference (``package.module:ClassName``)."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ovedge.errors import ConvertOptionError


def build_arch(
    ref: str, kwargs: Mapping[str, Any], *, arch_path: Path | None = None, hparams: Mapping[str, Any] | None = None
) -> Any:
    """Import ``ref`` and instantiate it; Lightning hyper-parameters fill the kwargs it accepts."""
    if ref.startswith("torchvision:"):
        return _torchvision(ref.split(":", 1)[1], kwargs)
    module_name, sep, class_name = ref.partition(":")
    if not sep or not module_name or not class_name:
        raise ConvertOptionError(
            what=f"--arch {ref!r}", problem="is not package.module:ClassName (e.g. mypkg.nets:ResNet)"
        )
    if arch_path is not None:
        if not arch_path.is_dir():
            raise ConvertOptionError(what=f"--arch-path {arch_path}", problem="is not a folder")
        folder = str(arch_path.resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConvertOptionError(
            what=f"--arch {ref!r}",
            detail=f"cannot import {module_name!r} ({exc})",
            fix="run from the project that defines it or give its folder with --arch-path",
        ) from exc
    factory = getattr(module, class_name, None)
    if factory is None or not callable(factory):
        raise ConvertOptionError(
            what=f"--arch {ref!r}", detail=f"{module_name} has no class or function {class_name!r}"
        )
    merged = dict(_accepted(factory, hparams or {}))
    merged.update(kwargs)
    try:
        return factory(**merged)
    except TypeError as exc:
        raise ConvertOptionError(
            what=f"--arch {ref!r}", problem=f"with --arch-kwargs {dict(kwargs)}", detail=exc
        ) from exc


def _accepted(factory: Any, hparams: Mapping[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in hparams.items() if k in params}


def _torchvision(name: str, kwargs: Mapping[str, Any]) -> Any:
    try:
        import torchvision  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise ConvertOptionError(
            what=f"--arch torchvision:{name}",
            problem="needs torchvision, which is not installed here",
            fix="install the torchvision build matching torch (e.g. `pip install torchvision` with the same "
            "torch pin) or give --arch package.module:ClassName",
        ) from exc
    try:
        return torchvision.models.get_model(name, weights=None, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ConvertOptionError(what=f"--arch torchvision:{name}", detail=exc) from exc
