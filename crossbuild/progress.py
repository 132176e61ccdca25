"""What a long step shows while it runs: a live display on a terminal, timestamped lines elsewhere.

A step opens an `activity` (a Board: a title and rows, one per platform, or per service and
platform) and reports to it from any thread: `start`, `update`, `finish`. How that is shown is
decided once per process (`style`):

* live: stdout is a terminal and this is not CI. The rows are redrawn in place at the bottom of
  the terminal (crossbuild.live: a spinner, the status, the seconds spent); whatever else is
  printed meanwhile, from any thread, goes above them, and the rows vanish when the step ends,
  leaving the same lines a plain run prints. Hand-written ANSI rather than a terminal UI library:
  the region is a handful of lines and the project keeps its runtime dependencies to invoke, the
  docker SDK, colorama and PyYAML; colorama colours the rows as it colours crossbuild's own lines.
* plain: `CI` is set, `TERM=dumb`, or stdout is a file or a pipe. One timestamped line per event
  (`12:04:05 go build linux/arm64: compiling`), no control characters, and a heartbeat line when
  nothing was printed for HEARTBEAT seconds, naming what is still running and for how long, so
  no step is silent for more than 5 seconds in a CI log.

`CROSSBUILD_PROGRESS=plain|live` overrides the choice (tests; a terminal that mis-draws).
Only the innermost activity is drawn: the pipeline opens one per stage, a stage with rows of its
own (compile, bake) opens another inside it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import colorama

from crossbuild import live

HEARTBEAT = 4.0  # seconds without a line before plain output says what is still running (< 5)
LIVE, PLAIN = "live", "plain"
_TRUE = ("1", "true", "yes", "on")


def style(environ: Mapping[str, str] | None = None, stream: Any = None) -> str:
    """live or plain, for this environment and stdout."""
    env = os.environ if environ is None else environ
    chosen = env.get("CROSSBUILD_PROGRESS", "").strip().lower()
    if chosen in (LIVE, PLAIN):
        return chosen
    if env.get("CI", "").strip().lower() in _TRUE or env.get("TERM", "") == "dumb":
        return PLAIN
    out = sys.stdout if stream is None else stream
    try:
        return LIVE if out.isatty() else PLAIN
    except (AttributeError, ValueError):  # a closed or unusual stream
        return PLAIN


_last_line = time.monotonic()
PRINT_LOCK = threading.RLock()  # one line at a time, whichever thread prints it (crossbuild.output too)


def touched() -> None:
    """Something was just printed (crossbuild.output calls this): the heartbeat waits again."""
    global _last_line  # noqa: PLW0603 - one clock for the whole process's output
    _last_line = time.monotonic()


def silent_for() -> float:
    return time.monotonic() - _last_line


def clock() -> str:
    return time.strftime("%H:%M:%S")


def seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


class Reporter(Protocol):
    """What a step reports to (a Board, or NULL when nobody watches)."""

    def start(self, key: str, status: str = "") -> None: ...

    def update(self, key: str, status: str, detail: str = "") -> None: ...

    def finish(self, key: str, status: str, failed: bool = False) -> None: ...


@dataclass
class Row:
    key: str
    status: str = "waiting"
    detail: str = ""  # changes too often to be an event of its own (bytes pushed): drawn, not printed
    started: float | None = None
    finished: float | None = None
    failed: bool = False

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or now) - self.started

    @property
    def running(self) -> bool:
        return self.started is not None and self.finished is None


class Board:
    """One activity: a title and its rows, safe to report to from several threads."""

    def __init__(self, title: str, rows: tuple[str, ...] = (), printer: _Plain | None = None) -> None:
        self.title = title
        self.started = time.monotonic()
        self.rows: dict[str, Row] = {key: Row(key) for key in rows}
        self.lock = threading.Lock()
        self.printer = printer  # plain style: each event is a line

    def _row(self, key: str) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(key)
        return self.rows[key]

    def start(self, key: str, status: str = "started") -> None:
        with self.lock:
            row = self._row(key)
            row.started = row.started or time.monotonic()  # a row that starts again keeps its first start
            row.finished, row.failed = None, False
            changed = row.status != status
            row.status, row.detail = status, ""
        if changed:
            self._event(key, status)

    def update(self, key: str, status: str, detail: str = "") -> None:
        with self.lock:
            row = self._row(key)
            row.started = row.started or time.monotonic()  # a row that starts again keeps its first start
            row.finished, row.failed = None, False
            changed = row.status != status
            row.status, row.detail = status, detail
        if changed:
            self._event(key, status)

    def finish(self, key: str, status: str, failed: bool = False) -> None:
        with self.lock:
            row = self._row(key)
            now = time.monotonic()
            row.started = row.started or now
            row.finished, row.failed, row.status, row.detail = now, failed, status, ""
            took = row.elapsed(now)
        self._event(key, f"{status} ({seconds(took)})" if took >= 0.05 else status)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def snapshot(self) -> list[Row]:
        with self.lock:
            return [Row(r.key, r.status, r.detail, r.started, r.finished, r.failed) for r in self.rows.values()]

    def _event(self, key: str, status: str) -> None:
        if self.printer is not None:
            self.printer.line(f"{self.title} {key}: {status}")

    def summary(self, now: float) -> str:
        """What a heartbeat says: the rows still running, with their time, or the activity's own time."""
        running = [r for r in self.snapshot() if r.running]
        total = seconds(now - self.started)
        if not running:
            return f"{self.title}: running ({total})"
        shown = ", ".join(
            f"{r.key} ({r.status}{', ' + r.detail if r.detail else ''}, {seconds(r.elapsed(now))})" for r in running[:6]
        )
        more = f" and {len(running) - 6} more" if len(running) > 6 else ""
        return f"{self.title}: {len(running)} running ({total}): {shown}{more}"


class _Null:
    """A Reporter that shows nothing (a step run without a display, e.g. from a test)."""

    def start(self, key: str, status: str = "") -> None:
        pass

    def update(self, key: str, status: str, detail: str = "") -> None:
        pass

    def finish(self, key: str, status: str, failed: bool = False) -> None:
        pass


NULL: Reporter = _Null()


# --- the two styles ---------------------------------------------------------------------


class _Plain:
    """Timestamped lines, and a heartbeat thread for the silences."""

    def __init__(self, stack: list[Board]) -> None:
        self.stack = stack
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="crossbuild-heartbeat", daemon=True)

    def line(self, text: str) -> None:
        with PRINT_LOCK:
            print(f"{clock()} {text}", flush=True)
            touched()

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        while not self.stop.wait(0.25):
            if silent_for() < HEARTBEAT or not self.stack:
                continue
            board = self.stack[-1]
            self.line(board.summary(time.monotonic()))


class _Live:
    """The innermost board drawn in a crossbuild.live Region, refreshed several times a second."""

    SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stack: list[Board]) -> None:
        self.stack = stack
        # stderr goes above the rows too when it is the terminal; a redirected stderr stays untouched
        err = sys.stderr if live.isatty(sys.stderr) else None
        self.region = live.Region(self.render, PRINT_LOCK, sys.stdout, err)

    def render(self, size: os.terminal_size) -> list[str]:
        """The title line (spinner, title, seconds), then one line per row: mark, key, seconds,
        status and detail, in aligned columns; rows that do not fit the screen are counted."""
        try:
            board = self.stack[-1]
        except IndexError:  # between two activities
            return []
        return frame(board, time.monotonic(), max_lines=size.lines - 1, columns=size.columns)

    def start(self) -> None:
        colorama.just_fix_windows_console()  # ANSI on a Windows console; nothing elsewhere
        self.region.start()

    def close(self) -> None:
        self.region.close()


def _paint(text: str, style: str) -> str:
    return f"{style}{text}{colorama.Style.RESET_ALL}" if style and text else text


def frame(board: Board, now: float, max_lines: int = 1000, columns: int = 1000) -> list[str]:
    """What the live region shows for `board` at `now`: at most `max_lines` lines, the key column
    at most half of `columns` wide so a long key leaves room for the status (Region cuts the rest)."""
    spin = _Live.SPINNER[int(now * 8) % len(_Live.SPINNER)]
    title = " ".join(
        (
            _paint(spin, colorama.Fore.CYAN),
            _paint(live.clean(board.title), colorama.Style.BRIGHT),
            _paint(seconds(now - board.started), colorama.Style.DIM),
        )
    )
    rows = board.snapshot()
    if len(rows) + 1 > max_lines:
        shown = max(max_lines - 2, 0)
        rows, hidden = rows[:shown], len(rows) - shown
    else:
        hidden = 0
    most = max(columns // 2, 12)
    keys = [live.fit(live.clean(r.key), most) for r in rows]
    took = [seconds(r.elapsed(now)) if r.started is not None else "" for r in rows]
    key_width = max((live.text_width(k) for k in keys), default=0)  # at most `most`
    took_width = max((len(t) for t in took), default=0)
    lines = [title]
    for row, key, spent in zip(rows, keys, took, strict=True):
        if row.failed:
            mark = _paint("✗", colorama.Fore.RED)
        elif row.finished is not None:
            mark = _paint("✓", colorama.Fore.GREEN)
        elif row.started is None:
            mark = _paint("·", colorama.Style.DIM)
        else:
            mark = _paint(spin, colorama.Fore.CYAN)
        status = _paint(live.clean(row.status), colorama.Style.DIM if row.started is None else "")
        if row.detail:
            status += _paint(f"  {live.clean(row.detail)}", colorama.Style.DIM)
        pad = " " * (key_width - live.text_width(key))
        lines.append(f"  {mark} {key}{pad} {_paint(spent.rjust(took_width), colorama.Style.DIM)} {status}".rstrip())
    if hidden:
        lines.append(_paint(f"  … and {hidden} more", colorama.Style.DIM))
    return lines[: max(max_lines, 0)]


_stack: list[Board] = []
_display: _Plain | _Live | None = None
_stack_lock = threading.Lock()


@contextlib.contextmanager
def activity(title: str, rows: tuple[str, ...] = ()) -> Iterator[Board]:
    """A Board shown while the block runs (the first one opened starts the display)."""
    global _display  # noqa: PLW0603 - one display per process, however deeply activities nest
    with _stack_lock:
        if _display is None:
            _display = _Live(_stack) if style() == LIVE else _Plain(_stack)
            _display.start()
        printer = _display if isinstance(_display, _Plain) else None
        board = Board(title, rows, printer)
        _stack.append(board)
        touched()
    try:
        yield board
    finally:
        if isinstance(_display, _Live):
            # the board's last state, drawn once before it goes: a step that started and ended
            # between two refreshes (everything cached, say) still shows its row and seconds
            _display.region.refresh()
        with _stack_lock:
            _stack.remove(board)
            if not _stack and _display is not None:
                display, _display = _display, None
                display.close()
