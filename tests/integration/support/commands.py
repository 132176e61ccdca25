"""Running a command from a test and judging how it ended.

Commands never raise for a non-zero exit: the test asserts on the result, and
`describe` puts the command, its exit code and both streams in the message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from .env import clean_env

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command in the clean environment (support.env) plus `env`; never raises for a non-zero exit."""
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """The command, its exit code and both streams, for assertion messages."""
    argv = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    return f"$ {argv}\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Assert the command succeeded; return it."""
    assert proc.returncode == 0, describe(proc)
    return proc


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert the command succeeded; its stdout without colour codes."""
    return plain(check(proc).stdout)


def plain(text: str) -> str:
    """`text` without colour codes."""
    return ANSI_ESCAPE.sub("", text)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in plain(proc.stderr).splitlines() if line.startswith("error:")]


def assert_clean_failure(proc: subprocess.CompletedProcess[str]) -> str:
    """Non-zero exit, no traceback, exactly one `error:` line on stderr; return that line."""
    report = describe(proc)
    assert proc.returncode != 0, report
    assert "Traceback" not in proc.stdout + proc.stderr, report
    lines = error_lines(proc)
    assert len(lines) == 1, report
    return lines[0]


def require_tools(*tools: str) -> None:
    """Fail (never skip) when a tool the test drives is missing, saying how to get it."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make tools` first")
