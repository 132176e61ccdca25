"""Which parts of a module's sources `go list` and govars read, as keys: their answers are
kept between runs (crossbuild.stamping) and asked again only when those parts change.

* `go list -deps` (the package graph) reads, of each .go file, only its header: build
  constraints, the package clause and the imports (go/build stops at the first other
  declaration), plus every file's name and the module files (go.mod, go.sum, vendor's
  modules.txt). `graph_key` hashes exactly that, so an edit inside a function body, the
  edit developers make all day, leaves it unchanged. A file whose header cannot be cut
  safely (an import after a declaration, `//go:embed`) counts whole.
* govars reads the .go files of one directory (crossbuild.golist): `dir_key` hashes that
  directory's file names and contents.

What a key cannot see is refused instead of guessed: a go.work (here or above the module,
or GOWORK) and `replace` directives to directories outside the module make `graph_key`
return None, and the caller asks go list every time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from crossbuild import incremental

# files go list reads whole
_MODULE_FILES = {"go.mod", "go.sum", "modules.txt"}
_DECL = re.compile(rb"^(?:func|var|const|type)\b", re.MULTILINE)
_IMPORT = re.compile(rb"^import\b", re.MULTILINE)
_LOCAL_REPLACE = re.compile(r"=>\s*(\.{1,2}/\S*|/\S*|\.{1,2})\s*$", re.MULTILINE)


def header(data: bytes) -> bytes | None:
    """The part of a Go file go/build reads (everything before the first declaration that is
    not an import), or None when the rest of the file could still matter to it."""
    match = _DECL.search(data)
    while match is not None and _inside_comment(data[: match.start()]):
        match = _DECL.search(data, match.end())
    if b"//go:embed" in data:
        return None
    if match is None:
        return data
    if _IMPORT.search(data, match.start()):
        return None
    return data[: match.start()]


def _inside_comment(before: bytes) -> bool:
    """Is a /* comment still open at the end of `before` (a header holds no string with a
    comment marker: import paths cannot contain one)?"""
    if b"/*" not in before:
        return False
    in_comment = False
    for line in before.splitlines():
        in_comment = _comment_state(line, in_comment)
    return in_comment


def _comment_state(line: bytes, in_comment: bool) -> bool:
    """Whether a /* comment is still open after `line`, given whether one was open before it."""
    i = 0
    while i < len(line):
        if in_comment:
            end = line.find(b"*/", i)
            if end < 0:
                return True
            in_comment, i = False, end + 2
            continue
        block, slash = line.find(b"/*", i), line.find(b"//", i)
        if block < 0 or (0 <= slash < block):
            return False
        in_comment, i = True, block + 2
    return in_comment


# each .go file's share of graph_key, by its stat (path, size, mtime, ctime, inode: a rewrite changes the
# ctime), so an unchanged file is not read again in this run, nor in the next once save_parts wrote it out
_PARTS: dict[incremental.StatKey, str] = {}
_SEEN: set[incremental.StatKey] = set()


def _go_file_part(path: Path, st: os.stat_result) -> str:
    """ "h" and the sha256 of the file's header, or "f" and that of the whole file when it has no
    safe header (crossbuild.gosources.header)."""
    key = incremental.stat_key(path, st)
    part = _PARTS.get(key)
    if part is None:
        data = path.read_bytes()
        head = header(data)
        part = "h" + hashlib.sha256(head).hexdigest() if head is not None else "f" + hashlib.sha256(data).hexdigest()
        _PARTS[key] = part
    _SEEN.add(key)
    return part


def load_parts(path: Path) -> None:
    """The files' shares of graph_key an earlier run saved (save_parts)."""
    for key, (part,) in incremental.stat_entries(path, 1):
        _PARTS[key] = str(part)


def save_parts(path: Path) -> None:
    """Write out the shares of the files graph_key read or reused in this run (a file gone or
    changed since drops out: its stat no longer matches next time)."""
    entries = [[*key, _PARTS[key]] for key in sorted(_SEEN) if key in _PARTS]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, separators=(",", ":")))
    tmp.replace(path)


def _walk(root: Path, excluded: set[Path]) -> Iterable[tuple[Path, list[str]]]:
    """Directories under a resolved `root` (os.walk does not follow links, so no path needs
    resolving again) with their file names, less the skipped and excluded ones."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if d not in incremental.SKIP_DIRS and here / d not in excluded)
        yield here, sorted(filenames)


def _workspace_outside(root: Path, environ: Mapping[str, str]) -> bool:
    """Does a go.work or a local replace bring in code a key over `root` does not see?"""
    gowork = environ.get("GOWORK", "")
    if gowork and gowork != "off":
        return True
    return not gowork and any((d / "go.work").is_file() for d in (root, *root.parents))


def _replaces_outside(root: Path, gomod: Path, text: str) -> bool:
    return any(not (gomod.parent / t).resolve().is_relative_to(root) for t in _LOCAL_REPLACE.findall(text))


def go_binary_key() -> str:
    """The go command on PATH, by its resolved path, size and time: a new toolchain, a new key."""
    go = shutil.which("go") or "go"
    try:
        st = os.stat(go)
    except OSError:
        return go
    return f"{os.path.realpath(go)}:{st.st_size}:{st.st_mtime_ns}"


def graph_key(
    root: Path,
    patterns: Sequence[str],
    env: Mapping[str, str],
    tags: Sequence[str] = (),
    exclude: Iterable[Path] = (),
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """A key of everything `go list -deps patterns` reads in `root`, or None when its answer
    also depends on code outside `root` that a key here cannot see."""
    environ = os.environ if environ is None else environ
    root = root.resolve()
    if _workspace_outside(root, environ):
        return None
    digest = hashlib.sha256()
    for here, names in _walk(root, {p.resolve() for p in exclude}):
        rel = here.relative_to(root).as_posix()
        for name in names:
            path = here / name
            digest.update(f"{rel}/{name}\0".encode())
            try:
                st = os.lstat(path)
            except OSError:
                st = None
            if st is None or not stat.S_ISREG(st.st_mode):  # a link, a socket, gone meanwhile: its name only
                digest.update(b"\n")
                continue
            if name in _MODULE_FILES:
                data = path.read_bytes()
                if name == "go.mod" and _replaces_outside(root, path, data.decode(errors="replace")):
                    return None
                digest.update(data)
            elif name.endswith(".go"):
                digest.update(_go_file_part(path, st).encode())
            digest.update(b"\n")
    go_vars = sorted((k, v) for k, v in environ.items() if k.startswith(("GO", "CGO_")))
    digest.update(
        incremental.key_of(
            {
                "root": str(root),  # go list answers with absolute directories: a moved tree is a new answer
                "patterns": list(patterns),
                "env": dict(env),
                "tags": list(tags),
                "go": go_binary_key(),
                "environ": go_vars,
            }
        ).encode()
    )
    return digest.hexdigest()


def dir_key(directory: Path, settings: Mapping[str, object]) -> str:
    """A key of one directory's files (names and contents) as govars reads them, under `settings`."""
    digest = hashlib.sha256(incremental.key_of(dict(settings)).encode())
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return digest.hexdigest() + ":unreadable"
    for name in names:
        path = directory / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(incremental.file_digest(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()
