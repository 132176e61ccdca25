"""Reading a bundle: one streaming pass that checks every member as it arrives, within hard bounds.

An archive is hostile until proven otherwise, and a small .tar.gz can inflate without limit, so
nothing is read that the archive has not declared first:

- names: only the files a bundle has (format.META_FILES and images/blobs/sha256/<hex>) and their
  directories, each once, regular files only;
- sizes, checked from the tar header before any byte of the member is read: metadata up to META_MAX,
  an image manifest exactly what manifest.json declares, a config or layer exactly what its image
  manifest declares; a blob that no manifest read so far declares is refused (crossbuild writes
  manifest.json and every image manifest before the first layer);
- the total: metadata plus every declared blob (once) may not exceed `limit` (see `default_limit`);
- the decompressed stream itself is metered: a tar header (with pax records or a long name) gets at
  most HEADER_MAX, member data exactly its size, the whole stream `limit` plus tar overhead;
- content: each member is hashed while read; a blob must hash to its name, and each member must
  match its SHA256SUMS line (checked as it arrives once SHA256SUMS is known: this version writes it
  first, older ones last).

Nothing here needs a Config: it runs on the air-gapped host with only the archive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import queue
import shutil
import tarfile
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from crossbuild import output
from crossbuild.bundle.format import (
    DIRECTORIES,
    DOCKER_MANIFEST_FILE,
    IMAGE_MANIFEST_MAX,
    MANIFEST_FILE,
    META_FILES,
    META_MAX,
    OCI_INDEX_FILE,
    OCI_LAYOUT,
    OCI_LAYOUT_FILE,
    SUMS_FILE,
    BundleManifest,
    Descriptor,
    Ref,
    blob_digest,
    blob_path,
    docker_archive_manifest,
    image_parts,
    oci_index,
    parse_sums,
    supply_blobs,
)
from crossbuild.bundle.gzipstream import GunzipReader
from crossbuild.errors import UserError
from crossbuild.oci import Manifest

HEADER_MAX = 1 << 20  # one tar header with its pax records or GNU long name
_TAR_OVERHEAD = 64 << 20  # headers and padding on top of the declared bytes
_CHUNK = 1 << 20
_WRITE_AHEAD = 4  # chunks handed to the extracting thread, not yet written
_TAR_BUFFER = 256 << 10  # tarfile's reads of the stream (its default, 10 KiB records, costs calls)
_READ_AHEAD = _TAR_BUFFER + (64 << 10)  # tarfile reads up to one buffer past what it was asked for
_LIST_MAX = 5  # names shown in one error line
# Layers are compressed already, so gzip barely shrinks a bundle: a real one declares about its own size.
DEFAULT_RATIO = 2
DEFAULT_SLACK = 64 << 20


def default_limit(archive_size: int) -> int:
    """How much a bundle may declare when the operator gives no --max-size: twice the archive plus 64 MiB."""
    return archive_size * DEFAULT_RATIO + DEFAULT_SLACK


@dataclass
class Verified:
    """A bundle that passed every check: its manifest and each image's verified parts."""

    manifest: BundleManifest
    files: dict[str, int]  # path under the top directory -> size
    raw_manifests: dict[str, bytes]  # manifest digest -> exact bytes
    parts: dict[str, tuple[Descriptor, tuple[Descriptor, ...]]]  # manifest digest -> (config, layers)
    deploy: dict[str, bytes] = field(default_factory=dict)  # deploy/<name> -> its verified bytes
    supply_raw: dict[str, bytes] = field(default_factory=dict)  # supply manifest digest -> exact bytes
    supply_parts: dict[str, tuple[Descriptor, ...]] = field(default_factory=dict)  # -> the blobs it names

    def layer_map(self) -> dict[str, list[str]]:
        return {digest: [d.digest for d in layers] for digest, (_, layers) in self.parts.items()}


class _Overflow(Exception):
    """The decompressed stream went past what was allowed at this point."""


class _Metered:
    """The decompressed archive as tarfile reads it, stopped at a ceiling that moves per member."""

    def __init__(self, raw: GunzipReader, total: int) -> None:
        self.raw = raw
        self.total = total
        self.position = 0
        self.ceiling = 0
        self.header = True

    def allow(self, more: int, header: bool) -> None:
        self.ceiling = min(self.position + more + _READ_AHEAD, self.total)
        self.header = header

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if 0 <= size <= _CHUNK else _CHUNK)
        self.position += len(data)
        if self.position > self.ceiling:
            raise _Overflow
        return data


class _WriteBehind:
    """A file written, and its bytes hashed into `hasher`, by a thread of its own, WRITE_AHEAD chunks
    behind the reader at most (hashlib and file writes let go of the GIL: both cores work).

    write() hands a chunk over (bytes: immutable, safe to share); finish() waits for the last one;
    the first OSError the thread meets is raised (as `failed`) by the next write or finish. Leaving
    the `with` block always stops the thread and closes the file.
    """

    def __init__(self, handle: IO[bytes], hasher: hashlib._Hash) -> None:
        self.handle, self.hasher = handle, hasher
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_WRITE_AHEAD)
        self.failed: OSError | None = None
        self.thread = threading.Thread(target=self._run, name="bundle-extract", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunk := self.queue.get()) is not None:
            self.hasher.update(chunk)
            if self.failed is None:
                try:
                    self.handle.write(chunk)
                except OSError as exc:
                    self.failed = exc

    def write(self, chunk: bytes) -> None:
        if self.failed is not None:
            raise self.failed
        self.queue.put(chunk)

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.failed is not None:
            raise self.failed

    def __enter__(self) -> _WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        while self.thread.is_alive():  # a full queue drains while the thread lives; a dead one takes nothing
            with contextlib.suppress(queue.Full):
                self.queue.put(None, timeout=0.1)
                self.thread.join()
        self.handle.close()


def _corrupt(path: Path, problem: str) -> UserError:
    return UserError(f"{path}: corrupt bundle, {problem}; nothing was imported: copy the archive again")


def _name(text: str) -> str:
    """A member name from the archive, quoted and cut short: one error line stays readable."""
    shown = repr(text)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def _few(names: Iterable[str]) -> str:
    items = sorted(names)
    shown = ", ".join(items[:_LIST_MAX])
    return shown + (f" and {len(items) - _LIST_MAX} more" if len(items) > _LIST_MAX else "")


def _member_parts(path: Path, name: str) -> list[str]:
    if name.startswith("/") or "\\" in name:
        raise _corrupt(path, f"member {_name(name)} has an absolute or Windows path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise _corrupt(path, f"member {_name(name)} leaves the bundle directory")
    return parts


def _first_difference(actual: Any, expected: Any, where: str = "") -> str:
    """Where two JSON values first differ, e.g. `[0].RepoTags[0]: 'a' instead of 'b'`."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=str):
            if actual.get(key, ...) != expected.get(key, ...):
                return _first_difference(actual.get(key), expected.get(key), f"{where}.{key}")
    elif isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            if a != e:
                return _first_difference(a, e, f"{where}[{n}]")
    text = f"{actual!r} instead of {expected!r}"
    return f"{where.lstrip('.') or 'the document'}: {text if len(text) <= 200 else text[:197] + '...'}"


@dataclass
class _Reader:
    path: Path
    dest: Path | None  # extract here, or only check
    limit: int
    limit_given: bool
    top: str = ""
    dirs: set[str] = field(default_factory=set)
    hashes: dict[str, str] = field(default_factory=dict)  # path -> sha256 hex
    sizes: dict[str, int] = field(default_factory=dict)
    kept: dict[str, bytes] = field(default_factory=dict)  # metadata and image manifests
    sums: dict[str, str] | None = None
    manifest: BundleManifest | None = None
    manifest_paths: set[str] = field(default_factory=set)  # the image manifests' blob paths, kept in memory
    declared: dict[str, int] = field(default_factory=dict)  # blob path -> the size a manifest gives it
    declared_by: dict[str, str] = field(default_factory=dict)  # blob path -> the image that declared it
    declared_total: int = 0  # metadata read so far plus every declared blob once
    read_total: int = 0
    parts: dict[str, tuple[Descriptor, tuple[Descriptor, ...]]] = field(default_factory=dict)
    supply_paths: dict[str, tuple[Ref, str]] = field(default_factory=dict)  # blob path -> (supply manifest, owner)
    supply_parts: dict[str, tuple[Descriptor, ...]] = field(default_factory=dict)

    def corrupt(self, problem: str) -> UserError:
        return _corrupt(self.path, problem)

    def too_large(self, total: int) -> UserError:
        why = (
            "the --max-size (or BUNDLE_MAX_SIZE) given"
            if self.limit_given
            else f"the default for a {output.human_size(self.path.stat().st_size)} archive "
            "(layers are compressed already, so a real bundle declares about its own size)"
        )
        suggest = f"{max(1, math.ceil(total / (1 << 30)))}GiB"
        return UserError(
            f"{self.path}: the bundle declares {output.human_size(total)} of content, more than the "
            f"{output.human_size(self.limit)} allowed by {why}; nothing was imported. If you trust this "
            f"archive, give --max-size {suggest}"
        )

    # -- the pass --

    def run(self) -> None:
        if not self.path.is_file():
            raise UserError(f"{self.path}: no such bundle file")
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read the bundle: {exc.strerror}") from None
        try:
            with raw:
                self.stream(raw)
        except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise self.corrupt(f"the archive is truncated or damaged ({reason})") from None
        self.finish()

    def stream(self, raw: IO[bytes]) -> None:
        stream = _Metered(GunzipReader(raw, _CHUNK), self.limit + _TAR_OVERHEAD)
        stream.allow(HEADER_MAX, header=True)  # tarfile.open reads the first header
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=_TAR_BUFFER) as tar:  # type: ignore[call-overload]
                while True:
                    stream.allow(HEADER_MAX, header=True)
                    member = tar.next()
                    if member is None:
                        break
                    self.member(tar, member, stream)
            # Past the tar's end blocks only padding is left; reading it to the end checks the gzip trailer
            # (CRC-32 and length), which is how an archive cut short in its padding is told apart.
            stream.allow(HEADER_MAX, header=True)
            while rest := stream.read(_CHUNK):
                if rest.strip(b"\0"):
                    raise self.corrupt("it holds data after the end of the tar archive")
        except _Overflow:
            if stream.position >= stream.total:
                raise self.too_large(stream.position) from None
            if stream.header:
                raise self.corrupt("a tar header is larger than 1 MiB (pax records or a long name)") from None
            raise self.corrupt("a member holds more than its tar header says") from None

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo, stream: _Metered) -> None:
        parts = _member_parts(self.path, member.name)
        if not self.top:
            self.top = parts[0]
        elif parts[0] != self.top:
            raise self.corrupt(f"members outside the bundle directory {self.top}/ ({_name(member.name)})")
        rel = "/".join(parts[1:])
        if member.isdir():
            if rel and rel not in DIRECTORIES:
                raise self.corrupt(f"directory {_name(rel)} is not one a bundle has")
            if rel in self.dirs:
                raise self.corrupt(f"directory {_name(rel or self.top)} appears twice")
            self.dirs.add(rel)
            return
        if not member.isfile() or member.issparse():
            raise self.corrupt(f"{_name(member.name)} is a link or special file, not a regular file")
        if not rel:
            raise self.corrupt(f"{_name(member.name)} is a file where the bundle directory belongs")
        if rel in self.hashes:
            raise self.corrupt(f"{rel} appears twice")
        self.check_size(rel, member.size)
        if self.sums is not None and rel not in self.sums:
            raise self.corrupt(f"{rel} is not listed in {SUMS_FILE}")
        src = tar.extractfile(member)
        if src is None:
            raise self.corrupt(f"{_name(member.name)} cannot be read")
        stream.allow(member.size, header=False)
        deploy = self.manifest is not None and rel in self.manifest.deploy
        keep = rel in META_FILES or rel in self.manifest_paths or rel in self.supply_paths or deploy
        hexdigest, data = self.copy(src, rel, keep)
        self.read_total += member.size
        if self.sums is not None and self.sums[rel] != hexdigest:
            raise self.corrupt(f"checksum mismatch for {rel}")
        digest = blob_digest(rel)
        if digest is not None and hexdigest != digest.removeprefix("sha256:"):
            raise self.corrupt(f"blob {rel} does not hash to its name")
        self.hashes[rel], self.sizes[rel] = hexdigest, member.size
        if keep:
            self.kept[rel] = data
        if rel in META_FILES or deploy:
            self.add_declared(member.size)
        if rel == SUMS_FILE:
            self.read_sums(data)
        elif rel == MANIFEST_FILE:
            self.read_manifest(data)
        elif digest is not None and rel in self.supply_paths:
            self.read_supply_manifest(rel, data)
        elif digest is not None and keep:
            self.read_image_manifest(rel, digest, data)

    def check_size(self, rel: str, size: int) -> None:
        """Refuse a member from its tar header alone: nothing of it is read yet."""
        if rel in META_FILES or (self.manifest is not None and rel in self.manifest.deploy):
            if size > META_MAX:
                raise self.corrupt(
                    f"{rel} is {output.human_size(size)}, no bundle's is over {output.human_size(META_MAX)}"
                )
        elif blob_digest(rel) is None:
            raise self.corrupt(f"{_name(rel)} is not a file a bundle has")
        elif self.manifest is None:
            raise self.corrupt(f"blob {rel} comes before {MANIFEST_FILE}: the archive was repacked or altered")
        elif rel not in self.declared:
            raise self.corrupt(f"blob {rel} is declared by no image manifest before it")
        elif size != self.declared[rel]:
            raise self.corrupt(
                f"{rel} is {size} bytes, but {self.declared_by[rel]} declares {self.declared[rel]}; "
                "it was altered (or is a decompression bomb)"
            )
        if self.read_total + size > self.limit:
            raise self.too_large(self.read_total + size)

    def copy(self, src: IO[bytes], rel: str, keep: bool) -> tuple[str, bytes]:
        """Hash a member while writing it under dest; its bytes too when `keep` (it is small: checked).

        The file is hashed and written by a thread of its own (_WriteBehind) while this one inflates the
        next chunk: writing a GiB into the page cache costs as much system time as the rest of the pass.
        The digest is read only after finish() has joined that thread."""
        digest = hashlib.sha256()
        kept = bytearray()
        with contextlib.ExitStack() as stack:
            target: _WriteBehind | None = None
            if self.dest is not None:
                out = self.dest / rel
                try:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    target = stack.enter_context(_WriteBehind(out.open("xb"), digest))
                except OSError as exc:
                    raise UserError(f"cannot write {out}: {exc.strerror}; set TMPDIR to a disk with room") from exc
            try:
                while chunk := src.read(_CHUNK):
                    if target is not None:
                        target.write(chunk)  # hashed there
                    else:
                        digest.update(chunk)
                    if keep:
                        kept += chunk
                if target is not None:
                    target.finish()
            except OSError as exc:
                if target is None or exc is not target.failed:
                    raise
                raise UserError(
                    f"cannot write under {self.dest}: {exc.strerror}; set TMPDIR to a disk with room"
                ) from exc
        return digest.hexdigest(), bytes(kept)

    # -- what each metadata file declares --

    def add_declared(self, size: int) -> None:
        self.declared_total += size
        if self.declared_total > self.limit:
            raise self.too_large(self.declared_total)
        if self.dest is not None:
            needed = self.declared_total - self.read_total
            free = shutil.disk_usage(self.dest).free
            if needed > free:
                raise UserError(
                    f"{self.dest} has {output.human_size(free)} free, the bundle needs {output.human_size(needed)} "
                    "more; nothing was imported: set TMPDIR to a disk with room"
                )

    def declare(self, rel: str, size: int, by: str) -> None:
        known = self.declared.get(rel)
        if known is not None:
            if known != size:
                first = self.declared_by[rel]
                raise self.corrupt(f"blob {rel} is declared as {known} bytes by {first} and {size} by {by}")
            return
        self.declared[rel], self.declared_by[rel] = size, by
        self.add_declared(size)

    def read_sums(self, data: bytes) -> None:
        try:
            self.sums = parse_sums(data)
        except UserError as exc:
            raise self.corrupt(str(exc)) from None
        unlisted = [rel for rel in self.hashes if rel != SUMS_FILE and rel not in self.sums]
        if unlisted:
            raise self.corrupt(f"{len(unlisted)} file(s) are not listed in {SUMS_FILE}: {_few(unlisted)}")
        bad = [rel for rel in self.hashes if rel != SUMS_FILE and self.sums[rel] != self.hashes[rel]]
        if bad:
            raise self.corrupt(f"checksum mismatch for {_few(bad)}")

    def read_manifest(self, data: bytes) -> None:
        try:
            self.manifest = BundleManifest.from_json(json.loads(data))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise self.corrupt(f"{MANIFEST_FILE} is not valid JSON ({' '.join(str(exc).split())[:120]})") from None
        except UserError as exc:
            raise self.corrupt(str(exc)) from None
        self.manifest_paths = {blob_path(img.digest) for img in self.manifest.images}
        for img in self.manifest.images:
            if img.size > IMAGE_MANIFEST_MAX:
                raise self.corrupt(f"the manifest of {img.ref} is {img.size} bytes; registries allow 4 MiB")
            self.declare(blob_path(img.digest), img.size, MANIFEST_FILE)
        for ref, owner in self.manifest.supply_refs():
            rel = blob_path(ref.digest)
            if ref.size > IMAGE_MANIFEST_MAX:
                raise self.corrupt(f"a supply manifest of {owner} is {ref.size} bytes; registries allow 4 MiB")
            if rel in self.manifest_paths:
                raise self.corrupt(f"{ref.digest} is both an image and a supply manifest of {owner}")
            self.supply_paths[rel] = (ref, owner)
            self.declare(rel, ref.size, MANIFEST_FILE)

    def read_supply_manifest(self, rel: str, raw: bytes) -> None:
        """A signature or attestation manifest declares the blobs it names (an index names none here)."""
        ref, owner = self.supply_paths[rel]
        try:
            blobs = supply_blobs(ref, raw, f"a supply manifest of {owner}")
        except UserError as exc:
            raise self.corrupt(str(exc)) from None
        for desc in blobs:
            self.declare(blob_path(desc.digest), desc.size, f"a supply manifest of {owner}")
        self.supply_parts[ref.digest] = blobs

    def read_image_manifest(self, rel: str, digest: str, raw: bytes) -> None:
        assert self.manifest is not None  # manifest_paths is empty before it
        images = [img for img in self.manifest.images if img.digest == digest]
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            config, layers = image_parts(Manifest(images[0].media_type, digest, raw, data), images[0].ref)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise self.corrupt(f"the manifest of {images[0].ref} is not a JSON object") from None
        except UserError as exc:
            raise self.corrupt(str(exc)) from None
        for img in images:
            if config.digest != img.config or len(layers) != img.layers:
                raise self.corrupt(f"the manifest of {img.ref} does not match {MANIFEST_FILE}")
            if img.size + config.size + sum(d.size for d in layers) != img.total_size:
                raise self.corrupt(f"the totalSize of {img.ref} in {MANIFEST_FILE} does not add up")
        for desc in (config, *layers):
            self.declare(blob_path(desc.digest), desc.size, f"the manifest of {images[0].ref}")
        self.parts[digest] = (config, layers)

    # -- after the last member --

    def finish(self) -> None:
        if not self.hashes:
            raise self.corrupt("it holds no files")
        if self.sums is None:
            raise self.corrupt(f"{SUMS_FILE} is missing (truncated, or not a crossbuild bundle)")
        missing = set(self.sums) - set(self.hashes)
        if missing:
            raise self.corrupt(f"{len(missing)} file(s) listed in {SUMS_FILE} are missing: {_few(missing)}")
        if self.manifest is None:
            raise self.corrupt(f"{MANIFEST_FILE} is missing")
        for rel in (OCI_LAYOUT_FILE, OCI_INDEX_FILE, DOCKER_MANIFEST_FILE, *self.manifest.deploy):
            if rel not in self.kept:
                raise self.corrupt(f"{rel} is missing")
        absent = [rel for rel in self.declared if rel not in self.hashes]
        if absent:
            first = absent[0]
            raise self.corrupt(f"blob {first} of {self.declared_by[first]} is missing")
        self.compare(OCI_LAYOUT_FILE, OCI_LAYOUT)
        self.compare(OCI_INDEX_FILE, oci_index(self.manifest.images))
        layer_map = {digest: [d.digest for d in layers] for digest, (_, layers) in self.parts.items()}
        self.compare(DOCKER_MANIFEST_FILE, docker_archive_manifest(self.manifest.images, layer_map))

    def compare(self, rel: str, expected: object) -> None:
        """A layout file must say exactly what manifest.json and the verified manifests say: `docker load`
        and skopeo obey these files, so a name or blob they add would be imported unverified."""
        try:
            actual = json.loads(self.kept[rel])
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise self.corrupt(f"{rel} is not valid JSON") from None
        if actual != expected:
            where = _first_difference(actual, expected)
            raise self.corrupt(f"{rel} does not describe the verified images ({where})")

    def verified(self) -> Verified:
        assert self.manifest is not None  # finish() passed
        raw = {digest: self.kept[blob_path(digest)] for digest in self.parts}
        deploy = {rel: self.kept[rel] for rel in self.manifest.deploy}
        supply = {ref.digest: self.kept[rel] for rel, (ref, _) in self.supply_paths.items()}
        return Verified(
            self.manifest,
            dict(self.sizes),
            raw,
            dict(self.parts),
            deploy=deploy,
            supply_raw=supply,
            supply_parts=dict(self.supply_parts),
        )


def read_archive(path: Path, dest: Path | None, max_size: int | None = None) -> Verified:
    """Check the whole archive in one pass (extracting under `dest` if given); a UserError at the first
    problem. `max_size` bounds what the bundle may declare (default: `default_limit` of its size)."""
    limit = max_size
    if limit is None:
        limit = default_limit(path.stat().st_size) if path.is_file() else 0
    reader = _Reader(path, dest, limit, limit_given=max_size is not None)
    reader.run()
    return reader.verified()


def verify_archive(path: Path, max_size: int | None = None) -> BundleManifest:
    """Read the whole archive once and check it: checksums, sizes, every cross-reference. No extraction."""
    return read_archive(path, None, max_size).manifest
