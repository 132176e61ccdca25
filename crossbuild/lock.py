"""One run per output directory at a time.

Two runs on one build/ (a second `make image.multiarch` in another terminal, two CI
jobs sharing a workspace) would both do the whole job and overwrite each other's state
files. The first run takes an exclusive lock on <output_dir>/state/lock; a second
one waits, saying once who holds it, or with CROSSBUILD_NO_WAIT=1 refuses in one line.
The kernel drops the lock when its holder exits, however it exits (flock(2)).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from crossbuild import output
from crossbuild.errors import UserError

LOCK_NAME = Path("state") / "lock"  # with the rest of crossbuild's bookkeeping


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 512).decode(errors="replace").strip()
    except OSError:
        return ""


@contextmanager
def held(output_dir: Path, task: str, environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """Hold the output directory's lock for the duration of `task`."""
    environ = os.environ if environ is None else environ
    path = output_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd) or "another crossbuild run"
            if environ.get("CROSSBUILD_NO_WAIT", "").strip() not in ("", "0"):
                raise UserError(
                    f"{output_dir} is in use by {holder}; wait for it to finish, or unset CROSSBUILD_NO_WAIT to wait"
                ) from None
            output.warn(f"{output_dir} is in use by {holder}; waiting for it to finish")
            started = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            output.info(f"lock acquired after {time.monotonic() - started:.0f}s")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} ({task}, started {time.strftime('%H:%M:%S')})\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
