"""Media types of manifests and indexes, and the Manifest as a registry serves it.

[image] OCI image-spec media-types.md, manifest.md, image-index.md, plus Docker's schema2
equivalents, which registries still serve for images pushed by older tools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
OCTET_STREAM = "application/octet-stream"
# [dist] "Pulling manifests": the client SHOULD list the manifest types it understands.
ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


# [image] media-types.md: layers compressed with gzip or zstd (`+gzip`, `+zstd`; Docker's `.tar.gzip`)
_COMPRESSED_SUFFIXES = ("+gzip", "+zstd", ".gzip", ".zstd")


def is_compressed(media_type: str) -> bool:
    """A blob gzip or zstd compressed already: compressing it again only costs time."""
    return media_type.split(";", 1)[0].strip().endswith(_COMPRESSED_SUFFIXES)


def is_index(media_type: str) -> bool:
    """OCI image index or Docker manifest list: a list of per-platform manifests."""
    return media_type.split(";", 1)[0].strip() in INDEX_MEDIA_TYPES


def manifest_media_type(content_type: str, data: Mapping[str, Any]) -> str:
    """The Content-Type when it names a manifest type, else the body's mediaType ([image] manifest.md)."""
    declared = content_type.split(";", 1)[0].strip()
    if declared in MANIFEST_MEDIA_TYPES:
        return declared
    inner = data.get("mediaType")
    if isinstance(inner, str) and inner:
        return inner
    if data.get("schemaVersion") == 1 or "schema1" in declared or "prettyjws" in declared:
        return declared or DOCKER_MANIFEST_V1
    # mediaType is optional in OCI manifests; the shape tells index from image.
    return OCI_INDEX if "manifests" in data else OCI_MANIFEST


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as the registry holds it (raw) and parsed (data)."""

    media_type: str
    digest: str
    raw: bytes
    data: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return is_index(self.media_type)
