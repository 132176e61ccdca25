"""The -X stamping check beside `go build` (prepare.Stamp(beside_compile=True)), with real Go.

The [go.x] variables are checked in a thread while `go build` runs; the binaries are checked
against the answer, a broken variable still fails the run, and it stops the go builds still
running as soon as the check finds it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crossbuild import commands, config, incremental, stamping
from crossbuild.config import Overrides
from crossbuild.errors import UserError
from crossbuild.platforms import host_platform, parse_platform
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


def _cfg(root: Path, services: tuple[str, ...] = ("api",), more_x: str = "") -> config.Config:
    """config.toml for `services` (each at cmd/<name>), stamping version.Version, plus `more_x` lines."""
    (root / "config.toml").write_text(
        '[project]\nmodule_dir = "mod"\n'
        f'[go.x]\n"{MODULE}/version.Version" = "{{version}}"\n{more_x}'
        + "".join(f'[[services]]\nname = "{name}"\n' for name in services)
    )
    return config.load(root / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1.2.3"})


def _state(cfg: config.Config) -> incremental.State:
    return incremental.State(cfg.output_dir / "state" / f"{stamping.STATE_NAME}.json")


@pytest.mark.usefixtures("git_isolated")
def test_the_check_runs_beside_the_compile_and_the_binaries_are_checked_against_it(tmp_path: Path) -> None:
    _write(tmp_path)
    cfg = _cfg(tmp_path)
    ctx = commands.build(for_config(cfg), [host_platform()])
    assert ctx.cfg.stamped == (("api", (f"{MODULE}/version.Version",)),)
    assert all(br.ok for pr in ctx.builds for br in pr.binaries)

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
def test_a_wrong_variable_stops_the_compile_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty build cache and a platform nothing here was built for: `go build` of a program
    importing net/http needs half a minute and more here (the standard library first; 9 s for
    fmt alone). The check fails in well under a second, and the run with it."""
    _write(tmp_path)
    main = tmp_path / "mod/cmd/api/main.go"
    main.write_text(main.read_text().replace('"fmt"\n', '"fmt"\n\t_ "net/http"\n'))
    cfg = _cfg(tmp_path, more_x='"main.who" = "x"\n')
    monkeypatch.setenv("GOCACHE", str(tmp_path / "empty-go-cache"))
    started = time.monotonic()
    with pytest.raises(UserError, match=r"main\.who"):
        commands.build(for_config(cfg), [parse_platform("linux/riscv64")])
    assert time.monotonic() - started < 10
    assert not (cfg.bin_dir / "linux/riscv64/api").exists()


HELPER_GO = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("helper") }\n'


def _two_services(root: Path) -> config.Config:
    _write(root)
    (root / "mod/cmd/helper").mkdir(parents=True)
    (root / "mod/cmd/helper/main.go").write_text(HELPER_GO)
    return _cfg(root, ("api", "helper"))


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


@pytest.mark.usefixtures("git_isolated")
def test_sigterm_stops_the_go_builds_with_their_compilers(tmp_path: Path) -> None:
    """go build runs in a process group of its own (so a failed check can kill it whole); a SIGTERM
    to crossbuild, as from a CI timeout, must still stop it and every compiler it started."""
    import os
    import signal
    import subprocess
    import sys

    _write(tmp_path)
    main = tmp_path / "mod/cmd/api/main.go"
    main.write_text(main.read_text().replace('"fmt"\n', '"fmt"\n\t_ "net/http"\n'))
    _cfg(tmp_path)
    cache = tmp_path / "empty-go-cache"
    script = (
        "from pathlib import Path\n"
        "from crossbuild import commands, config\n"
        "from crossbuild.platforms import parse_platform\n"
        "from crossbuild.session import for_config\n"
        f"cfg = config.load(Path({str(tmp_path / 'config.toml')!r}), config.Overrides(), "
        "{'SOURCE_DATE_EPOCH': '0', 'VERSION': 'v1.2.3'})\n"
        "commands.build(for_config(cfg), [parse_platform('linux/riscv64')])\n"
    )
    env = {**os.environ, "GOCACHE": str(cache)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _compilers(cache):
        time.sleep(0.2)
    assert _compilers(cache), "go build never started a compiler"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    time.sleep(0.5)
    assert not _compilers(cache), "compilers outlived crossbuild"


def _compilers(cache: Path) -> list[str]:
    """Processes of the go build that uses `cache`: go itself and its compile/asm children."""
    import subprocess

    listed = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    found = []
    for line in listed.splitlines():
        pid = line.split()[0]
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"GOCACHE={cache}".encode() in environ and ("compile" in line or "go build" in line):
            found.append(line.strip())
    return found
