"""crossbuild.services: which main packages are services, and their names (pure file reading)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import services
from crossbuild.services import constraint_holds, file_package

MAIN = "package main\n\nfunc main() {}\n"


def write(root: Path, rel: str, text: str = MAIN) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("expr", "holds"),
    [
        ("linux", True),
        ("!linux", False),
        ("ignore", False),
        ("linux && amd64", True),
        ("linux && arm64", False),
        ("darwin || linux", True),
        ("!windows && (amd64 || arm64)", True),
        ("unix", True),
        ("go1.21", True),
        ("tools", False),
        ("linux &&", False),
        ("(linux", False),
    ],
    ids=str,
)
def test_constraint_holds(expr: str, holds: bool) -> None:
    assert constraint_holds(expr) is holds


def test_constraint_honours_tags() -> None:
    assert constraint_holds("selfupdate", tags=["selfupdate"])
    assert not constraint_holds("selfupdate")


@pytest.mark.parametrize(
    ("name", "text", "package"),
    [
        ("main.go", MAIN, "main"),
        ("main_test.go", MAIN, ""),
        ("gen.go", "//go:build ignore\n\npackage main\n", ""),
        ("old.go", "// +build ignore\n\npackage main\n", ""),
        ("old_ok.go", "// +build linux,amd64 darwin\n\npackage main\n", "main"),
        ("win_windows.go", MAIN, ""),
        ("x_linux_arm64.go", MAIN, ""),
        ("x_linux.go", MAIN, "main"),
        ("doc.go", "// Copyright\n/* block\n package fake\n*/\npackage tool // x\n", "tool"),
        ("empty.go", "// nothing\n", ""),
    ],
    ids=lambda v: str(v)[:20],
)
def test_file_package(name: str, text: str, package: str) -> None:
    assert file_package(text, name) == package


def test_discover_nested_and_cmd_itself(tmp_path: Path) -> None:
    write(tmp_path, "go.mod", "module example.com/im/v3\n")
    write(tmp_path, "cmd/main.go")
    write(tmp_path, "cmd/api/main.go")
    write(tmp_path, "cmd/rpc/rpc-user/main.go")
    write(tmp_path, "cmd/rpc/rpc-auth/main.go")
    write(tmp_path, "cmd/rpc/common/common.go", "package common\n")
    write(tmp_path, "cmd/tools/seed/main.go")
    write(tmp_path, "cmd/e2e/main.go")
    write(tmp_path, "cmd/tool/main.go")
    write(tmp_path, "cmd/_old/main.go")
    write(tmp_path, "cmd/gen/gen.go", "//go:build ignore\n\npackage main\n")
    found = services.discover(tmp_path, "im")
    assert [(s.name, s.package) for s in found.services] == [
        ("im", "./cmd"),
        ("api", "./cmd/api"),
        ("rpc-auth", "./cmd/rpc/rpc-auth"),
        ("rpc-user", "./cmd/rpc/rpc-user"),
        ("tool", "./cmd/tool"),
    ]
    assert found.left_out == (
        ("./cmd/e2e", "'e2e/' holds programs a repository does not ship"),
        ("./cmd/tools/seed", "'tools/' holds programs a repository does not ship"),
    )


def test_colliding_names_get_their_parents(tmp_path: Path) -> None:
    write(tmp_path, "cmd/a/server/main.go")
    write(tmp_path, "cmd/b/server/main.go")
    write(tmp_path, "cmd/Api_Gateway/main.go")
    found = services.discover(tmp_path, "x")
    assert [s.name for s in found.services] == ["api_gateway", "a-server", "b-server"]


def test_root_main_when_no_cmd(tmp_path: Path) -> None:
    write(tmp_path, "main.go")
    assert [(s.name, s.package) for s in services.discover(tmp_path, "tool").services] == [("tool", ".")]


def test_workspace_modules(tmp_path: Path) -> None:
    write(tmp_path, "go.work", 'go 1.22\n\nuse (\n\t./svc // the services\n\t"./lib"\n)\nuse ./extra\n')
    write(tmp_path, "svc/go.mod", "module example.com/svc\n")
    write(tmp_path, "svc/cmd/api/main.go")
    write(tmp_path, "lib/go.mod", "module example.com/lib\n")
    write(tmp_path, "lib/version/v.go", "package version\n")
    assert services.workspace_modules((tmp_path / "go.work").read_text()) == ["./svc", "./lib", "./extra"]
    found = services.discover(tmp_path, "ws")
    assert [(s.name, s.package) for s in found.services] == [("api", "./svc/cmd/api")]


def test_nested_module_is_not_ours(tmp_path: Path) -> None:
    write(tmp_path, "go.mod", "module example.com/a\n")
    write(tmp_path, "cmd/a/main.go")
    write(tmp_path, "cmd/b/go.mod", "module example.com/b\n")
    write(tmp_path, "cmd/b/main.go")
    assert [s.name for s in services.discover(tmp_path, "a").services] == ["a"]


@pytest.mark.parametrize(
    ("main", "package"),
    [("./cmd/gh", "./cmd/gh"), ("cmd/gh/main.go", "./cmd/gh"), (".", "."), ("./cmd/gh/", "./cmd/gh")],
)
def test_package_of(tmp_path: Path, main: str, package: str) -> None:
    write(tmp_path, "cmd/gh/main.go")
    assert services.package_of(tmp_path, main) == package


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("example.com/fresh", "fresh"),
        ("github.com/Org/My_App/v2", "my_app"),
        ("github.com/openimsdk/open-im-server/v3", "open-im-server"),
        ("single", "single"),
        ("example.com/Big Name!", "big-name"),
    ],
)
def test_project_name(module: str, name: str) -> None:
    assert services.project_name(module) == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("module example.com/fresh\n\ngo 1.22\n", "example.com/fresh"),
        ('// header\nmodule "example.com/quoted" // trailing\n', "example.com/quoted"),
        ("go 1.22\n", ""),
    ],
)
def test_module_path(text: str, expected: str) -> None:
    assert services.module_path(text) == expected
