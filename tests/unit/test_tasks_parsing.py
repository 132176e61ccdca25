"""Every task's command line through invoke's real parser (invoke.program.Program, in process):
`--help` shows help for every task, and no flag typed after a task falls through to invoke's own
parser (whose -f/--config would load a .toml as invoke configuration and die with a traceback).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from invoke.program import Program

from crossbuild.tasks import ns

TASKS = sorted(ns.task_names)
POSITIONAL = {"bundle.load": "ARCHIVE", "init": "DIRECTORY"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    Program(namespace=ns, binary="invoke", name="invoke").run(["invoke", *argv], exit=False)
    captured = capsys.readouterr()
    return captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_the_collection_has_the_tasks_this_file_expects() -> None:
    assert {"bundle.create", "bundle.load", "audit", "init", "image.multiarch"} <= set(TASKS)
    assert set(POSITIONAL) <= set(TASKS)


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_task_shows_its_help(capsys: pytest.CaptureFixture[str], name: str, flag: str) -> None:
    out, err = run(capsys, name, flag)
    assert re.match(rf"Usage: \S+ \[--core-opts\] {re.escape(name)} ", out), out + err
    assert "Options:" in out and err == ""
    if name in POSITIONAL:
        assert f"--{POSITIONAL[name].lower()}=STRING" in out


@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_help_after_the_positional_argument_too(capsys: pytest.CaptureFixture[str], name: str) -> None:
    out, err = run(capsys, name, "something", "--help")
    assert re.match(rf"Usage: \S+ \[--core-opts\] {re.escape(name)} ", out), out + err


def test_help_texts_survive_being_shown_twice(capsys: pytest.CaptureFixture[str]) -> None:
    """invoke consumes a task's help texts when it builds its parser; the second --help must still have them."""
    first, _ = run(capsys, "bundle.load", "--help")
    second, _ = run(capsys, "bundle.load", "--help")
    assert "speak plain HTTP to --registry" in first
    assert second == first


@pytest.mark.parametrize("name", TASKS)
def test_every_task_owns_config_and_f(name: str) -> None:
    """--config and -f are invoke's own config-file flags; a task must catch them itself."""
    flags = ns.to_contexts()
    context = next(c for c in flags if c.name == name or name in c.aliases)
    assert "--config" in context.flags
    assert "-f" in context.flags


def test_bundle_load_with_config_is_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out, err = run(capsys, "bundle.load", str(tmp_path / "b.tar.gz"), "--config", str(tmp_path / "X.toml"))
    assert error_lines(err) == [
        "error: bundle.load reads no config file (it runs where only the archive is; give --registry HOST:PORT "
        f"to push): drop --config {tmp_path / 'X.toml'}"
    ]
    assert "check" not in out


def test_f_on_a_task_means_its_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "X.toml"
    _, err = run(capsys, "doctor", "-f", str(missing))
    [line] = error_lines(err)
    assert line.startswith("error: ") and str(missing) in line and "not found" in line


def test_init_with_config_is_refused_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, err = run(capsys, "init", str(tmp_path), "--config", "X.toml")
    assert error_lines(err) == [
        "error: init reads no config file (it writes config.toml into DIRECTORY): drop --config X.toml"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_flag_in_the_archive_position_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = run(capsys, "bundle.load", "--frobnicate")
    [line] = error_lines(err)
    assert "ARCHIVE '--frobnicate' looks like a flag, and bundle.load has no such option" in line
    assert "check" not in out


def test_a_path_starting_with_a_dash_can_be_given_as_dot_slash(capsys: pytest.CaptureFixture[str]) -> None:
    _, err = run(capsys, "bundle.load", "./-weird.tar.gz")
    [line] = error_lines(err)
    assert line == "error: -weird.tar.gz: no such bundle file"


@pytest.mark.parametrize(
    ("argv", "kwargs"),
    [
        (["bundle.load", "a.tar.gz", "--plain-http", "--max-size", "2GiB"], {"plain_http": True, "max_size": "2GiB"}),
        (["bundle.load", "-p", "-m", "2GiB", "a.tar.gz"], {"plain_http": True, "max_size": "2GiB"}),
        (["bundle.load", "a.tar.gz", "-i", "-r", "h:5000"], {"insecure": True, "registry": "h:5000"}),
    ],
    ids=["long", "short-before-archive", "insecure-registry"],
)
def test_bundle_load_flags_reach_the_task(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], kwargs: dict[str, object]
) -> None:
    seen: dict[str, object] = {}

    def fake_load(run: object, archive: str, registry: str | None = None, **flags: object) -> list[tuple[str, str]]:
        seen.update(archive=archive, registry=registry, **flags)
        return []

    monkeypatch.setattr("crossbuild.commands.bundle_load", fake_load)
    run(capsys, *argv)
    assert seen["archive"] == "a.tar.gz"
    for key, value in kwargs.items():
        assert seen[key] == value, seen
