"""glibc's malloc, told to keep freed buffers for reuse while gigabytes stream through in MiB chunks.

Streaming a bundle allocates and frees buffers of 256 KiB to 1 MiB for every MiB that passes (a read,
zlib's output, tarfile's joins, a hash's input). glibc serves those from fresh mmap()s, or trims the
heap they came from as soon as they are freed, so the kernel faults in and zeroes every page of every
buffer again: 700 000 page faults and more system time than user time per GiB read, twice the time
the reading itself takes. With a higher mmap threshold and trim threshold the same few buffers are
reused; memory stays bounded by what is in use at the peak, which is what RSS measures anyway.

Other C libraries (musl, macOS) have no mallopt: nothing is changed there.
"""

from __future__ import annotations

import ctypes
import sys

# glibc malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
KEEP = 64 << 20  # bytes of freed memory at the top of the heap kept rather than returned
MMAP_MIN = 32 << 20  # allocations from this size on get their own mapping (glibc's dynamic maximum)


def keep_freed_buffers() -> bool:
    """Tune malloc for streaming (see the module docstring); True when it could be told."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_MIN)) and bool(mallopt(_M_TRIM_THRESHOLD, KEEP))
