"""The bundle's gzip streams: GzipWriter switches between deflate and stored blocks inside ONE member that
every gzip reader reads (Python's gzip module and the gzip program are the witnesses), and GunzipReader
returns what they would, refusing damaged or cut input. Also the reader's extracting thread: a full disk
is reported, and the thread stops on every way out."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from crossbuild import heap
from crossbuild.bundle.gzipstream import COMPRESSED, STORED, GunzipReader, GzipWriter
from crossbuild.bundle.reader import _WriteBehind
from crossbuild.oci import is_compressed

TEXT = b'{"schemaVersion": 2, "layers": []}\n' * 2000
RANDOM = os.urandom(300_000)  # more than four stored blocks of 65535 bytes


def written(pieces: list[tuple[int, bytes]], mtime: int = 0) -> bytes:
    out = io.BytesIO()
    with GzipWriter(out, COMPRESSED, mtime=mtime) as gz:
        for level, data in pieces:
            gz.set_level(level)
            gz.write(data)
    return out.getvalue()


CASES = {
    "deflate-only": [(COMPRESSED, TEXT)],
    "stored-only": [(STORED, RANDOM)],
    "deflate-stored-deflate": [(COMPRESSED, TEXT), (STORED, RANDOM), (COMPRESSED, TEXT)],
    "stored-then-deflate-then-stored": [(STORED, RANDOM[:10]), (COMPRESSED, TEXT), (STORED, RANDOM)],
    "empty": [],
    "exact-stored-block": [(STORED, RANDOM[:0xFFFF])],
}


@pytest.mark.parametrize("pieces", CASES.values(), ids=CASES.keys())
def test_one_member_that_gzip_reads(pieces: list[tuple[int, bytes]], tmp_path: Path) -> None:
    data = written(pieces)
    plain = b"".join(piece for _, piece in pieces)
    assert gzip.decompress(data) == plain
    assert read_all(GunzipReader(io.BytesIO(data), chunk=4096), 1 << 16) == plain
    if shutil.which("gzip"):
        path = tmp_path / "x.gz"
        path.write_bytes(data)
        assert subprocess.run(["gzip", "-t", str(path)], check=False).returncode == 0


def test_stored_stretches_are_not_deflated_and_text_is() -> None:
    stored = written([(COMPRESSED, TEXT), (STORED, RANDOM)])
    assert len(RANDOM) < len(stored) < len(RANDOM) + len(RANDOM) // 100 + 2000
    assert len(written([(COMPRESSED, TEXT)])) < len(TEXT) // 20


def test_the_header_carries_mtime_and_no_name() -> None:
    data = written([(COMPRESSED, b"x")], mtime=1_700_000_000)
    assert data[:4] == b"\x1f\x8b\x08\x00"  # no FNAME: the same archive whatever it is called
    assert int.from_bytes(data[4:8], "little") == 1_700_000_000


def read_all(reader: GunzipReader, size: int) -> bytes:
    out = bytearray()
    while chunk := reader.read(size):
        assert len(chunk) <= size
        out += chunk
    return bytes(out)


@pytest.mark.parametrize("size", [1, 1000, 1 << 20], ids=["byte", "kilobyte", "mebibyte"])
def test_reads_return_at_most_what_is_asked(size: int) -> None:
    data = written([(COMPRESSED, TEXT), (STORED, RANDOM)])
    assert read_all(GunzipReader(io.BytesIO(data), chunk=7000), size) == TEXT + RANDOM


def test_members_after_each_other_and_nul_padding_are_read_as_gzip_does() -> None:
    data = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0) + bytes(100)
    assert gzip.decompress(data) == b"first second"
    assert read_all(GunzipReader(io.BytesIO(data), chunk=5), 3) == b"first second"


def test_a_bomb_is_inflated_only_as_far_as_asked() -> None:
    bomb = gzip.compress(bytes(64 << 20), compresslevel=9)
    reader = GunzipReader(io.BytesIO(bomb))
    assert len(reader.read(4096)) == 4096


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda d: d[:-3], EOFError),
        (lambda d: d[: len(d) // 2], EOFError),
        (lambda d: d[:-8] + bytes(4) + d[-4:], zlib.error),  # CRC-32
        (lambda d: d[:-4] + b"\x00\x00\x00\x01", zlib.error),  # length
        (lambda d: b"not gzip at all" + d, zlib.error),
        (lambda d: d + b"garbage after the member", zlib.error),
    ],
    ids=["cut-in-trailer", "cut-in-half", "wrong-crc", "wrong-length", "not-gzip", "trailing-garbage"],
)
def test_damage_is_an_error(damage: object, error: type[Exception]) -> None:
    data = written([(COMPRESSED, TEXT), (STORED, RANDOM)])
    assert callable(damage)
    with pytest.raises(error):
        read_all(GunzipReader(io.BytesIO(damage(data)), chunk=4096), 1 << 16)


@pytest.mark.parametrize(
    ("media_type", "compressed"),
    [
        ("application/vnd.oci.image.layer.v1.tar+gzip", True),
        ("application/vnd.oci.image.layer.v1.tar+zstd", True),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", True),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", True),
        ("application/vnd.oci.image.layer.v1.tar", False),
        ("application/vnd.oci.image.config.v1+json", False),
        ("", False),
    ],
    ids=["oci-gzip", "oci-zstd", "docker-gzip", "nondistributable-gzip", "oci-tar", "config", "none"],
)
def test_which_blobs_are_compressed_already(media_type: str, compressed: bool) -> None:
    assert is_compressed(media_type) is compressed


def test_malloc_is_told_to_keep_freed_buffers_where_it_can() -> None:
    """glibc takes the setting; elsewhere (musl, macOS) nothing is changed and nothing fails."""
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert heap.keep_freed_buffers() is glibc


class _DiskFull(io.RawIOBase):
    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= 1
        return len(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("room", [0, 3, 50], ids=["at-once", "after-three", "never"])
def test_the_extracting_thread_reports_a_full_disk_and_always_stops(room: int) -> None:
    handle = _DiskFull(room)
    if room >= 20:
        with _WriteBehind(handle, hashlib.sha256()) as writer:  # type: ignore[arg-type]
            for _ in range(20):
                writer.write(b"x")
            writer.finish()
        assert handle.closed and handle.room == room - 20
        return
    with pytest.raises(OSError, match="No space left") as exc, _WriteBehind(handle, hashlib.sha256()) as writer:  # type: ignore[arg-type]
        for _ in range(20):
            writer.write(b"x")
        writer.finish()
    assert exc.value is writer.failed
    assert not writer.thread.is_alive() and handle.closed


def test_leaving_early_stops_the_extracting_thread() -> None:
    handle = io.BytesIO()
    with contextlib.suppress(KeyError), _WriteBehind(handle, hashlib.sha256()) as writer:
        writer.write(b"abc")
        raise KeyError("a corrupt member")
    assert not writer.thread.is_alive() and handle.closed
