"""Tests for crossbuild.adopt (`crossbuild init`): Go source scanning, the -X choice,
the generated files and the write decisions.

Go sources are synthetic files in tmp_path; go, git and make run for real where
a test needs them (go list in `plan`, make -n on the generated makefiles).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from crossbuild import adopt, config
from crossbuild.adopt import GoPackage, choose_makefile, decide, makefile_targets, scan_packages, write_file
from crossbuild.config import Service
from crossbuild.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "example.com/app"


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def svc(name: str) -> Service:
    return Service(name=name, package=f"./cmd/{name}", image=name)


def make_module(root: Path, *services: str, main_body: str = "func main() {}\n") -> Path:
    write(root, "go.mod", f"module {MODULE}\n\ngo 1.22\n")
    for name in services:
        write(root, f"cmd/{name}/main.go", f"package main\n\n{main_body}")
    return root


# --- go.mod, names, templates -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("module example.com/fresh\n\ngo 1.22\n", "example.com/fresh"),
        ('// header\nmodule "example.com/quoted" // trailing\n', "example.com/quoted"),
        ("go 1.22\n", ""),
    ],
)
def test_module_path(text: str, expected: str) -> None:
    assert adopt.module_path(text) == expected


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("example.com/fresh", "fresh"),
        ("github.com/Org/My_App/v2", "my_app"),
        ("single", "single"),
        ("example.com/Big Name!", "big-name"),
    ],
)
def test_project_name_is_the_module_basename_made_image_safe(module: str, name: str) -> None:
    assert adopt.project_name(module) == name


def test_source_url_only_for_known_forges() -> None:
    assert adopt.source_url("github.com/org/repo/v2") == "https://github.com/org/repo"
    assert adopt.source_url("example.com/fresh") == ""


@pytest.mark.parametrize(
    ("var", "template"),
    [
        ("Version", "{version}"),
        ("GitCommit", "{commit}"),
        ("Commit", "{commit}"),
        ("BuildDate", "{date}"),
        ("Date", "{date}"),
        ("GitTreeState", "{tree_state}"),
        ("TreeState", "{tree_state}"),
        ("version", "{version}"),  # goreleaser's main.version / main.commit / main.date
        ("commit", "{commit}"),
        ("date", "{date}"),
        ("BuildUser", None),
        ("Versions", None),
    ],
)
def test_template_mapping(var: str, template: str | None) -> None:
    assert adopt.template_for(var) == template


def test_mapped_templates_are_crossbuild_templates() -> None:
    fields = {"version": "v", "commit": "c", "date": "d", "tree_state": "t"}
    for tmpl in adopt.VERSION_TEMPLATES.values():
        config.fill_template(tmpl, fields, "test")


# --- scanning Go sources ----------------------------------------------------------------------

VERSION_GO = """// Package version: build metadata.
package version

import "time"

// var Fake string  (a comment, not a declaration)

var (
	Version      = "v0.0.0-dev" // untyped string
	GitCommit    string
	BuildDate    string = "unknown"
	GitTreeState = computed()
	Count        = 3
	Ratio        float64
	Started      time.Time
	Raw          = `raw
string`
	Date, TreeState = "a", "b"
)

var Commit string

var Note = "says \\"var Hidden string\\" in a string"

const Constant = "not a variable"

var (
	Pair1, Pair2 int
	_            = "blank"
)

func computed() string {
	var Local = "inside a function"
	return Local
}
"""


@pytest.fixture
def scanned(tmp_path: Path) -> dict[str, GoPackage]:
    make_module(tmp_path, "api")
    write(tmp_path, "pkg/version/version.go", VERSION_GO)
    write(tmp_path, "pkg/version/version_test.go", 'package version\n\nvar TestOnly = "x"\n')
    write(tmp_path, "pkg/version/gen.go", '//go:build ignore\n\npackage main\n\nvar Version = "gen"\n')
    write(tmp_path, "vendor/example.com/dep/v.go", 'package dep\n\nvar Version = "vendored"\n')
    write(tmp_path, "internal/testdata/v.go", 'package testdata\n\nvar Version = "fixture"\n')
    write(tmp_path, "tools/go.mod", "module example.com/app/tools\n")
    write(tmp_path, "tools/v.go", 'package tools\n\nvar Version = "other module"\n')
    write(tmp_path, ".hidden/v.go", 'package hidden\n\nvar Version = "hidden"\n')
    write(tmp_path, "root.go", "package app\n\nvar Version string\n")
    return scan_packages(tmp_path)


def test_scan_finds_only_package_level_string_vars(scanned: dict[str, GoPackage]) -> None:
    pkg = scanned["pkg/version"]
    assert pkg.name == "version"
    assert pkg.string_vars == ["Version", "GitCommit", "BuildDate", "Raw", "Date", "TreeState", "Commit", "Note"]


def test_scan_maps_version_vars_to_templates(scanned: dict[str, GoPackage]) -> None:
    assert scanned["pkg/version"].version_vars == {
        "Version": "{version}",
        "GitCommit": "{commit}",
        "BuildDate": "{date}",
        "Date": "{date}",
        "TreeState": "{tree_state}",
        "Commit": "{commit}",
    }


def test_scan_skips_vendor_testdata_nested_modules_hidden_dirs(scanned: dict[str, GoPackage]) -> None:
    assert set(scanned) == {".", "cmd/api", "pkg/version"}
    assert scanned["."].version_vars == {"Version": "{version}"}


def test_scan_ignores_non_string_and_computed_vars(tmp_path: Path) -> None:
    write(
        tmp_path,
        "v/v.go",
        "package v\n\nvar Version = fmt.Sprint(1)\nvar Commit []string\nvar BuildDate *string\n"
        'var GitTreeState = "a" + "b"\nvar Date int = 1\n',
    )
    assert scan_packages(tmp_path)["v"].string_vars == []


def test_scan_reads_the_real_package_clause(tmp_path: Path) -> None:
    write(tmp_path, "p/a.go", "/*\npackage fake\n*/\n// package fake2\npackage real\n\nfunc F() {}\n")
    write(tmp_path, "p/b.go", "package real\n\nvar Plain string\n")  # nothing version-like: not lexed
    pkgs = scan_packages(tmp_path)
    assert pkgs["p"].name == "real"
    assert pkgs["p"].string_vars == []


def test_scan_records_smoke_hints(tmp_path: Path) -> None:
    write(
        tmp_path,
        "cmd/a/main.go",
        'package main\n\nimport ("fmt"; "os"; "runtime")\n\nfunc main() {\n'
        '\tif len(os.Args) > 1 && os.Args[1] == "--version" { fmt.Println(runtime.GOARCH) }\n}\n',
    )
    write(
        tmp_path, "cmd/b/main.go", 'package main\n\n// runtime.GOARCH "--version" only in a comment\nfunc main() {}\n'
    )
    pkgs = scan_packages(tmp_path)
    assert (pkgs["cmd/a"].uses_goarch, pkgs["cmd/a"].version_flag) == (True, True)
    assert (pkgs["cmd/b"].uses_goarch, pkgs["cmd/b"].version_flag) == (False, False)


def test_tokenizer_keeps_literals_whole() -> None:
    toks = adopt.tokenize('x := "a\\"b" + `c\nd` + \'"\' // "e"\n/* f\n */ y')
    assert [(t.kind, t.text) for t in toks] == [
        ("ident", "x"),
        ("op", ":="),
        ("string", '"a\\"b"'),
        ("op", "+"),
        ("string", "`c\nd`"),
        ("op", "+"),
        ("rune", "'\"'"),
        ("nl", "\n"),
        ("nl", "\n"),
        ("ident", "y"),
    ]


# --- choosing the -X entries ------------------------------------------------------------------


def pkg(dir_: str, name: str, *vars_: str) -> GoPackage:
    return GoPackage(dir=dir_, name=name, string_vars=list(vars_))


def test_x_entries_keys() -> None:
    lib = pkg("internal/buildinfo", "buildinfo", "Version", "Commit")
    assert adopt.x_entries(MODULE, lib, ["Version", "Commit"]) == [
        (f"{MODULE}/internal/buildinfo.Version", "{version}"),
        (f"{MODULE}/internal/buildinfo.Commit", "{commit}"),
    ]
    assert adopt.x_entries(MODULE, pkg(".", "app", "Version"), ["Version"]) == [(f"{MODULE}.Version", "{version}")]
    assert adopt.x_entries(MODULE, pkg("cmd/a", "main", "version"), ["version"]) == [("main.version", "{version}")]


def test_choose_x_takes_the_package_every_service_links() -> None:
    packages = {
        "pkg/version": pkg("pkg/version", "version", "Version", "GitCommit", "BuildDate", "Other"),
        "cmd/a": pkg("cmd/a", "main"),
        "cmd/b": pkg("cmd/b", "main"),
    }
    deps = {"a": {f"{MODULE}/pkg/version", "fmt"}, "b": {f"{MODULE}/pkg/version"}}
    x, dropped, notes = adopt.choose_x(MODULE, packages, [svc("a"), svc("b")], deps)
    assert x == [
        (f"{MODULE}/pkg/version.Version", "{version}"),
        (f"{MODULE}/pkg/version.GitCommit", "{commit}"),
        (f"{MODULE}/pkg/version.BuildDate", "{date}"),
    ]
    assert (dropped, notes) == ([], [])


def test_choose_x_leaves_out_a_package_some_service_does_not_link() -> None:
    packages = {"pkg/version": pkg("pkg/version", "version", "Version"), "cmd/a": pkg("cmd/a", "main")}
    deps = {"a": {f"{MODULE}/pkg/version"}, "b": {"fmt"}}
    x, dropped, notes = adopt.choose_x(MODULE, packages, [svc("a"), svc("b")], deps)
    assert x == []
    assert dropped == [(f"{MODULE}/pkg/version.Version", "{version}")]
    assert len(notes) == 1
    assert "not linked into b" in notes[0]


def test_choose_x_needs_go_list() -> None:
    packages = {"pkg/version": pkg("pkg/version", "version", "Version")}
    x, dropped, notes = adopt.choose_x(MODULE, packages, [svc("a")], None)
    assert x == []
    assert dropped
    assert "go list" in notes[0]


def test_choose_x_prefers_the_linked_package_with_most_variables() -> None:
    packages = {
        "a/version": pkg("a/version", "version", "Version"),
        "b/buildinfo": pkg("b/buildinfo", "buildinfo", "Version", "Commit"),
        "c/meta": pkg("c/meta", "meta", "Commit", "Date"),  # no Version: not a version package
    }
    links = {f"{MODULE}/a/version", f"{MODULE}/b/buildinfo", f"{MODULE}/c/meta"}
    x, _dropped, notes = adopt.choose_x(MODULE, packages, [svc("a")], {"a": links})
    assert [var for var, _t in x] == [f"{MODULE}/b/buildinfo.Version", f"{MODULE}/b/buildinfo.Commit"]
    assert notes == []


def test_choose_x_falls_back_to_a_linked_package_silently() -> None:
    packages = {
        "tools/version": pkg("tools/version", "version", "Version", "Commit", "Date"),  # more vars, not linked
        "pkg/version": pkg("pkg/version", "version", "Version"),
    }
    x, dropped, notes = adopt.choose_x(MODULE, packages, [svc("a")], {"a": {f"{MODULE}/pkg/version"}})
    assert x == [(f"{MODULE}/pkg/version.Version", "{version}")]
    assert (dropped, notes) == ([], [])


def test_choose_x_main_vars_common_to_every_service() -> None:
    packages = {
        "cmd/a": pkg("cmd/a", "main", "version", "commit", "date"),
        "cmd/b": pkg("cmd/b", "main", "version", "commit"),
    }
    x, _dropped, notes = adopt.choose_x(MODULE, packages, [svc("a"), svc("b")], {"a": set(), "b": set()})
    assert x == [("main.version", "{version}"), ("main.commit", "{commit}")]
    assert notes == []


def test_choose_x_nothing_found() -> None:
    packages = {"cmd/a": pkg("cmd/a", "main")}
    assert adopt.choose_x(MODULE, packages, [svc("a")], {"a": set()}) == ([], [], [])


def test_smoke_ready_follows_linked_packages() -> None:
    info = GoPackage("internal/buildinfo", "buildinfo", uses_goarch=True)
    main = GoPackage("cmd/a", "main", version_flag=True)
    packages = {"internal/buildinfo": info, "cmd/a": main}
    assert adopt.smoke_ready(MODULE, packages, svc("a"), {f"{MODULE}/internal/buildinfo"})
    assert not adopt.smoke_ready(MODULE, packages, svc("a"), set())
    assert not adopt.smoke_ready(MODULE, packages, svc("a"), None)  # own package only: no GOARCH


# --- generated files ---------------------------------------------------------------------------


def test_render_config_loads_with_crossbuild(tmp_path: Path) -> None:
    make_module(tmp_path, "api", "worker")
    write(tmp_path, "pkg/version/v.go", "package version\n\nvar Version string\n")
    x = [(f"{MODULE}/pkg/version.Version", "{version}")]
    text = adopt.render_config(module=MODULE, name="app", services=[svc("api"), svc("worker")], x=x)
    (tmp_path / "config.toml").write_text(text)
    cfg = config.load(tmp_path / "config.toml", environ={})
    assert cfg.name == "app"
    assert cfg.module_dir == tmp_path.resolve()
    assert [s.name for s in cfg.services] == ["api", "worker"]
    assert cfg.go.x == ((f"{MODULE}/pkg/version.Version", "{version}"),)
    assert [str(p) for p in cfg.binary_platforms] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert [str(p) for p in cfg.image_platforms] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert cfg.image.registry_prefix == "localhost:5000/app"
    assert (cfg.builder.driver, cfg.builder.endpoint) == ("remote", "unix:///run/crossbuild-buildkitd.sock")
    assert cfg.image.verify is True


def test_render_config_without_x_and_without_verify(tmp_path: Path) -> None:
    text = adopt.render_config(
        module=MODULE,
        name="app",
        services=[svc("api")],
        x=[],
        dropped=[(f"{MODULE}/pkg/version.Version", "{version}")],
        verify=False,
        no_smoke=["api"],
        output_dir="_output",
    )
    data = tomllib.loads(text)
    assert "x" not in data["go"]
    assert data["image"]["verify"] is False
    assert data["project"]["output_dir"] == "_output"
    assert f'# "{MODULE}/pkg/version.Version" = "{{version}}"' in text


def test_render_makefile_runs_crossbuild_tasks(tmp_path: Path) -> None:
    text = adopt.render_makefile(MODULE)
    assert "CROSSBUILD ?= $(or $(wildcard .venv/bin/crossbuild),crossbuild)" in text
    assert "pip install crossbuild" in text
    assert "build.multiarch: ## " in text
    assert "\t$(CROSSBUILD_RUN) image.multiarch $(CROSSBUILD_FLAGS)\n" in text
    (tmp_path / "Makefile").write_text(text)
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "image.multiarch", "build.api", "CONFIG=other.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = proc.stdout.splitlines()
    assert lines[0].endswith("; crossbuild image.multiarch --config other.toml")
    assert lines[1].endswith("; crossbuild build --services api --config other.toml")


def test_makefile_targets_parses_rules_not_variables() -> None:
    text = (
        "VAR := a:b\nOTHER ::= x\nFOO ?= y\nexport BAR=baz:qux\n"
        "all: build\n\t@echo recipe: not a target\n"
        "build test:: dep\n"
        "image.%: ; @echo $*\n"
        "$(OUT)/x: y\n"
        ".PHONY: all\n"
        "define TEMPLATE\nfake: rule\nendef\n"
        "# comment: not a rule\n"
        "long \\\n  continued: x\n"
        "target: VAR = specific\n"
    )
    assert makefile_targets(text) == {"all", "build", "test", "image.%", "long", "continued", "target"}


def test_is_defined_matches_patterns() -> None:
    assert adopt.is_defined("verify", {"verify"})
    assert adopt.is_defined("image.multiarch", {"image.%"})
    assert adopt.is_defined("doctor", {"%"})
    assert not adopt.is_defined("image.multiarch", {"build.%", "image"})


def test_render_include_prefixes_only_taken_names(tmp_path: Path) -> None:
    text = adopt.render_include({"verify", "image.%"})
    assert "\ncrossbuild.verify: ## crossbuild verify\n" in text
    assert "\ncrossbuild.image.multiarch: ## crossbuild image.multiarch\n" in text
    assert "\ncrossbuild.doctor doctor: ## crossbuild doctor\n" in text
    # The include keeps the user's default goal, even when included first.
    (tmp_path / "crossbuild.mk").write_text(text)
    (tmp_path / "Makefile").write_text("include crossbuild.mk\n\nall:\n\t@echo mine\n")
    proc = subprocess.run(["make", "--no-print-directory"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout == "mine\n"


def test_choose_makefile(tmp_path: Path) -> None:
    assert choose_makefile(tmp_path) == adopt.MakeChoice("Makefile")
    (tmp_path / "Makefile").write_text(adopt.render_makefile(MODULE))
    assert choose_makefile(tmp_path) == adopt.MakeChoice("Makefile")  # init's own: stays a Makefile
    (tmp_path / "Makefile").write_text("all:\n\techo\nverify:\n\techo\n")
    choice = choose_makefile(tmp_path)
    assert choice.file == "crossbuild.mk"
    assert choice.user_makefile == "Makefile"
    assert choice.defined == frozenset({"all", "verify"})
    assert not choice.included
    (tmp_path / "Makefile").write_text("all:\n\techo\n\ninclude crossbuild.mk\n")
    assert choose_makefile(tmp_path).included
    (tmp_path / "GNUmakefile").write_text("x:\n\techo\n")
    assert choose_makefile(tmp_path).user_makefile == "GNUmakefile"


def test_template_copies_are_crossbuilds_templates() -> None:
    for mode in config.MODES:
        assert (REPO_ROOT / "crossbuild" / "templates" / f"{mode}.Dockerfile").read_text() == adopt.template_path(
            mode, Path("/nonexistent")
        ).read_text()


# --- writing ------------------------------------------------------------------------------------


def test_decide_and_write(tmp_path: Path) -> None:
    assert decide(tmp_path / "new.txt", "a\n", force=False) == adopt.WRITTEN
    assert write_file(tmp_path, "sub/new.txt", "a\n", force=False) == adopt.FileReport("sub/new.txt", "written")
    assert (tmp_path / "sub" / "new.txt").read_text() == "a\n"
    assert write_file(tmp_path, "sub/new.txt", "a\n", force=False).status == adopt.UNCHANGED
    assert write_file(tmp_path, "sub/new.txt", "b\n", force=False).status == adopt.SKIPPED
    assert (tmp_path / "sub" / "new.txt").read_text() == "a\n"
    assert write_file(tmp_path, "sub/new.txt", "b\n", force=True).status == adopt.OVERWRITTEN
    assert (tmp_path / "sub" / "new.txt").read_text() == "b\n"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["new.txt"]  # no temporary left


def test_unchanged_file_keeps_its_mtime(tmp_path: Path) -> None:
    path = write(tmp_path, "f", "same\n")
    before = path.stat().st_mtime_ns
    assert write_file(tmp_path, "f", "same\n", force=True).status == adopt.UNCHANGED
    assert path.stat().st_mtime_ns == before


def test_output_dir_avoids_a_build_dir_the_repository_uses(tmp_path: Path, git_isolated: dict[str, str]) -> None:
    # tmp_path is no git checkout (git_isolated stops git at its parent): any file in build/ is theirs.
    assert adopt.choose_output_dir(tmp_path) == ("build", "")
    write(tmp_path, "build/Dockerfile", "FROM scratch\n")
    out, note = adopt.choose_output_dir(tmp_path)
    assert out == "_output"
    assert "build/" in note
    write(tmp_path, "config.toml", '[project]\noutput_dir = "out"\n')
    assert adopt.choose_output_dir(tmp_path) == ("out", "")


# --- init ----------------------------------------------------------------------------------------


def test_init_needs_go_mod(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no go\.mod"):
        adopt.init(tmp_path)


def test_init_needs_main_packages(tmp_path: Path) -> None:
    write(tmp_path, "go.mod", f"module {MODULE}\n")
    write(tmp_path, "cmd/lib/lib.go", "package lib\n")
    with pytest.raises(UserError, match=r"no main packages under cmd/"):
        adopt.init(tmp_path)


def test_init_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        adopt.init(tmp_path / "missing")


def test_init_writes_then_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_module(tmp_path, "api", "Worker")
    first = adopt.init(tmp_path)
    assert [(f.path, f.status) for f in first.files] == [
        ("config.toml", "written"),
        ("tasks.py", "written"),
        ("dockerfiles/prebuilt.Dockerfile", "written"),
        ("dockerfiles/multistage.Dockerfile", "written"),
        ("Makefile", "written"),
    ]
    assert first.services == ("worker", "api")  # cmd/ order: "Worker" sorts first
    assert first.next_command == "make image.multiarch"
    assert (tmp_path / "tasks.py").read_text() == adopt.TASKS_PY
    cfg = config.load(tmp_path / "config.toml", environ={})
    assert [(s.name, s.package) for s in cfg.services] == [("worker", "./cmd/Worker"), ("api", "./cmd/api")]
    assert cfg.image.verify is False  # `--version` prints no architecture here
    capsys.readouterr()

    again = adopt.init(tmp_path)
    assert {f.status for f in again.files} == {"unchanged"}
    assert not again.changed
    assert "nothing to do: all files up to date" in capsys.readouterr().out


def test_init_next_to_an_existing_makefile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_module(tmp_path, "api")
    user = "all:\n\t@echo mine\n\nverify:\n\t@echo theirs\n"
    write(tmp_path, "Makefile", user)
    result = adopt.init(tmp_path)
    assert (tmp_path / "Makefile").read_text() == user
    assert [f.path for f in result.files][-1] == "crossbuild.mk"
    assert result.include_line == "include crossbuild.mk"
    out = capsys.readouterr().out
    assert "add this line to your Makefile:\n    include crossbuild.mk\n" in out
    mk = (tmp_path / "crossbuild.mk").read_text()
    assert "\ncrossbuild.verify: " in mk
    assert "\ncrossbuild.image.multiarch image.multiarch: " in mk


def test_init_reports_skipped_files_and_force_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_module(tmp_path, "api")
    write(tmp_path, "tasks.py", "# my own tasks\n")
    result = adopt.init(tmp_path)
    assert result.skipped == ("tasks.py",)
    assert (tmp_path / "tasks.py").read_text() == "# my own tasks\n"
    assert "re-run with --force" in capsys.readouterr().err
    forced = adopt.init(tmp_path, force=True)
    assert [(f.path, f.status) for f in forced.files if f.status != "unchanged"] == [("tasks.py", "overwritten")]
    assert (tmp_path / "tasks.py").read_text() == adopt.TASKS_PY
