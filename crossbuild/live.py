"""A region redrawn in place at the bottom of a terminal, with ordinary output scrolling above it.

crossbuild.progress draws its rows here on a terminal. The region is a few lines, each ending in a
newline, so the cursor rests on the line below it; erasing it is "carriage return, up N lines, clear
to the end of the screen" (ECMA-48 CUU and ED), and redrawing is writing the lines again. That
arithmetic only holds while no line wraps, so every line is cut to the terminal's width (less one
column: a line that fills the last column leaves some terminals waiting to wrap) and the region to
its height.

Whatever else is printed while the region is shown must land above it, whichever thread prints:
`start` swaps sys.stdout (and sys.stderr when it is the terminal too) for a `_Proxy` whose writes
take the shared print lock, erase the region, write the text and draw the region again, all in one
write to the terminal, so nothing flickers. Only whole lines are written that way; a partial line
waits for its newline, or for a flush, which writes it and keeps the region hidden until the line is
finished (a prompt stays on the last line). `close` erases the region, shows the cursor and puts the
streams back; it runs from the caller's `finally` and, as a safety net, at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import threading
import unicodedata
from collections.abc import Callable
from typing import Any, TextIO, cast

import colorama

# ECMA-48 / xterm control sequences (https://invisible-island.net/xterm/ctlseqs/ctlseqs.html).
HIDE_CURSOR = "\x1b[?25l"  # DECTCEM reset
SHOW_CURSOR = "\x1b[?25h"  # DECTCEM set
CLEAR_BELOW = "\x1b[J"  # ED 0: from the cursor to the end of the screen
REFRESH_PER_SECOND = 8

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: none may reach the region as text
_STYLED = re.compile(r"(\x1b\[[0-9;]*m)")  # SGR, the only sequence a region line may carry

Render = Callable[[os.terminal_size], list[str]]


def char_width(char: str) -> int:
    """Columns a character takes: 2 for East Asian wide and fullwidth, 0 for combining marks, else 1
    (ambiguous ones such as the middle dot count as 1, as western terminals draw them)."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Columns `text` takes on the terminal, colour codes excluded."""
    return sum(char_width(c) for c in _STYLED.sub("", text))


def clean(text: str) -> str:
    """`text` safe to draw: control characters (tabs, carriage returns, escapes) become spaces."""
    return _CONTROL.sub(" ", text)


def fit(line: str, columns: int) -> str:
    """`line` cut to at most `columns` columns (an ellipsis marks the cut), its colour codes kept and
    reset after a cut so no colour leaks into the next line."""
    if text_width(line) <= columns:
        return line
    room = columns - 1  # for the ellipsis
    kept: list[str] = []
    for piece in _STYLED.split(line):
        if _STYLED.fullmatch(piece):
            kept.append(piece)
            continue
        for char in piece:
            if room < char_width(char):
                room = -1
                break
            room -= char_width(char)
            kept.append(char)
        if room < 0:
            break
    ellipsis = "…" if columns > 0 else ""
    return "".join(kept) + ellipsis + colorama.Style.RESET_ALL


def terminal_size() -> os.terminal_size:
    return shutil.get_terminal_size()


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Region:
    """The lines `render` returns, kept at the bottom of the terminal `out` until `close`.

    `render` is called with the terminal's size, under `lock`, `REFRESH_PER_SECOND` times a second
    (`interval=None`: only when the caller calls `refresh`); it returns the lines to show (colour
    codes allowed) and may return none. `lock` is the lock everyone who prints holds, so a frame is
    never drawn in the middle of someone else's line. `out` replaces sys.stdout while the region is
    shown, and `err`, when given (the same terminal), sys.stderr."""

    def __init__(
        self,
        render: Render,
        lock: threading.RLock,
        out: TextIO,
        err: TextIO | None = None,
        size: Callable[[], os.terminal_size] = terminal_size,
        interval: float | None = 1 / REFRESH_PER_SECOND,
    ) -> None:
        self.render = render
        self.lock = lock
        self.out = out
        self.err = err
        self.size = size
        self.interval = interval
        self.drawn = 0  # lines the region takes on the screen now (the cursor is on the line below)
        self.held = False  # a partial line is on the screen: the region waits until it is finished
        self.proxies: list[tuple[str, _Proxy]] = []
        self.saved: dict[str, TextIO] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._refresh_loop, name="crossbuild-live", daemon=True)
        self.started = False
        self.closed = False

    # --- lifecycle

    def start(self) -> None:
        """Hide the cursor, route sys.stdout/sys.stderr through the region, draw, refresh until close."""
        with self.lock:
            self.started = True
            for name, stream in (("stdout", self.out), ("stderr", self.err)):
                if stream is None:
                    continue
                proxy = _Proxy(self, stream)
                self.saved[name] = getattr(sys, name)
                self.proxies.append((name, proxy))
                setattr(sys, name, cast(TextIO, proxy))
            atexit.register(self.close)
            self._write(self.out, HIDE_CURSOR + self.frame())
        if self.interval is not None:
            self.thread.start()

    def close(self) -> None:
        """Erase the region, show the cursor, put sys.stdout/sys.stderr back. Safe to call twice,
        from a `finally` after Ctrl-C, and at exit."""
        if self.closed:
            return
        self.closed = True
        self.stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=2)  # a terminal paused with Ctrl-S must not hang the exit
        with self.lock:
            for name, proxy in self.proxies:
                proxy.close()
                if getattr(sys, name) is proxy:  # someone who swapped it after us keeps theirs
                    setattr(sys, name, self.saved[name])
            if self.started:
                self._write(self.out, self.erase() + SHOW_CURSOR)
            self.drawn = 0
        atexit.unregister(self.close)

    # --- drawing

    def erase(self) -> str:
        """What takes the cursor back to the region's first line and clears it and everything below."""
        if self.drawn == 0:
            return ""
        return f"\r{colorama.Cursor.UP(self.drawn)}{CLEAR_BELOW}"

    def frame(self) -> str:
        """The region's lines, each cut to the terminal's width, with their newlines; `drawn` follows.
        Nothing while a partial line waits on the screen."""
        if self.held:
            self.drawn = 0
            return ""
        size = self.size()
        lines = self.render(size)[: max(size.lines - 1, 0)]  # never taller than the screen: no scrolling
        width = max(size.columns - 1, 0)
        self.drawn = len(lines)
        return "".join(fit(line, width) + "\n" for line in lines)

    def refresh(self) -> None:
        """Draw the region again (the spinner, the seconds); the refresh thread calls this."""
        with self.lock:
            if self.closed or self.held:
                return
            self._write(self.out, self.erase() + self.frame())

    def _refresh_loop(self) -> None:
        assert self.interval is not None  # started only with one
        while not self.stop.wait(self.interval):
            try:
                self.refresh()
            except OSError:  # the terminal went away (EIO, EPIPE): nothing left to draw on
                return

    def emit(self, stream: TextIO, text: str, finished: bool) -> None:
        """Put `text` above the region (the caller holds the lock): erase, write, draw again; with
        `finished` false the text ends in a partial line and the region stays away until it ends."""
        erase = self.erase()
        self.drawn = 0
        if stream is self.out:
            self.held = not finished
            self._write(self.out, erase + text + self.frame())
            return
        if erase:
            self._write(self.out, erase)
        self._write(stream, text)
        self.held = not finished
        if not self.held:
            self._write(self.out, self.frame())

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        if text:
            stream.write(text)
            stream.flush()


class _Proxy:
    """sys.stdout or sys.stderr while a Region is shown: whole lines go above the region.

    Everything but write, writelines and flush (isatty, encoding, fileno...) is the real stream's."""

    def __init__(self, region: Region, stream: TextIO) -> None:
        self._region = region
        self._stream = stream
        self._pending = ""  # a partial line waiting for its newline
        self._closed = False

    def write(self, text: str) -> int:
        with self._region.lock:
            if self._closed:  # kept by someone after the region ended: a plain stream again
                return self._stream.write(text)
            self._pending += text
            if "\n" in text:
                cut = self._pending.rindex("\n") + 1
                done, self._pending = self._pending[:cut], self._pending[cut:]
                self._region.emit(self._stream, done, finished=True)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._region.lock:
            if self._pending:
                text, self._pending = self._pending, ""
                self._region.emit(self._stream, text, finished=False)
            self._stream.flush()

    def close(self) -> None:
        """The region is ending (the caller holds the lock): a waiting partial line is written as it is."""
        if self._pending:
            self._region.emit(self._stream, self._pending, finished=False)
            self._pending = ""
        self._closed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
