"""Ed25519 signatures over a model version's manifest (``cryptography``; nothing hand-rolled).

A signature covers :meth:`ovedge.irmeta.Manifest.signed_payload`: the model's name, version and
the SHA-256 of every file. It proves the hashes are the ones the key holder signed; that the
files still have those hashes is :meth:`ovedge.store.ModelVersion.verify_files`' job.
:func:`verify_version` does both, in that order of trust: signature first, then the files.

Keys are PEM files: ``<name>.key`` (PKCS#8 private key, mode 0600) and ``<name>.pub``
(SubjectPublicKeyInfo), made by :func:`generate_keypair`. A key is known by its id: the first 16
hex characters of the SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ovedge.errors import ConfigError, ModelError
from ovedge.irmeta import Manifest, Signature
from ovedge.store import ModelVersion

__all__ = [
    "TrustedKeys",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sign_manifest",
    "verify_manifest",
    "verify_version",
]


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(directory: Path, name: str = "ovedge") -> tuple[Path, Path]:
    """Write a new ``<name>.key`` (0600) and ``<name>.pub`` into ``directory``; never overwrites."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} already exists; choose another name or directory (keys are never overwritten)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted Ed25519 private key PEM; :class:`ConfigError` saying what is wrong."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"signing key {path} cannot be read: {exc.strerror}") from exc
    except TypeError as exc:
        raise ConfigError(f"signing key {path} is encrypted; use an unencrypted Ed25519 key") from exc
    except ValueError as exc:
        raise ConfigError(
            f"signing key {path} is not a PEM private key; make one with ovedge.signing.generate_keypair"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read an Ed25519 public key PEM; :class:`ConfigError` saying what is wrong."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"trusted key {path} cannot be read: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"trusted key {path} is not a PEM public key (the .pub file, not the .key)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"trusted key {path} is a {type(key).__name__}, not an Ed25519 key")
    return key


def sign_manifest(manifest: Manifest, private_key_pem_path: Path) -> Signature:
    """Sign ``manifest.signed_payload()``; store the result with ``manifest.model_copy(update=...)``."""
    key = load_private_key(private_key_pem_path)
    value = key.sign(manifest.signed_payload())
    return Signature(key_id=key_id(key.public_key()), value=base64.b64encode(value).decode("ascii"))


class TrustedKeys:
    """The public keys of ``model.trusted_keys``, read once (at start-up) and known by key id."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        self.by_id: dict[str, Ed25519PublicKey] = {key_id(k): k for k in (load_public_key(p) for p in self.paths)}

    def verify(self, manifest: Manifest) -> None:
        """Accept ``manifest`` only if one of these keys signed exactly its payload.

        Raises :class:`ModelError`: unsigned, signed by an untrusted key, or signature mismatch.
        """
        label = f"model {manifest.name} v{manifest.version}"
        sig = manifest.signature
        if sig is None:
            raise ModelError(
                f"{label} is unsigned, and trusted_keys are configured: sign it with "
                "`ovedge-convert --sign KEY` (or remove trusted_keys to accept unsigned models)"
            )
        key = self.by_id.get(sig.key_id)
        if key is None:
            ids = ", ".join(sorted(self.by_id)) or "none"
            raise ModelError(
                f"{label} is signed by an untrusted key {sig.key_id} (trusted: {ids}); "
                "add its .pub file to trusted_keys if you trust it"
            )
        try:
            key.verify(base64.b64decode(sig.value, validate=True), manifest.signed_payload())
        except (InvalidSignature, binascii.Error) as exc:
            raise ModelError(
                f"{label}: signature does not match: files changed after signing "
                f"(key {sig.key_id}); convert and sign the model again"
            ) from exc


def verify_manifest(manifest: Manifest, trusted_public_key_paths: Sequence[Path]) -> None:
    """Accept ``manifest`` only if one of the keys at these paths signed exactly its payload."""
    TrustedKeys(trusted_public_key_paths).verify(manifest)


def verify_version(version: ModelVersion, trusted_public_key_paths: Sequence[Path]) -> None:
    """Signature over the manifest's hashes first, then the files against those hashes."""
    verify_manifest(version.manifest, trusted_public_key_paths)
    version.verify_files()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ovedge.signing keygen DIR [--name NAME]``: make a signing key pair."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m ovedge.signing", description="Ed25519 keys for model signing")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="write NAME.key (keep it secret) and NAME.pub (for trusted_keys)")
    keygen.add_argument("directory", type=Path)
    keygen.add_argument("--name", default="ovedge")
    args = parser.parse_args(argv)
    try:
        private, public = generate_keypair(args.directory, args.name)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"private key {private} (sign with: ovedge-convert ... --sign {private})")
    print(f"public key  {public} id {key_id(load_public_key(public))} (list it in model.trusted_keys)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
