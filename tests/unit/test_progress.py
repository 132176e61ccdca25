"""Progress: which style, what plain lines say, heartbeats, the live region, and the Runner's streaming mode."""

from __future__ import annotations

import io
import os
import re
import sys
import threading
import time
import unicodedata
from typing import TextIO

import pytest

from crossbuild import live, progress
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


def test_live_region_restores_the_streams_and_the_cursor_after_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(80)
    out, err = screen.stream(), screen.stream()
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "live")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with pytest.raises(KeyboardInterrupt), progress.activity("bake", ("api linux/arm64",)) as board:
        board.start("api linux/arm64", "1/3 FROM")
        assert sys.stdout is not out and sys.stderr is not err  # proxied while live
        print("pushed", file=sys.stderr)
        time.sleep(0.3)
        raise KeyboardInterrupt
    assert sys.stdout is out and sys.stderr is err
    assert screen.cursor_visible
    assert screen.lines == ["pushed", ""]  # what a plain run would have printed, the rows gone


# --- the live region, against a screen that follows the escape sequences ---------------------


class _Screen:
    """What a terminal shows, for the sequences crossbuild.live writes: text, CR, LF (with the tty's
    CR), cursor up (CUU), erase below (ED 0), colours (SGR, ignored), cursor visibility (DECTCEM).
    It grows downwards without limit and fails on a line reaching the last column (it would wrap),
    on text written anywhere but at the end of a line, and on any other sequence."""

    TOKEN = re.compile(r"\x1b\[(\??)(\d*)([A-Za-z])|(\r)|(\n)|([^\x1b\r\n]+)", re.DOTALL)

    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.lines = [""]
        self.row = self.col = 0
        self.cursor_visible = True
        self.received = ""

    def stream(self) -> TextIO:
        """A tty whose writes land on this screen (stdout and stderr may share it)."""
        screen = self

        class _Front(io.StringIO):
            def write(self, text: str) -> int:
                screen.feed(text)
                return len(text)

            def isatty(self) -> bool:
                return True

        return _Front()

    def feed(self, data: str) -> None:
        self.received += data
        pos = 0
        while pos < len(data):
            token = self.TOKEN.match(data, pos)
            assert token, f"unexpected sequence at {data[pos : pos + 10]!r}"
            pos = token.end()
            private, number, final, cr, lf, text = token.groups()
            if text:
                assert _columns(self.lines[self.row]) == self.col, "text written over text"
                self.lines[self.row] += text
                self.col += _columns(text)
                assert self.col < self.columns, f"{self.lines[self.row]!r} reaches the last column"
            elif cr:
                self.col = 0
            elif lf:
                self.row, self.col = self.row + 1, 0
                if self.row == len(self.lines):
                    self.lines.append("")
            elif (private, final) == ("", "A"):
                self.row = max(self.row - int(number or 1), 0)
            elif (private, number, final) == ("", "", "J"):
                self.lines[self.row] = self.lines[self.row][: self.col]
                del self.lines[self.row + 1 :]
            elif (private, final) == ("", "m"):
                pass
            elif (private, number, final) in (("?", "25", "l"), ("?", "25", "h")):
                self.cursor_visible = final == "h"
            else:
                raise AssertionError(f"unexpected sequence {token.group(0)!r}")


def _columns(text: str) -> int:
    """Columns on the screen: East Asian wide and fullwidth characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _region(screen: _Screen, lines: list[str], height: int = 24, err: bool = False) -> live.Region:
    """A Region on `screen` showing `lines` (change the list to change the next frame), refreshed
    only when the test says so."""
    size = os.terminal_size((screen.columns, height))
    return live.Region(
        lambda _size: list(lines),
        threading.RLock(),
        screen.stream(),
        screen.stream() if err else None,
        size=lambda: size,
        interval=None,
    )


def test_each_frame_erases_exactly_the_lines_the_last_one_drew(monkeypatch: pytest.MonkeyPatch) -> None:
    screen, lines = _Screen(40), ["title", "  row one", "  row two"]
    region = _region(screen, lines)
    monkeypatch.setattr(sys, "stdout", region.out)
    region.start()
    assert screen.received == live.HIDE_CURSOR + "title\n  row one\n  row two\n"
    assert not screen.cursor_visible
    screen.received = ""
    lines[:] = ["title", "  row one"]
    region.refresh()
    assert screen.received == "\r\x1b[3A\x1b[J" + "title\n  row one\n"
    screen.received = ""
    region.refresh()
    assert screen.received.startswith("\r\x1b[2A\x1b[J")
    assert screen.lines == ["title", "  row one", ""]
    lines.clear()
    region.refresh()
    assert screen.lines == [""]
    region.refresh()  # nothing drawn, so nothing to erase: no "up 0", which is "up 1"
    assert screen.received.endswith("\r\x1b[2A\x1b[J")
    region.close()


def test_lines_are_cut_to_the_width_so_nothing_wraps(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(20)
    coloured = "\x1b[36m⠋\x1b[0m \x1b[1m" + "go build linux/arm64 compiling" + "\x1b[0m"
    region = _region(screen, [coloured, "x" * 19, "y" * 20, "短" * 15])
    monkeypatch.setattr(sys, "stdout", region.out)
    region.start()  # 19 columns: the last one is never written
    assert screen.lines == ["⠋ go build linux/a…", "x" * 19, "y" * 18 + "…", "短" * 9 + "…", ""]
    drawn = screen.received.split("\n")
    assert drawn[0].endswith("…\x1b[0m")  # the colour is reset after a cut
    region.close()


def test_the_region_is_never_taller_than_the_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(40)
    region = _region(screen, [f"row {n}" for n in range(30)], height=10)
    monkeypatch.setattr(sys, "stdout", region.out)
    region.start()
    assert screen.lines == [f"row {n}" for n in range(9)] + [""]  # and the cursor's own line
    region.close()


def test_printed_lines_land_above_the_region_and_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(40)
    region = _region(screen, ["⠋ go build 1.0s", "  ⠋ linux/arm64 1.0s compiling"], err=True)
    monkeypatch.setattr(sys, "stdout", region.out)
    monkeypatch.setattr(sys, "stderr", region.err)
    region.start()
    print("==> compile")
    print("warn slow", file=sys.stderr)
    print("one", "two", sep="\n")
    assert screen.lines == [
        "==> compile",
        "warn slow",
        "one",
        "two",
        "⠋ go build 1.0s",
        "  ⠋ linux/arm64 1.0s compiling",
        "",
    ]
    region.refresh()
    assert screen.lines[4:] == ["⠋ go build 1.0s", "  ⠋ linux/arm64 1.0s compiling", ""]
    region.close()
    assert screen.lines == ["==> compile", "warn slow", "one", "two", ""]  # the region gone, the lines kept


def test_a_partial_line_waits_for_its_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(40)
    region = _region(screen, ["rows"])
    monkeypatch.setattr(sys, "stdout", region.out)
    region.start()
    sys.stdout.write("pushing ")
    sys.stdout.write("api")
    assert screen.lines == ["rows", ""]  # nothing written mid-line
    sys.stdout.write(" done\nnext")
    assert screen.lines == ["pushing api done", "rows", ""]
    region.close()  # the waiting partial line is written as it is
    assert screen.lines == ["pushing api done", "next"]
    assert screen.cursor_visible


def test_a_flushed_partial_line_keeps_the_region_away_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(40)
    region = _region(screen, ["rows"])
    monkeypatch.setattr(sys, "stdout", region.out)
    region.start()
    print("Continue? ", end="", flush=True)
    assert screen.lines == ["Continue? "]
    region.refresh()
    assert screen.lines == ["Continue? "]  # the region does not draw over a prompt
    print("yes")
    assert screen.lines == ["Continue? yes", "rows", ""]
    region.close()


def test_close_puts_back_the_streams_and_the_cursor_once(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(40)
    region = _region(screen, ["rows"], err=True)
    out, err = region.out, region.err
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    region.start()
    proxy = sys.stdout
    assert proxy is not out and sys.stderr is not err
    assert proxy.isatty() and proxy.encoding == out.encoding  # the rest is the real stream's
    region.close()
    assert sys.stdout is out and sys.stderr is err
    assert screen.cursor_visible and screen.lines == [""]
    region.close()  # again (the atexit safety net after a finally): nothing more
    assert screen.received.count(live.SHOW_CURSOR) == 1
    print("kept by someone", file=proxy)  # a stale reference writes straight through
    assert screen.lines == ["kept by someone", ""]


def test_close_leaves_a_stream_someone_else_swapped_in(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Screen(40)
    region = _region(screen, ["rows"])
    monkeypatch.setattr(sys, "stdout", region.out)
    region.start()
    theirs = io.StringIO()
    sys.stdout = theirs
    region.close()
    assert sys.stdout is theirs


@pytest.mark.parametrize(
    ("text", "width"),
    [("abc", 3), ("\x1b[1mabc\x1b[0m", 3), ("⠋ ✓ ✗ ·", 7), ("短い", 4), ("e\u0301", 1), ("", 0)],
    ids=["ascii", "colour-codes-take-no-room", "spinner-and-marks-single", "wide", "combining", "empty"],
)
def test_text_width(text: str, width: int) -> None:
    assert live.text_width(text) == width


@pytest.mark.parametrize(
    ("line", "columns", "want"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdef", 4, "abc…\x1b[0m"),
        ("\x1b[2mabcdef\x1b[0m", 4, "\x1b[2mabc…\x1b[0m"),
        ("短短短", 4, "短…\x1b[0m"),
        ("abc", 0, "\x1b[0m"),
    ],
    ids=["fits", "cut", "cut-keeps-colour-then-resets", "wide-not-split", "no-room"],
)
def test_fit(line: str, columns: int, want: str) -> None:
    assert live.fit(line, columns) == want


def test_clean_turns_control_characters_into_spaces() -> None:
    assert live.clean("a\tb\rc\x1b[2Jd") == "a b c [2Jd"


# --- what the live region shows for a board ---------------------------------------------------------

_SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_frame_shows_a_title_and_aligned_rows() -> None:
    board = progress.Board("go build", ("linux/amd64", "linux/arm/v7", "linux/arm64"))
    board.start("linux/amd64", "compiling")
    board.update("linux/amd64", "compiling", detail="12 MiB")
    board.finish("linux/arm/v7", "built")
    board.finish("linux/arm64", "failed: api", failed=True)
    board.rows["linux/riscv64"] = progress.Row("linux/riscv64")
    now = board.started + 12.0
    for row in board.rows.values():  # fixed times, so the seconds are known
        row.started = None if row.key == "linux/riscv64" else board.started + 1.0
        row.finished = board.started + 3.5 if row.key in ("linux/arm/v7", "linux/arm64") else None
    lines = [_SGR.sub("", line) for line in progress.frame(board, now)]
    spin = lines[0][0]
    assert spin in progress._Live.SPINNER
    assert lines == [
        f"{spin} go build 12s",
        f"  {spin} linux/amd64    11s compiling  12 MiB",
        "  ✓ linux/arm/v7  2.5s built",
        "  ✗ linux/arm64   2.5s failed: api",
        "  · linux/riscv64      waiting",
    ]


def test_frame_counts_the_rows_that_do_not_fit() -> None:
    board = progress.Board("bake", tuple(f"svc{n} linux/arm64" for n in range(10)))
    lines = [_SGR.sub("", line) for line in progress.frame(board, time.monotonic(), max_lines=5)]
    assert len(lines) == 5
    assert lines[1:4] == [f"  · svc{n} linux/arm64  waiting" for n in range(3)]
    assert lines[4] == "  … and 7 more"


def test_frame_keeps_room_for_the_status_beside_a_long_key() -> None:
    board = progress.Board("bake", ("a-service-with-a-very-long-name linux/arm64",))
    board.start("a-service-with-a-very-long-name linux/arm64", "2/3 COPY\tapi")
    line = _SGR.sub("", progress.frame(board, time.monotonic(), columns=40)[1])
    assert re.fullmatch(r"  . a-service-with-a-ve… [\d.]+s 2/3 COPY api", line), line  # the key: 20 columns


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


def test_live_region_draws_the_last_state_of_rows_that_ended_between_refreshes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A row started and finished within one refresh interval (a bake all cached) is still drawn once,
    with its seconds, before the board goes."""
    screen = _Tty()
    monkeypatch.setenv("CROSSBUILD_PROGRESS", "live")
    monkeypatch.setattr(sys, "stdout", screen)
    with progress.activity("bake", ("api linux/arm64",)) as board:  # over long before the first timed refresh
        board.start("api linux/arm64", "1/1 COPY")
        board.finish("api linux/arm64", "cached")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert re.search(r"api linux/arm64 +[\d.]+s +cached", text), text
