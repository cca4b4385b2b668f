"""Paths written in a config file, made absolute once while the config is validated.

A field typed :data:`ConfigPath` comes out of validation absolute: ``~`` expanded, then a
relative path taken from the base folder given in the validation context (the config file's
folder; see :func:`path_context`), or from the working directory when no base is given (objects
built in code). Everything after the config loader uses these paths as they are.

This lives in ``ovedge`` because both the daemon's config and the camera sources' config (which
may not import the daemon) have path fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import AfterValidator, ValidationInfo

__all__ = ["ConfigPath", "UnexpandableHomeError", "path_context", "resolve_path"]

_BASE_DIR: Final = "base_dir"


class UnexpandableHomeError(ValueError):
    """``~`` or ``~user`` at the start of a path cannot be expanded on this machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{str(path)!r} starts with ~ but the home folder is unknown here; write the full path")


def resolve_path(path: Path, base_dir: Path | None) -> Path:
    """``path`` with ``~`` expanded, made absolute against ``base_dir`` (the working directory if ``None``)."""
    try:
        path = path.expanduser()
    except RuntimeError as exc:
        raise UnexpandableHomeError(path) from exc
    if path.is_absolute():
        return path
    return (base_dir if base_dir is not None else Path.cwd()).absolute() / path


def path_context(base_dir: Path) -> dict[str, Any]:
    """The validation context that makes :data:`ConfigPath` fields relative to ``base_dir``.

    Pass it as ``Model.model_validate(data, context=path_context(folder))``.
    """
    return {_BASE_DIR: base_dir}


def _resolve(value: Path, info: ValidationInfo) -> Path:
    context = info.context if isinstance(info.context, dict) else {}
    base = context.get(_BASE_DIR)
    return resolve_path(value, base if isinstance(base, Path) else None)


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
"""A ``Path`` config field: absolute after validation (``~`` expanded, relative to the base folder)."""
