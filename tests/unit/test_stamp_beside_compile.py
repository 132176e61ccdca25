"""The -X stamping check beside `go build` (prepare.Stamp(beside_compile=True)), with real Go.

A first run checks the [go.x] variables before any compiler starts; once those settings were
settled, a later run (an edit) checks them in a thread while `go build` runs, and the binaries
are still checked against the answer, and a broken variable still fails the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import commands, config, incremental, stamping
from crossbuild.config import Overrides
from crossbuild.errors import UserError
from crossbuild.platforms import host_platform
from crossbuild.session import for_config

MODULE = "example.invalid/beside"

VERSION_GO = 'package version\n\nvar Version = "dev"\n\nfunc String() string { return Version }\n'
MAIN_GO = (
    f'package main\n\nimport (\n\t"fmt"\n\n\t"{MODULE}/version"\n)\n\n'
    "func main() { fmt.Println(version.String(), {n}) }\n"
)


def _write(root: Path, n: int = 1) -> None:
    files = {
        "mod/go.mod": f"module {MODULE}\n\ngo 1.22\n",
        "mod/version/version.go": VERSION_GO,
        "mod/cmd/api/main.go": MAIN_GO.replace("{n}", str(n)),
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _cfg(root: Path) -> config.Config:
    (root / "config.toml").write_text(
        '[project]\nmodule_dir = "mod"\n'
        f'[go.x]\n"{MODULE}/version.Version" = "{{version}}"\n'
        '[[services]]\nname = "api"\n'
    )
    return config.load(root / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1.2.3"})


def _state(cfg: config.Config) -> incremental.State:
    return incremental.State(cfg.output_dir / "state" / f"{stamping.STATE_NAME}.json")


@pytest.mark.usefixtures("git_isolated")
def test_first_run_checks_before_the_compile_later_runs_beside_it(tmp_path: Path) -> None:
    _write(tmp_path)
    cfg = _cfg(tmp_path)
    assert not stamping.settled_before(cfg, cfg.services, _state(cfg))
    ctx = commands.build(for_config(cfg), [host_platform()])
    assert ctx.cfg.stamped == (("api", (f"{MODULE}/version.Version",)),)
    assert all(br.ok for pr in ctx.builds for br in pr.binaries)
    assert stamping.settled_before(cfg, cfg.services, _state(cfg))

    _write(tmp_path, n=2)  # an edit: the tree changes, the [go.x] settings do not
    ctx = commands.build(for_config(_cfg(tmp_path)), [host_platform()])
    assert ctx.cfg.stamped == (("api", (f"{MODULE}/version.Version",)),)  # joined after the compile
    assert "stamping in progress" not in ctx.memo
    [pr] = ctx.builds
    assert not pr.cached and [br.problems for br in pr.binaries] == [()]
    assert b"v1.2.3" in pr.binaries[0].path.read_bytes()


@pytest.mark.usefixtures("git_isolated")
def test_a_variable_broken_by_an_edit_still_fails_the_run(tmp_path: Path) -> None:
    _write(tmp_path)
    commands.build(for_config(_cfg(tmp_path)), [host_platform()])
    # the edit turns the variable into a constant: -X can no longer set it
    (tmp_path / "mod/version/version.go").write_text(VERSION_GO.replace("var Version", "const Version"))
    with pytest.raises(UserError, match=r"Version is a constant"):
        commands.build(for_config(_cfg(tmp_path)), [host_platform()])


@pytest.mark.usefixtures("git_isolated")
def test_new_go_x_settings_are_checked_before_the_compile_again(tmp_path: Path) -> None:
    _write(tmp_path)
    cfg = _cfg(tmp_path)
    [pr] = commands.build(for_config(cfg), [host_platform()]).builds
    built = pr.binaries[0].path.stat().st_mtime_ns
    assert stamping.settled_before(cfg, cfg.services, _state(cfg))
    text = (tmp_path / "config.toml").read_text()
    (tmp_path / "config.toml").write_text(text.replace("[[services]]", '"main.who" = "x"\n[[services]]'))
    changed = config.load(tmp_path / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1.2.3"})
    assert not stamping.settled_before(changed, changed.services, _state(changed))
    with pytest.raises(UserError, match=r"main\.who"):  # reported by the stamp stage, before go build
        commands.build(for_config(changed), [host_platform()])
    assert pr.binaries[0].path.stat().st_mtime_ns == built  # no go build ran


HELPER_GO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("helper") }\n'


def _two_services(root: Path) -> config.Config:
    _write(root)
    (root / "mod/cmd/helper").mkdir(parents=True)
    (root / "mod/cmd/helper/main.go").write_text(HELPER_GO)
    (root / "config.toml").write_text(
        '[project]\nmodule_dir = "mod"\n'
        f'[go.x]\n"{MODULE}/version.Version" = "{{version}}"\n'
        '[[services]]\nname = "api"\n[[services]]\nname = "helper"\n'
    )
    return config.load(root / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1.2.3"})


def _sources(cfg: config.Config) -> incremental.State:
    return incremental.State(cfg.output_dir / "state" / f"{stamping.SOURCES_STATE_NAME}.json")


@pytest.mark.usefixtures("git_isolated")
def test_kept_answers_follow_the_edits_that_change_them(tmp_path: Path) -> None:
    """go list's graph is kept across a body edit and asked again when an import changes;
    govars is asked again for the edited package only, so a new reader of the variable counts."""
    cfg = _two_services(tmp_path)
    stamped, _ = stamping.resolve(cfg, cfg.services, "tree-1", _state(cfg))
    assert stamped.stamped == (("api", (f"{MODULE}/version.Version",)), ("helper", ()))
    graph = _sources(cfg).get("graph")["key"]

    # a body edit: same graph key, same answer
    (tmp_path / "mod/cmd/helper/main.go").write_text(HELPER_GO.replace('"helper"', '"helper 2"'))
    stamped, _ = stamping.resolve(cfg, cfg.services, "tree-2", _state(cfg))
    assert _sources(cfg).get("graph")["key"] == graph
    assert stamped.stamped == (("api", (f"{MODULE}/version.Version",)), ("helper", ()))

    # helper now imports and reads the version: a new graph, and helper carries it
    (tmp_path / "mod/cmd/helper/main.go").write_text(
        f'package main\n\nimport (\n\t"fmt"\n\n\t"{MODULE}/version"\n)\n\n'
        "func main() { fmt.Println(version.Version) }\n"
    )
    stamped, _ = stamping.resolve(cfg, cfg.services, "tree-3", _state(cfg))
    assert _sources(cfg).get("graph")["key"] != graph
    assert dict(stamped.stamped)["helper"] == (f"{MODULE}/version.Version",)

    # a body edit that stops reading it (the import stays): govars sees it, the graph key does not
    (tmp_path / "mod/cmd/helper/main.go").write_text(
        f'package main\n\nimport (\n\t"fmt"\n\n\t"{MODULE}/version"\n)\n\n'
        'var _ = version.String\n\nfunc main() { fmt.Println("no read") }\n'
    )
    stamped, _ = stamping.resolve(cfg, cfg.services, "tree-4", _state(cfg))
    assert dict(stamped.stamped)["helper"] == (f"{MODULE}/version.Version",)  # String reads it: still linked
    (tmp_path / "mod/version/version.go").write_text(
        'package version\n\nvar Version = "dev"\n\nfunc String() string { return "x" }\n'
    )
    stamped, _ = stamping.resolve(cfg, cfg.services, "tree-5", _state(cfg))
    assert dict(stamped.stamped)["helper"] == ()  # nothing reads Version any more: the linker drops it
