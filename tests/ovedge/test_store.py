"""The model store on a real folder: the one version writer, numbering, resolution, hash checks."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, Manifest, Preprocessing
from ovedge.signing import generate_keypair, verify_version
from ovedge.store import MANIFEST, ModelStore, VersionDraft, file_digests
from tests.factories import add_version, channel_classifier, tiny_ir

META = IRMeta(
    task="classification",
    output_layout="logits",
    labels=("ok", "scratch", "dent"),
    preprocessing=Preprocessing(input_width=16, input_height=16),
)


def _ir(staged: Path) -> VersionDraft:
    tiny_ir(staged / "model.xml", channel_classifier((1.0, 2.0, 3.0)), meta=META)
    return VersionDraft(meta=META, precision="fp16", parity={"agreement": 1.0})


def test_add_version_writes_hashes_manifest_and_numbers_in_order(tmp_path: Path) -> None:
    """Versions 1 and 2 appear whole, readable by others, with every file hashed in the manifest."""
    store = ModelStore(tmp_path / "store")
    first = add_version(store, "widget", _ir)
    second = add_version(store, "widget", _ir)
    assert (first.version, second.version) == (1, 2)
    assert store.versions("widget") == [1, 2]
    resolved = store.resolve("widget")
    assert resolved.version == 2
    assert resolved.manifest == second.manifest
    assert sorted(resolved.manifest.files) == ["model.bin", "model.xml"]
    assert resolved.manifest.files == file_digests(resolved.path)
    assert (resolved.manifest.precision, resolved.manifest.parity) == ("fp16", {"agreement": 1.0})
    assert stat.S_IMODE(resolved.path.stat().st_mode) == 0o755
    resolved.verify_files()
    assert not [p for p in (tmp_path / "store" / "widget").iterdir() if p.name.startswith(".staging")]


def test_a_number_taken_meanwhile_is_skipped(tmp_path: Path) -> None:
    """A concurrent writer that published the next number first: the writer takes the one after."""
    store = ModelStore(tmp_path / "store")
    add_version(store, "widget", _ir)
    with store.staging("widget") as staged:
        _ir(staged)
        (tmp_path / "store" / "widget" / "2").mkdir()  # taken, not yet complete (no manifest)
        added = store.add_version("widget", staged, VersionDraft(meta=META))
    assert added.version == 3
    assert Manifest.model_validate_json((added.path / MANIFEST).read_text(encoding="utf-8")).version == 3


def test_signed_by_the_writer_verifies(tmp_path: Path) -> None:
    """With a key, the manifest the writer publishes carries a signature the public key accepts."""
    private, public = generate_keypair(tmp_path / "keys")
    store = ModelStore(tmp_path / "store")
    added = add_version(store, "widget", _ir, sign_with=private)
    assert added.manifest.signature is not None
    verify_version(store.resolve("widget"), [public])


def test_resolve_names_what_is_there(tmp_path: Path) -> None:
    """An unknown model or version is a ModelError naming the models or versions that exist."""
    store = ModelStore(tmp_path / "store")
    add_version(store, "widget", _ir)
    with pytest.raises(ModelError, match=r"model 'gadget' not found in the store .* \(models there: widget\)"):
        store.resolve("gadget")
    with pytest.raises(ModelError, match=r"model 'widget' has no version 7 in .* \(versions: 1\)"):
        store.resolve("widget", 7)


def test_changed_file_fails_the_hash_check(tmp_path: Path) -> None:
    """A file changed after publishing no longer matches its manifest hash."""
    added = add_version(ModelStore(tmp_path / "store"), "widget", _ir)
    with (added.path / "model.bin").open("r+b") as fh:
        fh.write(b"\xff\xff")
    with pytest.raises(ModelError, match=r"model\.bin: SHA-256 .* does not match manifest\.json"):
        added.verify_files()


@pytest.mark.parametrize("name", ["../x", ".hidden", "a b", ""])
def test_bad_names_are_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    """A model name must be usable as one folder name; nothing is created for a bad one."""
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ModelError, match="is not usable as a folder name"), store.staging(name):
        pass
    assert not (tmp_path / "store").exists()
