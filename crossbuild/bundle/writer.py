"""Making bundles: read each image for one platform through the registry API, write one .tar.gz.

No docker daemon is involved. Every file's size and sha256 are known before a byte of the archive is
written (blobs are named by their digests, the metadata is generated), so SHA256SUMS goes FIRST and a
reader can check each member as it streams past instead of after extracting everything.

Blobs stream from the registry into files beside the archive, BLOB_PARALLEL at a time and in archive
order ahead of the writer (_Prefetch), and from there into the archive; each file is removed once
written, so memory stays bounded by the chunk size and extra disk by the blobs in flight.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from crossbuild import attestations, heap, hosts, output, resolve, signatures
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
    Ref,
    Supply,
    blob_path,
    bundle_name,
    deploy_path,
    docker_archive_manifest,
    image_parts,
    json_bytes,
    oci_index,
    readme,
    sums_text,
    supply_blobs,
)
from crossbuild.bundle.gzipstream import COMPRESSED, STORED, GzipWriter
from crossbuild.compose import compose_variables
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.oci import (
    Client,
    CorruptContent,
    Manifest,
    NotFound,
    Reference,
    RegistryError,
    image_entries,
    is_compressed,
    parse_reference,
)
from crossbuild.platforms import Platform, normalise_platform, platform_of_config
from crossbuild.runner import Runner

BLOB_PARALLEL = 4  # blobs downloaded at once while a bundle is written
_COPY_SIZE = 1 << 20  # bytes tarfile copies from a blob file at once (its default, 16 KiB, costs calls)


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
    supply: Supply | None = None
    supply_raw: tuple[tuple[str, bytes], ...] = ()  # digest -> bytes of each supply manifest

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
            supply=self.supply,
        )


def _image_parts(manifest: Manifest, ref: Reference, where: str) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """image_parts, its refusal typed as what it is here: registry content that is not an image."""
    try:
        return image_parts(manifest, where)
    except UserError as exc:
        raise CorruptContent(
            str(exc), host=ref.registry, reference=str(ref), reason="not an image manifest"
        ) from None  # its message names `where`, which starts with the reference


def _manifest_ref(manifest: Manifest, signs: str = "") -> Ref:
    return Ref(manifest.digest, len(manifest.raw), manifest.media_type, signs)


def _supply(
    client: Client, ref: Reference, index: Manifest | None, image: str
) -> tuple[Supply | None, dict[str, bytes]]:
    """The signatures (of the index and of the image), the index and the image's attestation manifest."""
    raw: dict[str, bytes] = {}
    sigs = []
    for digest in ([index.digest] if index is not None else []) + [image]:
        try:
            sig = client.get_manifest(Reference(ref.registry, ref.repository, signatures.signature_tag(digest), None))
        except NotFound:
            continue
        raw[sig.digest] = sig.raw
        sigs.append(_manifest_ref(sig, digest))
    attestation = None
    if index is not None:
        entry = attestations.by_subject(index.data).get(image)
        if entry is not None:
            att = client.get_manifest(ref.at(entry.digest))
            raw[att.digest] = att.raw
            attestation = _manifest_ref(att)
    if not sigs and attestation is None:
        return None, {}
    index_ref = None
    if index is not None:
        raw[index.digest] = index.raw
        index_ref = _manifest_ref(index)
    return Supply(index_ref, attestation, tuple(sigs)), raw


def _resolve(client: Client, ref: Reference, service: str | None, platform: Platform) -> _Resolved | str:
    """The image `ref` offers for `platform`, or why it offers none (one phrase)."""
    want = normalise_platform(platform.os, platform.arch, platform.variant)
    top = client.get_manifest(ref)
    if top.is_index:
        entries = image_entries(top.data)
        match = next((e for e in entries if e.platform == want), None)
        if match is None:
            offered = ", ".join(dict.fromkeys(str(e.platform) for e in entries)) or "no platforms"
            return f"lacks {want} (has {offered})"
        manifest = client.get_manifest(ref.at(match.digest))
        config, layers = _image_parts(manifest, ref, f"{ref} ({want})")
        supply, raw = _supply(client, ref, top, manifest.digest)
        return _Resolved(ref, service, want, manifest, top.digest, config, layers, supply, tuple(raw.items()))
    config, layers = _image_parts(top, ref, str(ref))
    actual = platform_of_config(client.get_json_blob(ref.registry, ref.repository, config.digest))
    if actual != want:
        return f"lacks {want} (a single {actual} image)"
    supply, raw = _supply(client, ref, None, top.digest)
    return _Resolved(ref, service, want, top, None, config, layers, supply, tuple(raw.items()))


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
    client: Client, wanted: Sequence[tuple[Reference, str | None]], platforms: Sequence[Platform]
) -> dict[Platform, list[_Resolved]]:
    """Every image for every platform, or one UserError listing every image that cannot be bundled."""
    found: dict[Platform, list[_Resolved]] = {}
    problems: list[str] = []
    for platform in platforms:
        found[platform] = []
        for ref, service in wanted:
            try:
                result = _resolve(client, ref, service, platform)
            except RegistryError as exc:  # not found, denied, unreachable: listed with the others
                about_ref = exc.names_reference and exc.reference == str(ref)
                problems.append(str(exc) if about_ref else f"{ref}: {exc}")
                continue
            except UserError as exc:  # an index or config that is not an image's
                problems.append(f"{ref}: {exc}")
                continue
            if isinstance(result, str):
                problems.append(f"{ref} {result}")
            else:
                found[platform].append(result)
    if problems:
        problems = list(dict.fromkeys(problems))
        raise UserError(f"{len(problems)} image problem(s), no bundle written: " + "; ".join(problems))
    return found


# --- deployment files ([bundle] compose, kubernetes) ---------------------------------


@dataclass(frozen=True)
class _Source:
    path: Path
    text: str
    variables: dict[str, str]  # what a compose file's ${VAR}s see here


def deploy_sources(cfg: Config) -> list[_Source]:
    """[bundle] compose and kubernetes files, read now (a missing one is a UserError)."""
    sources = []
    names: set[str] = set()
    for rel in ([cfg.bundle_compose] if cfg.bundle_compose else []) + list(cfg.bundle_kubernetes):
        path = (cfg.root / rel).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"[bundle] {rel}: cannot read {path} ({exc})") from exc
        deploy_path(path.name)  # a name the bundle format accepts
        if path.name in names:
            raise UserError(f"[bundle]: two deployment files are named {path.name}; rename one")
        names.add(path.name)
        kind = resolve.kind(text, str(path))
        variables = compose_variables(path, dict(os.environ)) if kind == resolve.COMPOSE else {}
        sources.append(_Source(path, text, variables))
    return sources


def _service_ref(cfg: Config, ref: Reference) -> Reference | None:
    """The bundle's reference of the service image `ref` names, or None for a third-party image."""
    for svc in cfg.selected_images():
        own = parse_reference(cfg.image_ref(svc))
        same = own.registry == ref.registry or (hosts.is_loopback(own.registry) and hosts.is_loopback(ref.registry))
        if same and own.repository == ref.repository:
            return parse_reference(f"{cfg.image_ref(svc)}:{cfg.image_tags(svc)[0]}")
    return None


def deploy_images(cfg: Config, sources: Sequence[_Source]) -> list[str]:
    """The third-party images the deployment files name: the bundle carries them too."""
    extra = []
    for src in sources:
        for found in resolve.find(src.text, str(src.path), src.variables)[1]:
            ref = parse_reference(found.image)
            if _service_ref(cfg, ref) is None:
                extra.append(found.image)
    return extra


def pin_deploy_files(
    cfg: Config, sources: Sequence[_Source], images: Sequence[_Resolved], platform: Platform
) -> dict[str, bytes]:
    """deploy/<name> -> the file with each image pinned to the bundle's manifest of `platform`
    (REGISTRY/REPOSITORY@sha256:...; bundle.load rewrites REGISTRY) and compose's platform: set."""
    by_ref = {str(r.ref): r for r in images}

    def pin(found: resolve.Found) -> str | None:
        ref = parse_reference(found.image)
        bundled = by_ref.get(str(_service_ref(cfg, ref) or ref))
        if bundled is None:
            return None
        return f"{bundled.ref.registry}/{bundled.ref.repository}@{bundled.manifest.digest}"

    out = {}
    for src in sources:
        text, _changes = resolve.rewrite(src.text, str(src.path), pin, variables=src.variables, platform=str(platform))
        out[deploy_path(src.path.name)] = text.encode()
    return out


# --- the files of a bundle ----------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file of a bundle, described before its bytes exist (so SHA256SUMS can be written first)."""

    rel: str  # path under the bundle's top directory
    sha256: str  # hex
    size: int
    content: Callable[[], bytes | Path]  # called once, while the archive is written: the bytes, or a file of them
    compress: bool = True  # False for a layer gzip or zstd compressed already: stored as it is (gzipstream.py)
    checked: bool = False  # content() gives a file hashed to sha256 as it arrived (a verified download)

    @classmethod
    def of(cls, rel: str, data: bytes) -> Entry:
        return cls(rel, hashlib.sha256(data).hexdigest(), len(data), lambda: data)


BlobSource = Callable[[BundleImage, str], bytes | Path]  # (image, blob digest) -> the blob's bytes or a file of them
_Parts = dict[str, tuple[Descriptor, tuple[Descriptor, ...]]]


def _parts(manifest: BundleManifest, raw_manifests: Mapping[str, bytes]) -> _Parts:
    """(config, layers) of every image, from manifest bytes that must hash to the digests recorded."""
    parts = {}
    for img in manifest.images:
        raw = raw_manifests[img.digest]
        if "sha256:" + hashlib.sha256(raw).hexdigest() != img.digest:
            raise UserError(f"the manifest bytes of {img.ref} do not hash to {img.digest}")
        parts[img.digest] = image_parts(Manifest(img.media_type, img.digest, raw, json.loads(raw)), img.ref)
    return parts


def blob_order(manifest: BundleManifest, raw_manifests: Mapping[str, bytes]) -> list[tuple[BundleImage, Descriptor]]:
    """Each config and layer once, with the image that names it first, in the order the archive holds them:
    the images' blobs, then those of their supply manifests (attestation layers, signature payloads)."""
    parts = _parts(manifest, raw_manifests)
    seen = {img.digest for img in manifest.images} | {ref.digest for ref, _ in manifest.supply_refs()}
    order = []
    for img in manifest.images:
        config, layers = parts[img.digest]
        for desc in (config, *layers):
            if desc.digest not in seen:
                seen.add(desc.digest)
                order.append((img, desc))
    by_ref = {img.ref: img for img in manifest.images}
    for ref, owner in manifest.supply_refs():
        for desc in supply_blobs(ref, raw_manifests[ref.digest], f"{owner}: {ref.digest}"):
            if desc.digest not in seen:
                seen.add(desc.digest)
                order.append((by_ref[owner], desc))
    return order


def layout_entries(
    manifest: BundleManifest,
    name: str,
    raw_manifests: Mapping[str, bytes],
    blob: BlobSource,
    deploy: Mapping[str, bytes] | None = None,
    checked: bool = False,
) -> list[Entry]:
    """Every file of a bundle but SHA256SUMS, in archive order: manifest.json, README, the OCI layout and
    docker-archive index, every image manifest, then each config and layer once. `raw_manifests` maps a
    manifest digest to its exact bytes; `blob` fetches a config or layer when the archive is written
    (`checked`: as a file it verified against the digest on arrival, which the writer need not hash again)."""
    parts = _parts(manifest, raw_manifests)
    layer_map = {digest: [d.digest for d in layers] for digest, (_, layers) in parts.items()}
    entries = [
        Entry.of(MANIFEST_FILE, manifest.dumps()),
        Entry.of(README_FILE, readme(manifest, name).encode()),
        *(Entry.of(rel, (deploy or {})[rel]) for rel in manifest.deploy),
        Entry.of(OCI_LAYOUT_FILE, json_bytes(OCI_LAYOUT)),
        Entry.of(OCI_INDEX_FILE, json_bytes(oci_index(manifest.images))),
        Entry.of(DOCKER_MANIFEST_FILE, json_bytes(docker_archive_manifest(manifest.images, layer_map))),
    ]
    seen: set[str] = set()
    for img in manifest.images:  # all manifests first: a reader knows every size before the first layer
        if img.digest not in seen:
            seen.add(img.digest)
            entries.append(Entry.of(blob_path(img.digest), raw_manifests[img.digest]))
    for ref, _ in manifest.supply_refs():  # then the supply manifests, which declare the blobs they name
        if ref.digest not in seen:
            seen.add(ref.digest)
            entries.append(Entry.of(blob_path(ref.digest), raw_manifests[ref.digest]))
    entries += [_blob_entry(img, desc, blob, checked) for img, desc in blob_order(manifest, raw_manifests)]
    return entries


def _blob_entry(img: BundleImage, desc: Descriptor, blob: BlobSource, checked: bool) -> Entry:
    hexdigest = desc.digest.removeprefix("sha256:")
    fetch = functools.partial(blob, img, desc.digest)
    compress = not is_compressed(desc.media_type)
    return Entry(blob_path(desc.digest), hexdigest, desc.size, fetch, compress=compress, checked=checked)


def _tarinfo(name: str, size: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _Hashing:
    """A file read through sha256, for tarfile to copy from."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.hasher, self.size = handle, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.hasher.update(data)
        self.size += len(data)
        return data


def _add_file(tar: tarfile.TarFile, dirs: set[str], top: str, entry: Entry, data: bytes | Path, mtime: int) -> None:
    """Add top/rel, preceded by each of its directories the first time one is seen; its bytes must match
    the entry's size and sha256 (a file is streamed and checked as it goes in, unless it was `checked`
    on arrival: then its size only)."""
    parts = entry.rel.split("/")
    for depth in range(len(parts)):
        parent = "/".join([top, *parts[:depth]])
        if parent not in dirs:
            dirs.add(parent)
            tar.addfile(_tarinfo(parent + "/", 0, mtime, directory=True))
    if isinstance(data, bytes):
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise _mismatch(entry, len(data))
        tar.addfile(_tarinfo(f"{top}/{entry.rel}", len(data), mtime), io.BytesIO(data))
        return
    size = data.stat().st_size
    if size != entry.size:
        raise _mismatch(entry, size)
    with data.open("rb") as handle:
        if entry.checked:  # hashed as it was downloaded, into a directory of this run's
            tar.addfile(_tarinfo(f"{top}/{entry.rel}", size, mtime), handle)
            return
        reader = _Hashing(handle)
        tar.addfile(_tarinfo(f"{top}/{entry.rel}", size, mtime), reader)
    if reader.hasher.hexdigest() != entry.sha256:
        raise _mismatch(entry, size)


def _mismatch(entry: Entry, size: int) -> UserError:
    return UserError(
        f"{entry.rel} does not match its descriptor ({size} bytes, {entry.size} expected, "
        "or other content): push the image again"
    )


def write_archive(path: Path, top: str, entries: Iterable[Entry], mtime: int = 0) -> dict[str, str]:
    """Write SHA256SUMS, then `entries`, under `top/` into a gzip'd tar, atomically (a .partial file
    renamed at the end). Each entry's bytes must match the size and sha256 it declared, or nothing is
    written. Entries marked not to `compress` (compressed layers) are stored in the gzip stream, not
    deflated again: one gzip member either way, which every gzip reader reads. Returns path -> sha256 hex."""
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
            GzipWriter(raw, COMPRESSED, mtime=mtime) as gz,
            tarfile.TarFile(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, copybufsize=_COPY_SIZE) as tar,
        ):
            listing = Entry.of(SUMS_FILE, sums_text(sums).encode())
            _add_file(tar, dirs, top, listing, listing.content(), mtime)
            for entry in entries:
                gz.set_level(COMPRESSED if entry.compress else STORED)
                _add_file(tar, dirs, top, entry, entry.content(), mtime)
            gz.set_level(COMPRESSED)  # the end blocks and padding tarfile writes on closing
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return sums


class _Prefetch:
    """Blobs streamed from the registry into files ahead of the archive writer, in archive order,
    at most `window` downloads at once; each file is removed when the next blob is asked for.

    Used as the BlobSource of layout_entries; `close` cancels what is pending and removes the scratch
    directory on every way out.
    """

    def __init__(self, client: Client, order: Sequence[tuple[BundleImage, Descriptor]], scratch: Path, window: int):
        self.client, self.order, self.scratch, self.window = client, list(order), scratch, max(1, window)
        self.position = {desc.digest: n for n, (_, desc) in enumerate(self.order)}
        self.pool = ThreadPoolExecutor(self.window, thread_name_prefix="bundle-blobs")
        self.futures: dict[int, Future[Path]] = {}
        self.submitted = 0
        self.previous: Path | None = None
        self.lock = threading.Lock()

    def _download(self, n: int) -> Path:
        img, desc = self.order[n]
        ref = img.reference
        dest = self.scratch / f"blob-{n}"
        self.client.download_blob(ref.registry, ref.repository, desc.digest, dest)
        return dest

    def __call__(self, img: BundleImage, digest: str) -> Path:
        n = self.position[digest]
        with self.lock:
            if self.previous is not None:
                self.previous.unlink(missing_ok=True)
            while self.submitted < min(len(self.order), n + self.window):
                self.futures[self.submitted] = self.pool.submit(self._download, self.submitted)
                self.submitted += 1
        path = self.futures.pop(n).result()
        self.previous = path
        return path

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> _Prefetch:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _epoch(cfg: Config) -> int:
    try:
        return cfg.version.epoch
    except ValueError:
        return 0


def create(
    run: Runner,
    cfg: Config,
    client: Client,
    platforms: Sequence[Platform],
    extra_images: Sequence[str] = (),
) -> list[Path]:
    """Write one bundle per platform; every image is checked for every platform before anything is written."""
    if not platforms:
        raise UserError("no platform to bundle: give PLATFORMS=linux/arm64 (or --platform)")
    sources = deploy_sources(cfg)
    wanted = _wanted(cfg, [*extra_images, *deploy_images(cfg, sources)])
    if not wanted:
        raise UserError("nothing to bundle: no service selected and no extra image given")
    platforms = list(dict.fromkeys(normalise_platform(p.os, p.arch, p.variant) for p in platforms))
    output.step(f"bundle {len(wanted)} image(s) x {', '.join(map(str, platforms))} (version {cfg.version.version})")
    heap.keep_freed_buffers()  # gigabytes stream through MiB buffers: reuse them, do not fault them in again
    resolved = resolve_all(client, wanted, platforms)
    fingerprint = signatures.read_public_key(cfg.sign.public_key).fingerprint if cfg.sign.public_key else None
    written = []
    for platform in platforms:
        images = resolved[platform]
        path = bundle_path(cfg, platform)
        name = path.name.removesuffix(".tar.gz")
        deploy = pin_deploy_files(cfg, sources, images, platform)
        manifest = BundleManifest(
            project=cfg.name,
            version=cfg.version.version,
            platform=platform,
            created=cfg.version.date,
            images=tuple(r.entry() for r in images),
            deploy=tuple(deploy),
            public_key=fingerprint,
        )
        total = sum(i.total_size for i in manifest.images)
        raw_manifests = {digest: raw for r in images for digest, raw in r.supply_raw}
        raw_manifests.update({r.manifest.digest: r.manifest.raw for r in images})

        def write(
            path: Path = path,
            name: str = name,
            manifest: BundleManifest = manifest,
            raw_manifests: dict[str, bytes] = raw_manifests,
            deploy: dict[str, bytes] = deploy,
        ) -> Path:
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{name}.blobs-"))
            with _Prefetch(client, blob_order(manifest, raw_manifests), scratch, BLOB_PARALLEL) as blobs:
                # each blob arrives through Client.download_blob, which keeps it only if it hashes to its digest
                entries = layout_entries(manifest, name, raw_manifests, blobs, deploy, checked=True)
                write_archive(path, name, entries, mtime=_epoch(cfg))
            for img in manifest.images:
                output.info(f"{img.ref}  {img.digest}  {output.human_size(img.total_size)}")
            output.ok(f"wrote {path} ({output.human_size(path.stat().st_size)})")
            return path

        run.act(f"write {path}: {len(images)} image(s), {output.human_size(total)} of blobs", write)
        written.append(path)
    if written and not run.dry_run:
        output.step_summary(step_summary(cfg, written, resolved))
    return written


def step_summary(cfg: Config, written: Sequence[Path], resolved: Mapping[Platform, Sequence[_Resolved]]) -> str:
    """GitHub's step summary of a bundle run: each archive, and each image with its digest."""
    rows = [
        [f"`{path.name}`", str(platform), r.service or "(third party)", f"`{r.ref}`", f"`{r.manifest.digest}`"]
        for path, (platform, found) in zip(written, resolved.items(), strict=True)
        for r in found
    ]
    head = f"### crossbuild bundle: {cfg.name} {cfg.version.version}\n\n"
    return head + output.markdown_table(["archive", "platform", "service", "image", "manifest digest"], rows)
