"""``config.toml`` read, ``--set`` overrides applied, validated; every problem one line.

Paths in the file are resolved here, once, against the file's folder (:mod:`ovedge.paths`):
after :func:`load_config` every ``Path`` in the returned objects is absolute.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from camera.config import SOURCE_TYPES
from daemon.config.root import DaemonConfig
from ovedge.errors import ConfigError
from ovedge.paths import path_context

__all__ = [
    "ConfigFileError",
    "ConfigInvalidError",
    "OverrideError",
    "apply_override",
    "load_config",
    "validation_problems",
]

_KEY_PART: Final = re.compile(r"\.|\[(\d+)\]")
_UNION_MEMBER: Final = re.compile(r"^(str|int|float|bool|bytes|none|[a-z-]+\[.*\])$")


class ConfigFileError(ConfigError):
    """The config file cannot be read as TOML: missing, unreadable or malformed (``problem`` says which)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"config file {path} {problem}")


class ConfigInvalidError(ConfigError):
    """The file is TOML but not a valid config: one line per problem, each naming the key path."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{path}: {p}" for p in self.problems))


class OverrideProblem(StrEnum):
    MALFORMED = "malformed"
    NO_SUCH_KEY = "no-such-key"


class OverrideError(ConfigError):
    """A ``--set`` item that is not ``key.path=value`` or names a key the file cannot hold."""

    def __init__(self, item: str, problem: OverrideProblem) -> None:
        self.item = item
        self.problem = problem
        key = item.partition("=")[0].strip()
        why = (
            "write it as key.path=value, e.g. mqtt.port=1884"
            if problem is OverrideProblem.MALFORMED
            else f"{key} does not exist in the config file"
        )
        super().__init__(f"--set {item!r}: {why}")


def load_config(path: Path, overrides: Sequence[str] = ()) -> DaemonConfig:
    """Read and validate ``path``; a problem becomes a :class:`ConfigError` (one line per problem).

    ``overrides`` are ``key.path=value`` strings (value in TOML syntax, bare words taken as
    strings), e.g. ``mqtt.port=18830`` or ``cameras[0].source.fps=0``, applied before validation.
    Relative paths (in the file or in an override) are taken from the file's folder, ``~`` expanded.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigFileError(path, "not found; pass --config PATH") from exc
    except OSError as exc:
        raise ConfigFileError(path, f"cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(path, f"is not valid TOML: {exc}") from exc
    for item in overrides:
        apply_override(raw, item)
    try:
        return DaemonConfig.model_validate(raw, context=path_context(path.resolve().parent))
    except ValidationError as exc:
        raise ConfigInvalidError(path, validation_problems(exc)) from exc


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``key.path=value`` in the raw TOML tables (creating tables, not list items)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise OverrideError(item, OverrideProblem.MALFORMED)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text  # a bare word: a string
    parts = [p for p in _KEY_PART.split(key.strip()) if p]
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        index: int | str = int(part) if part.isdigit() else part
        try:
            if last:
                node[index] = value
            elif isinstance(index, str):
                node = node.setdefault(index, {})
            else:
                node = node[index]
        except (IndexError, TypeError, KeyError, AttributeError) as exc:
            raise OverrideError(item, OverrideProblem.NO_SUCH_KEY) from exc


def validation_problems(exc: ValidationError) -> tuple[str, ...]:
    """One line per problem, each naming the key path as written in TOML.

    A value that fits no member of a union (``str | int``) is one problem, not one per member.
    """
    errors = exc.errors()
    members: dict[tuple[int | str, ...], list[ErrorDetails]] = {}
    for err in errors:
        if _member_label(err["loc"]):
            members.setdefault(err["loc"][:-1], []).append(err)
    problems: list[str] = []
    for err in errors:
        tried = members.get(err["loc"][:-1], []) if _member_label(err["loc"]) else []
        if len(tried) < 2:
            problems.append(_problem(err))
        elif err is tried[0]:
            forms = "; ".join(e["msg"] for e in tried)
            problems.append(f"{_key_path(err['loc'][:-1])}: {err['input']!r} fits none of the accepted forms ({forms})")
    return tuple(problems)


def _member_label(loc: tuple[int | str, ...]) -> bool:
    """Whether the last part of ``loc`` is pydantic's label for a union member (``str``, ``literal['x']``)."""
    return bool(loc) and isinstance(loc[-1], str) and _UNION_MEMBER.match(loc[-1]) is not None


def _problem(err: ErrorDetails) -> str:
    loc = _key_path(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx", {})
    if kind == "extra_forbidden":
        return f"unknown key {loc}"
    if kind == "missing":
        return f"missing key {loc}"
    if kind == "union_tag_invalid":
        return f"{loc}.{_discriminator(ctx)}: unknown type {ctx.get('tag')!r}; use one of {_tags(ctx)}"
    if kind == "union_tag_not_found":
        return f"missing key {loc}.{_discriminator(ctx)}" + (
            f" (one of {', '.join(SOURCE_TYPES)})" if loc.endswith("source") else ""
        )
    message = str(ctx["error"]) if kind in ("value_error", "assertion_error") and "error" in ctx else err["msg"]
    return f"{loc}: {message}" if loc else message


def _tags(ctx: dict[str, Any]) -> str:
    """The expected tags of a discriminated union, as pydantic derived them from its members."""
    return str(ctx.get("expected_tags", "")).replace("'", "")


def _discriminator(ctx: dict[str, Any]) -> str:
    return str(ctx.get("discriminator", "type")).strip("'")


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in SOURCE_TYPES and out.endswith("source"):
            continue  # the discriminated union's tag, not a key the user wrote
        else:
            out += ("." if out else "") + part
    return out
