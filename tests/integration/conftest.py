"""Shared fixtures for the integration tests.

Fixtures defined here (all prefixed ``crossbuild_``):

* ``crossbuild_clone`` (module scope): a ``git clone`` of this repository in a
  temporary directory - only committed files, as CI sees them - tagged
  ``CROSSBUILD_CLONE_TAG``, with its own ``.venv`` created by the clone's
  Makefile. Tests run ``make`` / ``invoke`` there, so nothing is written into
  the working tree's ``build/``.
* ``crossbuild_clean_clone`` (function scope): the same clone with ``build/``
  removed first, so each test sees exactly the files its own command produced.

The Go build cache (``go env GOCACHE``) is shared, so only the first build of
each platform compiles the standard library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

CROSSBUILD_PROJECT_ROOT = Path(__file__).resolve().parents[2]
CROSSBUILD_CLONE_TAG = "v1.4.2"

# Variables that would change what crossbuild, make, go or git do if the test
# run inherited them (e.g. pytest started from `make test PLATFORMS=...`).
_CROSSBUILD_LEAKY_ENV = (
    "PLATFORMS",
    "BINS",
    "IMAGES",
    "REGISTRY_PREFIX",
    "VERSION",
    "BASE_IMAGE",
    "GO_IMAGE",
    "CACHE_REF",
    "MODE",
    "VERIFY",
    "V",
    "CONFIG",
    "CROSSBUILD_CONFIG",
    "SOURCE_DATE_EPOCH",
    "GOOS",
    "GOARCH",
    "GOARM",
    "GOAMD64",
    "GOARM64",
    "CGO_ENABLED",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
)


def crossbuild_base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without the variables that would steer crossbuild, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _CROSSBUILD_LEAKY_ENV}
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class CrossbuildClone:
    """A throwaway clone of the project and the commands tests run in it."""

    root: Path
    tag: str

    @property
    def invoke_bin(self) -> Path:
        return self.root / ".venv" / "bin" / "invoke"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def module_dir(self) -> Path:
        return self.root / "examples" / "imdemo"

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (never raises for a non-zero exit; callers assert on it)."""
        return subprocess.run(
            [str(a) for a in argv],
            cwd=cwd or self.root,
            env=crossbuild_base_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def make(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(["make", "--no-print-directory", *args], env=env)

    def invoke(
        self, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run([self.invoke_bin, *args], env=env, cwd=cwd)

    def git(self, *args: str) -> str:
        proc = self.run(["git", "-C", self.root, *args], timeout=60)
        assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout.strip()

    def built_files(self) -> set[str]:
        """Every file under build/ but crossbuild's bookkeeping in build/state/, relative to build/."""
        if not self.build_dir.exists():
            return set()
        files = {p.relative_to(self.build_dir).as_posix() for p in self.build_dir.rglob("*") if p.is_file()}
        return {f for f in files if not f.startswith("state/")}

    def remove_build(self) -> None:
        shutil.rmtree(self.build_dir, ignore_errors=True)

    @staticmethod
    def describe(proc: subprocess.CompletedProcess[str]) -> str:
        """Exit code and both streams of a finished command, for assertion messages."""
        return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


@pytest.fixture(scope="module")
def crossbuild_clone(tmp_path_factory: pytest.TempPathFactory) -> CrossbuildClone:
    """A tagged clone of the repository whose Makefile has created its .venv."""
    if not (CROSSBUILD_PROJECT_ROOT / ".git").exists():
        pytest.fail(f"{CROSSBUILD_PROJECT_ROOT} is not a git checkout: the integration tests clone it")
    root = tmp_path_factory.mktemp("crossbuild-clone") / "repo"
    proc = subprocess.run(
        ["git", "clone", "--quiet", str(CROSSBUILD_PROJECT_ROOT), str(root)],
        env=crossbuild_base_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, CrossbuildClone.describe(proc)
    clone = CrossbuildClone(root=root, tag=CROSSBUILD_CLONE_TAG)
    clone.git("tag", CROSSBUILD_CLONE_TAG)
    # The first make target creates .venv and pip-installs the package; use a
    # public target (one host binary) rather than the Makefile's stamp file.
    proc = clone.make("build", "BINS=api")
    assert proc.returncode == 0, CrossbuildClone.describe(proc)
    assert clone.invoke_bin.is_file(), f"make did not create {clone.invoke_bin}"
    clone.remove_build()
    return clone


@pytest.fixture
def crossbuild_clean_clone(crossbuild_clone: CrossbuildClone) -> CrossbuildClone:
    """The module's clone with build/ removed; what the test leaves stays for inspection."""
    crossbuild_clone.remove_build()
    return crossbuild_clone
