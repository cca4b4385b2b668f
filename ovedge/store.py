"""The versioned model store: ``<root>/<name>/<version>/{model.xml,model.bin,manifest.json}``.

Integer versions, never overwritten, each version folder appearing atomically: it is written in a
hidden staging folder beside the versions and renamed into place, so a reader never sees half a
model. This is also the layout OpenVINO Model Server serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ovedge.errors import ModelError, ModelNotFoundError
from ovedge.irmeta import FileDigest, Manifest

MODEL_XML = "model.xml"
MODEL_BIN = "model.bin"
MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    """A model name is a folder name: letters, digits, ``.``, ``_``, ``-``; 64 characters at most."""
    if not _NAME.match(name):
        raise ModelError(
            f"model name {name!r} is not usable as a folder name: use letters, digits, '.', '_', '-' "
            "(64 characters at most, not starting with a dot)"
        )
    return name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def digest_file(path: Path) -> FileDigest:
    return FileDigest(sha256=sha256_file(path), size=path.stat().st_size)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One resolved, readable version in the store."""

    name: str
    version: int
    path: Path
    manifest: Manifest

    @property
    def xml(self) -> Path:
        return self.path / MODEL_XML

    @property
    def bin(self) -> Path:
        return self.path / MODEL_BIN

    def verify_files(self) -> None:
        """Check every file the manifest lists against its SHA-256 (detects a tampered IR)."""
        for file_name, expected in self.manifest.files.items():
            path = self.path / file_name
            if not path.is_file():
                raise ModelError(f"{self.path}: {file_name} listed in {MANIFEST} is missing")
            actual = sha256_file(path)
            if actual != expected.sha256:
                raise ModelError(
                    f"{path}: SHA-256 {actual[:12]}… does not match {MANIFEST} ({expected.sha256[:12]}…); "
                    "the file was changed after conversion: convert the model again"
                )


class ModelStore:
    """Read and write access to one store root (e.g. ``ir_models/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.is_dir() and child.name.isdigit() and (child / MANIFEST).is_file():
                found.append(int(child.name))
        return sorted(found)

    def resolve(self, name: str, version: int | str = "latest") -> ModelVersion:
        """Find ``name`` at ``version`` (an int or ``"latest"``) and read its manifest."""
        available = self.versions(name)
        if not available:
            raise ModelNotFoundError(name, self.root, self.names())
        if version == "latest":
            chosen = available[-1]
        else:
            chosen = int(version)
            if chosen not in available:
                raise ModelError(
                    f"model {name!r} has no version {chosen} in {self.root} "
                    f"(versions: {', '.join(map(str, available))})"
                )
        path = self.root / name / str(chosen)
        manifest_path = path / MANIFEST
        manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), source=str(manifest_path))
        return ModelVersion(name=name, version=chosen, path=path, manifest=manifest)

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A private folder to write a new version into; see :meth:`publish`.

        On an exception the folder is removed, so a failed conversion leaves nothing behind.
        """
        check_name(name)
        parent = self.root / name
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
        try:
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def next_version(self, name: str) -> int:
        """The version the next publish would take (never reuses a number)."""
        versions = self.versions(name)
        parent = self.root / name
        taken = [int(p.name) for p in parent.iterdir() if p.name.isdigit()] if parent.is_dir() else []
        return max([0, *versions, *taken]) + 1

    def publish(self, name: str, staged: Path, version: int) -> Path:
        """Rename a staged folder to ``<name>/<version>`` atomically and return the new path.

        ``manifest.json`` in the staged folder must already carry ``version`` (take it from
        :meth:`next_version`). Raises :class:`FileExistsError` when a concurrent writer took the
        number first: take the next one, rewrite the manifest and publish again.
        """
        target = self.root / name / str(version)
        _fsync_tree(staged)
        if target.exists():
            raise FileExistsError(str(target))
        try:
            staged.rename(target)  # atomic on one filesystem
        except OSError as exc:
            raise FileExistsError(str(target)) from exc
        _fsync_dir(target.parent)
        return target


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
