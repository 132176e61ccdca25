"""The bundle writer's blob prefetch: downloads run ahead of the archive in archive order, never more
than the window at once, each file is gone once the next is asked for, and the archive is byte for
byte the one written from in-memory blobs. The stand-in client writes the synthetic images' blobs
(as the real Client.download_blob would, atomically); the registry side is in test_bundle_offline."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from synthetic_bundles import NAME, Image, entries_for, synthetic, two_images

from crossbuild import bundle
from crossbuild.bundle.writer import _Prefetch, blob_order


class SlowBlobs:
    """download_blob that takes a moment and records how many run at once."""

    def __init__(self, images: list[Image]) -> None:
        self.blobs = {d: b for i in images for d, b in i.blobs.items()}
        self.running = self.most = 0
        self.order: list[str] = []
        self.lock = threading.Lock()

    def download_blob(self, registry: str, repository: str, digest: str, dest: Path) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.order.append(digest)
        time.sleep(0.02)
        dest.write_bytes(self.blobs[digest])
        with self.lock:
            self.running -= 1
        return len(self.blobs[digest])


def many_images() -> list[Image]:
    return [Image(f"reg.lan:5000/demo/s{n}:v1", bytes([n]) * (1000 + n), shared=b"base") for n in range(6)]


def test_prefetched_archive_equals_the_in_memory_one_and_stays_in_its_window(tmp_path: Path) -> None:
    images = many_images()
    manifest = synthetic(images)
    raw = {i.entry.digest: i.raw for i in images}
    order = blob_order(manifest, raw)
    client = SlowBlobs(images)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    leftovers = []

    with _Prefetch(client, order, scratch, window=3) as blobs:  # type: ignore[arg-type]

        def watched(img: bundle.BundleImage, digest: str) -> Path:
            path = blobs(img, digest)
            leftovers.append(len(list(scratch.iterdir())))
            return path

        streamed = tmp_path / "streamed" / f"{NAME}.tar.gz"
        bundle.write_archive(streamed, NAME, bundle.layout_entries(manifest, NAME, raw, watched), mtime=1)
    in_memory = tmp_path / "memory" / f"{NAME}.tar.gz"
    bundle.write_archive(in_memory, NAME, entries_for(images), mtime=1)

    assert streamed.read_bytes() == in_memory.read_bytes()
    assert client.order == [desc.digest for _, desc in order]  # started in archive order, each once
    assert 1 < client.most <= 3
    assert max(leftovers) <= 3 + 1  # the window in flight plus the blob being written
    assert not scratch.exists()


def test_a_failed_download_writes_no_archive_and_leaves_no_files(tmp_path: Path) -> None:
    images = two_images()
    manifest = synthetic(images)
    raw = {i.entry.digest: i.raw for i in images}
    client = SlowBlobs(images)
    victim = blob_order(manifest, raw)[-1][1].digest
    del client.blobs[victim]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    path = tmp_path / "out" / f"{NAME}.tar.gz"
    try:
        with _Prefetch(client, blob_order(manifest, raw), scratch, window=2) as blobs:  # type: ignore[arg-type]
            bundle.write_archive(path, NAME, bundle.layout_entries(manifest, NAME, raw, blobs))
    except KeyError:
        pass
    else:
        raise AssertionError("the missing blob was not noticed")
    assert list(path.parent.iterdir()) == []
    assert not scratch.exists()
