"""Attestation manifests in an index, as BuildKit stores them, and the provenance summary verify reports."""

from __future__ import annotations

import json

from crossbuild import attestations
from crossbuild.oci import index_entries

IMAGE_A = "sha256:" + "1" * 64
IMAGE_B = "sha256:" + "2" * 64
OLD_ATT = "sha256:" + "3" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def index() -> dict[str, object]:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": IMAGE_A,
                "size": 500,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": MANIFEST,
                "digest": IMAGE_B,
                "size": 501,
                "platform": {"os": "linux", "architecture": "arm64"},
            },
            {
                "mediaType": MANIFEST,
                "digest": OLD_ATT,
                "size": 800,
                "annotations": {
                    "vnd.docker.reference.digest": IMAGE_A,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"os": "unknown", "architecture": "unknown"},
            },
        ],
    }


def test_attestation_manifest_names_its_subject_and_keeps_carried_layers() -> None:
    provenance = {"mediaType": attestations.INTOTO_MEDIA_TYPE, "digest": "sha256:" + "9" * 64, "size": 10}
    stmt = attestations.statement("https://spdx.dev/Document", {"spdxVersion": "SPDX-2.3"}, "pkg:docker/api", IMAGE_A)
    entry = index()["manifests"][0]  # type: ignore[index]
    att = attestations.attestation_manifest(entry, [stmt], [provenance])
    body = json.loads(att.raw)
    assert body["subject"] == {"mediaType": MANIFEST, "digest": IMAGE_A, "size": 500}
    assert [layer["digest"] for layer in body["layers"]] == [provenance["digest"], stmt.digest]
    assert body["layers"][1]["annotations"] == {"in-toto.io/predicate-type": "https://spdx.dev/Document"}
    statement = json.loads(stmt.data)
    assert statement["subject"][0]["digest"] == {"sha256": "1" * 64}
    assert statement["_type"] == "https://in-toto.io/Statement/v0.1"


def test_rewrite_index_replaces_the_old_attestation_and_keeps_image_order() -> None:
    entries = index()["manifests"]  # type: ignore[index]
    stmt = attestations.statement("https://spdx.dev/Document", {}, "pkg:docker/api", IMAGE_A)
    new = [attestations.attestation_manifest(entries[0], [stmt]), attestations.attestation_manifest(entries[1], [stmt])]
    raw = attestations.rewrite_index(index(), new)
    data = json.loads(raw)
    assert [e["digest"] for e in data["manifests"]] == [IMAGE_A, IMAGE_B, new[0].digest, new[1].digest]
    assert attestations.by_subject(data)[IMAGE_B].digest == new[1].digest
    # crossbuild's own reading of the index sees exactly the two platforms and two attestations
    assert [e.is_attestation for e in index_entries(data)] == [False, False, True, True]
    assert data["mediaType"] == "application/vnd.oci.image.index.v1+json"


def test_rewrite_is_deterministic() -> None:
    entries = index()["manifests"]  # type: ignore[index]
    stmt = attestations.statement("https://spdx.dev/Document", {"b": 1, "a": 2}, "pkg:docker/api", IMAGE_A)
    first = attestations.rewrite_index(index(), [attestations.attestation_manifest(entries[0], [stmt])])
    second = attestations.rewrite_index(index(), [attestations.attestation_manifest(entries[0], [stmt])])
    assert first == second


def test_provenance_summary_v02_and_v1() -> None:
    v02 = attestations.Statement(
        "https://slsa.dev/provenance/v0.2",
        {
            "predicate": {
                "builder": {"id": "https://github.com/x/y/actions/runs/1"},
                "buildType": "https://mobyproject.org/buildkit@v1",
                "materials": [{"uri": "a"}, {"uri": "b"}],
            }
        },
        "sha256:x",
    )
    assert attestations.provenance_summary(v02) == {
        "predicate_type": "https://slsa.dev/provenance/v0.2",
        "builder_id": "https://github.com/x/y/actions/runs/1",
        "build_type": "https://mobyproject.org/buildkit@v1",
        "materials": 2,
    }
    v1 = attestations.Statement(
        "https://slsa.dev/provenance/v1",
        {
            "predicate": {
                "buildDefinition": {"buildType": "bt", "resolvedDependencies": [{"uri": "a"}]},
                "runDetails": {"builder": {"id": "b"}},
            }
        },
        "sha256:y",
    )
    assert attestations.provenance_summary(v1)["materials"] == 1
    assert attestations.provenance_summary(v1)["builder_id"] == "b"


def test_referrers_tag_and_descriptor() -> None:
    assert attestations.referrers_tag(IMAGE_A) == "sha256-" + "1" * 64
    entry = index()["manifests"][0]  # type: ignore[index]
    att = attestations.attestation_manifest(entry, [])
    desc = attestations.referrer_descriptor(att.raw)
    assert desc["artifactType"] == attestations.ARTIFACT_TYPE and desc["digest"] == att.digest
