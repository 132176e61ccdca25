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
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"}


def tree_hash(root: Path, exclude: Iterable[Path] = ()) -> str:
    """sha256 over every file's relative path and content (symlinks by target)."""
    excluded = {p.resolve() for p in exclude}
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and (here / d).resolve() not in excluded)
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

StatKey = tuple[str, int, int, int, int]  # path, size, mtime, ctime, inode: a rewrite changes the ctime


def stat_key(path: Path, st: os.stat_result | None = None) -> StatKey:
    """What identifies a file's content without reading it, for the caches kept by stat."""
    st = os.stat(path) if st is None else st
    return (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def stat_entries(path: Path, extra: int) -> Iterator[tuple[StatKey, list[Any]]]:
    """The entries a cache kept by stat saved as a JSON list of [name, size, mtime, ctime, inode,
    then `extra` values]: each entry's key and its values; nothing when the file is missing or bad."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    for entry in entries if isinstance(entries, list) else []:
        try:
            name, size, mtime, ctime, ino, *rest = entry
            key = (str(name), int(size), int(mtime), int(ctime), int(ino))
        except (TypeError, ValueError):
            continue
        if len(rest) == extra:
            yield key, rest


def file_digest(path: Path) -> str:
    """sha256 of a file's content, computed once for an unchanged file (same size, mtime,
    ctime and inode: a rewrite changes the ctime), and kept between runs for the files
    `save_digests` wrote out.

    A Go binary is also known by its Go build ID: `go build` finds a binary up to date by
    that ID and then only touches it (new mtime and ctime, same bytes). The ID's last part
    is the hash of the binary's content, so the same path, size and build ID is the same
    content: the touched binary is not read again."""
    st = os.stat(path)
    key = stat_key(path, st)
    cached = _DIGESTS.get(key)
    if cached is not None:
        return cached
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
        build_id = go_build_id(head)
        known = _BY_BUILD_ID.get((key[0], st.st_size, build_id)) if build_id else None
        if known is not None:
            digest = known
        else:
            h = hashlib.sha256(head)
            while chunk := fh.read(1 << 20):
                h.update(chunk)
            digest = h.hexdigest()
    _DIGESTS[key] = digest
    if build_id:
        _BY_BUILD_ID[(key[0], st.st_size, build_id)] = digest
    return digest


_HEAD = 32 * 1024  # the Go build ID note sits in an ELF's first page
_GO_NOTE = b"Go\x00\x00"
_BY_BUILD_ID: dict[tuple[str, int, str], str] = {}


def go_build_id(head: bytes) -> str:
    """The Go build ID in an ELF's `.note.go.buildid` note (name "Go", type 4), from the file's
    first bytes; "" when there is none (not ELF, not Go, or built with -buildid=)."""
    if not head.startswith(b"\x7fELF") or len(head) < 6:
        return ""
    order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
    at = head.find(_GO_NOTE)
    while at >= 12:
        namesz, descsz, kind = (int.from_bytes(head[at - 12 + i : at - 8 + i], order) for i in (0, 4, 8))
        desc = head[at + 4 : at + 4 + descsz]
        if namesz == 4 and kind == 4 and len(desc) == descsz and desc.isascii() and b"/" in desc:
            return desc.decode()
        at = head.find(_GO_NOTE, at + 1)
    return ""


def same_content(path: Path, digest: str) -> None:
    """`path` still holds `digest` after a change to its metadata only (new times, a new hard link)."""
    _DIGESTS[stat_key(path)] = digest


def load_digests(path: Path) -> None:
    """The digests an earlier run saved (`save_digests`): by stat, and by Go build ID."""
    for key, (build_id, digest) in stat_entries(path, 2):
        _DIGESTS[key] = str(digest)
        if build_id:
            _BY_BUILD_ID[(key[0], key[1], str(build_id))] = str(digest)


def save_digests(path: Path, under: Path) -> None:
    """Write out the digests known for files under `under` that still have the recorded stat."""
    prefix = os.fspath(under) + os.sep
    ids = {(name, size): build_id for (name, size, build_id) in list(_BY_BUILD_ID)}
    entries = []
    # a copy: another thread (a platform's images baked beside the compile) may add digests meanwhile
    for (name, size, mtime, ctime, ino), digest in list(_DIGESTS.items()):
        if not name.startswith(prefix):
            continue
        try:
            st = os.stat(name)
        except OSError:
            continue
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (size, mtime, ctime, ino):
            build_id = ids.get((name, size), "")
            if build_id and _BY_BUILD_ID.get((name, size, build_id)) != digest:
                build_id = ""
            entries.append([name, size, mtime, ctime, ino, build_id, digest])
    path.parent.mkdir(parents=True, exist_ok=True)
    with _SAVING:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(entries)) + "\n")
        tmp.replace(path)


_SAVING = threading.Lock()


def key_of(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class State:
    """One JSON file of records, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.changed = False
        try:
            self.data: dict[str, dict[str, Any]] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            self.data = {}
            self.changed = True

    def get(self, name: str) -> dict[str, Any]:
        return self.data.get(name, {})

    def put(self, name: str, record: dict[str, Any]) -> None:
        if self.data.get(name) != record:
            self.data[name] = record
            self.changed = True

    def drop(self, name: str) -> None:
        if self.data.pop(name, None) is not None:
            self.changed = True

    def save(self) -> None:
        """Write the records out, unless they are the ones read."""
        if not self.changed:
            return
        self.changed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)
