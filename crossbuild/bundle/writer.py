"""Making bundles: read each image for one platform through the registry API, write one .tar.gz.

No docker daemon is involved. Every file's size and sha256 are known before a byte of the archive is
written (blobs are named by their digests, the metadata is generated), so SHA256SUMS goes FIRST and a
reader can check each member as it streams past instead of after extracting everything.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossbuild import output
from crossbuild.bundle.format import (
    DOCKER_MANIFEST_FILE,
    MANIFEST_FILE,
    OCI_INDEX_FILE,
    OCI_LAYOUT,
    OCI_LAYOUT_FILE,
    README_FILE,
    SUMS_FILE,
    BundleImage,
    BundleManifest,
    Descriptor,
    blob_path,
    bundle_name,
    docker_archive_manifest,
    image_parts,
    json_bytes,
    oci_index,
    readme,
    sums_text,
)
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.platforms import Platform
from crossbuild.registry import (
    Manifest,
    Reference,
    RegistryClient,
    index_entries,
    normalise_platform,
    parse_reference,
    platform_of_config,
)
from crossbuild.runner import Runner


def bundle_path(cfg: Config, platform: Platform) -> Path:
    return cfg.output_dir / "bundles" / f"{bundle_name(cfg.name, cfg.version.version, platform)}.tar.gz"


# --- resolving what goes in (read only) -------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    ref: Reference
    service: str | None
    platform: Platform
    manifest: Manifest
    index_digest: str | None
    config: Descriptor
    layers: tuple[Descriptor, ...]

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
        config, layers = image_parts(manifest, f"{ref} ({want})")
        return _Resolved(ref, service, want, manifest, top.digest, config, layers)
    config, layers = image_parts(top, str(ref))
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


# --- the files of a bundle ----------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file of a bundle, described before its bytes exist (so SHA256SUMS can be written first)."""

    rel: str  # path under the bundle's top directory
    sha256: str  # hex
    size: int
    content: Callable[[], bytes]  # called once, while the archive is written

    @classmethod
    def of(cls, rel: str, data: bytes) -> Entry:
        return cls(rel, hashlib.sha256(data).hexdigest(), len(data), lambda: data)


BlobSource = Callable[[BundleImage, str], bytes]  # (image, blob digest) -> the blob's bytes


def layout_entries(
    manifest: BundleManifest, name: str, raw_manifests: Mapping[str, bytes], blob: BlobSource
) -> list[Entry]:
    """Every file of a bundle but SHA256SUMS, in archive order: manifest.json, README, the OCI layout and
    docker-archive index, every image manifest, then each config and layer once. `raw_manifests` maps a
    manifest digest to its exact bytes; `blob` fetches a config or layer when the archive is written."""
    parts = {}
    for img in manifest.images:
        raw = raw_manifests[img.digest]
        if "sha256:" + hashlib.sha256(raw).hexdigest() != img.digest:
            raise UserError(f"the manifest bytes of {img.ref} do not hash to {img.digest}")
        parts[img.digest] = image_parts(Manifest(img.media_type, img.digest, raw, json.loads(raw)), img.ref)
    layer_map = {digest: [d.digest for d in layers] for digest, (_, layers) in parts.items()}
    entries = [
        Entry.of(MANIFEST_FILE, manifest.dumps()),
        Entry.of(README_FILE, readme(manifest, name).encode()),
        Entry.of(OCI_LAYOUT_FILE, json_bytes(OCI_LAYOUT)),
        Entry.of(OCI_INDEX_FILE, json_bytes(oci_index(manifest.images))),
        Entry.of(DOCKER_MANIFEST_FILE, json_bytes(docker_archive_manifest(manifest.images, layer_map))),
    ]
    seen: set[str] = set()
    for img in manifest.images:  # all manifests first: a reader knows every size before the first layer
        if img.digest not in seen:
            seen.add(img.digest)
            entries.append(Entry.of(blob_path(img.digest), raw_manifests[img.digest]))
    for img in manifest.images:
        config, layers = parts[img.digest]
        for desc in (config, *layers):
            if desc.digest not in seen:
                seen.add(desc.digest)
                entries.append(_blob_entry(img, desc, blob))
    return entries


def _blob_entry(img: BundleImage, desc: Descriptor, blob: BlobSource) -> Entry:
    return Entry(blob_path(desc.digest), desc.digest.removeprefix("sha256:"), desc.size, lambda: blob(img, desc.digest))


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


def write_archive(path: Path, top: str, entries: Iterable[Entry], mtime: int = 0) -> dict[str, str]:
    """Write SHA256SUMS, then `entries`, under `top/` into a gzip'd tar, atomically (a .partial file
    renamed at the end). Each entry's bytes must match the size and sha256 it declared, or nothing is
    written. Returns path -> sha256 hex."""
    entries = list(entries)
    sums: dict[str, str] = {}
    for entry in entries:
        if entry.rel in sums or entry.rel == SUMS_FILE:
            raise ValueError(f"bundle file {entry.rel} written twice")
        sums[entry.rel] = entry.sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    dirs: set[str] = set()
    try:
        with (
            partial.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            _add_file(tar, dirs, top, SUMS_FILE, sums_text(sums).encode(), mtime)
            for entry in entries:
                data = entry.content()
                if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
                    raise UserError(
                        f"{entry.rel} does not match its descriptor ({len(data)} bytes, {entry.size} expected, "
                        "or other content): push the image again"
                    )
                _add_file(tar, dirs, top, entry.rel, data, mtime)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return sums


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
    run: Runner,
    cfg: Config,
    client: RegistryClient,
    platforms: Sequence[Platform],
    extra_images: Sequence[str] = (),
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
        raw_manifests = {r.manifest.digest: r.manifest.raw for r in images}

        def write(
            path: Path = path,
            name: str = name,
            manifest: BundleManifest = manifest,
            raw_manifests: dict[str, bytes] = raw_manifests,
        ) -> Path:
            entries = layout_entries(manifest, name, raw_manifests, _registry_blob(client))
            write_archive(path, name, entries, mtime=_epoch(cfg))
            for img in manifest.images:
                output.info(f"{img.ref}  {img.digest}  {output.human_size(img.total_size)}")
            output.ok(f"wrote {path} ({output.human_size(path.stat().st_size)})")
            return path

        run.act(f"write {path}: {len(images)} image(s), {output.human_size(total)} of blobs", write)
        written.append(path)
    return written
