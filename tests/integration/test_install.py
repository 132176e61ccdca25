"""crossbuild installed once, used in any repository: a wheel of this checkout installed into a
fresh virtual environment (not editable, nothing of the checkout on sys.path) gives a
`crossbuild` command that adopts and builds a Go repository with no tasks.py, and the
generated make targets find that command without any variable.

Checked independently: `file` names the CPU of the binary make built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from support import commands
from support.clone import PROJECT_ROOT, clone_project
from support.commands import ok

pytestmark = pytest.mark.integration

# Every task the wheel's command must carry (the collection in crossbuild/tasks.py).
EVERY_TASK = (
    "audit",
    "build",
    "build.multiarch",
    "bundle",
    "bundle.load",
    "ci.github",
    "clean",
    "doctor",
    "go-image",
    "image",
    "image.multiarch",
    "init",
    "manifest",
    "registry.down",
    "registry.up",
    "resolve",
    "setup",
    "verify",
)


def project_version() -> str:
    version: str = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


MAIN = """package main

import "fmt"

var version = "dev"

func main() { fmt.Println("hello", version) }
"""


def run(
    argv: Sequence[str | os.PathLike[str]], cwd: Path, env: Mapping[str, str], timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run a command with exactly `env`: nothing of the caller's environment, on purpose."""
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with crossbuild installed from a wheel built from the committed checkout."""
    work = tmp_path_factory.mktemp("install")
    src = clone_project(work / "src").root
    ok(commands.run([sys.executable, "-m", "venv", work / "venv"], cwd=work))
    pip = work / "venv" / "bin" / "pip"
    ok(commands.run([pip, "install", "--quiet", "--disable-pip-version-check", src], cwd=work, timeout=900))
    return work / "venv" / "bin"


def test_the_installed_command_adopts_and_builds_a_repository(installed: Path, tmp_path: Path) -> None:
    system_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if ".venv" not in p)
    env = {
        "PATH": f"{installed}{os.pathsep}{system_path}",
        "HOME": str(tmp_path / "home"),
        "GOCACHE": subprocess.run(["go", "env", "GOCACHE"], capture_output=True, text=True, check=True).stdout.strip(),
        "GOMODCACHE": subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    }
    assert ok(run(["crossbuild", "--version"], tmp_path, env)).strip() == f"crossbuild {project_version()}"
    listed = ok(run(["crossbuild", "--list"], tmp_path, env))
    for task in EVERY_TASK:
        assert re.search(rf"^  {re.escape(task)}\b", listed, re.MULTILINE), f"{task} missing:\n{listed}"
    # shell completion through invoke's own: a script for bash, and the candidates it asks for
    script = ok(run(["crossbuild", "--print-completion-script", "bash"], tmp_path, env))
    assert "complete -F" in script and "crossbuild --complete" in script, script
    candidates = ok(run(["crossbuild", "--complete", "--", "crossbuild", "ima"], tmp_path, env)).split()
    assert {"image.multiarch", "image"} <= set(candidates), candidates
    flags = ok(run(["crossbuild", "--complete", "--", "crossbuild", "image.multiarch", "--"], tmp_path, env)).split()
    assert {"--snapshot", "--force-release-tags", "--platform", "--dry-run"} <= set(flags), flags
    helped = ok(run(["crossbuild", "resolve", "--help"], tmp_path, env))
    assert "--third-party" in helped, helped

    repo = tmp_path / "repo"
    (repo / "cmd" / "hello").mkdir(parents=True)
    (repo / "go.mod").write_text("module example.com/hello\n\ngo 1.22\n")
    (repo / "cmd" / "hello" / "main.go").write_text(MAIN)
    ok(run(["crossbuild", "init", "."], repo, env))
    assert not (repo / "tasks.py").exists()

    ok(run(["make", "build.multiarch", "PLATFORMS=linux/arm64"], repo, env))
    described = ok(run(["file", "-b", repo / "build/bin/linux/arm64/hello"], repo, env))
    assert "aarch64" in described, described

    # Off PATH, the Makefile still finds the installation that wrote it.
    shutil.rmtree(repo / "build")
    bare = {**env, "PATH": system_path}
    ok(run(["make", "build.multiarch", "PLATFORMS=linux/arm/v7"], repo, bare))
    assert "ARM, EABI5" in ok(run(["file", "-b", repo / "build/bin/linux/arm/v7/hello"], repo, bare))
