"""Synthetic bundles for the unit tests: images made of real gzip'd tar layers, written by
crossbuild's own writer, and `rewrite` to alter an archive member by member the way an
attacker (or a broken copy) would.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

from crossbuild import bundle
from crossbuild.platforms import Platform

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"  # uncompressed: the bundle deflates it
ARM64 = Platform("linux", "arm64")
NAME = "demo-v1.0.0-linux-arm64"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """(gzip'd layer tar, its diff_id)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    plain = buf.getvalue()
    return gzip.compress(plain, mtime=0), sha256(plain)


class Image:
    """A synthetic single-platform image: blobs plus the bundle entry describing it."""

    def __init__(
        self,
        ref: str,
        payload: bytes,
        shared: bytes | None = None,
        service: str | None = None,
        raw_layer: bytes | None = None,
    ) -> None:
        layers = [layer({"app/data.bin": payload}) if raw_layer is None else (raw_layer, sha256(raw_layer))]
        kinds = [OCI_LAYER if raw_layer is None else OCI_LAYER_TAR]
        if shared is not None:
            layers.insert(0, layer({"base.txt": shared}))
            kinds.insert(0, OCI_LAYER)
        self.blobs: dict[str, bytes] = {}
        for blob, _ in layers:
            self.blobs[sha256(blob)] = blob
        config = json.dumps(
            {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}
        ).encode()
        self.blobs[sha256(config)] = config
        self.raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                "layers": [
                    {"mediaType": kind, "digest": sha256(b), "size": len(b)}
                    for (b, _), kind in zip(layers, kinds, strict=True)
                ],
            }
        ).encode()
        self.entry = bundle.BundleImage(
            ref=ref,
            digest=sha256(self.raw),
            media_type=OCI_MANIFEST,
            size=len(self.raw),
            platform="linux/arm64",
            config=sha256(config),
            layers=len(layers),
            total_size=len(self.raw) + sum(len(b) for b in self.blobs.values()),
            service=service,
            index_digest=None,
        )


def synthetic(images: list[Image]) -> bundle.BundleManifest:
    return bundle.BundleManifest(
        project="demo",
        version="v1.0.0",
        platform=ARM64,
        created="2023-11-14T22:13:20Z",
        images=tuple(i.entry for i in images),
    )


def entries_for(images: list[Image]) -> list[bundle.Entry]:
    blobs = {d: b for i in images for d, b in i.blobs.items()}
    raw = {i.entry.digest: i.raw for i in images}
    return bundle.layout_entries(synthetic(images), NAME, raw, lambda _img, digest: blobs[digest])


def two_images() -> list[Image]:
    shared = b"the same base layer\n"
    return [
        Image("registry.example:5000/demo/api:v1.0.0", b"api arm64 binary", shared, service="api"),
        Image("registry.example:5000/library/redis:7", b"redis arm64 binary", shared),
    ]


def write_two(directory: Path) -> Path:
    """The two-image bundle (api and redis sharing a base layer) written under `directory`."""
    path = directory / f"{NAME}.tar.gz"
    bundle.write_archive(path, NAME, entries_for(two_images()), mtime=1_700_000_000)
    return path


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for m in tar.getmembers():
            fh = tar.extractfile(m) if m.isfile() else None
            out[m.name + ("/" if m.isdir() else "")] = fh.read() if fh else b""
        return out


Change = Callable[[tarfile.TarInfo, bytes], list[tuple[tarfile.TarInfo, bytes]]]


def rewrite(src: Path, dest: Path, change: Change) -> None:
    """Copy a bundle member by member; `change` returns what to write instead of each member
    ([] drops it, two items add one)."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dest, "w:gz") as tout:
        for m in tin.getmembers():
            handle = tin.extractfile(m) if m.isfile() else None
            for info, data in change(m, handle.read() if handle else b""):
                info.size = len(data) if info.isfile() else 0
                tout.addfile(info, io.BytesIO(data) if info.isfile() else None)


def forge(src: Path, dest: Path, replacements: dict[str, bytes], added: dict[str, bytes] | None = None) -> None:
    """A consistent forgery: members (paths under the top directory) replaced, `added` appended at the end,
    SHA256SUMS rebuilt to match."""
    items = items_of(src)
    top = items[0][0].name.split("/", 1)[0]
    items = [(m, replacements.get(m.name.removeprefix(top + "/"), data)) for m, data in items]
    items += [(tarfile.TarInfo(f"{top}/{rel}"), data) for rel, data in (added or {}).items()]
    sums = {
        m.name.removeprefix(top + "/"): hashlib.sha256(data).hexdigest()
        for m, data in items
        if m.isfile() and isinstance(data, bytes) and not m.name.endswith("/SHA256SUMS")
    }
    table = "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items())).encode()
    craft(dest, [(m, table if m.name.endswith("/SHA256SUMS") else data) for m, data in items])


ZERO_CHUNK = 1 << 20


class _Deflate:
    """One gzip member (RFC 1952) written piece by piece, so a run of zeros can be repeated as compressed
    bytes: after a full flush deflate refers to nothing before it (RFC 1951), so the compressed form of
    1 MiB of zeros is the same every time and can be written N times for N MiB."""

    def __init__(self, out: io.BufferedWriter) -> None:
        self.out = out
        self.zip = zlib.compressobj(9, zlib.DEFLATED, -15)
        self.crc = 0
        self.size = 0
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # magic, deflate, no flags, mtime 0, max, unknown OS

    def write(self, data: bytes) -> None:
        self.out.write(self.zip.compress(data))
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    def zeros(self, count: int) -> None:
        self.out.write(self.zip.flush(zlib.Z_FULL_FLUSH))
        full, rest = divmod(count, ZERO_CHUNK)
        if full:
            chunk = zlib.compressobj(9, zlib.DEFLATED, -15)
            block = chunk.compress(bytes(ZERO_CHUNK)) + chunk.flush(zlib.Z_FULL_FLUSH)
            for _ in range(full):
                self.out.write(block)
            self.crc = _crc_of_zeros(self.crc, full * ZERO_CHUNK)
            self.size += full * ZERO_CHUNK
        self.write(bytes(rest))

    def close(self) -> None:
        self.out.write(self.zip.flush(zlib.Z_FINISH))
        self.out.write(struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))


_ZEROS = bytes(ZERO_CHUNK)


def _crc_of_zeros(crc: int, count: int) -> int:
    for _ in range(count // ZERO_CHUNK):
        crc = zlib.crc32(_ZEROS, crc)
    return zlib.crc32(bytes(count % ZERO_CHUNK), crc)


def craft(path: Path, items: list[tuple[tarfile.TarInfo, bytes | int]]) -> None:
    """Write a .tar.gz (one gzip member, as `tar czf` makes) whose members are given as bytes, or as an
    int: that many zero bytes, so a multi-GiB member costs a few KiB of archive and no memory."""
    with path.open("wb") as out:
        gz = _Deflate(out)
        for info, data in items:
            size = data if isinstance(data, int) else len(data)
            info.size = 0 if info.isdir() else size
            gz.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            if isinstance(data, int):
                gz.zeros(data + (-data % 512))
            else:
                gz.write(data + bytes(-len(data) % 512))
        gz.write(bytes(1024))  # end of archive: two zero blocks
        gz.close()


def items_of(path: Path) -> list[tuple[tarfile.TarInfo, bytes | int]]:
    """An archive's members in order, for `craft` to write back changed."""
    with tarfile.open(path, "r:gz") as tar:
        out: list[tuple[tarfile.TarInfo, bytes | int]] = []
        for m in tar.getmembers():
            handle = tar.extractfile(m) if m.isfile() else None
            out.append((m, handle.read() if handle else b""))
        return out
