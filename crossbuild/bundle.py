"""Offline bundles: one release's images for one platform in one .tar.gz, for air-gapped servers.

`create` reads everything through the registry API (no docker daemon): for each
service image (its version tag) and each third-party image it picks the
manifest of the bundle's platform and writes, per platform,
`<output>/bundles/<project>-<version>-<os>-<arch>[-<variant>].tar.gz`:

    <name>/README.md       what this is and how to import it, for the operator
    <name>/manifest.json   the bundle manifest (BundleManifest): refs, manifest digests, sizes, platform
    <name>/images/         ONE OCI image layout holding every image, blobs stored once:
        oci-layout, index.json, blobs/sha256/<hex>
        manifest.json      docker-archive index (RepoTags, Config, Layers -> blobs/sha256/<hex>),
                           what `docker load` (20.10 and later) reads; the same blobs, nothing copied
    <name>/SHA256SUMS      sha256 of every other file, `sha256sum -c` format; written last

The manifest bytes are stored exactly as the registry served them, so pushing
them back gives the same digests. `load` extracts the archive to a temporary
directory while hashing it, refuses it (one line) unless every checksum and
every cross-reference holds, and only then pushes to a registry (blob upload
[dist] end-4a/end-6, manifest PUT end-7) or runs `docker load`.

References:
  [layout] OCI image-spec image-layout.md;  [dist] OCI distribution-spec spec.md (endpoint ids end-N)
  [archive] docker's docker-archive format: moby image/tarexport (manifest.json: Config, RepoTags, Layers)
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import tarfile
import tempfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from crossbuild import output, runner
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.platforms import Platform
from crossbuild.registry import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    Manifest,
    Reference,
    RegistryClient,
    api_host,
    index_entries,
    normalise_platform,
    parse_reference,
    platform_of_config,
)
from crossbuild.version import tag_safe

FORMAT = "crossbuild-bundle/v1"
IMAGES_DIR = "images"
SUMS_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"
README_FILE = "README.md"
OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}  # [layout] oci-layout
REF_NAME = "org.opencontainers.image.ref.name"  # [layout] index.json: skopeo's oci:<dir>:<ref name>
CONTAINERD_NAME = "io.containerd.image.name"  # containerd / docker's containerd store use this name
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
_HEX64 = re.compile(r"[a-f0-9]{64}")
_SUMS_LINE = re.compile(r"([a-f0-9]{64}) [ *](.+)")
_CHUNK = 1 << 20
_KEEP_MAX = 4 << 20  # small JSON files (manifests, indexes) are kept in memory for the cross-checks
_META_MAX = 16 << 20  # SHA256SUMS and manifest.json larger than this are not ours
_LIST_MAX = 5  # names shown in one error line


# --- the bundle manifest ---------------------------------------------------------


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
        }


@dataclass(frozen=True)
class BundleManifest:
    """manifest.json at the top of a bundle."""

    project: str
    version: str
    platform: Platform
    created: str
    images: tuple[BundleImage, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "project": self.project,
            "version": self.version,
            "platform": str(self.platform),
            "created": self.created,
            "layout": IMAGES_DIR,
            "images": [i.to_json() for i in self.images],
        }

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: object) -> BundleManifest:
        """Parse and validate; any problem is a UserError naming the field."""
        if not isinstance(data, dict):
            raise UserError(f"{MANIFEST_FILE} is not a JSON object")
        if data.get("format") != FORMAT:
            raise UserError(f"{MANIFEST_FILE}: format {data.get('format')!r} is not {FORMAT!r}")
        raw_images = data.get("images")
        if not isinstance(raw_images, list) or not raw_images:
            raise UserError(f"{MANIFEST_FILE}: 'images' must be a non-empty list")
        images = tuple(_image_from_json(item, n) for n, item in enumerate(raw_images))
        return cls(
            project=_field(data, "project", str, MANIFEST_FILE),
            version=_field(data, "version", str, MANIFEST_FILE),
            platform=platform_from_text(_field(data, "platform", str, MANIFEST_FILE)),
            created=_field(data, "created", str, MANIFEST_FILE),
            images=images,
        )


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{where}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f"{where}: '{key}' must be a string or null, got {value!r}")
    return value


def _check_sha256(digest: str, where: str) -> str:
    if not digest.startswith("sha256:") or not _HEX64.fullmatch(digest[7:]):
        raise UserError(f"{where}: '{digest}' is not a sha256:<64 hex> digest")
    return digest


def _image_from_json(item: object, n: int) -> BundleImage:
    where = f"{MANIFEST_FILE}: images[{n}]"
    if not isinstance(item, dict):
        raise UserError(f"{where} is not an object")
    ref = _field(item, "ref", str, where)
    parse_reference(ref)  # a bad reference is a UserError naming it
    return BundleImage(
        ref=ref,
        digest=_check_sha256(_field(item, "digest", str, where), where),
        media_type=_field(item, "mediaType", str, where),
        size=_field(item, "size", int, where),
        platform=str(platform_from_text(_field(item, "platform", str, where))),
        config=_check_sha256(_field(item, "config", str, where), where),
        layers=_field(item, "layers", int, where),
        total_size=_field(item, "totalSize", int, where),
        service=_optional_str(item, "service", where),
        index_digest=_optional_str(item, "indexDigest", where),
    )


def platform_from_text(text: str) -> Platform:
    """os/arch[/variant] as written in a bundle (no `go tool dist list` needed on the server)."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(f"platform '{text}' is not os/arch[/variant]")
    return normalise_platform(*parts)


def bundle_name(project: str, version: str, platform: Platform) -> str:
    """<project>-<version>-<os>-<arch>[-<variant>], safe as a file and directory name."""
    return f"{tag_safe(project)}-{tag_safe(version)}-{platform.slug}"


def bundle_path(cfg: Config, platform: Platform) -> Path:
    return cfg.output_dir / "bundles" / f"{bundle_name(cfg.name, cfg.version.version, platform)}.tar.gz"


def blob_path(digest: str) -> str:
    """Where a blob lives inside the bundle, relative to its top directory ([layout] blobs)."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{IMAGES_DIR}/blobs/{algorithm}/{hexpart}"


# --- resolving what goes in (read only) -------------------------------------------


@dataclass(frozen=True)
class _Descriptor:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class _Resolved:
    ref: Reference
    service: str | None
    platform: Platform
    manifest: Manifest
    index_digest: str | None
    config: _Descriptor
    layers: tuple[_Descriptor, ...]

    def entry(self) -> BundleImage:
        return BundleImage(
            ref=str(self.ref),
            digest=self.manifest.digest,
            media_type=self.manifest.media_type,
            size=len(self.manifest.raw),
            platform=str(self.platform),
            config=self.config.digest,
            layers=len(self.layers),
            total_size=len(self.manifest.raw) + self.config.size + sum(d.size for d in self.layers),
            service=self.service,
            index_digest=self.index_digest,
        )


def _descriptor(value: object, what: str) -> _Descriptor:
    if not isinstance(value, dict):
        raise UserError(f"{what} is not a descriptor")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UserError(f"{what} has no digest or size")
    _check_sha256(digest, what)
    return _Descriptor(digest, size, str(value.get("mediaType") or ""))


def _image_parts(manifest: Manifest, where: str) -> tuple[_Descriptor, tuple[_Descriptor, ...]]:
    if manifest.media_type not in IMAGE_MANIFEST_TYPES:
        raise UserError(f"{where} is a {manifest.media_type}, not an OCI or Docker v2 image manifest")
    layers = manifest.data.get("layers")
    if not isinstance(layers, list):
        raise UserError(f"{where} has no layers list")
    config = _descriptor(manifest.data.get("config"), f"{where}: config")
    return config, tuple(_descriptor(item, f"{where}: layer {n}") for n, item in enumerate(layers, 1))


def _resolve(client: RegistryClient, ref: Reference, service: str | None, platform: Platform) -> _Resolved | str:
    """The image `ref` offers for `platform`, or why it offers none (one phrase)."""
    want = normalise_platform(platform.os, platform.arch, platform.variant)
    top = client.get_manifest(ref)
    if top.is_index:
        entries = [e for e in index_entries(top.data) if not e.is_attestation and e.platform is not None]
        match = next((e for e in entries if e.platform == want), None)
        if match is None:
            offered = ", ".join(dict.fromkeys(str(e.platform) for e in entries)) or "no platforms"
            return f"lacks {want} (has {offered})"
        manifest = client.get_manifest(Reference(ref.registry, ref.repository, None, match.digest))
        config, layers = _image_parts(manifest, f"{ref} ({want})")
        return _Resolved(ref, service, want, manifest, top.digest, config, layers)
    config, layers = _image_parts(top, str(ref))
    actual = platform_of_config(client.get_json_blob(ref.registry, ref.repository, config.digest))
    if actual != want:
        return f"lacks {want} (a single {actual} image)"
    return _Resolved(ref, service, want, top, None, config, layers)


def _wanted(cfg: Config, extra_images: Sequence[str]) -> list[tuple[Reference, str | None]]:
    """(reference, service name or None), services first, each reference once."""
    wanted: dict[str, tuple[Reference, str | None]] = {}
    for svc in cfg.selected_images():
        ref = parse_reference(f"{cfg.image_ref(svc)}:{cfg.image_tags(svc)[0]}")
        wanted.setdefault(str(ref), (ref, svc.name))
    for text in extra_images:
        ref = parse_reference(text)
        wanted.setdefault(str(ref), (ref, None))
    return list(wanted.values())


def resolve_all(
    client: RegistryClient, wanted: Sequence[tuple[Reference, str | None]], platforms: Sequence[Platform]
) -> dict[Platform, list[_Resolved]]:
    """Every image for every platform, or one UserError listing every image that cannot be bundled."""
    found: dict[Platform, list[_Resolved]] = {}
    problems: list[str] = []
    for platform in platforms:
        found[platform] = []
        for ref, service in wanted:
            try:
                result = _resolve(client, ref, service, platform)
            except UserError as exc:  # not found, denied, unreachable: listed with the others
                problems.append(str(exc) if str(ref) in str(exc) else f"{ref}: {exc}")
                continue
            if isinstance(result, str):
                problems.append(f"{ref} {result}")
            else:
                found[platform].append(result)
    if problems:
        problems = list(dict.fromkeys(problems))
        raise UserError(f"{len(problems)} image problem(s), no bundle written: " + "; ".join(problems))
    return found


# --- writing --------------------------------------------------------------------


def _json_bytes(data: object) -> bytes:
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
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}


def docker_archive_manifest(images: Sequence[BundleImage], layers: Mapping[str, Sequence[str]]) -> list[Any]:
    """images/manifest.json in docker-archive form; `layers` maps a manifest digest to its layer digests."""
    return [
        {
            "Config": blob_path(img.config).removeprefix(f"{IMAGES_DIR}/"),
            "RepoTags": [img.docker_tag] if img.docker_tag else [],
            "Layers": [blob_path(d).removeprefix(f"{IMAGES_DIR}/") for d in layers[img.digest]],
        }
        for img in images
    ]


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

    invoke bundle.load {name}.tar.gz --registry HOST:PORT        # add --insecure for a self-signed TLS certificate

Images keep their repository path: `{ref.registry}/{ref.repository}` becomes `HOST:PORT/{ref.repository}`.
Without crossbuild, per image (skopeo >= 1.6):

    skopeo copy --preserve-digests oci:images:{first.docker_tag or first.ref} docker://HOST:PORT/{dest}

## 2b. Into the local docker daemon (docker 20.10 or later)

    invoke bundle.load {name}.tar.gz

Without crossbuild, from the extracted directory:

    tar -C images -cf - . | docker load

## Layout
- `manifest.json`: this bundle: project, version, platform and, per image, reference, manifest digest,
  media type and size, config digest (the docker image ID), layer count, total bytes.
- `images/`: one OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`) holding every image;
  `index.json` names each image in `org.opencontainers.image.ref.name`.
- `images/manifest.json`: the same images in docker-archive form (`RepoTags`, `Config`, `Layers`
  pointing into `blobs/sha256/`), which is what `docker load` reads; nothing is stored twice.
- `SHA256SUMS`: sha256 of every other file.
"""


def _tarinfo(name: str, size: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, dirs: set[str], top: str, rel: str, data: bytes, mtime: int) -> None:
    """Add top/rel, preceded by each of its directories the first time one is seen."""
    parts = rel.split("/")
    for depth in range(len(parts)):
        parent = "/".join([top, *parts[:depth]])
        if parent not in dirs:
            dirs.add(parent)
            tar.addfile(_tarinfo(parent + "/", 0, mtime, directory=True))
    tar.addfile(_tarinfo(f"{top}/{rel}", len(data), mtime), io.BytesIO(data))


def write_archive(path: Path, top: str, entries: Iterable[tuple[str, bytes]], mtime: int = 0) -> dict[str, str]:
    """Write `entries` (relative path, content) under `top/` into a gzip'd tar, then SHA256SUMS
    over all of them, atomically (a .partial file renamed at the end). Returns path -> sha256 hex."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    sums: dict[str, str] = {}
    dirs: set[str] = set()
    try:
        with (
            partial.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for rel, data in entries:
                if rel in sums or rel == SUMS_FILE:
                    raise ValueError(f"bundle file {rel} written twice")
                sums[rel] = hashlib.sha256(data).hexdigest()
                _add_file(tar, dirs, top, rel, data, mtime)
            _add_file(tar, dirs, top, SUMS_FILE, sums_text(sums).encode(), mtime)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return sums


def sums_text(sums: Mapping[str, str]) -> str:
    """`sha256sum` output: '<hex>  <path>' per file, sorted by path."""
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items()))


BlobSource = Callable[[BundleImage, str], bytes]  # (image, blob digest) -> the blob's bytes


def layout_entries(
    manifest: BundleManifest, name: str, raw_manifests: Mapping[str, bytes], blob: BlobSource
) -> Iterator[tuple[str, bytes]]:
    """Every file of a bundle but SHA256SUMS, in archive order: README, manifest.json, the OCI layout
    and docker-archive index, then each blob once. `raw_manifests` maps a manifest digest to its exact
    bytes; `blob` fetches a config or layer, checked here against its descriptor's digest and size."""
    parts = {}
    for img in manifest.images:
        raw = raw_manifests[img.digest]
        if _sha256(raw) != img.digest:
            raise UserError(f"the manifest bytes of {img.ref} do not hash to {img.digest}")
        parts[img.digest] = _image_parts(Manifest(img.media_type, img.digest, raw, json.loads(raw)), img.ref)
    layer_map = {digest: [d.digest for d in layers] for digest, (_, layers) in parts.items()}
    yield README_FILE, readme(manifest, name).encode()
    yield MANIFEST_FILE, manifest.dumps()
    yield f"{IMAGES_DIR}/oci-layout", _json_bytes(OCI_LAYOUT)
    yield f"{IMAGES_DIR}/index.json", _json_bytes(oci_index(manifest.images))
    yield f"{IMAGES_DIR}/manifest.json", _json_bytes(docker_archive_manifest(manifest.images, layer_map))
    seen: set[str] = set()
    for img in manifest.images:
        if img.digest not in seen:
            seen.add(img.digest)
            yield blob_path(img.digest), raw_manifests[img.digest]
        config, layers = parts[img.digest]
        for desc in (config, *layers):
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            data = blob(img, desc.digest)
            if len(data) != desc.size or _sha256(data) != desc.digest:
                raise UserError(
                    f"blob {desc.digest} of {img.ref} does not match its descriptor "
                    f"({len(data)} bytes, {desc.size} expected): push the image again"
                )
            yield blob_path(desc.digest), data


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _registry_blob(client: RegistryClient) -> BlobSource:
    def fetch(img: BundleImage, digest: str) -> bytes:
        ref = img.reference
        return client.get_blob(ref.registry, ref.repository, digest)

    return fetch


def _epoch(cfg: Config) -> int:
    try:
        return cfg.version.epoch
    except ValueError:
        return 0


def create(
    cfg: Config, client: RegistryClient, platforms: Sequence[Platform], extra_images: Sequence[str] = ()
) -> list[Path]:
    """Write one bundle per platform; every image is checked for every platform before anything is written."""
    if not platforms:
        raise UserError("no platform to bundle: give PLATFORMS=linux/arm64 (or --platform)")
    wanted = _wanted(cfg, extra_images)
    if not wanted:
        raise UserError("nothing to bundle: no service selected and no extra image given")
    platforms = list(dict.fromkeys(normalise_platform(p.os, p.arch, p.variant) for p in platforms))
    output.step(f"bundle {len(wanted)} image(s) x {', '.join(map(str, platforms))} (version {cfg.version.version})")
    resolved = resolve_all(client, wanted, platforms)
    written = []
    for platform in platforms:
        images = resolved[platform]
        path = bundle_path(cfg, platform)
        name = path.name.removesuffix(".tar.gz")
        manifest = BundleManifest(
            project=cfg.name,
            version=cfg.version.version,
            platform=platform,
            created=cfg.version.date,
            images=tuple(r.entry() for r in images),
        )
        total = sum(i.total_size for i in manifest.images)
        if runner.OPTIONS.dry_run:
            output.info(f"[dry-run] would write {path}: {len(images)} image(s), {output.human_size(total)} of blobs")
            written.append(path)
            continue
        raw_manifests = {r.manifest.digest: r.manifest.raw for r in images}
        entries = layout_entries(manifest, name, raw_manifests, _registry_blob(client))
        write_archive(path, name, entries, mtime=_epoch(cfg))
        for img in manifest.images:
            output.info(f"{img.ref}  {img.digest}  {output.human_size(img.total_size)}")
        output.ok(f"wrote {path} ({output.human_size(path.stat().st_size)})")
        written.append(path)
    return written


# --- reading and verifying --------------------------------------------------------


@dataclass
class _Scan:
    top: str = ""
    hashes: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 hex
    sizes: dict[str, int] = field(default_factory=dict)
    kept: dict[str, bytes] = field(default_factory=dict)  # metadata files and small manifests/indexes


def _corrupt(path: Path, problem: str) -> UserError:
    return UserError(f"{path}: corrupt bundle, {problem}; nothing was imported: copy the archive again")


def _few(names: Iterable[str]) -> str:
    items = sorted(names)
    shown = ", ".join(items[:_LIST_MAX])
    return shown + (f" and {len(items) - _LIST_MAX} more" if len(items) > _LIST_MAX else "")


def _member_parts(path: Path, name: str) -> list[str]:
    if name.startswith("/") or "\\" in name:
        raise _corrupt(path, f"member '{name}' has an absolute or Windows path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise _corrupt(path, f"member '{name}' leaves the bundle directory")
    return parts


def _keep(rel: str, data: bytes) -> bool:
    """Keep the metadata files and anything small that parses as a manifest or index."""
    if rel in (SUMS_FILE, MANIFEST_FILE) or (rel.startswith(f"{IMAGES_DIR}/") and "/blobs/" not in rel):
        return True
    if len(data) > _KEEP_MAX or not data.startswith(b"{"):
        return False
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and ("layers" in doc or "manifests" in doc)


def _copy_member(src: IO[bytes], rel: str, dest: Path | None, limit: int) -> tuple[str, int, bytes]:
    """Hash a member while writing it under dest; return (hex, size, content if at most `limit` bytes else b'')."""
    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    with contextlib.ExitStack() as stack:
        target: IO[bytes] | None = None
        if dest is not None:
            out = dest / rel
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                target = stack.enter_context(out.open("xb"))
            except OSError as exc:
                raise UserError(f"cannot write {out}: {exc.strerror}; set TMPDIR to a disk with room") from exc
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if size <= limit:
                head += chunk
            if target is not None:
                try:
                    target.write(chunk)
                except OSError as exc:
                    raise UserError(
                        f"cannot write under {dest}: {exc.strerror}; set TMPDIR to a disk with room"
                    ) from exc
    return digest.hexdigest(), size, bytes(head) if size <= limit else b""


def _read(path: Path, dest: Path | None) -> _Scan:
    """One pass over the archive: check member names, hash every file, extract under dest if given."""
    if not path.is_file():
        raise UserError(f"{path}: no such bundle file")
    scan = _Scan()
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                parts = _member_parts(path, member.name)
                if not scan.top:
                    scan.top = parts[0]
                elif parts[0] != scan.top:
                    raise _corrupt(path, f"members outside the bundle directory {scan.top}/ ({member.name})")
                rel = "/".join(parts[1:])
                if member.isdir():
                    continue
                if not member.isfile():
                    raise _corrupt(path, f"{member.name} is a link or special file, not a regular file")
                if not rel:
                    raise _corrupt(path, f"{member.name} is a file where the bundle directory belongs")
                if rel in scan.hashes:
                    raise _corrupt(path, f"{rel} appears twice")
                src = tar.extractfile(member)
                if src is None:
                    raise _corrupt(path, f"{member.name} cannot be read")
                limit = _META_MAX if rel in (SUMS_FILE, MANIFEST_FILE) else _KEEP_MAX
                hexdigest, size, head = _copy_member(src, rel, dest, limit)
                scan.hashes[rel], scan.sizes[rel] = hexdigest, size
                if head and _keep(rel, head):
                    scan.kept[rel] = head
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise _corrupt(path, f"the archive is truncated or damaged ({reason})") from None
    if not scan.hashes:
        raise _corrupt(path, "it holds no files")
    return scan


def _check_sums(path: Path, scan: _Scan) -> None:
    if SUMS_FILE not in scan.hashes:
        raise _corrupt(path, f"{SUMS_FILE} is missing (truncated, or not a crossbuild bundle)")
    if SUMS_FILE not in scan.kept:
        raise _corrupt(path, f"{SUMS_FILE} is too large to be a bundle's")
    expected: dict[str, str] = {}
    try:
        text = scan.kept[SUMS_FILE].decode("utf-8")
    except UnicodeDecodeError:
        raise _corrupt(path, f"{SUMS_FILE} is not text") from None
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUMS_LINE.fullmatch(line)
        if match is None or match.group(2) in expected:
            raise _corrupt(path, f"{SUMS_FILE} line {number} is malformed")
        expected[match.group(2)] = match.group(1)
    present = {rel for rel in scan.hashes if rel != SUMS_FILE}
    missing = set(expected) - present
    if missing:
        raise _corrupt(path, f"{len(missing)} file(s) listed in {SUMS_FILE} are missing: {_few(missing)}")
    extra = present - set(expected)
    if extra:
        raise _corrupt(path, f"{len(extra)} file(s) are not listed in {SUMS_FILE}: {_few(extra)}")
    bad = [rel for rel, digest in expected.items() if scan.hashes[rel] != digest]
    if bad:
        raise _corrupt(path, f"checksum mismatch for {_few(bad)}")


def _check_structure(path: Path, scan: _Scan) -> BundleManifest:
    """Cross-check manifest.json, index.json and every manifest against the blobs present."""
    if MANIFEST_FILE not in scan.kept:
        raise _corrupt(path, f"{MANIFEST_FILE} is missing or too large")
    try:
        manifest = BundleManifest.from_json(json.loads(scan.kept[MANIFEST_FILE]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _corrupt(path, f"{MANIFEST_FILE} is not valid JSON ({exc})") from None
    except UserError as exc:
        raise _corrupt(path, str(exc)) from None
    for rel, hexdigest in scan.hashes.items():
        if rel.startswith(f"{IMAGES_DIR}/blobs/") and (
            not rel.startswith(f"{IMAGES_DIR}/blobs/sha256/") or rel.rsplit("/", 1)[1] != hexdigest
        ):
            raise _corrupt(path, f"blob {rel} does not hash to its name")
    for rel in (f"{IMAGES_DIR}/oci-layout", f"{IMAGES_DIR}/index.json", f"{IMAGES_DIR}/manifest.json"):
        if rel not in scan.kept:
            raise _corrupt(path, f"{rel} is missing")
    try:
        index = json.loads(scan.kept[f"{IMAGES_DIR}/index.json"])
        listed = {e.digest for e in index_entries(index)}
    except (ValueError, UnicodeDecodeError, UserError) as exc:
        raise _corrupt(path, f"{IMAGES_DIR}/index.json is not an image index ({exc})") from None
    for img in manifest.images:
        rel = blob_path(img.digest)
        if img.digest not in listed:
            raise _corrupt(path, f"{img.ref} is not in {IMAGES_DIR}/index.json")
        if rel not in scan.kept or scan.sizes[rel] != img.size:
            raise _corrupt(path, f"the manifest of {img.ref} ({rel}) is missing or has the wrong size")
        try:
            data = json.loads(scan.kept[rel])
        except (ValueError, UnicodeDecodeError):
            raise _corrupt(path, f"the manifest of {img.ref} is not JSON") from None
        try:
            config, layers = _image_parts(Manifest(img.media_type, img.digest, scan.kept[rel], data), img.ref)
        except UserError as exc:
            raise _corrupt(path, str(exc)) from None
        if config.digest != img.config or len(layers) != img.layers:
            raise _corrupt(path, f"the manifest of {img.ref} does not match {MANIFEST_FILE}")
        for desc in (config, *layers):
            blob = blob_path(desc.digest)
            if scan.sizes.get(blob) != desc.size:
                raise _corrupt(path, f"blob {desc.digest} of {img.ref} is missing or has the wrong size")
    return manifest


def verify_archive(path: Path) -> BundleManifest:
    """Read the whole archive once and check it: checksums, then every cross-reference. No extraction."""
    scan = _read(path, None)
    _check_sums(path, scan)
    return _check_structure(path, scan)


# --- loading ----------------------------------------------------------------------


class _BlobPusher:
    """Blob uploads ([dist] end-4a POST, end-6 PUT ?digest=, end-11 cross-repository mount).

    RegistryClient has no upload call, so this borrows its request machinery (_request:
    scheme probing, TLS settings, bearer/basic auth from docker's config, redirects).
    """

    def __init__(self, client: RegistryClient, registry: str) -> None:
        self.client = client
        self.registry = registry
        self.where: dict[str, str] = {}  # blob digest -> a repository on this registry that has it

    def _scope(self, repository: str) -> str:
        return f"repository:{repository}:pull,push"

    def exists(self, repository: str, digest: str) -> bool:
        resp = self.client._request(
            "HEAD", self.registry, f"/v2/{repository}/blobs/{digest}", scope=self._scope(repository)
        )
        if resp.status in (200, 404):
            return resp.status == 200
        raise self.client._fail(resp, self.registry, f"blob {digest} of {self.registry}/{repository}", action="push")

    def push(self, repository: str, digest: str, file: Path) -> bool:
        """Upload unless present; True when bytes were sent."""
        if self.exists(repository, digest):
            self.where.setdefault(digest, repository)
            return False
        start = f"/v2/{repository}/blobs/uploads/"
        source = self.where.get(digest)
        if source is not None and source != repository:
            start += "?" + urllib.parse.urlencode({"mount": digest, "from": source})
        what = f"{self.registry}/{repository}"
        resp = self.client._request("POST", self.registry, start, scope=self._scope(repository), data=b"")
        if resp.status == 201:  # mounted from another repository, nothing to send
            self.where.setdefault(digest, repository)
            return False
        if resp.status != 202 or not resp.header("location"):
            raise self.client._fail(resp, self.registry, f"a blob upload to {what}", action="push")
        target = urllib.parse.urlsplit(urllib.parse.urljoin(start, resp.header("location")))
        query = "&".join(q for q in (target.query, urllib.parse.urlencode({"digest": digest})) if q)
        data = file.read_bytes()
        headers = {"Content-Type": "application/octet-stream"}
        if target.netloc in ("", api_host(self.registry)):
            resp = self.client._request(
                "PUT",
                self.registry,
                f"{target.path}?{query}",
                scope=self._scope(repository),
                headers=headers,
                data=data,
            )
        else:  # the registry hands uploads to another host (signed URL): no registry credentials go there
            url = urllib.parse.urlunsplit((target.scheme, target.netloc, target.path, query, ""))
            resp = self.client._follow("PUT", self.registry, url, headers, data)
        if resp.status not in (201, 204):
            raise self.client._fail(resp, self.registry, f"blob {digest} to {what}", action="push")
        self.where.setdefault(digest, repository)
        return True


def _check_registry(registry: str) -> str:
    host = registry.strip()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.rstrip("/")
    if not host or "/" in host:
        raise UserError(f"--registry {registry}: give HOST:PORT only, e.g. 127.0.0.1:5000 or registry.lan:443")
    try:
        parsed = parse_reference(f"{host}/x")
    except UserError:
        raise UserError(f"--registry {registry}: not a HOST[:PORT]") from None
    if parsed.registry != host:
        raise UserError(f"--registry {registry}: not a HOST[:PORT] (a bare name needs a '.' or ':port')")
    return host


def _push(root: Path, manifest: BundleManifest, registry: str, client: RegistryClient) -> list[tuple[str, str]]:
    pusher = _BlobPusher(client, registry)
    imported = []
    for img in manifest.images:
        src = img.reference
        raw = (root / blob_path(img.digest)).read_bytes()
        data = json.loads(raw)
        config, layers = _image_parts(Manifest(img.media_type, img.digest, raw, data), img.ref)
        sent = 0
        for desc in (config, *layers):
            if pusher.push(src.repository, desc.digest, root / blob_path(desc.digest)):
                sent += desc.size
        reference = src.tag or img.digest
        stored = client.put_manifest(registry, src.repository, reference, raw, img.media_type)
        if stored != img.digest:
            raise UserError(f"{registry}/{src.repository}:{reference} was stored as {stored}, not {img.digest}")
        target = f"{registry}/{src.repository}" + (f":{src.tag}" if src.tag else f"@{img.digest}")
        output.ok(f"{target} -> {img.digest} ({output.human_size(sent)} sent)")
        imported.append((target, img.digest))
    return imported


def _docker_load(root: Path, manifest: BundleManifest, scratch: Path) -> list[tuple[str, str]]:
    archive = scratch / "docker-archive.tar"
    with tarfile.open(archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in sorted((root / IMAGES_DIR).rglob("*")):
            tar.add(item, arcname=item.relative_to(root / IMAGES_DIR).as_posix(), recursive=False)
    runner.run(
        ["docker", "load", "-i", str(archive)],
        hint="is dockerd running and may you use it? (or push to a registry with --registry HOST:PORT)",
    )
    imported = []
    for img in manifest.images:
        name = img.docker_tag
        if name is None or runner.OPTIONS.dry_run:
            image_id = img.config
        else:
            image_id = runner.output(["docker", "image", "inspect", "--format", "{{.Id}}", name])
        output.ok(f"{name or img.ref} -> {image_id}")
        imported.append((name or img.ref, image_id))
    return imported


def load(path: Path, registry: str | None, client: RegistryClient | None) -> list[tuple[str, str]]:
    """Verify the whole bundle, then push it to `registry` (digests kept) or `docker load` it.

    Returns (imported reference, digest): the manifest digest for a registry, the image ID
    (`docker image inspect .Id`) for the docker daemon. Nothing is imported unless every check passes.
    """
    host = _check_registry(registry) if registry is not None else None
    if host is not None:  # a wrong address fails now, not after minutes of checksums
        client = client or RegistryClient()
        client.probe(host)
    output.step(f"check {path}")
    with tempfile.TemporaryDirectory(prefix="crossbuild-bundle-") as tmp:
        scratch = Path(tmp)
        extracted = scratch / "bundle"
        scan = _read(path, extracted)
        _check_sums(path, scan)
        manifest = _check_structure(path, scan)
        root = extracted  # members are written without the top directory
        output.ok(
            f"{len(scan.hashes)} files verified: {manifest.project} {manifest.version} {manifest.platform}, "
            f"{len(manifest.images)} image(s)"
        )
        if host is not None:
            output.step(f"push {len(manifest.images)} image(s) to {host}")
            if runner.OPTIONS.dry_run:
                for img in manifest.images:
                    output.info(f"[dry-run] would push {img.ref} ({img.digest}) to {host}/{img.reference.repository}")
                return []
            return _push(root, manifest, host, client or RegistryClient())
        output.step(f"docker load {len(manifest.images)} image(s)")
        return _docker_load(root, manifest, scratch)
