"""Synthetic bundles for the unit tests: images made of real gzip'd tar layers, written by
crossbuild's own writer, and `rewrite` to alter an archive member by member the way an
attacker (or a broken copy) would.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from crossbuild import bundle
from crossbuild.platforms import Platform

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
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
        if shared is not None:
            layers.insert(0, layer({"base.txt": shared}))
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
                "layers": [{"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)} for b, _ in layers],
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
_GZIPPED_ZEROS = gzip.compress(bytes(ZERO_CHUNK), compresslevel=9, mtime=0)


def craft(path: Path, items: list[tuple[tarfile.TarInfo, bytes | int]]) -> None:
    """Write a .tar.gz whose members are given as bytes, or as an int: that many zero bytes, written as
    repeated gzip members (valid gzip, RFC 1952 2.2) so a multi-GiB member costs milliseconds to make."""
    with path.open("wb") as out:
        for info, data in items:
            size = data if isinstance(data, int) else len(data)
            info.size = 0 if info.isdir() else size
            head = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            if isinstance(data, int):
                out.write(gzip.compress(head, mtime=0))
                full, rest = divmod(data, ZERO_CHUNK)
                out.write(_GZIPPED_ZEROS * full)
                out.write(gzip.compress(bytes(rest + (-data % 512)), mtime=0))
            else:
                out.write(gzip.compress(head + data + bytes(-len(data) % 512), mtime=0))
        out.write(gzip.compress(bytes(1024), mtime=0))  # end of archive: two zero blocks


def items_of(path: Path) -> list[tuple[tarfile.TarInfo, bytes | int]]:
    """An archive's members in order, for `craft` to write back changed."""
    with tarfile.open(path, "r:gz") as tar:
        out: list[tuple[tarfile.TarInfo, bytes | int]] = []
        for m in tar.getmembers():
            handle = tar.extractfile(m) if m.isfile() else None
            out.append((m, handle.read() if handle else b""))
        return out
