"""golist: `go list` and the govars helper against real Go sources (the real toolchain, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import golist

MODULE = "example.invalid/vars"

VERSION_GO = """package version

import _ "embed"

const defaultVersion = "dev"

// Version is set with -X.
var Version string

var (
	Commit    = "none"
	BuildDate string = "unknown"
	Joined    = "a" + defaultVersion
	Computed  = strings()
	Count     int
)

const Release = "1.0"

//go:embed VERSION
var Embedded string

var Typed myString = "x"

type myString string

func strings() string { return Version }
"""

MAIN_GO = """package main

import (
	"fmt"

	v "example.invalid/vars/version"
)

var version = "main-dev"

func main() { fmt.Println(v.Commit, version) }
"""


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("golist")
    (root / "go.mod").write_text(f"module {MODULE}\n\ngo 1.22\n")
    (root / "version").mkdir()
    (root / "version" / "version.go").write_text(VERSION_GO)
    (root / "version" / "VERSION").write_text("1.2.3\n")
    (root / "version" / "linux_only.go").write_text("//go:build linux\n\npackage version\n\nvar OnLinux string\n")
    (root / "cmd" / "app").mkdir(parents=True)
    (root / "cmd" / "app" / "main.go").write_text(MAIN_GO)
    return root


def test_find_lists_packages_without_resolving(module: Path) -> None:
    found = {p.import_path: p.name for p in golist.find(module, ["./..."])}
    assert found == {f"{MODULE}/cmd/app": "main", f"{MODULE}/version": "version"}


def test_load_reports_what_a_main_package_links(module: Path) -> None:
    (app,) = golist.load(module, ["./cmd/app"])
    assert app.name == "main"
    assert f"{MODULE}/version" in app.deps
    assert "fmt" in app.deps
    assert app.import_path in app.links
    assert app.module == MODULE


def _vars(module: Path, goos: str = "linux") -> dict[str, golist.PackageVars]:
    pkgs = golist.find(module, ["./..."])
    return golist.string_vars([p.dir for p in pkgs], {p.dir: p.import_path for p in pkgs}, goos=goos)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Version", "var"),
        ("Commit", "var"),
        ("BuildDate", "var"),
        ("Joined", "var"),
        ("Release", "const"),
        ("Embedded", "embed"),
        ("Typed", "typed"),
        ("OnLinux", "var"),
    ],
    ids=[
        "uninitialised",
        "literal",
        "typed-literal",
        "constant-expression",
        "const",
        "embed",
        "other-type",
        "build-tag",
    ],
)
def test_string_vars_kinds(module: Path, name: str, kind: str) -> None:
    pv = _vars(module)[f"{MODULE}/version"]
    assert pv.vars[name].kind == kind
    assert pv.vars[name].settable == (kind == "var")


def test_string_vars_positions_values_and_reads(module: Path) -> None:
    found = _vars(module)
    pv = found[f"{MODULE}/version"]
    assert pv.vars["Release"].where == f"{module / 'version' / 'version.go'}:18"
    assert pv.vars["Commit"].value == "none"
    assert pv.vars["Version"].local  # read by strings()
    assert not pv.vars["Commit"].local
    assert "Computed" not in pv.vars and "Count" not in pv.vars  # not known to be strings
    main = found[f"{MODULE}/cmd/app"]
    assert main.name == "main"
    assert main.vars["version"].local
    assert f"{MODULE}/version.Commit" in main.refs  # through the import alias v


def test_build_constraints_follow_goos(module: Path) -> None:
    assert "OnLinux" not in _vars(module, goos="windows")[f"{MODULE}/version"].vars
