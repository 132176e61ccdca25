"""Concise, coloured step lines and summary tables (colorama), and GitHub Actions' own forms.

Every line printed here tells crossbuild.progress that the output is not silent, so its
heartbeat speaks only when nothing else did. Under GitHub Actions (`GITHUB_ACTIONS=true`)
failures are also error annotations and the image tasks append a Markdown table to the
job's step summary (`$GITHUB_STEP_SUMMARY`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import colorama

from crossbuild import progress

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


def _say(text: str, err: bool = False) -> None:
    # one write per line, under the lock the progress lines take: a line printed from another
    # thread (an early bake's, beside the compile's progress) never lands inside this one
    with progress.PRINT_LOCK:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)
    progress.touched()


def step(message: str) -> None:
    _say(_paint("==> ", colorama.Fore.CYAN + colorama.Style.BRIGHT) + message)


def ok(message: str) -> None:
    _say(_paint("  ok ", colorama.Fore.GREEN) + message)


def info(message: str) -> None:
    _say("     " + message)


def warn(message: str) -> None:
    _say(_paint("warn ", colorama.Fore.YELLOW) + message, err=True)


_SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour codes (colorama's Fore/Style)


def fail(message: str) -> None:
    _say(_paint("error: ", colorama.Fore.RED + colorama.Style.BRIGHT) + message, err=True)


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
    widths = [max(_visible(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c + " " * (w - _visible(c)) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _visible(cell: str) -> int:
    """The columns a cell takes on screen: its colour codes take none."""
    return len(_SGR.sub("", cell))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    _say(format_table(headers, rows))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# --- GitHub Actions ---------------------------------------------------------------------------


def github_actions(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS", "").lower() == "true"


def _escape_annotation(text: str) -> str:
    """A workflow command's data: %, CR and LF escaped (GitHub's toolkit core/command.ts escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate_error(message: str, title: str = "", environ: Mapping[str, str] | None = None) -> None:
    """`::error title=...::message` on stdout under GitHub Actions (shown on the run's page); else nothing."""
    if not github_actions(environ):
        return
    props = f" title={_escape_annotation(title).replace(',', '%2C').replace(':', '%3A')}" if title else ""
    _say(f"::error{props}::{_escape_annotation(message)}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(value: str) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to `$GITHUB_STEP_SUMMARY` when it is set (GitHub Actions sets it per step); the file, or None."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY", "")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n\n")
    return path
