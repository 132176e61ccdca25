"""Which main packages of a module are services, and what each is called.

One rule, used by `crossbuild init` and by a config.toml without [[services]]
(the way a repository's own build tooling finds its commands):

* every directory below `cmd/`, at any depth, holding a `package main`
  (`cmd/openim-rpc/openim-rpc-auth`), and `cmd/` itself (`cmd/main.go`);
* without any, the main package at the module root (`main.go`);
* directories a repository does not ship (tests, tools, examples, ...) are
  left out, and the caller can say so;
* files are read as `go build` would pick them for linux: `_test.go` files,
  files excluded by `//go:build` (an `ignore` tag, another OS) and files of
  other packages do not count.

A service is named after its directory (lower case, image-name safe); the
main package at `cmd/` or at the root is named after the project; names that
collide are made unique with their parent directories.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Path elements below cmd/ whose main packages are not shipped: a note says so.
NOT_SHIPPED = frozenset(
    {
        "test",
        "tests",
        "testing",
        "testdata",
        "testutil",
        "e2e",
        "integration",
        "tools",
        "tool",
        "example",
        "examples",
        "demo",
        "demos",
        "hack",
        "bench",
        "benchmark",
        "benchmarks",
        "mock",
        "mocks",
        "fixture",
        "fixtures",
    }
)
NOT_SHIPPED_LEAF = frozenset(
    {"test", "tests", "testing", "e2e", "example", "examples", "demo", "demos", "mock", "mocks"}
)
# Directories go itself never builds from: vendor/, testdata/, names starting with . or _.
_GO_SKIPS = frozenset({"vendor", "testdata", "node_modules"})
_NAME_OK = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_BUILD_LINE = re.compile(r"^//go:build\s+(?P<expr>.+)$")
_PLUS_BUILD = re.compile(r"^//\s*\+build\s+(?P<expr>.+)$")
_PACKAGE = re.compile(r"^package\s+(?P<name>[A-Za-z_]\w*)")
# GOOS names a file suffix (_linux.go) can carry, and the ones that are "unix".
_GOOS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    }
)
_GOARCH = frozenset(
    {
        "386",
        "amd64",
        "arm",
        "arm64",
        "loong64",
        "mips",
        "mips64",
        "mips64le",
        "mipsle",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
        "wasm",
    }
)
_UNIX = _GOOS - {"js", "nacl", "plan9", "wasip1", "windows", "zos"}  # the unix build tag's systems


@dataclass(frozen=True)
class MainPackage:
    name: str  # service and binary name
    package: str  # "./cmd/api", relative to the module directory
    dir: Path


@dataclass(frozen=True)
class Discovery:
    services: tuple[MainPackage, ...]
    left_out: tuple[tuple[str, str], ...] = ()  # (package, why)
    notes: tuple[str, ...] = field(default_factory=tuple)


def sanitize_name(name: str) -> str:
    """Lower case, anything but [a-z0-9._-] turned into '-' (crossbuild's service-name rule)."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    return re.sub(r"^[^a-z0-9]+", "", cleaned).rstrip("-.")


def project_name(module: str, fallback: str = "app") -> str:
    """A module path's last element, without a /vN major-version suffix, image-name safe."""
    parts = [p for p in module.split("/") if p]
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        parts.pop()
    return sanitize_name(parts[-1] if parts else "") or fallback


def module_path(go_mod_text: str) -> str:
    """The `module` line of a go.mod ("" when there is none)."""
    for raw in go_mod_text.splitlines():
        m = re.match(r'^module\s+"?([^\s"]+)"?$', raw.split("//", 1)[0].strip())
        if m:
            return m.group(1)
    return ""


# --- build constraints ---------------------------------------------------------------------------


def _tag_true(tag: str, goos: str, goarch: str, tags: frozenset[str]) -> bool:
    if tag in (goos, goarch) or tag in tags or tag == "gc":
        return True
    if tag == "unix":
        return goos in _UNIX
    return bool(re.fullmatch(r"go1\.\d+", tag))  # every release tag the installed Go satisfies, near enough


def constraint_holds(expr: str, goos: str = "linux", goarch: str = "amd64", tags: Iterable[str] = ()) -> bool:
    """Evaluate a `//go:build` expression (||, &&, !, parentheses, tags). Malformed: False."""
    tokens = re.findall(r"\|\||&&|!|\(|\)|[A-Za-z0-9_.]+|\S", expr)
    tagset = frozenset(tags)
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    def take() -> str:
        nonlocal pos
        pos += 1
        return str(tokens[pos - 1])

    def unary() -> bool:
        tok = take() if pos < len(tokens) else ""
        if tok == "!":
            return not unary()
        if tok == "(":
            value = disjunction()
            if take() != ")":
                raise ValueError(expr)
            return value
        if not re.fullmatch(r"[A-Za-z0-9_.]+", tok):
            raise ValueError(expr)
        return _tag_true(tok, goos, goarch, tagset)

    def conjunction() -> bool:
        value = unary()
        while peek() == "&&":
            take()
            value = unary() and value
        return value

    def disjunction() -> bool:
        value = conjunction()
        while peek() == "||":
            take()
            value = conjunction() or value
        return value

    try:
        result = disjunction()
    except (ValueError, IndexError):
        return False
    return result and pos == len(tokens)


def _plus_build_holds(lines: Iterable[str], goos: str, goarch: str, tags: frozenset[str]) -> bool:
    """Old `// +build a,b c` lines: space = OR, comma = AND, ! = NOT; every line must hold."""
    for line in lines:
        options = line.split()
        if not any(
            all(
                (not _tag_true(t[1:], goos, goarch, tags)) if t.startswith("!") else _tag_true(t, goos, goarch, tags)
                for t in option.split(",")
            )
            for option in options
        ):
            return False
    return True


def _name_allows(filename: str, goos: str, goarch: str) -> bool:
    """The _GOOS / _GOARCH / _GOOS_GOARCH file-name suffixes (go/build's goodOSArchFile)."""
    parts = filename.removesuffix(".go").split("_")
    if len(parts) >= 3 and parts[-2] in _GOOS and parts[-1] in _GOARCH:
        return parts[-2] == goos and parts[-1] == goarch
    if len(parts) >= 2 and parts[-1] in _GOOS:
        return parts[-1] == goos or (parts[-1] == "linux" and goos == "android")
    if len(parts) >= 2 and parts[-1] in _GOARCH:
        return parts[-1] == goarch
    return True


def file_package(text: str, filename: str, goos: str = "linux", goarch: str = "amd64", tags: Iterable[str] = ()) -> str:
    """The package a Go file belongs to for this build, "" when the build would not compile it."""
    if filename.endswith("_test.go") or not _name_allows(filename, goos, goarch):
        return ""
    tagset = frozenset(tags)
    plus: list[str] = []
    in_block = False
    for raw in text.splitlines():
        line = raw.strip()
        if in_block:
            in_block = "*/" not in line
            continue
        if line.startswith("/*"):
            in_block = "*/" not in line[2:]
            continue
        m = _BUILD_LINE.match(line)
        if m:
            if not constraint_holds(m.group("expr"), goos, goarch, tagset):
                return ""
            continue
        m = _PLUS_BUILD.match(line)
        if m:
            plus.append(m.group("expr"))
            continue
        if not line or line.startswith("//"):
            continue
        pkg = _PACKAGE.match(line)
        if pkg is None:
            return ""
        if plus and not _plus_build_holds(plus, goos, goarch, tagset):
            return ""
        return pkg.group("name")
    return ""


def package_name(directory: Path, tags: Iterable[str] = ()) -> str:
    """The Go package a directory builds for linux ("" when it has no buildable .go file)."""
    names: dict[str, int] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return ""
    for entry in entries:
        if not entry.name.endswith(".go") or not entry.is_file():
            continue
        try:
            with open(entry.path, encoding="utf-8", errors="replace") as fh:
                head = fh.read(16384)
        except OSError:
            continue
        name = file_package(head, entry.name, tags=tags)
        if name:
            names[name] = names.get(name, 0) + 1
    if not names:
        return ""
    # `package main` alongside a stray generator file of another package: go would refuse
    # the mix, but the main package is what the directory is for.
    return "main" if "main" in names else max(names, key=lambda n: names[n])


def is_main(directory: Path, tags: Iterable[str] = ()) -> bool:
    return package_name(directory, tags) == "main"


# --- discovery -----------------------------------------------------------------------------------


def _walk(top: Path) -> Iterable[Path]:
    """top and every directory below it that go would build from (no nested modules)."""
    for dirpath, dirnames, _files in os.walk(top):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _GO_SKIPS and not d.startswith((".", "_")) and not (here / d / "go.mod").is_file()
        )
        yield here


def _names(found: list[tuple[Path, tuple[str, ...]]], project: str) -> list[str]:
    """Service names: the directory's, the project's for cmd/ or the root; collisions get parents."""
    base = [sanitize_name(parts[-1]) if parts else project for _d, parts in found]
    names = list(base)
    for n, name in enumerate(base):
        if base.count(name) > 1 or not name:
            parts = found[n][1]
            names[n] = sanitize_name("-".join(parts)) if parts else project
    # still colliding (a-b/c vs a/b-c): number them, in path order
    seen: dict[str, int] = {}
    for n, name in enumerate(names):
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            names[n] = f"{name}-{seen[name]}"
    return names


def _discover_one(
    root: Path, module_dir: Path, tags: tuple[str, ...]
) -> tuple[list[tuple[Path, tuple[str, ...]]], list[tuple[str, str]]]:
    cmd = root / "cmd"
    found: list[tuple[Path, tuple[str, ...]]] = []
    left_out: list[tuple[str, str]] = []
    if cmd.is_dir():
        for directory in _walk(cmd):
            if not is_main(directory, tags):
                continue
            parts = directory.relative_to(cmd).parts
            package = "./" + directory.relative_to(module_dir).as_posix()
            # a parent directory like tools/ or examples/ groups programs that are not shipped; as the
            # program's own name only the unmistakable ones count (cmd/tool is a tool called "tool")
            parents = [p for p in parts[:-1] if p.lower() in NOT_SHIPPED]
            skipped = (
                parents[0] if parents else (parts[-1] if parts and parts[-1].lower() in NOT_SHIPPED_LEAF else None)
            )
            if skipped is not None:
                left_out.append((package, f"'{skipped}/' holds programs a repository does not ship"))
                continue
            found.append((directory, parts))
    if not found and is_main(root, tags):
        found.append((root, ()))
    return found, left_out


def discover(module_dir: Path, project: str, tags: Iterable[str] = ()) -> Discovery:
    """The services of the module (or go.work workspace) at `module_dir`; the module docstring has the rule."""
    tags = tuple(tags)
    module_dir = module_dir.resolve()
    found: list[tuple[Path, tuple[str, ...]]] = []
    left_out: list[tuple[str, str]] = []
    for root in module_roots(module_dir):
        more, skipped = _discover_one(root, module_dir, tags)
        found += more
        left_out += skipped
    names = _names(found, project)
    services = []
    for (directory, _parts), name in zip(found, names, strict=True):
        rel = directory.relative_to(module_dir).as_posix()
        services.append(MainPackage(name=name, package="./" + rel if rel != "." else ".", dir=directory))
    return Discovery(services=tuple(services), left_out=tuple(left_out))


def package_of(module_dir: Path, main: str) -> str:
    """A goreleaser-style `main:` (./cmd/x, ./cmd/x/main.go, cmd/x, .) as crossbuild's "./cmd/x"."""
    text = main.strip() or "."
    path = module_dir / text
    if text.endswith(".go") or path.is_file():
        path = path.parent
    rel = os.path.relpath(path.resolve(), module_dir.resolve())
    return "." if rel == "." else "./" + Path(rel).as_posix()


def valid_name(name: str) -> bool:
    return bool(_NAME_OK.match(name))


def by_package(services: Iterable[MainPackage]) -> Mapping[str, MainPackage]:
    return {s.package: s for s in services}


def workspace_modules(go_work_text: str) -> list[str]:
    """The directories a go.work `use`s, in order (single lines and `use ( ... )` blocks)."""
    dirs: list[str] = []
    block = False
    for raw in go_work_text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if block:
            if line.startswith(")"):
                block = False
            elif line:
                dirs.append(line.strip('"'))
            continue
        m = re.match(r"^use\s*(\(|\S+)", line)
        if m:
            if m.group(1) == "(":
                block = True
            else:
                dirs.append(m.group(1).strip('"'))
    return dirs


def module_roots(module_dir: Path) -> list[Path]:
    """The Go modules at `module_dir`: itself (go.mod), or every module its go.work uses."""
    if (module_dir / "go.mod").is_file() or not (module_dir / "go.work").is_file():
        return [module_dir]
    text = (module_dir / "go.work").read_text(encoding="utf-8", errors="replace")
    roots = [(module_dir / d).resolve() for d in workspace_modules(text)]
    return [r for r in roots if (r / "go.mod").is_file()] or [module_dir]
