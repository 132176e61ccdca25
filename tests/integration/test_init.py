"""Integration tests of `crossbuild init`: adopt crossbuild in a fresh Go repository,
then build and publish it with the generated files and no edits.

Everything runs through the real command line (`crossbuild init .`, `make ...`)
with the project's console command on PATH, in temporary git repositories.
Results are checked with independent tools: `file` for the CPU of a binary,
QEMU user-mode to run it, skopeo for the pushed image index.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.clone import PROJECT_VENV_BIN
from support.clone import run_in_repo as run
from support.commands import describe, ok
from support.witness import skopeo_raw

pytestmark = pytest.mark.integration

MODULE = "example.com/fresh"
COMMANDS = ("greeter", "hello", "worker")
TAG = "v0.9.0"
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
GENERATED = ("config.toml",)

BUILDINFO_GO = """// Package buildinfo is stamped at link time: -X example.com/fresh/internal/buildinfo.<Var>=...
package buildinfo

import (
	"fmt"
	"runtime"
)

var Version, Commit, BuildDate string

// String is the --version line: name, version, commit, date and platform.
func String(name string) string {
	return fmt.Sprintf("%s %s commit=%s date=%s %s/%s", name, Version, Commit, BuildDate, runtime.GOOS, runtime.GOARCH)
}
"""

MAIN_GO = """package main

import (
	"fmt"
	"os"

	"example.com/fresh/internal/buildinfo"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Println(buildinfo.String("@NAME@"))
		return
	}
	fmt.Println("@NAME@: hello")
}
"""


# --- helpers --------------------------------------------------------------------------------------


def crossbuild_init(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["crossbuild", "init", ".", *args], repo, timeout=300)


def make(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(["make", "--no-print-directory", *args], repo, timeout=900)


def make_fresh_repo(root: Path, commands: Sequence[str] = COMMANDS) -> Path:
    """A committed, tagged Go repository that has never seen crossbuild."""
    root.mkdir(parents=True)
    (root / "go.mod").write_text(f"module {MODULE}\n\ngo 1.22\n")
    (root / "internal" / "buildinfo").mkdir(parents=True)
    (root / "internal" / "buildinfo" / "buildinfo.go").write_text(BUILDINFO_GO)
    for name in commands:
        (root / "cmd" / name).mkdir(parents=True)
        (root / "cmd" / name / "main.go").write_text(MAIN_GO.replace("@NAME@", name))
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "--no-verify", "-m", "fresh service repository"],
        ["git", "tag", TAG],
    ):
        ok(run(argv, root, timeout=60))
    return root


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file outside .git/ and build/."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".git", "build") or not path.is_file():
            continue
        files[rel.as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return files


def file_type(path: Path) -> str:
    return subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, timeout=60, check=True).stdout


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("git", "go", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for the init integration tests")
    if not (PROJECT_VENV_BIN / "crossbuild").is_file():
        pytest.fail(f"{PROJECT_VENV_BIN / 'crossbuild'} missing: run `make build` once to create .venv")
    return make_fresh_repo(tmp_path_factory.mktemp("init") / "fresh")


@pytest.fixture(scope="module")
def init_output(fresh_repo: Path) -> str:
    """`crossbuild init .` run once in the fresh repository; its stdout."""
    return ok(crossbuild_init(fresh_repo))


# --- tests -------------------------------------------------------------------------------------------


def test_init_writes_the_files(fresh_repo: Path, init_output: str) -> None:
    for rel in (*GENERATED, "Makefile"):
        assert (fresh_repo / rel).is_file(), f"{rel} not written:\n{init_output}"
        assert re.search(rf"^{re.escape(rel)}\s+written$", init_output, re.MULTILINE), init_output
    assert "next: make image.multiarch" in init_output
    data = tomllib.loads((fresh_repo / "config.toml").read_text())
    assert data["project"]["name"] == "fresh"
    assert data["project"]["module_dir"] == "."
    assert [s["name"] for s in data["services"]] == list(COMMANDS)
    assert data["go"]["x"] == {
        f"{MODULE}/internal/buildinfo.Version": "{version}",
        f"{MODULE}/internal/buildinfo.Commit": "{commit}",
        f"{MODULE}/internal/buildinfo.BuildDate": "{date}",
    }
    assert data["platforms"]["images"] == list(PLATFORMS)
    assert data["image"]["registry_prefix"] == "127.0.0.1:5000/fresh"
    assert data["builder"] == {
        "name": "crossbuild",
        "driver": "remote",
        "endpoint": "unix:///run/crossbuild-buildkitd.sock",
    }
    assert not (fresh_repo / "tasks.py").exists()  # the crossbuild command needs no tasks.py
    assert "$(shell command -v crossbuild 2>/dev/null)" in (fresh_repo / "Makefile").read_text()


def test_build_multiarch_with_the_generated_files(fresh_repo: Path, init_output: str) -> None:
    ok(make(fresh_repo, "build.multiarch"))
    for name in COMMANDS:
        binary = fresh_repo / "build" / "bin" / "linux" / "arm64" / name
        assert binary.is_file(), f"missing {binary}"
        described = file_type(binary)
        assert "ELF 64-bit" in described, described
        assert "aarch64" in described, described
        assert "ARM, EABI5" in file_type(fresh_repo / "build" / "bin" / "linux" / "arm" / "v7" / name)
        assert "x86-64" in file_type(fresh_repo / "build" / "bin" / "linux" / "amd64" / name)
    hello = fresh_repo / "build" / "bin" / "linux" / "arm64" / "hello"
    proc = run(["qemu-aarch64-static", hello, "--version"], fresh_repo, timeout=60)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.startswith(f"hello {TAG} commit="), proc.stdout
    assert proc.stdout.rstrip().endswith("linux/arm64"), proc.stdout


@pytest.mark.docker
@pytest.mark.usefixtures("local_registry")
def test_image_multiarch_with_the_generated_files(fresh_repo: Path, init_output: str, prefix: str) -> None:
    ok(make(fresh_repo, "image.multiarch", f"REGISTRY_PREFIX={prefix}"))
    for name in COMMANDS:
        _, index = skopeo_raw(f"{prefix}/{name}:{TAG}")
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json", index
        found = {
            "/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant"))))
            for m in index["manifests"]
        }
        assert set(PLATFORMS) <= found, f"{name}: index platforms {sorted(found)}"


def test_rerun_changes_nothing(fresh_repo: Path, init_output: str) -> None:
    before = snapshot(fresh_repo)
    out = ok(crossbuild_init(fresh_repo))
    assert "nothing to do: all files up to date" in out
    assert "written" not in out
    assert snapshot(fresh_repo) == before


def test_existing_makefile_gets_crossbuild_mk(tmp_path: Path) -> None:
    repo = tmp_path / "withmake"
    user_makefile = ".PHONY: all verify\nall:\n\t@echo user-all\n\nverify:\n\t@echo user-verify\n"
    make_fresh_repo(repo, commands=("hello",))
    (repo / "Makefile").write_text(user_makefile)
    ok(run(["git", "add", "Makefile"], repo))
    ok(run(["git", "commit", "-q", "-m", "a makefile of their own"], repo))
    ok(run(["git", "tag", "-f", TAG], repo))
    out = ok(crossbuild_init(repo))
    assert (repo / "Makefile").read_text() == user_makefile  # never edited
    assert re.search(r"^crossbuild\.mk\s+written$", out, re.MULTILINE), out
    assert re.search(r"^GNUmakefile\s+written$", out, re.MULTILINE), out
    mk = (repo / "crossbuild.mk").read_text()
    assert "\ncrossbuild.verify: " in mk  # the user's verify stays theirs
    assert "\ncrossbuild.build.multiarch build.multiarch: " in mk

    # No edit: GNU make reads GNUmakefile, which includes their Makefile and crossbuild.mk.
    assert ok(make(repo)) == "user-all\n"
    assert ok(make(repo, "verify")) == "user-verify\n"
    ok(make(repo, "build.multiarch", "PLATFORMS=linux/arm64"))
    assert "aarch64" in file_type(repo / "build" / "bin" / "linux" / "arm64" / "hello")
    proc = run(["qemu-aarch64-static", repo / "build/bin/linux/arm64/hello", "--version"], repo, timeout=60)
    assert proc.stdout.startswith(f"hello {TAG} commit="), describe(proc)  # the tree stayed clean: no -dirty
    again = ok(crossbuild_init(repo))
    assert "nothing to do: all files up to date" in again
    assert "add this line" not in again


def test_version_variable_nobody_reads_is_left_out(tmp_path: Path) -> None:
    repo = make_fresh_repo(tmp_path / "unused", commands=("hello",))
    source = repo / "internal" / "buildinfo" / "buildinfo.go"
    source.write_text(
        source.read_text().replace(
            "var Version, Commit, BuildDate string", "var GitTreeState string\n\nvar Version, Commit, BuildDate string"
        )
    )
    out = ok(crossbuild_init(repo))
    assert f"-X {MODULE}/internal/buildinfo.GitTreeState left out" in out
    x = tomllib.loads((repo / "config.toml").read_text())["go"]["x"]
    assert sorted(x) == sorted(f"{MODULE}/internal/buildinfo.{v}" for v in ("Version", "Commit", "BuildDate"))
    ok(make(repo, "build"))


def test_package_not_linked_into_every_service_stamps_the_others(tmp_path: Path) -> None:
    repo = make_fresh_repo(tmp_path / "partial", commands=("hello",))
    (repo / "cmd" / "plain").mkdir()
    (repo / "cmd" / "plain" / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("plain") }\n'
    )
    out = ok(crossbuild_init(repo))
    assert f"not stamped into plain (they do not link {MODULE}/internal/buildinfo)" in out
    data = tomllib.loads((repo / "config.toml").read_text())
    assert f"{MODULE}/internal/buildinfo.Version" in data["go"]["x"]
    assert data["image"].get("verify", True) is True
    ok(make(repo, "build.multiarch", "PLATFORMS=linux/arm64"))
    proc = run(["qemu-aarch64-static", repo / "build/bin/linux/arm64/hello", "--version"], repo, timeout=60)
    assert proc.stdout.startswith(f"hello {TAG} commit="), describe(proc)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"main.go": "package main\n"}, "no go.mod"),
        ({"go.mod": f"module {MODULE}\n", "cmd/lib/lib.go": "package lib\n"}, "no main packages below cmd/"),
    ],
)
def test_init_errors_are_one_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    proc = crossbuild_init(tmp_path)
    assert proc.returncode == 1, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, describe(proc)
    assert message in errors[0]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({Path(rel).parts[0] for rel in files})
