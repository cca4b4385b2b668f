"""Everything ``convert/`` imports is declared: the base dependencies or the ``convert`` extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"ovedge", "camera", "convert", "daemon"}
OPTIONAL = {"torchvision"}  # --arch torchvision:<name> only; its absence is a one-line error (test_errors)


def _imported(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def _dist_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match is not None
    return match.group(0).lower().replace("_", "-")


def test_every_converter_import_is_in_the_base_or_the_convert_extra() -> None:
    """Each third-party module imported anywhere in convert/ comes from a distribution listed in
    [project] dependencies or the `convert` extra (so `pip install ".[convert]"` alone can convert)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_dist_name(r) for r in project["dependencies"] + project["optional-dependencies"]["convert"]}
    owners = packages_distributions()
    third_party = _imported(ROOT / "convert") - FIRST_PARTY - OPTIONAL - set(sys.stdlib_module_names)
    missing = {}
    for module in sorted(third_party):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert missing == {}, f"imported by convert/ but not declared for it: {missing}"
    assert "onnxruntime" in third_party  # the ONNX parity reference: the import this test was written for
