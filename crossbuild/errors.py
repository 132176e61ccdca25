"""The two error types the rest of the package raises.

`UserError` is a mistake the user can fix (bad flag, bad config, missing tool):
the front ends print its one-line message and exit non-zero, never a
traceback. `CommandError` is an external command that failed; it carries what
is needed to explain the failure without re-running it.
"""

from __future__ import annotations

import errno
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


_OS_FIXES = {
    errno.EACCES: "fix its permissions (chmod/chown) or choose another project.output_dir",
    errno.EPERM: "fix its permissions (chmod/chown) or choose another project.output_dir",
    errno.EROFS: "the file system is read-only: choose a project.output_dir on a writable one",
    errno.ENOSPC: "the disk is full: free some space (`make clean`, `docker system prune`)",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.ENOENT: "check that the path exists",
    errno.ENOTDIR: "a part of the path is a file, not a directory: move it away",
    errno.EISDIR: "it is a directory where a file is expected: move it away",
}


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system error a user can cause: the path, what happened, the fix."""
    path = exc.filename if exc.filename is not None else ""
    other = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    reason = exc.strerror or exc.__class__.__name__
    fix = _OS_FIXES.get(exc.errno or -1, "check the path and try again")
    return f"{path}{other}: {reason}; {fix}" if path else f"{reason}; {fix}"
