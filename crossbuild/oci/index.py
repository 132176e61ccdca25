"""Image indexes: their entries, which of them are attestations, and the platforms a tag offers.

Platforms are spelled by crossbuild.platforms (normalise_platform / platform_of_config), the same
rules a user's PLATFORMS goes through, so an index saying `aarch64` or `arm64/v8` is linux/arm64.

[image] OCI image-spec image-index.md; buildx stores provenance/SBOM as extra index entries
(https://docs.docker.com/build/metadata/attestations/attestation-storage/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from crossbuild.errors import UserError
from crossbuild.oci.errors import NotFound
from crossbuild.oci.mediatypes import Manifest
from crossbuild.oci.reference import Reference
from crossbuild.platforms import Platform, normalise_platform, platform_of_config

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_MANIFEST = "attestation-manifest"


class ManifestReader(Protocol):
    """What the helpers below need from a client."""

    def get_manifest(self, ref: Reference) -> Manifest: ...

    def get_json_blob(self, registry: str, repository: str, digest: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PlatformEntry:
    """One manifest of an index; platform is None for attestations and entries without one."""

    platform: Platform | None
    digest: str
    media_type: str
    size: int
    is_attestation: bool


def index_entries(manifest_data: Mapping[str, Any]) -> list[PlatformEntry]:
    """The entries of an OCI index or Docker manifest list, in order, attestations flagged."""
    manifests = manifest_data.get("manifests")
    if not isinstance(manifests, list):
        raise UserError("not an image index: it has no 'manifests' list")
    entries = []
    for number, item in enumerate(manifests, 1):
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            raise UserError(f"image index entry {number} has no digest")
        plat = item.get("platform")
        plat = plat if isinstance(plat, dict) else {}
        annotations = item.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        os_, arch = str(plat.get("os") or ""), str(plat.get("architecture") or "")
        is_attestation = (os_, arch) == ("unknown", "unknown") or (
            annotations.get(ATTESTATION_ANNOTATION) == ATTESTATION_MANIFEST
        )
        platform = None
        if not is_attestation and os_ and arch and "unknown" not in (os_, arch):
            platform = normalise_platform(os_, arch, str(plat.get("variant") or ""))
        size = item.get("size")
        entries.append(
            PlatformEntry(
                platform=platform,
                digest=item["digest"],
                media_type=str(item.get("mediaType") or ""),
                size=size if isinstance(size, int) else 0,
                is_attestation=is_attestation,
            )
        )
    return entries


def image_entries(manifest_data: Mapping[str, Any]) -> list[PlatformEntry]:
    """The runnable images of an index: attestations and platform-less entries left out."""
    return [e for e in index_entries(manifest_data) if not e.is_attestation and e.platform is not None]


def config_digest(manifest: Manifest, ref: Reference) -> str:
    """The config blob an image manifest names; a UserError for anything that is not an image."""
    config = manifest.data.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str):
        raise UserError(f"image {ref} ({manifest.media_type}) has no config: it is not a container image manifest")
    return digest


def platforms_of(client: ManifestReader, ref: Reference) -> list[Platform]:
    """The platforms a tag offers: an index's image entries, or a single image's config platform."""
    manifest = client.get_manifest(ref)
    if manifest.is_index:
        found = [e.platform for e in image_entries(manifest.data) if e.platform is not None]
        return list(dict.fromkeys(found))  # Windows indexes repeat a platform per os.version
    config = client.get_json_blob(ref.registry, ref.repository, config_digest(manifest, ref))
    return [platform_of_config(config)]


def image_for_platform(client: ManifestReader, ref: Reference, platform: Platform) -> tuple[Manifest, dict[str, Any]]:
    """The image manifest and config JSON that a pull of `ref` for `platform` gets."""
    want = normalise_platform(platform.os, platform.arch, platform.variant)
    manifest = client.get_manifest(ref)
    if manifest.is_index:
        entries = image_entries(manifest.data)
        match = next((e for e in entries if e.platform == want), None)
        if match is None:
            offered = ", ".join(str(e.platform) for e in entries) or "no platforms"
            raise NotFound(
                f"image {ref} has no {want} image; it has {offered}",
                host=ref.registry,
                reference=str(ref),
                reason=f"no {want} image",
            )
        manifest = client.get_manifest(ref.at(match.digest))
        if manifest.is_index:
            raise UserError(f"image {ref}: the {want} entry is itself an index, which crossbuild does not nest")
        return manifest, client.get_json_blob(ref.registry, ref.repository, config_digest(manifest, ref))
    config = client.get_json_blob(ref.registry, ref.repository, config_digest(manifest, ref))
    actual = platform_of_config(config)
    if actual != want:
        raise NotFound(
            f"image {ref} is a single {actual} image, not {want}",
            host=ref.registry,
            reference=str(ref),
            reason=f"a single {actual} image",
        )
    return manifest, config
