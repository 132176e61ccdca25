"""crossbuild.adopt (`crossbuild init`): the release-setup import, the -X choice, the output
directory, the generated files and the write decisions.

Repositories are synthetic files in tmp_path; go, git and make run for real where a test
needs them (go list -deps and govars in `plan`, make -n on the generated makefiles).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from crossbuild import adopt, config
from crossbuild.adopt import makefiles, release, render, repository, versions
from crossbuild.errors import UserError

MODULE = "example.com/app"
MAIN = "package main\n\nfunc main() {}\n"


def write(root: Path, rel: str, text: str = MAIN) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_module(root: Path, *services: str, main_body: str = "func main() {}\n") -> Path:
    write(root, "go.mod", f"module {MODULE}\n\ngo 1.22\n")
    for name in services:
        write(root, f"cmd/{name}/main.go", f"package main\n\n{main_body}")
    return root


# --- release setup: templates -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "template"),
    [
        ("{{.Version}}", "{version_no_v}"),
        ("{{ .Version }}", "{version_no_v}"),
        ("v{{.Tag}}-x", "v{version}-x"),
        ("{{.ShortCommit}}", "{short_commit}"),
        ("{{.FullCommit}}", "{commit}"),
        ("{{.Date}}", "{date}"),
        ('{{time "2006-01-02"}}', "{date_short}"),
        ('{{ .Now.Format "2006-01-02" }}', "{date_short}"),
        ("{{.CommitTimestamp}}", "{timestamp}"),
        ("goreleaser", "goreleaser"),
        ("a{b}", "a{{b}}"),
        ("{{.Env.VERSION}}", None),
        ('{{ time "Jan 2" }}', None),
    ],
    ids=str,
)
def test_goreleaser_template(value: str, template: str | None) -> None:
    assert release.goreleaser_template(value) == template


def test_mapped_templates_fill() -> None:
    values = {f: "x" for f in ("version", "version_no_v", "commit", "short_commit", "date", "date_short", "timestamp")}
    values |= {"tree_state": "x", "project": "x", "service": "x"}
    for tmpl in [*versions.VERSION_TEMPLATES.values(), "v{version}-x", "a{{b}}"]:
        config.fill_template(tmpl, values, "test")


@pytest.mark.parametrize(
    ("expanded", "template"),
    [
        ("$(shell git describe --tags --always --dirty)", "{version}"),
        ("$(shell git rev-parse --short HEAD)", "{short_commit}"),
        ("$(shell git rev-parse HEAD)", "{commit}"),
        ("$(shell date -u '+%Y-%m-%dT%H:%M:%SZ')", "{date}"),
        ("$(shell date -u +%Y-%m-%d)", "{date_short}"),
        ("$(shell date +%s)", "{timestamp}"),
        ('$(shell test -n "`git status --porcelain`" && echo dirty || echo clean)', "{tree_state}"),
        ("make", "make"),
        ("$(shell cat FILE)", None),
    ],
    ids=lambda v: str(v)[:30],
)
def test_shell_template(expanded: str, template: str | None) -> None:
    assert release.shell_template(expanded, "main.x") == template


@pytest.mark.parametrize(
    ("var", "template"),
    [
        ("Version", "{version}"),
        ("GitCommit", "{commit}"),
        ("commit", "{commit}"),
        ("BuildDate", "{date}"),
        ("build_time", "{date}"),
        ("GitTreeState", "{tree_state}"),
        ("ShortCommit", "{short_commit}"),
        ("BuildUser", None),
        ("Versions", None),
    ],
)
def test_template_for(var: str, template: str | None) -> None:
    assert versions.template_for(var) == template


def test_split_ldflags_keeps_templates_whole() -> None:
    other, x, conditional = release.split_ldflags(
        [
            '-s -w -X example.com/b.Version={{.Version}} -X=example.com/b.Date={{time "2006-01-02"}}',
            "-extldflags=-static",
            "{{if .IsNightly}}-X example.com/b.Nightly={{.Version}}{{end}}",
        ]
    )
    assert other == ["-s", "-w", "-extldflags=-static"]
    assert x == {"example.com/b.Version": "{{.Version}}", "example.com/b.Date": '{{time "2006-01-02"}}'}
    assert conditional == ["{{if .IsNightly}}-X example.com/b.Nightly={{.Version}}{{end}}"]


def test_promu(tmp_path: Path) -> None:
    write(tmp_path, "go.mod", f"module {MODULE}\n")
    write(tmp_path, "main.go")
    write(
        tmp_path,
        ".promu.yml",
        "build:\n  binaries:\n    - name: app_exporter\n  flags: -a -tags netgo,osusergo\n  ldflags: |\n"
        "    -X example.com/common/version.Version={{.Version}}\n"
        "    -X example.com/common/version.Revision={{.Revision}}\n"
        "    -X example.com/common/version.BuildUser={{user}}@{{host}}\n",
    )
    setup = release.read(tmp_path, tmp_path, ["app"])
    assert [(b.name, b.package) for b in setup.builds] == [("app_exporter", ".")]
    assert setup.x == {
        "example.com/common/version.Version": "{version_no_v}",
        "example.com/common/version.Revision": "{commit}",
    }
    assert setup.tags == ["netgo", "osusergo"]
    assert setup.unmapped == [
        ".promu.yml: -X example.com/common/version.BuildUser={{user}}@{{host}} (template not mapped)"
    ]


# --- release setup: files --------------------------------------------------------------------------

GORELEASER = """\
version: 2
project_name: app
before:
  hooks: [go mod tidy]
builds:
  - id: server
    main: ./cmd/server
    binary: bin/server
    goos: [linux, darwin]
    goarch: [amd64, arm64, arm]
    goarm: [6]
    ignore:
      - goos: darwin
        goarch: arm
    tags: [netgo, osusergo]
    flags:
      - -trimpath
    env: [CGO_ENABLED=0]
    ldflags:
      - -s -w -X example.com/app/internal/version.Version={{.Version}} -X main.builtBy=goreleaser
  - id: server-windows
    main: ./cmd/server/main.go
    binary: server
    goos: [windows]
    ldflags:
      - -X example.com/app/internal/version.Version={{.Env.X}}
  - id: helper
    main: ./cmd/helper
    goos: [linux]
    goarch: [amd64]
    tags: [netgo, osusergo]
    env: [CGO_ENABLED=0]
    ldflags:
      - -s -w -X example.com/app/internal/version.Version={{.Version}}
"""


def test_goreleaser_builds(tmp_path: Path) -> None:
    make_module(tmp_path, "server", "helper")
    write(tmp_path, ".goreleaser.yaml", GORELEASER)
    setup = release.read(tmp_path, tmp_path, ["server", "helper"])
    assert [(b.name, b.package) for b in setup.builds] == [("server", "./cmd/server"), ("helper", "./cmd/helper")]
    server = setup.builds[0]
    assert server.platforms == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v6",
        "darwin/amd64",
        "darwin/arm64",
        "windows/386",
        "windows/amd64",
        "windows/arm64",
    ]
    assert setup.image_platforms() == ["linux/amd64", "linux/arm64", "linux/arm/v6"]
    assert setup.tags == ["netgo", "osusergo"]  # shared by every build: project-wide
    assert setup.ldflags == ["-s", "-w"]
    assert setup.cgo is False
    assert setup.x == {"example.com/app/internal/version.Version": "{version_no_v}"}
    assert server.x == {"main.builtBy": "goreleaser"}  # only the server's: per service
    assert release.Taken("go.tags", "['netgo', 'osusergo']", ".goreleaser.yaml") in setup.taken
    assert any("before` hooks are not run" in u for u in setup.unmapped)
    assert not any("{{.Env.X}}" in u for u in setup.unmapped)  # the windows-only build's settings are not ours


def test_goreleaser_unmapped_template(tmp_path: Path) -> None:
    make_module(tmp_path, "api")
    write(tmp_path, ".goreleaser.yml", "builds:\n  - main: ./cmd/api\n    ldflags: ['-X main.v={{.Env.V}}']\n")
    setup = release.read(tmp_path, tmp_path, ["api"])
    assert setup.unmapped == [".goreleaser.yml: -X main.v={{.Env.V}} (template not mapped)"]
    assert setup.x == {}


MAKEFILE = """\
VERSION ?= $(shell git describe --tags --always --dirty)
COMMIT := $(shell git rev-parse HEAD)
PKG = example.com/app/pkg/version
LDFLAGS := -s -w \\
  -X '$(PKG).Version=$(VERSION)' \\
  -X $(PKG).GitCommit=$(COMMIT) \\
  -X "$(PKG).BuildDate=$(shell date -u +%Y-%m-%d)"
GOARM ?= 6

build:
\tgo build -tags "sqlite json1" -ldflags "$(LDFLAGS)" ./cmd/...

test:
\tgo test -tags integration ./...
"""


def test_makefile_ldflags_tags_and_goarm(tmp_path: Path) -> None:
    make_module(tmp_path, "api")
    write(tmp_path, "Makefile", MAKEFILE)
    setup = release.read(tmp_path, tmp_path, ["api"])
    assert setup.x == {
        "example.com/app/pkg/version.Version": "{version}",
        "example.com/app/pkg/version.GitCommit": "{commit}",
        "example.com/app/pkg/version.BuildDate": "{date_short}",
    }
    assert setup.tags == ["sqlite", "json1"]
    assert setup.arm_variant == "v6"


def test_go_build_program_tags(tmp_path: Path) -> None:
    make_module(tmp_path, "tool")
    write(
        tmp_path,
        "build.go",
        "//go:build ignore_build\n\npackage main\n\n"
        'var config = Config{\n\tDefaultBuildTags: []string{"selfupdate", "lite"},\n}\n',
    )
    write(tmp_path, "helpers/release/main.go", 'package main\n\nvar env = []string{"GOARM=6"}\n')
    setup = release.read(tmp_path, tmp_path, ["tool"])
    assert setup.tags == ["selfupdate", "lite"]
    assert setup.arm_variant == "v6"


def test_dockerfile_last_stage(tmp_path: Path) -> None:
    make_module(tmp_path, "server")
    write(
        tmp_path,
        "docker/Dockerfile",
        "FROM golang AS build\nEXPOSE 1\nUSER root\n"
        'FROM alpine:3\nEXPOSE 8080 9090/udp\nUSER nonroot:nonroot\nENTRYPOINT ["/usr/bin/server", "serve"]\n'
        'CMD ["--addr", ":8080"]\n',
    )
    setup = release.read(tmp_path, tmp_path, ["server"])
    assert setup.expose == ["8080", "9090/udp"]
    assert setup.user == "65532:65532"
    assert setup.cmd == {"server": ["serve", "--addr", ":8080"]}
    assert setup.base == "alpine:3"


# --- repository ------------------------------------------------------------------------------------


def test_find_module_below_the_root(tmp_path: Path) -> None:
    write(tmp_path, "docs/readme.md", "x")
    write(tmp_path, "server/go.mod", "module example.com/srv\n")
    write(tmp_path, "server/cmd/srv/main.go")
    repo = repository.find(tmp_path)
    assert repo.module_dir == (tmp_path / "server").resolve()
    assert repo.module_rel == "server"
    assert repo.name == "srv"


def test_find_workspace(tmp_path: Path) -> None:
    write(tmp_path, "go.work", "go 1.22\n\nuse (\n\t./svc\n\t./lib\n)\n")
    write(tmp_path, "svc/go.mod", "module example.com/svc\n")
    write(tmp_path, "lib/go.mod", "module example.com/lib\n")
    repo = repository.find(tmp_path / "")
    assert repo.workspace
    assert repo.module_rel == "."
    assert repo.module == "example.com/svc"


def test_find_needs_go(tmp_path: Path) -> None:
    write(tmp_path, "main.go")
    with pytest.raises(UserError, match=r"no go.mod \(or go.work\) here or below"):
        repository.find(tmp_path)
    with pytest.raises(UserError, match="no such directory"):
        repository.find(tmp_path / "missing")


def test_output_dir_avoids_directories_others_use(tmp_path: Path, git_isolated: dict[str, str]) -> None:
    # tmp_path is no git checkout (git_isolated stops git at its parent): any file in build/ is theirs.
    assert repository.choose_output_dir(tmp_path) == ("build", "")
    write(tmp_path, "build/Dockerfile", "FROM scratch\n")
    out, note = repository.choose_output_dir(tmp_path)
    assert out == "_crossbuild"
    assert "build/ holds files of the repository" in note
    write(tmp_path, ".gitignore", "/_crossbuild/\n")
    out, note = repository.choose_output_dir(tmp_path)
    assert out == "_crossbuild_out"
    assert "_crossbuild/ is named in .gitignore" in note
    write(tmp_path, "config.toml", '[project]\noutput_dir = "out"\n')
    assert repository.choose_output_dir(tmp_path) == ("out", "")


def test_output_dir_named_by_a_makefile(tmp_path: Path, git_isolated: dict[str, str]) -> None:
    write(tmp_path, "Makefile", "OUT := build\nall:\n\tgo build -o build/ ./...\n")
    assert repository.choose_output_dir(tmp_path)[0] == "_crossbuild"


def test_source_url_only_for_known_forges() -> None:
    assert repository.source_url("github.com/org/repo/v2") == "https://github.com/org/repo"
    assert repository.source_url("example.com/fresh") == ""


# --- generated files ------------------------------------------------------------------------------


def test_config_toml_loads_with_crossbuild(tmp_path: Path) -> None:
    make_module(tmp_path, "api", "worker")
    write(tmp_path, "pkg/version/v.go", "package version\n\nvar Version string\n")
    draft = render.Draft(
        module=MODULE,
        name="app",
        module_dir=".",
        output_dir="build",
        source_url="",
        services=[
            render.ServiceDraft("api", "./cmd/api", cmd=["serve"], tags=["x"], x={"main.v": "{commit}"}),
            render.ServiceDraft("worker", "./cmd/worker", source=".goreleaser.yaml"),
        ],
        x=[(f"{MODULE}/pkg/version.Version", "{version}")],
        x_left_out=[(f"{MODULE}/pkg/version.Release", "{version}")],
        expose=["8080"],
        origins={"go.ldflags": "Makefile"},
    )
    text = render.config_toml(draft)
    assert '["-s", "-w"]  # from Makefile' in text
    assert f'# "{MODULE}/pkg/version.Release" = "{{version}}"' in text
    (tmp_path / "config.toml").write_text(text)
    cfg = config.load(tmp_path / "config.toml", environ={})
    assert [s.name for s in cfg.services] == ["api", "worker"]
    api = cfg.service("api")
    assert api.cmd == ("serve",)
    assert cfg.go_for(api).tags == ("x",)
    assert dict(cfg.go_for(api).x) == {f"{MODULE}/pkg/version.Version": "{version}", "main.v": "{commit}"}
    assert cfg.go.x == ((f"{MODULE}/pkg/version.Version", "{version}"),)
    assert cfg.image.registry_prefix == "127.0.0.1:5000/app"
    assert cfg.image.static_base
    assert cfg.image.expose == ("8080",)
    assert cfg.image.verify is True


def test_render_makefile_runs_crossbuild_tasks(tmp_path: Path) -> None:
    text = makefiles.render_makefile(MODULE, "/opt/cb/bin/crossbuild")
    assert "$(wildcard .venv/bin/crossbuild) $(shell command -v crossbuild 2>/dev/null)" in text
    assert "$(wildcard /opt/cb/bin/crossbuild)" in text
    assert "\t$(CROSSBUILD_RUN) image.multiarch $(CROSSBUILD_FLAGS)\n" in text
    (tmp_path / "Makefile").write_text(text)
    fake = write(tmp_path, "bin/crossbuild", '#!/bin/sh\necho crossbuild "$@"\n')
    fake.chmod(0o755)
    proc = subprocess.run(
        ["make", "--no-print-directory", "image.multiarch", "build.api", "CONFIG=other.toml"],
        cwd=tmp_path,
        env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.splitlines() == [
        "crossbuild image.multiarch --config other.toml",
        "crossbuild build --services api --config other.toml",
    ]
    missing = subprocess.run(
        ["make", "--no-print-directory", "verify"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0
    assert "crossbuild: command not found; pipx install" in missing.stderr


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
    assert makefiles.makefile_targets(text) == {"all", "build", "test", "image.%", "long", "continued", "target"}


def test_is_defined_matches_patterns() -> None:
    assert makefiles.is_defined("verify", {"verify"})
    assert makefiles.is_defined("image.multiarch", {"image.%"})
    assert makefiles.is_defined("doctor", {"%"})
    assert not makefiles.is_defined("image.multiarch", {"build.%", "image"})


def test_render_include_keeps_the_users_default_goal(tmp_path: Path) -> None:
    text = makefiles.render_include({"verify", "image.%"})
    assert "\ncrossbuild.verify: ## crossbuild verify\n" in text
    assert "\ncrossbuild.image.multiarch: ## crossbuild image.multiarch\n" in text
    assert "\ncrossbuild.doctor doctor: ## crossbuild doctor\n" in text
    (tmp_path / "crossbuild.mk").write_text(text)
    (tmp_path / "Makefile").write_text("include crossbuild.mk\n\nall:\n\t@echo mine\n")
    proc = subprocess.run(["make", "--no-print-directory"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert proc.stdout == "mine\n"


def test_choose_makefile(tmp_path: Path) -> None:
    assert makefiles.choose_makefile(tmp_path) == makefiles.MakeChoice("Makefile")
    (tmp_path / "Makefile").write_text(makefiles.render_makefile(MODULE))
    assert makefiles.choose_makefile(tmp_path) == makefiles.MakeChoice("Makefile")  # init's own
    (tmp_path / "Makefile").write_text("all:\n\techo\nverify:\n\techo\n")
    choice = makefiles.choose_makefile(tmp_path)
    assert (choice.file, choice.user_makefile, choice.defined) == ("crossbuild.mk", "Makefile", {"all", "verify"})
    assert not choice.included
    (tmp_path / "Makefile").write_text("all:\n\techo\n\ninclude crossbuild.mk\n")
    assert makefiles.choose_makefile(tmp_path).included
    assert makefiles.choose_makefile(tmp_path).wrapper == ""  # their Makefile includes it already
    (tmp_path / "Makefile").write_text("all:\n\techo\n")
    assert makefiles.choose_makefile(tmp_path).wrapper == "GNUmakefile"
    (tmp_path / "GNUmakefile").write_text(makefiles.render_wrapper("Makefile"))
    assert makefiles.choose_makefile(tmp_path).user_makefile == "Makefile"  # init's wrapper is skipped
    (tmp_path / "GNUmakefile").write_text("x:\n\techo\n")
    choice = makefiles.choose_makefile(tmp_path)
    assert (choice.user_makefile, choice.wrapper) == ("GNUmakefile", "")


# --- writing -----------------------------------------------------------------------------------------


def test_decide_and_write(tmp_path: Path) -> None:
    assert adopt.decide(tmp_path / "new.txt", "a\n", force=False) == adopt.WRITTEN
    assert adopt.write_file(tmp_path, "sub/new.txt", "a\n", force=False) == adopt.FileReport("sub/new.txt", "written")
    assert (tmp_path / "sub" / "new.txt").read_text() == "a\n"
    assert adopt.write_file(tmp_path, "sub/new.txt", "a\n", force=False).status == adopt.UNCHANGED
    assert adopt.write_file(tmp_path, "sub/new.txt", "b\n", force=False).status == adopt.SKIPPED
    assert (tmp_path / "sub" / "new.txt").read_text() == "a\n"
    assert adopt.write_file(tmp_path, "sub/new.txt", "b\n", force=True).status == adopt.OVERWRITTEN
    assert (tmp_path / "sub" / "new.txt").read_text() == "b\n"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["new.txt"]  # no temporary left


# --- init, end to end (real go list and govars) ---------------------------------------------------------

VERSION_PKG = """package version

var (
	Version   = "dev"
	GitCommit string
)

const BuildDate = "unknown"

func String() string { return Version + " " + GitCommit + " " + BuildDate }
"""
USES_VERSION = f'package main\n\nimport "{MODULE}/pkg/version"\n\nfunc main() {{ println(version.String()) }}\n'


def test_init_stamps_what_each_service_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_module(tmp_path, "worker")
    write(tmp_path, "cmd/api/main.go", USES_VERSION)
    write(tmp_path, "pkg/version/version.go", VERSION_PKG)
    first = adopt.init(tmp_path)
    assert [(f.path, f.status) for f in first.files] == [("config.toml", "written"), ("Makefile", "written")]
    assert first.services == ("api", "worker")
    assert first.x == ((f"{MODULE}/pkg/version.Version", "{version}"), (f"{MODULE}/pkg/version.GitCommit", "{commit}"))
    out = capsys.readouterr().out
    assert "BuildDate is a constant (pkg/version/version.go:8)" in out
    assert f"not stamped into worker (they do not link {MODULE}/pkg/version)" in out
    cfg = config.load(tmp_path / "config.toml", environ={})
    assert [(s.name, s.package) for s in cfg.services] == [("api", "./cmd/api"), ("worker", "./cmd/worker")]
    again = adopt.init(tmp_path)
    assert {f.status for f in again.files} == {"unchanged"}
    assert "nothing to do: all files up to date" in capsys.readouterr().out


def test_init_main_package_variables(tmp_path: Path) -> None:
    body = 'var version = "dev"\nvar commit = "none"\n\nfunc main() { println(version, commit) }\n'
    make_module(tmp_path, "a", "b", main_body=body)
    result = adopt.init(tmp_path)
    assert result.x == (("main.version", "{version}"), ("main.commit", "{commit}"))


def test_init_next_to_an_existing_makefile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_module(tmp_path, "api")
    user = "all:\n\t@echo mine\n\nverify:\n\t@echo theirs\n"
    write(tmp_path, "Makefile", user)
    result = adopt.init(tmp_path)
    assert (tmp_path / "Makefile").read_text() == user
    assert [f.path for f in result.files] == ["config.toml", "crossbuild.mk", "GNUmakefile"]
    assert result.include_line == ""
    assert (tmp_path / "GNUmakefile").read_text().splitlines()[-2:] == ["include Makefile", "include crossbuild.mk"]
    assert "GNUmakefile includes your Makefile and crossbuild.mk" in capsys.readouterr().out
    again = adopt.init(tmp_path)
    assert {f.status for f in again.files} == {"unchanged"}


def test_init_next_to_their_gnumakefile_prints_the_include_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_module(tmp_path, "api")
    write(tmp_path, "GNUmakefile", "all:\n\t@echo mine\n")
    result = adopt.init(tmp_path)
    assert [f.path for f in result.files] == ["config.toml", "crossbuild.mk"]
    assert result.include_line == "include crossbuild.mk"
    assert "add this line to your GNUmakefile:\n    include crossbuild.mk\n" in capsys.readouterr().out


def test_init_reports_skipped_files_and_force_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_module(tmp_path, "api")
    write(tmp_path, "config.toml", "# mine\n")
    result = adopt.init(tmp_path)
    assert result.skipped == ("config.toml",)
    assert (tmp_path / "config.toml").read_text() == "# mine\n"
    assert "re-run with --force" in capsys.readouterr().err
    forced = adopt.init(tmp_path, force=True)
    assert [(f.path, f.status) for f in forced.files if f.status != "unchanged"] == [("config.toml", "overwritten")]


def test_init_needs_main_packages(tmp_path: Path) -> None:
    write(tmp_path, "go.mod", f"module {MODULE}\n")
    write(tmp_path, "cmd/lib/lib.go", "package lib\n")
    with pytest.raises(UserError, match=r"no main packages below cmd/ or at the module root"):
        adopt.init(tmp_path)


def test_init_leaves_config_that_loads(tmp_path: Path) -> None:
    make_module(tmp_path, "api")
    write(tmp_path, ".goreleaser.yaml", "builds:\n  - main: ./cmd/api\n    goos: [linux]\n    goarch: [arm64, amd64]\n")
    adopt.init(tmp_path)
    data = tomllib.loads((tmp_path / "config.toml").read_text())
    assert data["platforms"]["images"] == ["linux/arm64", "linux/amd64"]
    assert data["services"] == [{"name": "api", "package": "./cmd/api"}]
