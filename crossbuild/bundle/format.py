"""The bundle format (crossbuild-bundle/v1): file names, manifest.json, and the layout files derived from it.

Everything here is pure: the create side writes these files and the load side regenerates them
from verified content to compare, so both agree by construction. Nothing here needs a Config:
the load side runs on an air-gapped host that has only the archive.

References:
  [layout] OCI image-spec image-layout.md
  [archive] docker's docker-archive format: moby image/tarexport (manifest.json: Config, RepoTags, Layers)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crossbuild.errors import UserError
from crossbuild.oci import IMAGE_MANIFEST_TYPES, OCI_INDEX, Manifest, Reference, parse_reference
from crossbuild.platforms import Platform, normalise_platform
from crossbuild.version import tag_safe

FORMAT = "crossbuild-bundle/v1"
IMAGES_DIR = "images"
SUMS_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"
README_FILE = "README.md"
OCI_LAYOUT_FILE = f"{IMAGES_DIR}/oci-layout"
OCI_INDEX_FILE = f"{IMAGES_DIR}/index.json"
DOCKER_MANIFEST_FILE = f"{IMAGES_DIR}/manifest.json"
BLOBS_DIR = f"{IMAGES_DIR}/blobs/sha256"
DEPLOY_DIR = "deploy"  # compose / Kubernetes files pinned to the bundle's images, when configured
# Every file a bundle holds besides its blobs and the deploy files manifest.json lists; anything else is refused.
META_FILES = (SUMS_FILE, MANIFEST_FILE, README_FILE, OCI_LAYOUT_FILE, OCI_INDEX_FILE, DOCKER_MANIFEST_FILE)
DIRECTORIES = (IMAGES_DIR, f"{IMAGES_DIR}/blobs", BLOBS_DIR, DEPLOY_DIR)
_DEPLOY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.(ya?ml)")
META_MAX = 16 << 20  # no metadata file of a real bundle comes near this
IMAGE_MANIFEST_MAX = 4 << 20  # [dist] registries refuse manifests over 4 MiB

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}  # [layout] oci-layout
REF_NAME = "org.opencontainers.image.ref.name"  # [layout] index.json: skopeo's oci:<dir>:<ref name>
CONTAINERD_NAME = "io.containerd.image.name"  # containerd / docker's containerd store use this name
_HEX64 = re.compile(r"[a-f0-9]{64}")
_SUMS_LINE = re.compile(r"([a-f0-9]{64}) [ *](.+)")
_PLATFORM_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS.update({u: 1024 ** (n + 1) for n, u in enumerate(("k", "m", "g", "t"))})
_UNITS.update({u + "ib": 1024 ** (n + 1) for n, u in enumerate(("k", "m", "g", "t"))})


@dataclass(frozen=True)
class Ref:
    """A manifest of the supply chain (an index, an attestation or signature manifest) stored as a blob."""

    digest: str
    size: int
    media_type: str
    signs: str = ""  # a signature manifest: the digest it signs

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest, "size": self.size, "mediaType": self.media_type}
        if self.signs:
            data["signs"] = self.signs
        return data


@dataclass(frozen=True)
class Supply:
    """What proves an image: the multi-arch index it came from, its attestation manifest (SBOM and
    provenance) and the cosign signature manifests of the index and of the image."""

    index: Ref | None = None
    attestation: Ref | None = None
    signatures: tuple[Ref, ...] = ()

    def refs(self) -> list[Ref]:
        return [r for r in (self.index, self.attestation) if r is not None] + list(self.signatures)

    def signature_of(self, digest: str) -> Ref | None:
        return next((r for r in self.signatures if r.signs == digest), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index.to_json() if self.index else None,
            "attestation": self.attestation.to_json() if self.attestation else None,
            "signatures": [r.to_json() for r in self.signatures],
        }


@dataclass(frozen=True)
class BundleImage:
    """One image of a bundle, as manifest.json records it."""

    ref: str  # where it was read from, normalised: registry/repository[:tag][@digest]
    digest: str  # the platform image manifest's digest: kept when pushed, so the same on every registry
    media_type: str  # of that manifest
    size: int  # bytes of that manifest
    platform: str  # os/arch[/variant]
    config: str  # config digest (the image ID docker's classic store shows)
    layers: int
    total_size: int  # manifest + config + layers, as stored in the bundle
    service: str | None = None  # the crossbuild service, None for a third-party image
    index_digest: str | None = None  # the multi-arch index it was picked from, if any
    supply: Supply | None = None  # signatures, SBOM and provenance carried with it

    @property
    def reference(self) -> Reference:
        return parse_reference(self.ref)

    @property
    def docker_tag(self) -> str | None:
        """registry/repository:tag for `docker load` (RepoTags needs a tag), None for digest-only refs."""
        ref = self.reference
        return f"{ref.registry}/{ref.repository}:{ref.tag}" if ref.tag else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "service": self.service,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "platform": self.platform,
            "config": self.config,
            "layers": self.layers,
            "totalSize": self.total_size,
            "indexDigest": self.index_digest,
            **({"supply": self.supply.to_json()} if self.supply is not None else {}),
        }


@dataclass(frozen=True)
class BundleManifest:
    """manifest.json at the top of a bundle."""

    project: str
    version: str
    platform: Platform
    created: str
    images: tuple[BundleImage, ...]
    # deploy/<name> files (compose, Kubernetes) with every image pinned to the bundle's, platform set
    deploy: tuple[str, ...] = ()
    public_key: str | None = None  # fingerprint (sha256 of the DER key) of the key the images were signed with

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "project": self.project,
            "version": self.version,
            "platform": str(self.platform),
            "created": self.created,
            "layout": IMAGES_DIR,
            "images": [i.to_json() for i in self.images],
        }
        if self.deploy:  # absent otherwise: a bundle without deploy files is byte for byte what it was
            data["deploy"] = list(self.deploy)
        if self.public_key is not None:
            data["publicKey"] = self.public_key
        return data

    def supply_refs(self) -> list[tuple[Ref, str]]:
        """Every supply manifest once, with the image that carries it first."""
        seen: dict[str, tuple[Ref, str]] = {}
        for img in self.images:
            for ref in img.supply.refs() if img.supply is not None else []:
                seen.setdefault(ref.digest, (ref, img.ref))
        return list(seen.values())

    def dumps(self) -> bytes:
        return json_bytes(self.to_json())

    @classmethod
    def from_json(cls, data: object) -> BundleManifest:
        """Parse and validate; any problem is a UserError naming the field."""
        if not isinstance(data, dict):
            raise UserError(f"{MANIFEST_FILE} is not a JSON object")
        if data.get("format") != FORMAT:
            raise UserError(f"{MANIFEST_FILE}: format {_show(data.get('format'))} is not {FORMAT!r}")
        raw_images = data.get("images")
        if not isinstance(raw_images, list) or not raw_images:
            raise UserError(f"{MANIFEST_FILE}: 'images' must be a non-empty list")
        images = tuple(_image_from_json(item, n) for n, item in enumerate(raw_images))
        refs = [img.ref for img in images]
        twice = sorted({r for r in refs if refs.count(r) > 1})
        if twice:
            raise UserError(f"{MANIFEST_FILE}: image {twice[0]} is listed twice")
        return cls(
            project=_field(data, "project", str, MANIFEST_FILE),
            version=_field(data, "version", str, MANIFEST_FILE),
            platform=platform_from_text(_field(data, "platform", str, MANIFEST_FILE)),
            created=_field(data, "created", str, MANIFEST_FILE),
            images=images,
            deploy=_deploy_list(data.get("deploy", [])),
            public_key=_optional_str(data, "publicKey", MANIFEST_FILE),
        )


def deploy_path(name: str) -> str:
    """deploy/<name>: a plain file name ending in .yml or .yaml, or a UserError."""
    if not _DEPLOY_NAME.fullmatch(name):
        raise UserError(f"deploy file {_show(name)} is not a plain .yml/.yaml file name")
    return f"{DEPLOY_DIR}/{name}"


def _deploy_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{MANIFEST_FILE}: 'deploy' must be a list of file names")
    paths = tuple(v for v in value if isinstance(v, str))
    for path in paths:
        if not path.startswith(f"{DEPLOY_DIR}/") or deploy_path(path.removeprefix(f"{DEPLOY_DIR}/")) != path:
            raise UserError(f"{MANIFEST_FILE}: deploy file {_show(path)} is not deploy/<name>.yml")
    if len(set(paths)) != len(paths):
        raise UserError(f"{MANIFEST_FILE}: a deploy file is listed twice")
    return paths


def _show(value: object) -> str:
    """A value from an archive, quoted and cut short so an error stays one readable line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    negative = isinstance(value, int) and value < 0
    if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or negative)):
        article = "a non-negative int" if kind is int else f"a {kind.__name__}"
        raise UserError(f"{where}: '{key}' must be {article}, got {_show(value)}")
    return value


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f"{where}: '{key}' must be a string or null, got {_show(value)}")
    return value


def check_sha256(digest: str, where: str) -> str:
    if not digest.startswith("sha256:") or not _HEX64.fullmatch(digest[7:]):
        raise UserError(f"{where}: {_show(digest)} is not a sha256:<64 hex> digest")
    return digest


def _image_from_json(item: object, n: int) -> BundleImage:
    where = f"{MANIFEST_FILE}: images[{n}]"
    if not isinstance(item, dict):
        raise UserError(f"{where} is not an object")
    ref = _field(item, "ref", str, where)
    parse_reference(ref)  # a bad reference is a UserError naming it
    media_type = _field(item, "mediaType", str, where)
    if media_type not in IMAGE_MANIFEST_TYPES:
        raise UserError(f"{where}: mediaType {_show(media_type)} is not an OCI or Docker v2 image manifest")
    return BundleImage(
        ref=ref,
        digest=check_sha256(_field(item, "digest", str, where), where),
        media_type=media_type,
        size=_field(item, "size", int, where),
        platform=str(platform_from_text(_field(item, "platform", str, where))),
        config=check_sha256(_field(item, "config", str, where), where),
        layers=_field(item, "layers", int, where),
        total_size=_field(item, "totalSize", int, where),
        service=_optional_str(item, "service", where),
        index_digest=_optional_str(item, "indexDigest", where),
        supply=_supply_from_json(item.get("supply"), where) if item.get("supply") is not None else None,
    )


def _ref_from_json(item: object, where: str, signature: bool = False) -> Ref:
    if not isinstance(item, dict):
        raise UserError(f"{where} is not an object")
    signs = check_sha256(_field(item, "signs", str, where), where) if signature else ""
    return Ref(
        digest=check_sha256(_field(item, "digest", str, where), where),
        size=_field(item, "size", int, where),
        media_type=_field(item, "mediaType", str, where),
        signs=signs,
    )


def _supply_from_json(item: object, where: str) -> Supply:
    where = f"{where}.supply"
    if not isinstance(item, dict):
        raise UserError(f"{where} is not an object")
    sigs = item.get("signatures") or []
    if not isinstance(sigs, list):
        raise UserError(f"{where}: 'signatures' must be a list")
    index, attestation = item.get("index"), item.get("attestation")
    return Supply(
        index=_ref_from_json(index, f"{where}.index") if index is not None else None,
        attestation=_ref_from_json(attestation, f"{where}.attestation") if attestation is not None else None,
        signatures=tuple(_ref_from_json(r, f"{where}.signatures[{n}]", True) for n, r in enumerate(sigs)),
    )


def platform_from_text(text: str) -> Platform:
    """os/arch[/variant] as written in a bundle (no `go tool dist list` needed on the server)."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(_PLATFORM_PART.fullmatch(p) for p in parts):
        raise UserError(f"platform {_show(text)} is not os/arch[/variant]")
    return normalise_platform(*parts)


def bundle_name(project: str, version: str, platform: Platform) -> str:
    """<project>-<version>-<os>-<arch>[-<variant>], safe as a file and directory name."""
    return f"{tag_safe(project)}-{tag_safe(version)}-{platform.slug}"


def blob_path(digest: str) -> str:
    """Where a blob lives inside the bundle, relative to its top directory ([layout] blobs)."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{IMAGES_DIR}/blobs/{algorithm}/{hexpart}"


def blob_digest(rel: str) -> str | None:
    """The digest a blob path names, or None when `rel` is not images/blobs/sha256/<64 hex>."""
    folder, _, name = rel.rpartition("/")
    return f"sha256:{name}" if folder == BLOBS_DIR and _HEX64.fullmatch(name) else None


# --- image manifests ---------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    digest: str
    size: int
    media_type: str


def descriptor(value: object, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise UserError(f"{what} is not a descriptor")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UserError(f"{what} has no digest or size")
    check_sha256(digest, what)
    return Descriptor(digest, size, str(value.get("mediaType") or ""))


def image_parts(manifest: Manifest, where: str) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """(config, layers) of an image manifest; a UserError for anything that is not one."""
    if manifest.media_type not in IMAGE_MANIFEST_TYPES:
        raise UserError(f"{where} is a {_show(manifest.media_type)}, not an OCI or Docker v2 image manifest")
    layers = manifest.data.get("layers")
    if not isinstance(layers, list):
        raise UserError(f"{where} has no layers list")
    config = descriptor(manifest.data.get("config"), f"{where}: config")
    return config, tuple(descriptor(item, f"{where}: layer {n}") for n, item in enumerate(layers, 1))


def supply_blobs(ref: Ref, raw: bytes, where: str) -> tuple[Descriptor, ...]:
    """The blobs a supply manifest names: config and layers of an attestation or signature manifest; an
    index names only manifests (its other platforms are not in the bundle), so none."""
    if ref.media_type not in IMAGE_MANIFEST_TYPES:
        return ()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UserError(f"{where} is not JSON") from None
    if not isinstance(data, dict):
        raise UserError(f"{where} is not a JSON object")
    config, layers = image_parts(Manifest(ref.media_type, ref.digest, raw, data), where)
    return (config, *layers)


# --- files derived from manifest.json ----------------------------------------------


def json_bytes(data: object) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def oci_index(images: Sequence[BundleImage]) -> dict[str, Any]:
    """images/index.json: one descriptor per image, named for skopeo's oci: and containerd ([layout])."""
    manifests = []
    for img in images:
        plat = platform_from_text(img.platform)
        platform: dict[str, str] = {"architecture": plat.arch, "os": plat.os}
        if plat.variant:
            platform["variant"] = plat.variant
        name = img.docker_tag or img.ref
        manifests.append(
            {
                "mediaType": img.media_type,
                "digest": img.digest,
                "size": img.size,
                "platform": platform,
                "annotations": {REF_NAME: name, CONTAINERD_NAME: name},
            }
        )
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}


def docker_archive_manifest(images: Sequence[BundleImage], layers: Mapping[str, Sequence[str]]) -> list[Any]:
    """images/manifest.json in docker-archive form ([archive]); `layers` maps a manifest digest to its
    layer digests. This is all `docker load` reads, so it must only ever come from verified content."""
    return [
        {
            "Config": blob_path(img.config).removeprefix(f"{IMAGES_DIR}/"),
            "RepoTags": [img.docker_tag] if img.docker_tag else [],
            "Layers": [blob_path(d).removeprefix(f"{IMAGES_DIR}/") for d in layers[img.digest]],
        }
        for img in images
    ]


def sums_text(sums: Mapping[str, str]) -> str:
    """`sha256sum` output: '<hex>  <path>' per file, sorted by path."""
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items()))


def parse_sums(data: bytes) -> dict[str, str]:
    """SHA256SUMS back into path -> hex; a UserError naming the first bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{SUMS_FILE} is not text") from None
    expected: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUMS_LINE.fullmatch(line)
        if match is None or match.group(2) in expected:
            raise UserError(f"{SUMS_FILE} line {number} is malformed")
        expected[match.group(2)] = match.group(1)
    return expected


def parse_size(text: str, what: str) -> int:
    """Bytes from '8GiB', '500MB', '2g' or '1048576': KiB/MiB/GiB and bare K/M/G are powers of 1024,
    KB/MB/GB powers of 1000."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UserError(f"{what} {text!r} is not a size: give bytes or a size such as 20GiB or 500MB")
    return int(float(match.group(1)) * _UNITS[unit])


def readme(manifest: BundleManifest, name: str) -> str:
    rows = "\n".join(f"| {img.ref} | {img.digest} | {img.total_size} |" for img in manifest.images)
    first = manifest.images[0]
    ref = first.reference
    dest = f"{ref.repository}:{ref.tag}" if ref.tag else f"{ref.repository}@{first.digest}"
    return f"""# {manifest.project} {manifest.version} for {manifest.platform}: offline image bundle

{len(manifest.images)} container image(s) for **{manifest.platform}**, made by crossbuild ({FORMAT}).
No network access is needed to import them.

| image | manifest digest (kept when pushed) | bytes |
|---|---|---|
{rows}

## 1. Check the archive
`invoke bundle.load` checks every file before importing anything. By hand:

    tar -xzf {name}.tar.gz && cd {name} && sha256sum -c SHA256SUMS

## 2a. Into a private registry, digests preserved

    invoke bundle.load {name}.tar.gz --registry HOST:PORT

Add `--insecure` when the registry's TLS certificate is self-signed, `--plain-http` when it
speaks plain HTTP (no TLS at all). Images keep their repository path:
`{ref.registry}/{ref.repository}` becomes `HOST:PORT/{ref.repository}`.
Without crossbuild, per image (skopeo >= 1.6):

    skopeo copy --preserve-digests oci:images:{first.docker_tag or first.ref} docker://HOST:PORT/{dest}

## 2b. Into the local docker daemon (docker 20.10 or later)

    invoke bundle.load {name}.tar.gz

Without crossbuild, from the extracted directory:

    tar -C images -cf - . | docker load

{_deploy_readme(manifest, name)}## Signatures, SBOMs and provenance
Images signed at build time carry, in this bundle, their cosign signatures, the multi-arch index
that was signed, and the attestation manifest holding the SBOM (and SLSA provenance) of each image.
`manifest.json` names the key they were signed with (`publicKey`: the sha256 of the DER public key).
Check every signature here, with Python alone and no network, before anything is imported:

    invoke bundle.load {name}.tar.gz --key cosign.pub [--registry HOST:PORT]

Pushed to a registry, each image keeps its signature (tag `sha256-<digest>.sig`, so `cosign verify
--key cosign.pub --insecure-ignore-tlog=true HOST:PORT/REPO:TAG` holds there) and its SBOM (the
attestation manifest, listed under the referrers tag `sha256-<digest>`).

## Layout
- `SHA256SUMS`: sha256 of every other file (first in the archive, so a reader checks each file as it comes).
- `manifest.json`: this bundle: project, version, platform and, per image, reference, manifest digest,
  media type and size, config digest (the docker image ID), layer count, total bytes.
- `images/`: one OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) holding every image;
  `index.json` names each image in `org.opencontainers.image.ref.name`.
- `images/manifest.json`: the same images in docker-archive form (`RepoTags`, `Config`, `Layers`
  pointing into `blobs/sha256/`), which is what `docker load` reads; nothing is stored twice.
"""


def _deploy_readme(manifest: BundleManifest, name: str) -> str:
    if not manifest.deploy:
        return ""
    files = ", ".join(f"`{d}`" for d in manifest.deploy)
    return f"""## 3. Deploy
{files}: this release's deployment files with every image pinned by digest to this bundle's and
(compose) `platform: {manifest.platform}` set. `invoke bundle.load` writes them, rewritten to where the
images went, into `{name}-deploy/` (or `--deploy-dir`): then `docker compose -f {name}-deploy/<file> up -d`
or `kubectl apply -f {name}-deploy/`.

"""
