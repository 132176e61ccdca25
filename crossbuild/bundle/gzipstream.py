"""Bundles' gzip streams, both ways, at the speed of the layers they carry.

GzipWriter: one gzip member whose compression is chosen per stretch of input: deflate for metadata
and plain layers, stored (level 0) for layers that are gzip or zstd already.

Deflating a compressed layer again costs about 8 MiB/s of one core and saves nothing; stored, the
bytes are only copied and checksummed. Any gzip reader reads the result (crossbuild's since the
first bundle, `tar xzf`, `gunzip`): it is ONE member whose deflate stream is the concatenation of
the streams of several raw compressors. Each but the last ends with a sync flush (an empty stored
block, byte-aligned, not final), so the next one's blocks simply follow; a compressor never refers
back past its own start, which deflate allows. pigz joins its parallel pieces the same way.

GunzipReader: the decompressed stream, read in pieces as large as asked for. gzip.GzipFile hands
its reader 8 KiB at a time through a buffered layer, which costs more than inflating stored blocks
does; here zlib itself parses each member's header and checks its CRC-32 and length, and each call
inflates at most the bytes asked for, so memory stays bounded however well the input compresses.

[gzip] RFC 1952 (member header and trailer); [deflate] RFC 1951 3.2.4 (stored blocks), zlib.h
(Z_SYNC_FLUSH)
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import IO, BinaryIO

COMPRESSED = 6  # zlib's default level: metadata and uncompressed layers
STORED = 0
_STORED_MAX = 0xFFFF  # bytes in one stored block
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib reads (and checks) the gzip header and trailer itself


class GzipWriter:
    """A write-only file for tarfile: bytes written go out as one gzip member at `level`, which
    `set_level` changes between writes (tarfile writes each member's header, then its data)."""

    def __init__(self, out: BinaryIO, level: int = COMPRESSED, mtime: int = 0) -> None:
        self.out = out
        self.level = level
        self.crc = 0
        self.size = 0
        self.closed = False
        # [gzip] 2.3: ID1 ID2 CM=deflate FLG=0 MTIME XFL=0 OS=255 (unknown), as gzip.GzipFile(filename="") writes
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + b"\x00\xff")
        self._deflate: zlib._Compress | None = self._compressor(level)

    @staticmethod
    def _compressor(level: int) -> zlib._Compress | None:
        """A raw deflate compressor (the gzip framing is ours), or None for stored blocks written here:
        zlib's level 0 copies every byte through its window first, at a fraction of the speed."""
        return zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS) if level != STORED else None

    def set_level(self, level: int) -> None:
        """Compress what is written from now on at `level` (0: stored)."""
        if level == self.level:
            return
        if self._deflate is not None:  # byte-aligned, no final block: the stream goes on
            self.out.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
        self.level = level
        self._deflate = self._compressor(level)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a closed GzipWriter")
        view = memoryview(data).cast("B")
        self.crc = zlib.crc32(view, self.crc)
        self.size += len(view)
        if self._deflate is not None:
            self.out.write(self._deflate.compress(view))
            return len(view)
        for start in range(0, len(view), _STORED_MAX):  # [deflate] 3.2.4: BFINAL=0 BTYPE=00, LEN, NLEN, the bytes
            piece = view[start : start + _STORED_MAX]
            self.out.write(struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF))
            self.out.write(piece)
        return len(view)

    def read(self, size: int = -1) -> bytes:
        raise io.UnsupportedOperation("a GzipWriter is write-only")

    def seek(self, position: int) -> int:
        raise io.UnsupportedOperation("a GzipWriter writes one stream, front to back")

    def tell(self) -> int:
        """Bytes written so far, uncompressed (tarfile asks where it starts)."""
        return self.size

    def close(self) -> None:
        """The final block and the trailer ([gzip] CRC32, ISIZE mod 2**32); the underlying file stays open."""
        if self.closed:
            return
        self.closed = True
        if self._deflate is not None:
            self.out.write(self._deflate.flush(zlib.Z_FINISH))
        else:
            self.out.write(struct.pack("<BHH", 1, 0, 0xFFFF))  # an empty final stored block
        self.out.write(struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))

    def __enter__(self) -> GzipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


class GunzipReader:
    """A binary stream's gzip members, decompressed; read(n) returns at most n bytes, b"" at the end.

    A damaged stream raises zlib.error (bad header, data or CRC) or EOFError (cut short); bytes after
    the last member that are not another member are zlib.error too, NUL padding excepted (as gzip's).
    """

    def __init__(self, raw: IO[bytes], chunk: int = 1 << 20) -> None:
        self.raw, self.chunk = raw, chunk
        self._inflate: zlib._Decompress | None = zlib.decompressobj(_GZIP_WBITS)
        self._pending = b""  # compressed input read from `raw`, given to zlib from _offset on
        self._offset = 0
        self._started = False  # some input of the current member was read

    def read(self, size: int = -1) -> bytes:
        size = self.chunk if size < 0 else size
        while size > 0 and self._inflate is not None:
            source: bytes | memoryview = self._inflate.unconsumed_tail  # input zlib had no room for last time
            if not source:
                if self._offset >= len(self._pending):
                    self._pending, self._offset = self.raw.read(self.chunk), 0
                    if not self._pending:
                        if self._started:
                            raise EOFError("compressed file ended before the end-of-stream marker was reached")
                        self._inflate = None  # the end, between members
                        return b""
                # no more input than output asked for: stored blocks then leave no unconsumed tail to copy
                source = memoryview(self._pending)[self._offset : self._offset + size]
                self._offset += len(source)
            self._started = True
            data = self._inflate.decompress(source, size)
            if self._inflate.eof:
                self._next_member(self._inflate.unused_data + self._pending[self._offset :])
            if data:
                return data
        return b""

    def _next_member(self, rest: bytes) -> None:
        """After a member's trailer: another member, or the end (NUL padding allowed, as gzip allows it)."""
        rest = rest.lstrip(b"\0")
        while not rest:
            more = self.raw.read(self.chunk)
            if not more:
                self._inflate = None
                return
            rest = more.lstrip(b"\0")
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._pending, self._offset, self._started = rest, 0, False
