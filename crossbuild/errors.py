"""The two error types the rest of the package raises.

`UserError` is a mistake the user can fix (bad flag, bad config, missing tool):
the front ends print its one-line message and exit non-zero, never a
traceback. `CommandError` is an external command that failed; it carries what
is needed to explain the failure without re-running it.
"""

from __future__ import annotations

from collections.abc import Sequence


class CrossbuildError(Exception):
    """Base of every error crossbuild expects and reports in one line."""


class UserError(CrossbuildError):
    """Something the user can fix; the message says what and how."""


class CommandError(CrossbuildError):
    """An external command exited non-zero (or could not be started)."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stderr: str = "",
        stdout: str = "",
        hint: str = "",
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        self.hint = hint
        super().__init__(self.summary())

    def tail(self, lines: int = 15) -> str:
        text = (self.stderr or self.stdout).rstrip()
        return "\n".join(text.splitlines()[-lines:])

    def summary(self) -> str:
        head = self.argv[0] if self.argv else "command"
        msg = f"{head} failed (exit {self.returncode})"
        if self.hint:
            msg += f": {self.hint}"
        return msg
