"""Skip work whose inputs have not changed.

Content keys, recorded under build/state/ after each successful step:
- go build, per platform: a hash of the module's files, the Go version, the
  exact command line and environment. Unchanged key + binaries whose digests
  match the record -> no `go build` at all.
- images, per service: the binaries' digests (prebuilt) or the module's files
  (multistage), the rendered Dockerfile, build args, labels, platforms,
  repository and tags. Unchanged key + every tag already pointing at the
  recorded index -> no build, no push; tags that drifted are put back on the
  recorded index without rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"}


def tree_hash(root: Path, exclude: Iterable[Path] = ()) -> str:
    """sha256 over every file's relative path and content (symlinks by target)."""
    excluded = {p.resolve() for p in exclude}
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and (here / d).resolve() not in excluded)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            digest.update(rel.encode() + b"\0")
            if path.is_symlink():
                digest.update(b"link:" + os.readlink(path).encode())
            else:
                digest.update(file_digest(path).encode())
            digest.update(b"\n")
    return digest.hexdigest()


_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's content, computed once per process for an unchanged file
    (same size, mtime, ctime and inode: a rewrite changes the ctime)."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    cached = _DIGESTS.get(key)
    if cached is None:
        with open(path, "rb") as fh:
            cached = _DIGESTS[key] = hashlib.file_digest(fh, "sha256").hexdigest()
    return cached


def key_of(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class State:
    """One JSON file of records, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict[str, Any]] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            self.data = {}

    def get(self, name: str) -> dict[str, Any]:
        return self.data.get(name, {})

    def put(self, name: str, record: dict[str, Any]) -> None:
        self.data[name] = record

    def drop(self, name: str) -> None:
        self.data.pop(name, None)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)
