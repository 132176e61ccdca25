"""Tests for crossbuild.output (tables, sizes, step lines) and crossbuild.runner.

Commands run for real: the Python interpreter running these tests stands in
for an external tool, so nothing needs go, git or docker.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbuild import output, runner
from crossbuild.errors import CommandError, UserError

PY = sys.executable


@pytest.fixture(autouse=True)
def quiet_queries() -> Iterator[None]:
    """Each test makes the Runner it needs; the shared query runner stays quiet."""
    runner.QUERIES.verbose = False
    yield
    runner.QUERIES.verbose = False


R = runner.Runner()  # the runner of tests that need no dry run and no echo


def py(code: str) -> list[str]:
    return [PY, "-c", code]


# --- output.format_table ----------------------------------------------------------------------------


def test_format_table_aligns_columns() -> None:
    got = output.format_table(["NAME", "SIZE", "STATUS"], [["api", "1.0 MiB", "ok"], ["rpc-user", "12 B", "failed"]])
    assert got == (
        "NAME      SIZE     STATUS\n--------  -------  ------\napi       1.0 MiB  ok\nrpc-user  12 B     failed"
    )


def test_format_table_header_wider_than_cells() -> None:
    got = output.format_table(["PLATFORM", "OK"], [["x", "y"]])
    assert got.splitlines() == ["PLATFORM  OK", "--------  --", "x         y"]


def test_format_table_colour_codes_take_no_columns() -> None:
    green = "\x1b[32mok\x1b[39m"
    got = output.format_table(["RESULT", "DETAIL"], [[green, "binary checked"], ["failed", "no SBOM"]])
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in got.splitlines()]
    assert plain == ["RESULT  DETAIL", "------  --------------", "ok      binary checked", "failed  no SBOM"]
    assert green in got


def test_format_table_no_rows() -> None:
    assert output.format_table(["A", "BB"], []) == "A  BB\n-  --"


def test_format_table_no_trailing_spaces() -> None:
    got = output.format_table(["A", "B"], [["long-value", ""], ["x", ""]])
    assert all(line == line.rstrip() for line in got.splitlines())
    assert got.splitlines()[2:] == ["long-value", "x"]


def test_format_table_converts_cells_to_str() -> None:
    got = output.format_table(["N", "COUNT"], [["a", 7], ["b", 1234]])  # type: ignore[list-item]
    assert got.splitlines()[2:] == ["a  7", "b  1234"]


# --- output.human_size --------------------------------------------------------------------------------

SIZES = [
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1536, "1.5 KiB"),
    (10 * 1024 + 512, "10.5 KiB"),
    (1024**2, "1.0 MiB"),
    (int(6.5 * 1024**2), "6.5 MiB"),
    (1024**3, "1.0 GiB"),
    (3 * 1024**4, "3072.0 GiB"),
]


@pytest.mark.parametrize(("n", "want"), SIZES, ids=[w.replace(" ", "") for _, w in SIZES])
def test_human_size(n: int, want: str) -> None:
    assert output.human_size(n) == want


# --- output step lines (stdout is captured, so not a TTY: no colour codes) --------------------------------


def test_step_ok_info_go_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    output.step("building")
    output.ok("api")
    output.info("detail")
    captured = capsys.readouterr()
    assert captured.out == "==> building\n  ok api\n     detail\n"
    assert captured.err == ""


def test_warn_and_fail_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    output.warn("careful")
    output.fail("broken")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "warn careful\nerror: broken\n"


def test_table_prints_format_table(capsys: pytest.CaptureFixture[str]) -> None:
    output.table(["A", "B"], [["1", "2"]])
    assert capsys.readouterr().out == "A  B\n-  -\n1  2\n"


@pytest.mark.parametrize("word", ["ok", "failed", "skipped", "anything"])
def test_status_word_plain_without_tty(capsys: pytest.CaptureFixture[str], word: str) -> None:
    assert output.status_word(word) == word


# --- runner.add_flag / add_opt -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "want"),
    [(True, ["b", "--push"]), (False, ["b"]), (None, ["b"])],
    ids=["true", "false", "none"],
)
def test_add_flag(enabled: bool | None, want: list[str]) -> None:
    argv = ["b"]
    runner.add_flag(argv, "--push", enabled)
    assert argv == want


ADD_OPT = [
    (None, ["b"]),
    ("x", ["b", "--tag", "x"]),
    ("", ["b", "--tag", ""]),
    (0, ["b", "--tag", "0"]),
    (3, ["b", "--tag", "3"]),
    (Path("/a b"), ["b", "--tag", "/a b"]),
    (["t1", "t2"], ["b", "--tag", "t1", "--tag", "t2"]),
    (("t1", 2), ["b", "--tag", "t1", "--tag", "2"]),
    ([], ["b"]),
]


@pytest.mark.parametrize(
    ("value", "want"),
    ADD_OPT,
    ids=[
        "none-skipped",
        "str",
        "empty-str-kept",
        "zero-kept",
        "int",
        "path",
        "list-repeats",
        "tuple-repeats",
        "empty-list",
    ],
)
def test_add_opt(value: object, want: list[str]) -> None:
    argv = ["b"]
    runner.add_opt(argv, "--tag", value)
    assert argv == want


# --- runner.run ----------------------------------------------------------------------------------------------


def test_dry_run_records_and_does_not_execute(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "created by command"
    R = runner.Runner(dry_run=True)
    argv = py(f"open({str(target)!r}, 'w').close()")
    result = R.run(argv)
    assert not target.exists()
    line = shlex.join(argv)
    assert R.planned == [line]
    assert capsys.readouterr().out == f"[dry-run] {line}\n"
    assert (result.argv, result.returncode, result.stdout, result.stderr) == (argv, 0, "", "")


def test_dry_run_line_has_sorted_quoted_env_prefix(tmp_path: Path) -> None:
    R = runner.Runner(dry_run=True)
    R.run(["go", "build", "-o", "out dir/x", "./cmd/x"], env={"GOOS": "linux", "GOARCH": "arm", "LDFLAGS": "-s -w"})
    assert R.planned == ["GOARCH=arm GOOS=linux LDFLAGS='-s -w' go build -o 'out dir/x' ./cmd/x"]


def test_dry_run_line_says_where_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    R = runner.Runner(dry_run=True)
    R.run(["go", "build", "./..."], env={"GOOS": "linux"}, cwd=tmp_path / "my mod")
    R.run(["go", "vet"], cwd=tmp_path)  # already there: no cd
    assert R.planned == [f"cd '{tmp_path / 'my mod'}' && GOOS=linux go build ./...", "go vet"]


def test_dry_run_keeps_order_of_planned_commands() -> None:
    R = runner.Runner(dry_run=True)
    R.run(["docker", "buildx", "build", "."])
    R.run(["docker", "push", "r/i:t"])
    assert R.planned == ["docker buildx build .", "docker push r/i:t"]


def test_dry_run_converts_args_to_str() -> None:
    R = runner.Runner(dry_run=True)
    result = R.run(["ls", Path("/tmp"), 3])  # type: ignore[list-item]
    assert result.argv == ["ls", "/tmp", "3"]
    assert R.planned == ["ls /tmp 3"]


def test_read_only_command_runs_under_dry_run(tmp_path: Path) -> None:
    target = tmp_path / "made"
    R = runner.Runner(dry_run=True)
    result = R.run(py(f"open({str(target)!r}, 'w').close(); print('queried')"), mutates=False)
    assert target.exists()
    assert result.stdout == "queried\n"
    assert R.planned == []


def test_configure_clears_plan() -> None:
    R = runner.Runner(dry_run=True)
    R.run(["true"])
    assert R.planned == ["true"]
    R = runner.Runner()
    assert R.planned == []
    assert R.dry_run is False


def test_run_executes_and_captures(tmp_path: Path) -> None:
    target = tmp_path / "made"
    result = R.run(py(f"import sys; open({str(target)!r}, 'w').close(); print('out'); print('err', file=sys.stderr)"))
    assert target.exists()
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


def test_run_env_is_added_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBUILD_TEST_INHERITED", "kept")
    result = R.run(
        py("import os; print(os.environ['CROSSBUILD_TEST_ADDED'], os.environ['CROSSBUILD_TEST_INHERITED'])"),
        env={"CROSSBUILD_TEST_ADDED": "added"},
    )
    assert result.stdout == "added kept\n"


def test_run_cwd_and_input(tmp_path: Path) -> None:
    result = R.run(
        py("import os, sys; print(os.getcwd()); print(sys.stdin.read().upper())"), cwd=tmp_path, input_text="hi"
    )
    assert result.stdout == f"{tmp_path}\nHI\n"


def test_verbose_echoes_command_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    R = runner.Runner(verbose=True)
    argv = py("pass")
    R.run(argv, env={"A": "1"})
    assert capsys.readouterr().err == f"+ A=1 {shlex.join(argv)}\n"


def test_output_strips_stdout() -> None:
    assert R.output(py("print('  v1.2.3  '); print()")) == "v1.2.3"


def test_output_runs_under_dry_run() -> None:
    R = runner.Runner(dry_run=True)
    assert R.output(py("print('real')")) == "real"
    assert R.planned == []


def test_failing_command_raises_command_error() -> None:
    argv = py("import sys; print('partial'); sys.stderr.write('boom: bad flag\\n'); sys.exit(3)")
    with pytest.raises(CommandError) as info:
        R.run(argv)
    exc = info.value
    assert exc.argv == argv
    assert exc.returncode == 3
    assert exc.stderr == "boom: bad flag\n"
    assert exc.stdout == "partial\n"
    assert exc.tail() == "boom: bad flag"
    assert str(exc) == f"{PY} failed (exit 3)"


def test_command_error_carries_hint() -> None:
    with pytest.raises(CommandError) as info:
        R.run(py("raise SystemExit(2)"), hint="is the registry running?")
    assert str(info.value) == f"{PY} failed (exit 2): is the registry running?"


def test_command_error_tail_is_last_15_lines() -> None:
    code = "import sys\nfor i in range(40): print(f'line {i}', file=sys.stderr)\nsys.exit(1)"
    with pytest.raises(CommandError) as info:
        R.run(py(code))
    assert info.value.tail() == "\n".join(f"line {i}" for i in range(25, 40))
    assert info.value.tail(2) == "line 38\nline 39"


def test_command_error_tail_falls_back_to_stdout() -> None:
    with pytest.raises(CommandError) as info:
        R.run(py("print('only stdout'); raise SystemExit(4)"))
    assert info.value.tail() == "only stdout"


def test_check_false_returns_failure() -> None:
    result = R.run(py("raise SystemExit(5)"), check=False)
    assert result.returncode == 5


def test_missing_executable_is_a_user_error() -> None:
    with pytest.raises(UserError) as info:
        R.run(["crossbuild-no-such-tool-7f3a", "--version"])
    assert str(info.value) == "crossbuild-no-such-tool-7f3a: command not found; install it or run `make tools`"


def test_missing_executable_uses_hint() -> None:
    with pytest.raises(UserError) as info:
        R.run(["crossbuild-no-such-tool-7f3a"], hint="install skopeo")
    assert str(info.value) == "crossbuild-no-such-tool-7f3a: command not found; install skopeo"


def test_missing_executable_under_dry_run_is_only_planned() -> None:
    R = runner.Runner(dry_run=True)
    R.run(["crossbuild-no-such-tool-7f3a"])
    assert R.planned == ["crossbuild-no-such-tool-7f3a"]


def test_timeout_raises_command_error() -> None:
    with pytest.raises(CommandError) as info:
        R.run(py("import time; time.sleep(30)"), timeout=0.3)
    assert info.value.returncode == -1
    assert str(info.value) == f"{PY} failed (exit -1): timed out after 0.3s"


def test_which() -> None:
    assert runner.which("crossbuild-no-such-tool-7f3a") is None
    assert runner.which(PY) == PY


# --- CommandError on its own -------------------------------------------------------------------------------------


def test_command_error_without_argv() -> None:
    exc = CommandError([], 1)
    assert str(exc) == "command failed (exit 1)"
    assert exc.tail() == ""


def test_echo_prints_the_equivalent_command_only_when_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["docker", "run", "--rm", "--platform", "linux/arm64", "localhost:5000/a/api@sha256:ab", "--version"]
    R = runner.Runner(verbose=False)
    R.echo(argv)
    assert capsys.readouterr().err == ""
    R = runner.Runner(verbose=True)
    R.echo(argv)
    R.echo(["docker", "run", "x", "two words"])
    assert capsys.readouterr().err == f"+ {shlex.join(argv)}\n+ docker run x 'two words'\n"


def test_a_cancelled_command_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    """`cancel` kills the command's whole process group (go build and its compilers) at once."""
    import threading
    import time

    cancel = threading.Event()
    marker = tmp_path / "child-alive"
    script = f"(sleep 3; touch {marker}) & sleep 30"
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CommandError, match="cancelled"):
        runner.Runner().run(["sh", "-c", script], cancel=cancel)
    assert time.monotonic() - started < 2
    time.sleep(3.5)
    assert not marker.exists()  # the background child died with it


def test_an_uncancelled_command_runs_to_its_end() -> None:
    import threading

    result = runner.Runner().run(["sh", "-c", "echo done"], cancel=threading.Event())
    assert result.stdout == "done\n"
