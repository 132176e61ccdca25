"""Bundle manifests carry the signatures, index and attestation of each image; malformed ones are refused."""

from __future__ import annotations

import json

import pytest

from crossbuild.bundle.format import BundleImage, BundleManifest, Ref, Supply, supply_blobs
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

D = {n: "sha256:" + str(n) * 64 for n in range(1, 8)}
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def image(supply: Supply | None) -> BundleImage:
    return BundleImage(
        ref="localhost:5000/ns/api:v1",
        digest=D[1],
        media_type=MANIFEST,
        size=500,
        platform="linux/arm64",
        config=D[2],
        layers=1,
        total_size=1000,
        service="api",
        index_digest=D[3],
        supply=supply,
    )


def supply() -> Supply:
    return Supply(
        index=Ref(D[3], 900, INDEX),
        attestation=Ref(D[4], 800, MANIFEST),
        signatures=(Ref(D[5], 558, MANIFEST, signs=D[3]), Ref(D[6], 558, MANIFEST, signs=D[1])),
    )


def test_round_trip_with_supply_and_public_key() -> None:
    manifest = BundleManifest(
        "p", "v1", Platform("linux", "arm64"), "2024-01-01T00:00:00Z", (image(supply()),), public_key=D[7]
    )
    parsed = BundleManifest.from_json(json.loads(manifest.dumps()))
    assert parsed == manifest
    assert parsed.images[0].supply is not None
    assert parsed.images[0].supply.signature_of(D[1]) == Ref(D[6], 558, MANIFEST, signs=D[1])
    assert [r.digest for r, _ in parsed.supply_refs()] == [D[3], D[4], D[5], D[6]]


def test_a_bundle_without_supply_keeps_the_old_shape() -> None:
    manifest = BundleManifest("p", "v1", Platform("linux", "arm64"), "2024-01-01T00:00:00Z", (image(None),))
    data = json.loads(manifest.dumps())
    assert "publicKey" not in data and "supply" not in data["images"][0]
    assert BundleManifest.from_json(data) == manifest


def test_a_signature_ref_without_what_it_signs_is_refused() -> None:
    manifest = BundleManifest("p", "v1", Platform("linux", "arm64"), "2024-01-01T00:00:00Z", (image(supply()),))
    data = json.loads(manifest.dumps())
    del data["images"][0]["supply"]["signatures"][0]["signs"]
    with pytest.raises(UserError, match=r"signatures\[0\]: 'signs' must be a str"):
        BundleManifest.from_json(data)


def test_supply_blobs_of_a_signature_manifest_and_of_an_index() -> None:
    sig = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D[2], "size": 233},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "digest": D[7], "size": 247}],
    }
    blobs = supply_blobs(Ref(D[5], 10, MANIFEST, D[1]), json.dumps(sig).encode(), "sig")
    assert [(b.digest, b.size) for b in blobs] == [(D[2], 233), (D[7], 247)]
    assert supply_blobs(Ref(D[3], 10, INDEX), b'{"manifests": []}', "index") == ()
