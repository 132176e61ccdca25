"""project.output_dir is crossbuild's own directory, and `clean` removes only what crossbuild wrote there.

Regression tests for issue 12: `output_dir = "."` used to make `invoke clean` delete the whole
project, and `"../victim"` a directory outside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossbuild import commands, config
from crossbuild.config import Overrides
from crossbuild.errors import UserError, describe_os_error

ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}


def project(root: Path, output_dir: str) -> Path:
    (root / "cmd" / "x").mkdir(parents=True, exist_ok=True)
    (root / "go.mod").write_text("module example.invalid/out\n\ngo 1.22\n")
    (root / "cmd" / "x" / "main.go").write_text("package main\n\nfunc main() {}\n")
    path = root / "config.toml"
    path.write_text(f'[project]\noutput_dir = "{output_dir}"\n')
    return path


def refused(path: Path) -> str:
    with pytest.raises(UserError) as info:
        config.load(path, Overrides(), ENV)
    return str(info.value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (".", "is the project directory or a parent of it"),
        ("./", "is the project directory or a parent of it"),
        ("..", "is the project directory or a parent of it"),
        ("../victim", "is outside the project"),
        ("/tmp", "is the project directory or a parent of it"),
        ("/var/tmp/elsewhere", "is outside the project"),
        ("", "is the project directory or a parent of it"),
    ],
    ids=["dot", "dot-slash", "parent", "sibling", "absolute-parent", "absolute-elsewhere", "empty"],
)
def test_output_dir_must_be_crossbuilds_own(tmp_path: Path, value: str, why: str) -> None:
    path = project(tmp_path / "repo", value)
    msg = refused(path)
    assert why in msg, msg
    assert msg.startswith(f"{path}: project.output_dir = {value!r}")
    assert "\n" not in msg


def test_output_dir_holding_the_module_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    project(root / "src", "unused")
    (root / "config.toml").write_text('[project]\nmodule_dir = "src"\noutput_dir = "src"\n')
    assert "holds the Go module or this config file" in refused(root / "config.toml")


def test_tracked_output_dir_is_refused(tmp_path: Path, make_git_repo: Callable[[Path], Any]) -> None:
    repo = make_git_repo(tmp_path / "repo")
    path = project(repo.path, "build")
    repo.write("build/keep.txt", "the repository's own build files\n")
    repo.commit("tracked build/")
    msg = refused(path)
    assert "holds files tracked by git (build/keep.txt, ...)" in msg


def test_untracked_sibling_inside_the_checkout_is_fine(tmp_path: Path, make_git_repo: Callable[[Path], Any]) -> None:
    """A config in deploy/ may write to ../build when both sit in one git checkout."""
    repo = make_git_repo(tmp_path / "repo")
    project(repo.path, "build")
    (repo.path / "deploy").mkdir()
    (repo.path / "deploy" / "config.toml").write_text('[project]\nmodule_dir = ".."\noutput_dir = "../build"\n')
    repo.commit("config in a subdirectory")
    cfg = config.load(repo.path / "deploy" / "config.toml", Overrides(), ENV)
    assert cfg.output_dir.resolve() == (repo.path / "build").resolve()


@pytest.fixture
def dry_run() -> bool:
    return True


def _populate(out: Path) -> None:
    for name in ("bin/linux/amd64/x", "state/images.json", "reports/verify.json", ".crossbuild"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")


def test_clean_removes_only_crossbuilds_entries(tmp_path: Path) -> None:
    path = project(tmp_path / "repo", "out")
    out = tmp_path / "repo" / "out"
    _populate(out)
    (out / "notes.txt").write_text("someone else's file\n")
    (out / "mine").mkdir()
    commands.clean(commands.open(str(path)))
    assert sorted(p.name for p in out.iterdir()) == ["mine", "notes.txt"]
    assert (tmp_path / "repo" / "go.mod").is_file()


def test_clean_removes_the_directory_when_nothing_else_is_left(tmp_path: Path) -> None:
    path = project(tmp_path / "repo", "build")
    _populate(tmp_path / "repo" / "build")
    commands.clean(commands.open(str(path)))
    assert not (tmp_path / "repo" / "build").exists()
    assert (tmp_path / "repo" / "config.toml").is_file()


def test_clean_honours_dry_run(tmp_path: Path, dry_run: bool, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path / "repo", "build")
    out = tmp_path / "repo" / "build"
    _populate(out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    doomed = commands.clean(commands.open(str(path), dry_run=dry_run))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert {p.name for p in doomed} == {"bin", "state", "reports", ".crossbuild"}
    assert "would remove" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("exc", "want"),
    [
        (PermissionError(13, "Permission denied", "/ro/build"), "/ro/build: Permission denied; fix its permissions"),
        (OSError(30, "Read-only file system", "/mnt/ro/x"), "/mnt/ro/x: Read-only file system; the file system is"),
        (OSError(28, "No space left on device", "/b"), "/b: No space left on device; the disk is full"),
        (FileNotFoundError(2, "No such file or directory", "a", None, "b"), "a -> b: No such file or directory; check"),
        (OSError("no errno"), "OSError; check the path and try again"),
    ],
    ids=["permission", "read-only", "full", "two-paths", "bare"],
)
def test_os_errors_become_one_line(exc: OSError, want: str) -> None:
    line = describe_os_error(exc)
    assert line.startswith(want), line
    assert "\n" not in line
