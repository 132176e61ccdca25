"""What the Go toolchain knows about a module, asked through the runner.

Two questions, answered without compiling anything:

* `go list`: which packages exist (`find`, no dependency resolution, no
  network) and which packages each main package links (`load`, with `Deps`).
* `govars` (crossbuild/gohelpers/govars.go, standard library only, built once
  per Go version into the user cache): which package-level string variables a
  package declares, which of them `-X` can set, which are consts, embeds or
  computed, and which `pkg.Name` selectors each package uses.

Both are the truth the linker and the build use; nothing here reads Go
source with regular expressions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crossbuild import runner
from crossbuild.errors import CommandError, UserError

# GOFLAGS that would make `go list` fail or touch the network on a repository that builds
# fine with its own settings are left alone: the user's environment is the build's too.
_LIST_FIELDS = "ImportPath,Name,Dir,Module,Deps,Error,DepsErrors,Standard"
_FIND_FIELDS = "ImportPath,Name,Dir,Module"


@dataclass(frozen=True)
class Package:
    import_path: str
    name: str  # Go package name ("main" for commands)
    dir: Path
    module: str  # module path ("" outside a module)
    module_dir: Path | None = None
    deps: frozenset[str] = frozenset()  # every import path it links (not itself)
    error: str = ""
    standard: bool = False  # part of the Go standard library

    @property
    def links(self) -> frozenset[str]:
        """Every import path in the binary: the package itself and its dependencies."""
        return self.deps | {self.import_path}


@dataclass(frozen=True)
class StringVar:
    """One package-level string of a package, as govars saw it."""

    package: str  # import path
    name: str
    kind: str  # var | const | embed | expr | typed
    file: Path
    line: int
    value: str = ""
    local: bool = False  # the package itself reads it

    @property
    def settable(self) -> bool:
        """`-X` can set it: a string var, uninitialised or initialised to a constant."""
        return self.kind == "var"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class PackageVars:
    import_path: str
    name: str
    dir: Path
    vars: dict[str, StringVar] = field(default_factory=dict)
    refs: frozenset[str] = frozenset()  # "<import path>.<Name>" selectors used
    error: str = ""


def _json_stream(text: str) -> list[dict[str, Any]]:
    """`go list -json` prints concatenated JSON objects, not an array."""
    decoder = json.JSONDecoder()
    items: list[dict[str, Any]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return items
        obj, pos = decoder.raw_decode(text, pos)
        items.append(obj)


def _package(item: Mapping[str, Any]) -> Package:
    module = item.get("Module") or {}
    error = (item.get("Error") or {}).get("Err", "")
    dep_errors = [e.get("Err", "") for e in item.get("DepsErrors") or []]
    return Package(
        import_path=item.get("ImportPath", ""),
        name=item.get("Name", ""),
        dir=Path(item.get("Dir", "")),
        module=module.get("Path", ""),
        module_dir=Path(module["Dir"]) if module.get("Dir") else None,
        deps=frozenset(item.get("Deps") or ()),
        error=error or "; ".join(e for e in dep_errors if e),
        standard=bool(item.get("Standard")),
    )


def go_env_for(
    goos: str = "", goarch: str = "", cgo: bool = False, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(extra or {})
    env["CGO_ENABLED"] = "1" if cgo else "0"
    if goos:
        env["GOOS"] = goos
    if goarch:
        env["GOARCH"] = goarch
    return env


def _list_items(
    root: Path, patterns: Sequence[str], fields: str, flags: Sequence[str], env: Mapping[str, str], hint: str
) -> list[dict[str, Any]]:
    if runner.which("go") is None:
        raise UserError("go: command not found; install Go (https://go.dev/dl/) or run `make tools`")
    argv = ["go", "list", "-e", f"-json={fields}", *flags, *patterns]
    out = runner.run(argv, cwd=root, env=dict(env), mutates=False, hint=hint).stdout
    return _json_stream(out)


def _list(
    root: Path, patterns: Sequence[str], fields: str, flags: Sequence[str], env: Mapping[str, str], hint: str
) -> list[Package]:
    return packages(_list_items(root, patterns, fields, flags, env, hint))


def packages(items: Iterable[Mapping[str, Any]]) -> list[Package]:
    """go list's JSON objects read into Packages."""
    return [_package(item) for item in items]


def find(root: Path, patterns: Sequence[str], env: Mapping[str, str] | None = None) -> list[Package]:
    """The packages matching `patterns`, without resolving their imports (`go list -find`):
    fast and offline, for discovery."""
    return _list(
        root,
        patterns,
        _FIND_FIELDS,
        ["-find"],
        env or go_env_for(),
        hint=f"go list failed in {root}: is it a Go module or workspace?",
    )


def load(
    root: Path,
    patterns: Sequence[str],
    env: Mapping[str, str] | None = None,
    tags: Sequence[str] = (),
    *,
    deps: bool = False,
) -> list[Package]:
    """The packages with the import paths they link (`Deps`): resolves the module graph,
    which may download modules through GOPROXY. `deps`: every package they link is listed
    too (`go list -deps`), each once."""
    return packages(load_items(root, patterns, env, tags, deps=deps))


def load_items(
    root: Path,
    patterns: Sequence[str],
    env: Mapping[str, str] | None = None,
    tags: Sequence[str] = (),
    *,
    deps: bool = False,
) -> list[dict[str, Any]]:
    """`load`'s answer as go list printed it (one JSON object per package)."""
    flags = ["-tags", ",".join(tags)] if tags else []
    if deps:
        flags.append("-deps")
    return _list_items(
        root,
        patterns,
        _LIST_FIELDS,
        flags,
        env or go_env_for(),
        hint=f"go list failed: can the module's dependencies be fetched? try `go mod download` in {root}",
    )


# --- govars ----------------------------------------------------------------------------------


def _helper_source() -> Path:
    return Path(str(resources.files("crossbuild").joinpath("gohelpers", "govars.go")))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crossbuild"


@functools.cache
def _helper_binary() -> Path:
    """govars built once per (source, Go version) into the user cache; rebuilt when either changes."""
    source = _helper_source()
    goversion = runner.output(["go", "env", "GOVERSION"])
    key = hashlib.sha256(source.read_bytes() + goversion.encode()).hexdigest()[:16]
    binary = _cache_dir() / f"govars-{key}"
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(f".{binary.name}.{os.getpid()}")
    # A single file with standard-library imports builds outside any module; GOWORK=off and
    # GOFLAGS= keep a workspace or -mod flags of the caller's environment out of it.
    runner.run(
        ["go", "build", "-o", str(tmp), str(source)],
        cwd=source.parent,
        env={"GOWORK": "off", "GOFLAGS": "", "CGO_ENABLED": "0", "GOOS": "", "GOARCH": "", "GO111MODULE": "on"},
        mutates=False,
        hint="could not build crossbuild's Go helper (gohelpers/govars.go) with the host Go",
    )
    tmp.replace(binary)
    return binary


def string_vars(
    dirs: Iterable[Path],
    import_paths: Mapping[Path, str],
    *,
    goos: str = "",
    goarch: str = "",
    tags: Sequence[str] = (),
    cgo: bool = False,
) -> dict[str, PackageVars]:
    """import path -> the package's string variables and selectors, for each directory."""
    items = govars_items(dirs, goos=goos, goarch=goarch, tags=tags, cgo=cgo)
    return package_vars(items, import_paths)


def helper_source_key() -> str:
    """Which govars answers, by its source (the Go toolchain that builds it is keyed apart)."""
    return hashlib.sha256(_helper_source().read_bytes()).hexdigest()[:16]


def govars_items(
    dirs: Iterable[Path], *, goos: str = "", goarch: str = "", tags: Sequence[str] = (), cgo: bool = False
) -> list[dict[str, Any]]:
    """govars' answer for each directory, as it printed it (one JSON object per directory)."""
    dir_list = sorted({Path(d) for d in dirs})
    if not dir_list:
        return []
    argv = [str(_helper_binary())]
    runner.add_opt(argv, "-goos", goos or None)
    runner.add_opt(argv, "-goarch", goarch or None)
    runner.add_opt(argv, "-tags", ",".join(tags) or None)
    runner.add_flag(argv, "-cgo", cgo)
    argv += [str(d) for d in dir_list]
    try:
        out = runner.run(argv, mutates=False).stdout
    except CommandError as exc:
        raise UserError(f"crossbuild's Go helper failed: {exc.tail(3)}") from exc
    items: list[dict[str, Any]] = json.loads(out).get("packages", [])
    return items


def package_vars(items: Iterable[Mapping[str, Any]], import_paths: Mapping[Path, str]) -> dict[str, PackageVars]:
    """govars' objects read into PackageVars, keyed by import path (by directory without one)."""
    result: dict[str, PackageVars] = {}
    for item in items:
        directory = Path(item["dir"])
        path = import_paths.get(directory, "")
        pv = PackageVars(
            import_path=path,
            name=item.get("name", ""),
            dir=directory,
            refs=frozenset(item.get("refs") or ()),
            error=item.get("error", ""),
        )
        for v in item.get("vars") or []:
            pv.vars[v["name"]] = StringVar(
                package=path,
                name=v["name"],
                kind=v["kind"],
                file=directory / v["file"],
                line=int(v["line"]),
                value=v.get("value", ""),
                local=bool(v.get("local")),
            )
        result[path or str(directory)] = pv
    return result
