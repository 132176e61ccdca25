"""Concise, coloured step lines and summary tables (colorama)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import colorama

_initialised = False


def _init() -> None:
    global _initialised  # noqa: PLW0603 - colorama must be initialised once per process
    if not _initialised:
        colorama.just_fix_windows_console()
        _initialised = True


def _color() -> bool:
    return sys.stdout.isatty()


def _paint(text: str, color: str) -> str:
    _init()
    if not _color():
        return text
    return f"{color}{text}{colorama.Style.RESET_ALL}"


def step(message: str) -> None:
    print(_paint("==> ", colorama.Fore.CYAN + colorama.Style.BRIGHT) + message, flush=True)


def ok(message: str) -> None:
    print(_paint("  ok ", colorama.Fore.GREEN) + message, flush=True)


def info(message: str) -> None:
    print("     " + message, flush=True)


def warn(message: str) -> None:
    print(_paint("warn ", colorama.Fore.YELLOW) + message, file=sys.stderr, flush=True)


def fail(message: str) -> None:
    print(_paint("error: ", colorama.Fore.RED + colorama.Style.BRIGHT) + message, file=sys.stderr, flush=True)


def status_word(word: str) -> str:
    colors = {
        "ok": colorama.Fore.GREEN,
        "skipped": colorama.Fore.YELLOW,
        "unchanged": colorama.Fore.YELLOW,
        "failed": colorama.Fore.RED,
        "hung": colorama.Fore.RED,
        "missing": colorama.Fore.RED,
    }
    return _paint(word, colors.get(word, ""))


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned table; colour is applied per cell by callers if at all."""
    cells = [list(headers), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(format_table(headers, rows), flush=True)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
