"""A throwaway clone of the project: only committed files, as CI sees them.

The session makes one (tests/integration/conftest.py, ``project_clone``), tagged
``example.TAG`` and with the one virtualenv of the session, created by the clone's own
Makefile. Modules get it back in its committed state; tests get a fresh build/.
Commands run there through the clone's `make` and `.venv/bin/invoke`, so nothing is
written into the working tree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .commands import check, describe, require_tools, run
from .env import git_isolation
from .example import PREFIX_REGISTRY, TAG, VERSION_PKG

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# The venv running these tests (an editable install of the working tree): its `crossbuild`
# command serves the tests that adopt crossbuild in repositories of their own.
PROJECT_VENV_BIN = PROJECT_ROOT / ".venv" / "bin"


def unique_prefix(label: str = "t", registry: str = PREFIX_REGISTRY) -> str:
    """A registry prefix (REGISTRY_PREFIX) no other test uses: <registry>/<label>-<8 hex>."""
    return f"{registry}/{label}-{uuid.uuid4().hex[:8]}"


def namespace(prefix: str) -> str:
    """The repository path under the registry host: localhost:5000/t-1234 -> t-1234."""
    return prefix.split("/", 1)[1]


@dataclass(frozen=True)
class Clone:
    """A clone of the project and the commands tests run in it.

    `env` is added to every command's environment (a test's own `env` wins): the
    fixtures put a REGISTRY_PREFIX of the module's or the test's own there."""

    root: Path
    tag: str = TAG
    env: Mapping[str, str] = field(default_factory=dict)

    describe = staticmethod(describe)

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def module_dir(self) -> Path:
        return self.root / "examples" / "imdemo"

    @property
    def venv_bin(self) -> Path:
        return self.root / ".venv" / "bin"

    @property
    def invoke_bin(self) -> Path:
        return self.venv_bin / "invoke"

    def with_env(self, **env: str) -> Clone:
        """The same clone whose commands also get `env`."""
        return dataclasses.replace(self, env={**self.env, **env})

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the clone (or `cwd`); never raises for a non-zero exit."""
        return run(argv, cwd=cwd or self.root, env={**self.env, **(env or {})}, timeout=timeout)

    def make(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(["make", "--no-print-directory", *args], env=env)

    def invoke(
        self, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """The clone's `.venv/bin/invoke`, which finds tasks.py and config.toml from `cwd` (the clone)."""
        return self.run([self.invoke_bin, *args], env=env, cwd=cwd, timeout=timeout)

    def git(self, *args: str) -> str:
        return check(run(["git", "-C", self.root, *args], timeout=60)).stdout.strip()

    def built_files(self) -> set[str]:
        """Every file under build/ but crossbuild's bookkeeping in build/state/, relative to build/."""
        if not self.build_dir.exists():
            return set()
        files = {p.relative_to(self.build_dir).as_posix() for p in self.build_dir.rglob("*") if p.is_file()}
        return {f for f in files if not f.startswith("state/")}

    def reset_build(self) -> None:
        """Remove build/ except build/registry (an embedded registry may serve from it)."""
        if not self.build_dir.is_dir():
            return
        for child in self.build_dir.iterdir():
            if child.name == "registry":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def restore(self) -> None:
        """Back to the committed state: tracked files as committed, untracked ones (config copies,
        build contexts) gone, build/ reset. The ignored .venv stays."""
        self.git("reset", "--quiet", "--hard")
        self.git("clean", "-ffdq")
        self.reset_build()

    def config_copy(self, name: str, old: str, new: str) -> Path:
        """config.toml with one exact piece of text replaced, written next to it (paths stay relative)."""
        text = (self.root / "config.toml").read_text()
        assert text.count(old) == 1, f"config.toml no longer has exactly one {old!r}; update the test"
        path = self.root / name
        path.write_text(text.replace(old, new))
        return path

    def x_values(self) -> dict[str, str]:
        """The -X values crossbuild injects for this clone's config.toml ([go.x]), computed with git."""
        commit = self.git("rev-parse", "HEAD")
        epoch = int(self.git("log", "-1", "--format=%ct"))
        date = dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            f"{VERSION_PKG}.Version": self.git("describe", "--tags", "--always", "--dirty"),
            f"{VERSION_PKG}.GitCommit": commit,
            f"{VERSION_PKG}.BuildDate": date,
            f"{VERSION_PKG}.GitTreeState": "clean",
        }


def clone_project(dest: Path, *, source: Path = PROJECT_ROOT, venv: bool = False) -> Clone:
    """`git clone` of `source` (committed files only) with TAG as its only tag; with `venv`, the
    clone's Makefile creates its .venv (an editable install of the clone) as a user's first make does."""
    require_tools("git", *(("make", "go") if venv else ()))
    if not (source / ".git").exists():
        raise AssertionError(f"{source} is not a git checkout: the integration tests clone it")
    check(run(["git", "clone", "--quiet", source, dest], timeout=120))
    clone = Clone(dest)
    existing = clone.git("tag", "--list").split()
    if existing:  # only TAG on HEAD, so `git describe` (the version) is exactly TAG whatever tags the project has
        clone.git("tag", "--delete", *existing)
    clone.git("tag", TAG)
    assert clone.git("describe", "--tags", "--always", "--dirty") == TAG
    if venv:
        # a public target (one host binary) rather than the Makefile's stamp file
        check(clone.make("build", "BINS=api"))
        assert clone.invoke_bin.is_file(), f"make did not create {clone.invoke_bin}"
        clone.reset_build()
    return clone


def repo_env(root: Path) -> dict[str, str]:
    """What commands in a repository a test made (at `root`) add to the clean environment: the
    project's `crossbuild` command first on PATH, and git isolated above the repository."""
    return {"PATH": f"{PROJECT_VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **git_isolation(root.parent)}


def run_in_repo(
    argv: Sequence[str | os.PathLike[str]],
    cwd: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run a command in a repository a test made (see repo_env); never raises for a non-zero exit."""
    return run(argv, cwd=cwd, env={**repo_env(cwd), **(env or {})}, timeout=timeout)
