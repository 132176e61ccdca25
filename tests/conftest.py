"""Fixtures shared by the unit tests: real temporary git repositories and Go modules.

Nothing here mocks go, git or docker. Git runs for real in tmp_path with a
fixed identity and fixed dates, isolated from the user's git configuration and
from any repository that encloses the temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
IMDEMO = REPO_ROOT / "examples" / "imdemo"

# 2023-11-14T22:13:20Z: the default commit time of the repositories made here.
COMMIT_EPOCH = 1_700_000_000

# Variables that would point git at another repository or configuration.
_GIT_REDIRECTS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)


class GitRepo:
    """A real git repository in a temporary directory."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self._env = dict(env)

    def git(self, *args: str, epoch: int = COMMIT_EPOCH, author_epoch: int | None = None) -> str:
        env = {
            **self._env,
            "GIT_AUTHOR_NAME": "Unit Test",
            "GIT_AUTHOR_EMAIL": "unit@example.invalid",
            "GIT_COMMITTER_NAME": "Unit Test",
            "GIT_COMMITTER_EMAIL": "unit@example.invalid",
            "GIT_COMMITTER_DATE": f"@{epoch} +0000",
            "GIT_AUTHOR_DATE": f"@{epoch if author_epoch is None else author_epoch} +0000",
        }
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout.strip()

    def write(self, name: str, text: str) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def commit(self, message: str = "change", *, epoch: int = COMMIT_EPOCH, author_epoch: int | None = None) -> str:
        """Commit everything (tracked and new files); return the full commit id."""
        self.git("add", "-A")
        self.git("commit", "-q", "--no-verify", "--allow-empty", "-m", message, epoch=epoch, author_epoch=author_epoch)
        return self.head()

    def tag(self, name: str, *, annotated: bool = False) -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", f"release {name}")
        else:
            self.git("tag", name)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Make every git started in this test (ours and crossbuild's) ignore the
    user's configuration and any repository above tmp_path. Returns the environment."""
    for name in _GIT_REDIRECTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    return dict(os.environ)


@pytest.fixture
def make_git_repo(git_isolated: dict[str, str]) -> Callable[[Path], GitRepo]:
    """Factory: `make_git_repo(path)` runs `git init` in path (created if needed)."""
    if shutil.which("git") is None:
        pytest.fail("git is required for the version tests (a real repository is created)")

    def make(path: Path) -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = GitRepo(path, git_isolated)
        repo.git("init", "-q", "-b", "main")
        return repo

    return make


@pytest.fixture
def imdemo_copy(tmp_path: Path) -> Path:
    """A private copy of examples/imdemo (four cmd/*/ main packages)."""
    dest = tmp_path / "examples" / "imdemo"
    shutil.copytree(IMDEMO, dest)
    return dest


@pytest.fixture
def tiny_module(tmp_path: Path) -> Path:
    """The smallest Go module crossbuild accepts: go.mod and cmd/x/main.go."""
    mod = tmp_path / "mod"
    (mod / "cmd" / "x").mkdir(parents=True)
    (mod / "go.mod").write_text("module example.invalid/tiny\n\ngo 1.22\n")
    (mod / "cmd" / "x" / "main.go").write_text("package main\n\nfunc main() {}\n")
    return mod
