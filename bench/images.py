"""Images of incompressible layers for the transfer case (t), written as one OCI image layout.

Each layer is a real `tar+gzip` layer (one file of random bytes, gzip stored at level 0: gzip
cannot shrink random data, so compressing it would only cost time), with its config's diff_id the
sha256 of the tar, so any tool can read the images. The bytes come from a seeded generator: the
same seed gives the same digests, so a rerun stores nothing new in the registry it is pushed to.

[layout] OCI image-spec image-layout.md; [image] manifest.md, config.md, layer.md
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"  # [layout] index.json: skopeo's oci:<dir>:<name>
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


@dataclass(frozen=True)
class Image:
    name: str  # its ref name in the layout (oci:<dir>:<name>)
    manifest: Blob
    layers: tuple[Blob, ...]

    @property
    def layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)


def plan(total: int, images: int, layers_per_image: int) -> list[list[int]]:
    """Layer sizes per image: `images` x `layers_per_image` layers adding up to `total` bytes (at least 1 each)."""
    count = images * layers_per_image
    base, extra = divmod(max(total, count), count)
    sizes = [base + (1 if n < extra else 0) for n in range(count)]
    return [sizes[i * layers_per_image : (i + 1) * layers_per_image] for i in range(images)]


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(|B|KiB|MiB|GiB|K|M|G)")
_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """`1GiB`, `64MiB`, `512M`, `1048576`: bytes, binary units only (argparse shows the ValueError)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a size such as 1GiB or 64MiB")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(blobs: Path, data: bytes) -> Blob:
    digest = _digest(data)
    (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    return Blob(digest, len(data))


class _Hashed(io.RawIOBase):
    """A write-only file that hashes and counts what passes on to `target`."""

    def __init__(self, target: IO[bytes] | gzip.GzipFile) -> None:
        self.target, self.hasher, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hasher.update(view)
        self.target.write(view)
        self.size += len(view)
        return len(view)


def random_layer(blobs: Path, size: int, rng: random.Random, name: str) -> tuple[Blob, str]:
    """A tar+gzip layer of about `size` bytes holding one file of random bytes: (its blob, its diff_id)."""
    content = max(0, size - 1536)  # tar header and end blocks, gzip framing
    scratch = blobs / f".{name}.partial"
    with scratch.open("wb") as out:
        compressed = _Hashed(out)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=0, mtime=0) as gz:
            tar_bytes = _Hashed(gz)
            with tarfile.open(fileobj=tar_bytes, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                info = tarfile.TarInfo(f"data/{name}")
                info.size, info.mode, info.mtime = content, 0o644, 0
                tar.addfile(info, _RandomReader(rng, content))
    digest = "sha256:" + compressed.hasher.hexdigest()
    scratch.replace(blobs / digest.removeprefix("sha256:"))
    return Blob(digest, compressed.size), "sha256:" + tar_bytes.hasher.hexdigest()


class _RandomReader:
    """`size` bytes from `rng`, read like a file."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng, self.left = rng, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left, _CHUNK)
        self.left -= n
        return self.rng.randbytes(n)


def write_layout(root: Path, names: Sequence[str], layer_sizes: Sequence[Sequence[int]], seed: int) -> list[Image]:
    """An OCI image layout at `root` with one linux/amd64 image per name, its layers of the sizes given."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    rng = random.Random(seed)
    images, entries = [], []
    for name, sizes in zip(names, layer_sizes, strict=True):
        made = [random_layer(blobs, size, rng, f"{name}-{n}") for n, size in enumerate(sizes)]
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in made]},
        }
        config_blob = _write_blob(blobs, json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_blob.digest, "size": config_blob.size},
            "layers": [{"mediaType": OCI_LAYER, "digest": b.digest, "size": b.size} for b, _ in made],
        }
        manifest_blob = _write_blob(blobs, json.dumps(manifest, sort_keys=True).encode())
        images.append(Image(name, manifest_blob, tuple(b for b, _ in made)))
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_blob.digest,
                "size": manifest_blob.size,
                "annotations": {REF_NAME: name},
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        )
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return images
