"""crossbuild.stamping against real Go sources: `go list -deps` and the govars helper, no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import stamping
from crossbuild.config import Service
from crossbuild.errors import UserError

MODULE = "example.invalid/stamp"

VERSION_GO = """package version

import "fmt"

var Version = "dev"
var Commit string
var Unread string
const Release = "1.0"

func String() string { return fmt.Sprint(Version, Commit) }
"""

API_GO = f"""package main

import (
	"fmt"

	"{MODULE}/version"
)

var build = "local"

func main() {{ fmt.Println(version.String(), build) }}
"""

HELPER_GO = """package main

var build string

func main() {}
"""


def svc(name: str) -> Service:
    return Service(name=name, package=f"./cmd/{name}", image=name)


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stamp")
    (root / "go.mod").write_text(f"module {MODULE}\n\ngo 1.22\n")
    for rel, text in {
        "version/version.go": VERSION_GO,
        "cmd/api/main.go": API_GO,
        "cmd/helper/main.go": HELPER_GO,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.fixture(scope="module")
def inspection(module: Path) -> stamping.Inspection:
    return stamping.inspect(module, [svc("api"), svc("helper")], [f"{MODULE}/version"])


def test_a_variable_applies_to_the_services_that_link_it(inspection: stamping.Inspection) -> None:
    result = stamping.judge(inspection, [f"{MODULE}/version.Version", f"{MODULE}/version.Commit"])
    assert result.for_service("api") == (f"{MODULE}/version.Version", f"{MODULE}/version.Commit")
    assert result.for_service("helper") == ()
    assert not result.problems
    assert result.notes == (
        f"-X {MODULE}/version.{{Version,Commit}}: not stamped into helper (they do not link {MODULE}/version)",
    )


def test_main_variables_apply_where_main_declares_and_reads_them(inspection: stamping.Inspection) -> None:
    result = stamping.judge(inspection, ["main.build"])
    assert result.for_service("api") == ("main.build",)
    assert result.for_service("helper") == ()
    assert "-X main.build: helper never reads build, so the linker drops it there" in result.notes


def test_an_unread_variable_is_not_expected(inspection: stamping.Inspection) -> None:
    result = stamping.judge(inspection, [f"{MODULE}/version.Unread"])
    assert result.for_service("api") == ()
    assert any("never reads Unread" in n for n in result.notes)


@pytest.mark.parametrize(
    ("var", "message"),
    [
        (
            f"{MODULE}/version.Release",
            "Release is a constant (version/version.go:8); -X can only set a variable: "
            'declare it with `var Release = "..."`',
        ),
        (f"{MODULE}/version.Verison", f"declares no string variable Verison (did you mean {MODULE}/version.Version?)"),
        ("main.nothing", "no service's main package declares nothing (api, helper)"),
    ],
    ids=["const", "typo", "main-undeclared"],
)
def test_problems_name_the_fix(inspection: stamping.Inspection, var: str, message: str) -> None:
    result = stamping.judge(inspection, [var])
    assert [v for v, _why in result.problems] == [var]
    assert message in result.problems[0][1]


def test_a_package_no_service_links_is_an_error(module: Path) -> None:
    (module / "unused").mkdir(exist_ok=True)
    (module / "unused" / "u.go").write_text("package unused\n\nvar Version string\n")
    with pytest.raises(UserError, match=r"no service links package example.invalid/stamp/unused \(api, helper do not"):
        stamping.analyse(module, [svc("api"), svc("helper")], [f"{MODULE}/unused.Version"])


def test_a_missing_package_is_an_error(module: Path) -> None:
    with pytest.raises(UserError, match=r"package example.invalid/stamp/nope cannot be found"):
        stamping.analyse(module, [svc("api")], [f"{MODULE}/nope.Version"])


def test_not_a_variable_path() -> None:
    with pytest.raises(UserError, match=r"'Version' is not <import path>.<variable>"):
        stamping.analyse(Path("."), [svc("api")], ["Version"])
