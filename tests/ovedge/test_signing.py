"""Ed25519 manifest signatures: real keys, a real version folder, real tampering."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ovedge.errors import ConfigError, ModelError
from ovedge.irmeta import IRMeta, Manifest, Preprocessing, Signature
from ovedge.signing import (
    generate_keypair,
    key_id,
    load_public_key,
    sign_manifest,
    verify_manifest,
    verify_version,
)
from ovedge.store import ModelStore, VersionDraft, digest_file, write_manifest
from tests.factories import add_version


def _widget(staged: Path) -> VersionDraft:
    """A small but complete version: model files and a classification manifest draft."""
    (staged / "model.xml").write_text("<net/>", encoding="utf-8")
    (staged / "model.bin").write_bytes(bytes(range(256)) * 4)
    meta = IRMeta(
        task="classification",
        output_layout="logits",
        labels=("ok", "ng"),
        preprocessing=Preprocessing(input_width=8, input_height=8),
    )
    return VersionDraft(meta=meta, created_utc="2026-11-25T20:00:00Z")


def _version(store_root: Path) -> Manifest:
    """Write the next version of "widget" into a store with the store's own writer."""
    return add_version(ModelStore(store_root), "widget", _widget).manifest


def _sign_in_place(store_root: Path, key: Path, version: int = 1) -> Manifest:
    resolved = ModelStore(store_root).resolve("widget", version)
    signed = resolved.manifest.model_copy(update={"signature": sign_manifest(resolved.manifest, key)})
    write_manifest(resolved.path, signed)
    return signed


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys", "line1")


def test_generate_keypair_files_and_modes(keys: tuple[Path, Path]) -> None:
    """A private key readable by the owner only and a public PEM; a second call never overwrites."""
    private, public = keys
    assert (private.name, public.name) == ("line1.key", "line1.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = private.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        generate_keypair(private.parent, "line1")
    assert private.read_bytes() == before


def test_sign_then_verify_round_trip(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """A version signed with the private key is accepted by its public key (signature and files)."""
    private, public = keys
    _version(tmp_path / "store")
    signed = _sign_in_place(tmp_path / "store", private)
    assert signed.signature is not None
    assert signed.signature.algorithm == "ed25519"
    assert signed.signature.key_id == key_id(load_public_key(public))
    assert len(signed.signature.key_id) == 16
    version = ModelStore(tmp_path / "store").resolve("widget")
    assert version.manifest.signature == signed.signature  # survives the JSON round trip
    verify_version(version, [public])


def test_unsigned_is_refused(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """With trusted keys configured, an unsigned model is refused and told how to sign."""
    manifest = _version(tmp_path / "store")
    with pytest.raises(ModelError) as err:
        verify_manifest(manifest, [keys[1]])
    assert str(err.value).startswith("model widget v1 is unsigned, and trusted_keys are configured: ")
    assert "ovedge-convert --sign KEY" in str(err.value)


def test_untrusted_key_is_named(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """Signed by another key: refused, naming that key's id and the trusted ones."""
    other_private, other_public = generate_keypair(tmp_path / "other", "rogue")
    manifest = _version(tmp_path / "store")
    signed = manifest.model_copy(update={"signature": sign_manifest(manifest, other_private)})
    rogue = key_id(load_public_key(other_public))
    trusted = key_id(load_public_key(keys[1]))
    with pytest.raises(ModelError) as err:
        verify_manifest(signed, [keys[1]])
    assert str(err.value).startswith(f"model widget v1 is signed by an untrusted key {rogue} (trusted: {trusted})")
    verify_manifest(signed, [keys[1], other_public])  # trusting both accepts it


def test_files_changed_after_signing_with_manifest_rehashed(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """model.bin replaced and its hash rewritten in the manifest: the signature no longer matches."""
    private, public = keys
    _version(tmp_path / "store")
    signed = _sign_in_place(tmp_path / "store", private)
    folder = tmp_path / "store" / "widget" / "1"
    (folder / "model.bin").write_bytes(b"\x00" * 1024)
    forged = signed.model_copy(update={"files": {**signed.files, "model.bin": digest_file(folder / "model.bin")}})
    write_manifest(folder, forged)
    with pytest.raises(ModelError, match=r"^model widget v1: signature does not match: files changed after signing"):
        verify_version(ModelStore(tmp_path / "store").resolve("widget"), [public])


def test_files_changed_after_signing_manifest_untouched(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """model.bin changed but the signed manifest kept: the signature holds, the file hash check refuses."""
    private, public = keys
    _version(tmp_path / "store")
    _sign_in_place(tmp_path / "store", private)
    (tmp_path / "store" / "widget" / "1" / "model.bin").write_bytes(b"\x01" * 1024)
    version = ModelStore(tmp_path / "store").resolve("widget")
    verify_manifest(version.manifest, [public])
    with pytest.raises(ModelError, match=r"model\.bin: SHA-256 .* does not match manifest\.json"):
        verify_version(version, [public])


def test_signature_moved_to_another_version_fails(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """A signature copied onto version 2 (same files) does not verify: the version is signed too."""
    private, public = keys
    v1 = _version(tmp_path / "store")
    assert v1.version == 1
    sig = sign_manifest(v1, private)
    v2 = v1.model_copy(update={"version": 2, "signature": sig})
    with pytest.raises(ModelError, match="signature does not match"):
        verify_manifest(v2, [public])


def test_garbage_signature_value_fails(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """A signature that is not base64 is a mismatch, not a crash."""
    manifest = _version(tmp_path / "store")
    kid = key_id(load_public_key(keys[1]))
    bad = manifest.model_copy(update={"signature": Signature(key_id=kid, value="not base64!")})
    with pytest.raises(ModelError, match="signature does not match"):
        verify_manifest(bad, [keys[1]])


def test_bad_key_files_are_config_errors(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """Missing files, a private key given as trusted key, and a public key given to sign: one-line errors."""
    manifest = _version(tmp_path / "store")
    with pytest.raises(ConfigError, match=r"trusted key .*missing\.pub cannot be read: No such file"):
        verify_manifest(manifest, [tmp_path / "missing.pub"])
    with pytest.raises(ConfigError, match=r"is not a PEM public key \(the \.pub file, not the \.key\)"):
        verify_manifest(manifest, [keys[0]])
    with pytest.raises(ConfigError, match="is not a PEM private key"):
        sign_manifest(manifest, keys[1])


def test_keygen_command(tmp_path: Path) -> None:
    """`python -m ovedge.signing keygen DIR` writes the pair and prints the key id; a rerun is one line, exit 2."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "ovedge.signing", "keygen", str(tmp_path / "k"), "--name", "line2"]
    first = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    kid = key_id(load_public_key(tmp_path / "k" / "line2.pub"))
    assert f"id {kid}" in first.stdout
    again = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert again.returncode == 2
    key = tmp_path / "k" / "line2.key"
    assert (
        again.stderr == f"error: {key} already exists; choose another name or directory (keys are never overwritten)\n"
    )
