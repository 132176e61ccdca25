"""The repository `crossbuild init` adopts: its Go module (or workspace), its name,
and an output directory that belongs to crossbuild alone.

The module may sit at the repository root (go.mod), be a go.work workspace of
several modules, or live in a subdirectory (`server/go.mod`): the shallowest
go.work, else the shallowest go.mod holding main packages, is taken.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crossbuild import config as config_mod
from crossbuild import runner
from crossbuild import services as discovered
from crossbuild.errors import UserError

DEFAULT_OUTPUT_DIR = "build"
# Tried in order when build/ belongs to the repository: `_` keeps go ./... out of it.
OUTPUT_CANDIDATES = (DEFAULT_OUTPUT_DIR, "_crossbuild", "_crossbuild_out")
_SOURCE_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "gitee.com")
_SKIP = frozenset({"vendor", "testdata", "node_modules", "third_party"})
# Files where a repository's own tooling names the directories it writes to.
_TOOLING_FILES = ("Makefile", "GNUmakefile", "makefile", ".gitignore", ".dockerignore", "magefile.go")
_TOOLING_GLOBS = ("*.mk", "scripts/*.sh", "hack/*.sh", "build/*.sh", "scripts/*.mk", "hack/*.mk", "build/*.mk")


@dataclass(frozen=True)
class Repository:
    root: Path  # where init runs and config.toml goes
    module_dir: Path  # the directory with go.mod or go.work
    module: str  # module path (a workspace: its first module's)
    name: str  # project name: image namespace, {project}
    workspace: bool = False

    @property
    def module_rel(self) -> str:
        rel = os.path.relpath(self.module_dir, self.root)
        return "." if rel == "." else Path(rel).as_posix()


def source_url(module: str) -> str:
    """https://host/org/repo for modules on the well-known forges, else ""."""
    parts = module.split("/")
    if len(parts) >= 3 and parts[0] in _SOURCE_HOSTS:
        return "https://" + "/".join(parts[:3])
    return ""


def _candidates(root: Path, depth: int = 3) -> list[Path]:
    """Directories below root (breadth first, up to `depth`) holding go.work or go.mod."""
    found: list[Path] = []
    level = [root]
    for _ in range(depth + 1):
        nxt: list[Path] = []
        for directory in level:
            if (directory / "go.work").is_file() or (directory / "go.mod").is_file():
                found.append(directory)
            try:
                children = sorted(p for p in directory.iterdir() if p.is_dir())
            except OSError:
                continue
            nxt += [c for c in children if c.name not in _SKIP and not c.name.startswith((".", "_"))]
        level = nxt
    return found


def find(root: Path) -> Repository:
    """The Go module init adopts in `root`; UserError with the fix when there is none."""
    root = root.resolve()
    if not root.is_dir():
        raise UserError(f"{root}: no such directory")
    candidates = _candidates(root)
    if not candidates:
        raise UserError(f"{root}: no go.mod (or go.work) here or below; run crossbuild init in a Go repository")
    works = [c for c in candidates if (c / "go.work").is_file()]
    if candidates[0] == root:
        chosen = root
    elif works:
        chosen = works[0]
    else:
        with_mains = [c for c in candidates if discovered.discover(c, "probe").services]
        chosen = (with_mains or candidates)[0]
    workspace = (chosen / "go.work").is_file() and not (chosen / "go.mod").is_file()
    if workspace:
        roots = discovered.module_roots(chosen)
        module = _module_of(roots[0]) if roots else ""
    else:
        module = _module_of(chosen)
    if not module and not workspace:
        raise UserError(f"{chosen / 'go.mod'}: no `module` line")
    fallback = discovered.sanitize_name(root.name) or "app"
    name = fallback if workspace or not module else discovered.project_name(module, fallback)
    return Repository(root=root, module_dir=chosen, module=module, name=name, workspace=workspace)


def _module_of(directory: Path) -> str:
    try:
        return discovered.module_path((directory / "go.mod").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""


# --- the output directory ---------------------------------------------------------------------------


def _tracked(root: Path, rel: str) -> bool | None:
    """Does git track anything under rel? None outside a git checkout."""
    if runner.which("git") is None:
        return None
    result = runner.run(["git", "-C", str(root), "ls-files", "--", rel], check=False, mutates=False)
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def mentioned_by_tooling(root: Path, name: str) -> str:
    """The first file of the repository's own tooling that names `name` as a path, "" if none."""
    pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])")
    files = [root / f for f in _TOOLING_FILES] + [p for g in _TOOLING_GLOBS for p in sorted(root.glob(g))]
    for path in files:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if pattern.search(line) and not line.lstrip().startswith("#!"):
                return path.relative_to(root).as_posix()
    return ""


def _owned_by_others(root: Path, name: str) -> str:
    """Why `name` is not free for crossbuild ("" when it is)."""
    path = root / name
    tracked = _tracked(root, name)
    if tracked:
        return f"{name}/ holds files git tracks"
    if path.exists() and not path.is_dir():
        return f"{name} is a file"
    if tracked is None and path.is_dir() and any(path.iterdir()):
        return f"{name}/ holds files of the repository"
    user = mentioned_by_tooling(root, name)
    if user:
        return f"{name}/ is named in {user}, so another tool writes there"
    return ""


def choose_output_dir(root: Path) -> tuple[str, str]:
    """(output_dir, note): an existing config's choice, else the first candidate nobody else uses."""
    existing = root / config_mod.DEFAULT_CONFIG
    if existing.is_file():
        try:
            project = tomllib.loads(existing.read_text(encoding="utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            project = {}
        value = project.get("output_dir") if isinstance(project, dict) else None
        if isinstance(value, str) and value:
            return value, ""
    reasons: list[str] = []
    for name in OUTPUT_CANDIDATES:
        why = _owned_by_others(root, name)
        if not why:
            note = f"crossbuild's output goes to {name}/ ({'; '.join(reasons)})" if reasons else ""
            return name, note
        reasons.append(why)
    raise UserError(f"{root}: no free output directory ({'; '.join(reasons)}); set [project] output_dir by hand")


def gitignore_note(root: Path, output_dir: str) -> str:
    if runner.which("git") is None:
        return ""
    probe = runner.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], check=False, mutates=False)
    if probe.returncode != 0:
        return ""
    ignored = runner.run(["git", "-C", str(root), "check-ignore", "-q", f"{output_dir}/"], check=False, mutates=False)
    return "" if ignored.returncode == 0 else f"consider adding /{output_dir}/ to .gitignore"
