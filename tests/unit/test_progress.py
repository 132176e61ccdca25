"""Progress: which style, what plain lines say, heartbeats, the live region, and the Runner's streaming mode."""

from __future__ import annotations

import io
import re
import sys
import time

import pytest

from crossbuild import progress
from crossbuild.errors import CommandError
from crossbuild.runner import Runner

CLOCK = r"\d\d:\d\d:\d\d"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "tty", "want"),
    [
        ({}, True, "live"),
        ({}, False, "plain"),
        ({"CI": "true"}, True, "plain"),
        ({"CI": "1"}, True, "plain"),
        ({"CI": "false"}, True, "live"),
        ({"TERM": "dumb"}, True, "plain"),
        ({"CI": "true", "CROSSBUILD_PROGRESS": "live"}, False, "live"),
        ({"CROSSBUILD_PROGRESS": "plain"}, True, "plain"),
    ],
    ids=["terminal", "pipe", "ci-true", "ci-1", "ci-false", "dumb-terminal", "forced-live", "forced-plain"],
)
def test_style(environ: dict[str, str], tty: bool, want: str) -> None:
    stream = _Tty() if tty else io.StringIO()
    assert progress.style(environ, stream) == want


def test_plain_events_are_timestamped_lines_without_control_characters(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "plain")
    with progress.activity("go build", ("linux/amd64", "linux/arm64")) as board:
        board.start("linux/amd64", "compiling")
        board.update("linux/amd64", "compiling", detail="12 MiB")  # same status: no new line
        board.update("linux/amd64", "checking binaries")
        board.finish("linux/amd64", "built")
        board.finish("linux/arm64", "failed: api", failed=True)
    out = capsys.readouterr().out
    lines = out.splitlines()
    shown = [re.sub(CLOCK, "T", line) for line in lines]
    assert shown[:2] == ["T go build linux/amd64: compiling", "T go build linux/amd64: checking binaries"]
    assert shown[3:] == ["T go build linux/arm64: failed: api"]
    assert re.fullmatch(rf"{CLOCK} go build linux/amd64: built( \(\d+\.\ds\))?", lines[2])
    assert "\x1b" not in out and "\r" not in out


def test_plain_heartbeat_names_what_still_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "plain")
    monkeypatch.setattr(progress, "HEARTBEAT", 0.3)
    with progress.activity("bake", ("api linux/arm64",)) as board:
        board.start("api linux/arm64", "2/3 COPY api")
        board.update("api linux/arm64", "2/3 COPY api", detail="3.0 MiB")
        time.sleep(1.0)
    lines = capsys.readouterr().out.splitlines()
    beats = [line for line in lines if "running" in line]
    assert beats, lines
    assert re.fullmatch(
        rf"{CLOCK} bake: 1 running \([\d.]+s\): api linux/arm64 \(2/3 COPY api, 3.0 MiB, [\d.]+s\)", beats[0]
    ), beats


def test_a_stage_without_rows_gets_a_heartbeat_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "plain")
    monkeypatch.setattr(progress, "HEARTBEAT", 0.3)
    with progress.activity("verify"):
        time.sleep(0.8)
    assert re.search(rf"^{CLOCK} verify: running \([\d.]+s\)$", capsys.readouterr().out, re.MULTILINE)


def test_output_lines_postpone_the_heartbeat(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossbuild import output

    monkeypatch.setenv("CROSSBUILD_PROGRESS", "plain")
    monkeypatch.setattr(progress, "HEARTBEAT", 0.5)
    with progress.activity("verify"):
        for _ in range(6):
            output.info("still talking")
            time.sleep(0.15)
    assert "running" not in capsys.readouterr().out


def test_only_the_innermost_activity_beats(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "plain")
    monkeypatch.setattr(progress, "HEARTBEAT", 0.3)
    with progress.activity("compile"), progress.activity("go build", ("linux/arm64",)) as inner:
        inner.start("linux/arm64", "compiling")
        time.sleep(0.8)
    beats = [line for line in capsys.readouterr().out.splitlines() if "running" in line]
    assert beats and all(" go build: " in line for line in beats), beats


def test_live_region_draws_rows_and_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal: rows redrawn in place (carriage returns / cursor moves), gone at the end; what was
    printed meanwhile stays."""
    screen = _Tty()
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "live")
    monkeypatch.setattr(sys, "stdout", screen)
    with progress.activity("go build", ("linux/arm64",)) as board:
        board.start("linux/arm64", "compiling")
        print("a line printed meanwhile")
        time.sleep(0.4)
        board.finish("linux/arm64", "built")
    text = screen.getvalue()
    assert "a line printed meanwhile" in text
    assert "compiling" in text and "linux/arm64" in text
    assert "\x1b[" in text  # drawn in place


def test_null_reporter_accepts_everything() -> None:
    progress.NULL.start("x", "y")
    progress.NULL.update("x", "y", "z")
    progress.NULL.finish("x", "done", failed=True)


# --- the Runner's streaming mode -----------------------------------------------------------


def test_streaming_hands_over_each_line_as_printed() -> None:
    seen: list[tuple[float, str]] = []
    script = (
        "import sys,time\nfor n in range(3):\n print(n, flush=True); time.sleep(0.3)\nprint('err', file=sys.stderr)"
    )
    started = time.monotonic()
    result = Runner().run(
        [sys.executable, "-c", script], on_line=lambda line: seen.append((time.monotonic() - started, line))
    )
    assert [line for _, line in seen] == ["0", "1", "2", "err"]
    assert seen[1][0] - seen[0][0] > 0.2  # as they came, not all at the end
    assert result.stdout == "0\n1\n2\n" and result.stderr == "err\n"


def test_streaming_failure_raises_with_the_output() -> None:
    with pytest.raises(CommandError) as info:
        Runner().run([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], on_line=print)
    assert info.value.returncode == 3 and "boom" in info.value.stderr


def test_streaming_honours_the_timeout() -> None:
    with pytest.raises(CommandError) as info:
        Runner().run([sys.executable, "-c", "import time; time.sleep(5)"], on_line=print, timeout=0.5)
    assert "timed out" in str(info.value)


def test_streaming_under_dry_run_is_only_planned(capsys: pytest.CaptureFixture[str]) -> None:
    result = Runner(dry_run=True).run(["false"], on_line=print)
    assert result.planned and capsys.readouterr().out == "[dry-run] false\n"
