"""The one way tests write a daemon config: sections as dicts in, a valid ``config.toml`` out.

``write_config(folder, mqtt={"port": 1884})`` writes ``folder/config.toml`` with one synthetic
camera unless ``cameras`` is given; a section passed as ``None`` is left out of the file (e.g.
``cameras=None`` for a config without cameras). Values: str, ``Path`` (written as a string),
bool, int, float, lists and dicts of those. Tests that use the conftest fixture ``write_config``
get it bound to their ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = ["SYNTHETIC_CAMERA", "toml_text", "write_config"]

SYNTHETIC_CAMERA: Final[Mapping[str, Any]] = {"id": "cam0", "source": {"type": "synthetic"}}
"""The camera a config gets when the test does not care which: one synthetic source."""

_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def write_config(folder: Path, *, filename: str = "config.toml", **sections: Any) -> Path:
    """Write ``folder/filename`` holding ``sections`` (``cameras`` defaults to one synthetic camera)."""
    tables = {"cameras": [dict(SYNTHETIC_CAMERA)], **sections}
    path = folder / filename
    path.write_text(toml_text({k: v for k, v in tables.items() if v is not None}), encoding="utf-8")
    return path


def toml_text(sections: Mapping[str, Any]) -> str:
    """TOML for ``sections``: a dict is a ``[table]``, a list of dicts an array of tables ``[[...]]``."""
    lines: list[str] = []
    for name, body in sections.items():
        if isinstance(body, Mapping):
            _table(lines, [name], body, array=False)
        elif isinstance(body, list | tuple) and all(isinstance(item, Mapping) for item in body) and body:
            for item in body:
                _table(lines, [name], item, array=True)
        else:
            lines.insert(0, f"{_key(name)} = {_value(body)}")  # top-level keys come before any table
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], body: Mapping[str, Any], *, array: bool) -> None:
    header = ".".join(_key(p) for p in path)
    lines.append(f"[[{header}]]" if array else f"[{header}]")
    subtables = {k: v for k, v in body.items() if isinstance(v, Mapping)}
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in body.items() if k not in subtables)
    for key, sub in subtables.items():
        _table(lines, [*path, key], sub, array=False)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"TOML test configs hold finite floats only, got {value}"
            raise ValueError(msg)
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a TOML basic string: JSON's escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    msg = f"cannot write {type(value).__name__} into a test config: {value!r}"
    raise TypeError(msg)
