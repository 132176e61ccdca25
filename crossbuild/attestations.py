"""Attestations in an image index, the way BuildKit stores them, and what they hold.

BuildKit attaches SBOMs and SLSA provenance to a multi-arch index as extra entries: one image
manifest per platform, with platform `unknown/unknown` and the annotations
`vnd.docker.reference.type=attestation-manifest` and `vnd.docker.reference.digest=<the platform
image's digest>`, whose layers are in-toto statements (`application/vnd.in-toto+json`, annotated
with `in-toto.io/predicate-type`). `docker buildx imagetools inspect --format '{{json .SBOM}}'`
and `{{json .Provenance}}` read exactly that. crossbuild writes its SBOMs in that form, merging
them with the provenance BuildKit already attached for the same platform, so one attestation
manifest per platform holds both. Each attestation manifest also names its image in `subject`
(OCI 1.1), so the referrers tag schema (`sha256-<hex>`) can attach it to a single-platform image
on a registry without the full index: that is how an offline bundle keeps its SBOMs attached.

[att] https://docs.docker.com/build/metadata/attestations/attestation-storage/
[intoto] in-toto Statement v0.1; SLSA provenance v0.2 and v1 predicates
[referrers] OCI distribution-spec 1.1, "Referrers Tag Schema"
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from crossbuild.oci.index import ATTESTATION_ANNOTATION, ATTESTATION_MANIFEST
from crossbuild.oci.mediatypes import OCI_INDEX, OCI_MANIFEST, Manifest
from crossbuild.oci.reference import Reference

REFERENCE_DIGEST = "vnd.docker.reference.digest"
INTOTO_MEDIA_TYPE = "application/vnd.in-toto+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
STATEMENT_TYPE = "https://in-toto.io/Statement/v0.1"  # what BuildKit writes for SBOMs and provenance v0.2
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ARTIFACT_TYPE = "application/vnd.docker.attestation.manifest.v1+json"
PROVENANCE_PREFIX = "https://slsa.dev/provenance/"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_bytes(data: object) -> bytes:
    """Manifest bytes as BuildKit writes them: two-space indented JSON, keys in the order given."""
    return json.dumps(data, indent=2).encode()


@dataclass(frozen=True)
class Blob:
    """Content to push as a blob, with the descriptor that names it."""

    data: bytes
    media_type: str
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> dict[str, Any]:
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}
        if self.annotations:
            desc["annotations"] = dict(self.annotations)
        return desc


def statement(predicate_type: str, predicate: Mapping[str, Any], subject_name: str, image_digest: str) -> Blob:
    """An in-toto statement about one platform image ([intoto]), as an attestation layer."""
    body = {
        "_type": STATEMENT_TYPE,
        "predicateType": predicate_type,
        "subject": [{"name": subject_name, "digest": {"sha256": image_digest.removeprefix("sha256:")}}],
        "predicate": predicate,
    }
    data = (json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    return Blob(data, INTOTO_MEDIA_TYPE, ((PREDICATE_ANNOTATION, predicate_type),))


@dataclass(frozen=True)
class AttestationManifest:
    """An attestation manifest for one platform image: its config, its layers, its own bytes."""

    config: Blob
    layers: tuple[Blob, ...]  # new layers (to push); carried ones are in `descriptors` only
    raw: bytes
    subject: str  # the platform image's digest

    @property
    def digest(self) -> str:
        return sha256(self.raw)

    def index_entry(self) -> dict[str, Any]:
        """The entry BuildKit puts in the index for it ([att])."""
        return {
            "mediaType": OCI_MANIFEST,
            "digest": self.digest,
            "size": len(self.raw),
            "annotations": {REFERENCE_DIGEST: self.subject, ATTESTATION_ANNOTATION: ATTESTATION_MANIFEST},
            "platform": {"architecture": "unknown", "os": "unknown"},
        }


def attestation_manifest(
    subject: Mapping[str, Any], new_layers: Sequence[Blob], carried: Sequence[Mapping[str, Any]] = ()
) -> AttestationManifest:
    """The attestation manifest of the image `subject` (its index descriptor): the layers an existing
    attestation manifest carried (BuildKit's provenance, by descriptor) followed by `new_layers`."""
    descriptors = [dict(d) for d in carried] + [b.descriptor() for b in new_layers]
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [str(d["digest"]) for d in descriptors]},
    }
    config_blob = Blob(json.dumps(config, sort_keys=True, separators=(",", ":")).encode(), OCI_CONFIG)
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config_blob.descriptor(),
        "layers": descriptors,
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
    }
    return AttestationManifest(config_blob, tuple(new_layers), json_bytes(body), str(subject["digest"]))


# --- an index's attestation entries ----------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry of an index, with its annotations (oci.index.PlatformEntry has none)."""

    digest: str
    media_type: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_attestation(self) -> bool:
        return self.annotations.get(ATTESTATION_ANNOTATION) == ATTESTATION_MANIFEST or (
            self.platform.get("os"),
            self.platform.get("architecture"),
        ) == ("unknown", "unknown")

    @property
    def subject(self) -> str:
        return str(self.annotations.get(REFERENCE_DIGEST, ""))


def entries(index: Mapping[str, Any]) -> list[Entry]:
    found = []
    for item in index.get("manifests") or []:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            continue
        annotations = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
        platform = item.get("platform") if isinstance(item.get("platform"), dict) else {}
        size = item["size"] if isinstance(item.get("size"), int) else 0
        found.append(
            Entry(item["digest"], str(item.get("mediaType") or ""), size, annotations or {}, platform or {}, item)
        )
    return found


def by_subject(index: Mapping[str, Any]) -> dict[str, Entry]:
    """Image digest -> the attestation manifest entry that refers to it."""
    return {e.subject: e for e in entries(index) if e.is_attestation and e.subject}


def rewrite_index(index: Mapping[str, Any], added: Sequence[AttestationManifest]) -> bytes:
    """The index with `added` in place of any earlier attestation manifest of the same images.

    Image entries keep their order; attestation entries follow them, as BuildKit writes them.
    Everything else (mediaType, annotations, entries of other kinds) is kept.
    """
    replaced = {a.subject for a in added}
    kept_images, kept_other = [], []
    for e in entries(index):
        if e.is_attestation:
            if e.subject not in replaced:
                kept_other.append(dict(e.raw))
        else:
            kept_images.append(dict(e.raw))
    body = {k: v for k, v in index.items() if k != "manifests"}
    body.setdefault("schemaVersion", 2)
    body["manifests"] = kept_images + [a.index_entry() for a in added] + kept_other
    return json_bytes(body)


def referrers_index(referrers: Sequence[Mapping[str, Any]]) -> bytes:
    """The referrers tag schema's index ([referrers]): one descriptor per manifest naming the subject."""
    return json_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(referrers)})


def referrers_tag(digest: str) -> str:
    """`sha256-<hex>`: where a registry without the referrers API keeps the referrers of `digest`."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"


def referrer_descriptor(raw: bytes) -> dict[str, Any]:
    """The referrers-index entry of a manifest with a subject: its artifactType and annotations."""
    data = json.loads(raw)
    desc: dict[str, Any] = {"mediaType": data.get("mediaType", OCI_MANIFEST), "digest": sha256(raw), "size": len(raw)}
    artifact = data.get("artifactType") or (data.get("config") or {}).get("mediaType")
    if artifact:
        desc["artifactType"] = artifact
    if isinstance(data.get("annotations"), dict):
        desc["annotations"] = data["annotations"]
    return desc


# --- reading statements ----------------------------------------------------------------------


class Reader(Protocol):
    def get_manifest(self, ref: Reference) -> Manifest: ...

    def get_blob(self, registry: str, repository: str, digest: str) -> bytes: ...


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    body: Mapping[str, Any]  # the whole statement
    layer: str  # its layer digest

    @property
    def predicate(self) -> Mapping[str, Any]:
        value = self.body.get("predicate")
        return value if isinstance(value, dict) else {}

    def subject_digests(self) -> list[str]:
        found = []
        for item in self.body.get("subject") or []:
            digest = (item.get("digest") or {}).get("sha256") if isinstance(item, dict) else None
            if isinstance(digest, str):
                found.append("sha256:" + digest)
        return found


def statement_layers(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(layer digest, predicate type) of each in-toto layer of an attestation manifest."""
    found = []
    for layer in manifest.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("mediaType") != INTOTO_MEDIA_TYPE:
            continue
        annotations = layer.get("annotations") if isinstance(layer.get("annotations"), dict) else {}
        found.append((str(layer.get("digest")), str((annotations or {}).get(PREDICATE_ANNOTATION, ""))))
    return found


def parse_statement(data: bytes, layer: str, predicate_type: str) -> Statement:
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError(f"attestation layer {layer} is not a JSON object")
    return Statement(str(body.get("predicateType") or predicate_type), body, layer)


def read_statements(client: Reader, ref: Reference, attestation_digest: str) -> list[Statement]:
    """Every in-toto statement of one attestation manifest, read from the registry."""
    manifest = client.get_manifest(ref.at(attestation_digest))
    found = []
    for digest, ptype in statement_layers(manifest.data):
        data = client.get_blob(ref.registry, ref.repository, digest)
        found.append(parse_statement(data, digest, ptype))
    return found


def provenance_summary(stmt: Statement) -> dict[str, Any]:
    """What verify reports of SLSA provenance: builder id, build type, materials count ([intoto] v0.2 / v1)."""
    pred = stmt.predicate
    if stmt.predicate_type.endswith("/v1"):
        definition = pred.get("buildDefinition") or {}
        builder = ((pred.get("runDetails") or {}).get("builder") or {}).get("id", "")
        materials = definition.get("resolvedDependencies") or []
        build_type = definition.get("buildType", "")
    else:
        builder = (pred.get("builder") or {}).get("id", "")
        materials = pred.get("materials") or []
        build_type = pred.get("buildType", "")
    return {
        "predicate_type": stmt.predicate_type,
        "builder_id": str(builder),
        "build_type": str(build_type),
        "materials": len(materials) if isinstance(materials, list) else 0,
    }
