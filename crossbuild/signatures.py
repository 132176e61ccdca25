"""cosign signatures, checked in Python alone: no cosign, no network, no transparency log.

cosign (key-based, `--tlog-upload=false`) stores the signatures of an image `repo@sha256:H` as
an image manifest tagged `sha256-H.sig` in the same repository. Each layer of it is a "simple
signing" payload (`application/vnd.dev.cosign.simplesigning.v1+json`), a JSON document whose
`critical.image.docker-manifest-digest` names the signed manifest, and carries in the annotation
`dev.cosignproject.cosign/signature` the base64 of an ASN.1 DER ECDSA signature over SHA-256 of
the payload's bytes. A signature holds for an image when it verifies against the public key AND
its payload names exactly that image's digest: the digest covers the manifest, which covers the
config and every layer, so nothing of the image can change without breaking it.

The offline side (crossbuild.bundle.loader) uses this module on the air-gapped host; nothing here
needs a Config or a registry.

[cosign] sigstore/cosign specs/SIGNATURE_SPEC.md ("OCI Registry storage", "Simple Signing")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crossbuild.errors import UserError

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
SIGNATURE_TYPE = "cosign container image signature"
PAYLOAD_MAX = 1 << 20  # a simple-signing payload is a few hundred bytes


def signature_tag(digest: str) -> str:
    """`sha256-<hex>.sig`: the tag cosign stores an image's signatures under ([cosign])."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig"


@dataclass(frozen=True)
class PublicKey:
    """A cosign public key: its PEM and the fingerprint bundles record."""

    key: ec.EllipticCurvePublicKey
    fingerprint: str  # sha256:<hex> of the DER SubjectPublicKeyInfo
    name: str  # where it came from, for messages


def load_public_key(pem: bytes, name: str) -> PublicKey:
    """A PEM public key as `cosign generate-key-pair` writes it (ECDSA P-256), or a UserError."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise UserError(f"{name} is not a PEM public key (expected what `cosign generate-key-pair` writes)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UserError(f"{name} is a {type(key).__name__}, not an ECDSA key as cosign makes; give a cosign.pub")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(key, "sha256:" + hashlib.sha256(der).hexdigest(), name)


def read_public_key(path: Path) -> PublicKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the public key: {exc.strerror}") from None
    return load_public_key(pem, str(path))


@dataclass(frozen=True)
class Signature:
    """One signature layer of a `.sig` manifest, with its payload's bytes."""

    payload: bytes
    signature: str  # base64, as cosign stores it
    keyless: bool = False  # it carries a Fulcio certificate instead of being made with a key

    def signed_digest(self) -> str:
        """The manifest digest the payload names ("" when the payload is not a cosign simple signing one)."""
        try:
            data = json.loads(self.payload)
        except (ValueError, UnicodeDecodeError):
            return ""
        critical = data.get("critical") if isinstance(data, dict) else None
        if not isinstance(critical, dict) or critical.get("type") != SIGNATURE_TYPE:
            return ""
        digest = (critical.get("image") or {}).get("docker-manifest-digest")
        return digest if isinstance(digest, str) else ""

    def verifies(self, key: PublicKey) -> bool:
        try:
            raw = base64.b64decode(self.signature, validate=True)
            key.key.verify(raw, self.payload, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


def signature_layers(manifest: Mapping[str, Any]) -> list[tuple[str, int, str, bool]]:
    """(payload digest, size, base64 signature, keyless) of each simple-signing layer of a `.sig` manifest."""
    found = []
    for layer in manifest.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
        signature = (annotations or {}).get(SIGNATURE_ANNOTATION)
        size = layer.get("size")
        if isinstance(signature, str) and isinstance(layer.get("digest"), str) and isinstance(size, int):
            found.append((layer["digest"], size, signature, CERTIFICATE_ANNOTATION in (annotations or {})))
    return found


def signatures_of(manifest: Mapping[str, Any], payload: Callable[[str], bytes]) -> list[Signature]:
    """The signatures a `.sig` manifest holds; `payload(digest)` fetches a payload blob (verified by digest)."""
    return [
        Signature(payload(digest), signature, keyless)
        for digest, size, signature, keyless in signature_layers(manifest)
        if size <= PAYLOAD_MAX
    ]


def check(key: PublicKey, found: Sequence[Signature], digest: str) -> str:
    """ "" when one of `found` verifies against `key` and names `digest`; else what is wrong, in one phrase."""
    if not found:
        return f"no cosign signature for {digest}"
    valid = [s for s in found if s.verifies(key)]
    if any(s.signed_digest() == digest for s in valid):
        return ""
    if valid:
        names = ", ".join(sorted({s.signed_digest() or "nothing" for s in valid}))
        return f"the signature by {key.name} is for {names}, not {digest}: the content was altered"
    return f"no signature for {digest} verifies against {key.name} ({key.fingerprint[:19]}): signed with another key"


def fetch(client: Any, registry: str, repository: str, digest: str) -> list[Signature]:
    """The signatures cosign stored for `registry/repository@digest` ([] when it has none)."""
    from crossbuild.oci import NotFound, Reference  # noqa: PLC0415 - the offline check needs no registry code

    try:
        manifest = client.get_manifest(Reference(registry, repository, signature_tag(digest), None))
    except NotFound:
        return []
    return signatures_of(manifest.data, lambda blob: client.get_blob(registry, repository, blob))
