"""cosign simple-signing signatures checked in Python: the right key, the right digest, nothing else."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from crossbuild import signatures
from crossbuild.errors import UserError

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def keypair() -> tuple[ec.EllipticCurvePrivateKey, signatures.PublicKey]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, signatures.load_public_key(pem, "cosign.pub")


def payload(digest: str) -> bytes:
    body = {
        "critical": {
            "identity": {"docker-reference": "localhost:5000/ns/api"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(body).encode()


def signed(private: ec.EllipticCurvePrivateKey, digest: str) -> signatures.Signature:
    data = payload(digest)
    raw = private.sign(data, ec.ECDSA(hashes.SHA256()))
    return signatures.Signature(data, base64.b64encode(raw).decode())


def test_signature_by_the_key_for_the_digest_holds() -> None:
    private, public = keypair()
    assert signatures.check(public, [signed(private, DIGEST)], DIGEST) == ""


def test_signature_for_another_digest_means_altered_content() -> None:
    private, public = keypair()
    problem = signatures.check(public, [signed(private, OTHER)], DIGEST)
    assert "not " + DIGEST in problem and "altered" in problem


def test_signature_by_another_key_is_refused() -> None:
    other, _ = keypair()
    _, public = keypair()
    assert "signed with another key" in signatures.check(public, [signed(other, DIGEST)], DIGEST)


def test_a_tampered_payload_no_longer_verifies() -> None:
    private, public = keypair()
    sig = signed(private, DIGEST)
    forged = signatures.Signature(sig.payload.replace(b"ns/api", b"ns/evil"), sig.signature)
    assert "signed with another key" in signatures.check(public, [forged], DIGEST)


def test_no_signature_at_all() -> None:
    _, public = keypair()
    assert signatures.check(public, [], DIGEST) == f"no cosign signature for {DIGEST}"


def test_one_good_signature_among_others_is_enough() -> None:
    private, public = keypair()
    stranger, _ = keypair()
    found = [signed(stranger, DIGEST), signatures.Signature(b"junk", "!!"), signed(private, DIGEST)]
    assert signatures.check(public, found, DIGEST) == ""


def test_fingerprint_is_sha256_of_the_der_key() -> None:
    _, public = keypair()
    der = public.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib

    assert public.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()


def test_not_a_key_and_not_ecdsa_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="is not a PEM public key"):
        signatures.load_public_key(b"hello", "cosign.pub")
    ed_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(UserError, match="not an ECDSA key"):
        signatures.load_public_key(ed_pem, "ed25519.pub")


def test_signature_layers_of_a_cosign_manifest() -> None:
    manifest = {
        "layers": [
            {
                "mediaType": signatures.SIMPLE_SIGNING,
                "digest": DIGEST,
                "size": 247,
                "annotations": {signatures.SIGNATURE_ANNOTATION: "MEUC"},
            },
            {"mediaType": "application/octet-stream", "digest": OTHER, "size": 1},
        ]
    }
    assert signatures.signature_layers(manifest) == [(DIGEST, 247, "MEUC", False)]
    assert [s.signature for s in signatures.signatures_of(manifest, lambda d: b"{}")] == ["MEUC"]
    assert signatures.signature_tag(DIGEST) == "sha256-" + "a" * 64 + ".sig"
