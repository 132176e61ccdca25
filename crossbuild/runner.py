"""The one door to the outside: every external command runs through a Runner.

A Runner takes an argument list (never a shell string), echoes `shlex.join(argv)`
when verbose, prints instead of running a mutating command when it is a dry run,
and raises `CommandError` carrying the command, exit code and output tail.

A task's Session makes the Runner and hands it to the steps that change things
(go build, buildx, binfmt registration); read-only questions about the machine
(`go env`, `go tool dist list`, `git describe`, `buildx inspect`) go through
QUERIES, which never dry-runs and shares the task's verbosity. Nothing else
reads "is this a dry run": the pipeline skips what mutates and prints its plan.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TypeVar

from crossbuild.errors import CommandError, UserError

_lock = threading.Lock()
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    planned: bool = False  # a dry run printed it instead of running it


def add_flag(argv: list[str], flag: str, enabled: bool | None) -> None:
    """Append `flag` when enabled."""
    if enabled:
        argv.append(flag)


def add_opt(argv: list[str], flag: str, value: object | None) -> None:
    """Append `flag value` unless value is None (lists repeat the flag)."""
    if value is None:
        return
    if isinstance(value, list | tuple):
        for item in value:
            argv += [flag, str(item)]
    else:
        argv += [flag, str(value)]


def which(tool: str) -> str | None:
    return shutil.which(tool)


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C does, so cleanup code runs (a scratch
    directory removed, the go builds in their own process groups killed); exit status 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def display(
    argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
) -> str:
    """The command as a shell line one can paste: `cd DIR && VAR=value cmd args`."""
    prefix = ""
    if cwd is not None and os.path.abspath(cwd) != os.getcwd():
        prefix = f"cd {shlex.quote(str(cwd))} && "
    if env:
        prefix += " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())) + " "
    return prefix + shlex.join(str(a) for a in argv)


@dataclass
class Runner:
    """Runs external commands; a dry-run Runner prints mutating ones instead."""

    dry_run: bool = False
    verbose: bool = False
    # Commands printed instead of run, in order (a dry run's plan).
    planned: list[str] = field(default_factory=list)

    def plan(self, line: str) -> None:
        """Record and print one line of a dry run's plan."""
        with _lock:  # one whole line at a time, whichever thread plans
            self.planned.append(line)
            print(f"[dry-run] {line}", flush=True)

    def act(self, line: str, action: Callable[[], T]) -> T | None:
        """A side effect that is not a subprocess (start a server, write a file): done, or in a
        dry run only planned. Returns what `action` returned, None when it was only planned."""
        if self.dry_run:
            self.plan(line)
            return None
        if self.verbose:
            with _lock:
                print(f"+ {line}", file=sys.stderr, flush=True)
        return action()

    def echo(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
    ) -> None:
        """Print `+ <command>` on stderr when verbose.

        `run` echoes every command it starts; callers that reach a tool through
        its API instead of a subprocess (crossbuild.daemon and the docker SDK)
        echo the equivalent CLI line here, so V=1 shows every call either way.
        """
        if self.verbose:
            line = display([str(a) for a in argv], env, cwd)
            with _lock:
                print(f"+ {line}", file=sys.stderr, flush=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        check: bool = True,
        capture: bool = True,
        mutates: bool = True,
        timeout: float | None = None,
        input_text: str | None = None,
        hint: str = "",
        on_line: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        """Run one external command.

        `env` holds only the variables to add to the current environment, so the
        echoed line shows exactly what differs. `mutates=False` marks read-only
        queries, which run even in a dry run. `on_line` streams: it is called with
        each line of output (stdout and stderr, one call at a time) as the command
        prints it, for progress displays; the Result still holds all of both.
        `cancel`: once set, the command and every process it started are killed and
        the run ends in a CommandError (its hint says so).
        """
        argv = [str(a) for a in argv]
        if self.dry_run and mutates:
            self.plan(display(argv, env, cwd))
            return Result(argv, 0, "", "", planned=True)
        self.echo(argv, env=env, cwd=cwd)
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        if on_line is not None or cancel is not None:
            lines = on_line or (lambda _line: None)
            return self._stream(argv, full_env, cwd, check, timeout, input_text, hint, lines, cancel)
        try:
            proc = subprocess.run(
                argv,
                env=full_env,
                cwd=cwd,
                capture_output=capture,
                text=True,
                timeout=timeout,
                input=input_text,
                check=False,
            )
        except FileNotFoundError as exc:
            raise UserError(f"{argv[0]}: command not found; {hint or 'install it or run `make tools`'}") from exc
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            raise CommandError(argv, -1, err, out, hint=f"timed out after {timeout:g}s") from exc
        result = Result(argv, proc.returncode, proc.stdout or "", proc.stderr or "")
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, result.stderr, result.stdout, hint=hint)
        return result

    def _stream(
        self,
        argv: list[str],
        env: dict[str, str] | None,
        cwd: str | os.PathLike[str] | None,
        check: bool,
        timeout: float | None,
        input_text: str | None,
        hint: str,
        on_line: Callable[[str], None],
        cancel: threading.Event | None = None,
    ) -> Result:
        """`run` with both pipes read line by line as they come (two reader threads); with
        `cancel`, the command runs in a process group of its own, killed whole when it is set."""
        try:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                start_new_session=cancel is not None,
            )
        except FileNotFoundError as exc:
            raise UserError(f"{argv[0]}: command not found; {hint or 'install it or run `make tools`'}") from exc
        collected: dict[str, list[str]] = {"stdout": [], "stderr": []}
        deliver = threading.Lock()

        def pump(name: str, stream: IO[str]) -> None:
            for line in stream:
                collected[name].append(line)
                with deliver:
                    on_line(line.rstrip("\n"))

        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=pump, args=("stdout", proc.stdout), daemon=True),
            threading.Thread(target=pump, args=("stderr", proc.stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        if input_text is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(input_text)
            proc.stdin.close()
        try:
            returncode = self._wait(proc, timeout, cancel)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            self._drain(proc, readers)
            out, err = "".join(collected["stdout"]), "".join(collected["stderr"])
            raise CommandError(argv, -1, err, out, hint=f"timed out after {timeout:g}s") from exc
        self._drain(proc, readers)
        if cancel is not None and cancel.is_set() and returncode != 0:
            out, err = "".join(collected["stdout"]), "".join(collected["stderr"])
            raise CommandError(argv, returncode, err, out, hint="cancelled")
        result = Result(argv, returncode, "".join(collected["stdout"]), "".join(collected["stderr"]))
        if check and returncode != 0:
            raise CommandError(argv, returncode, result.stderr, result.stdout, hint=hint)
        return result

    @staticmethod
    def _wait(proc: subprocess.Popen[str], timeout: float | None, cancel: threading.Event | None) -> int:
        """The exit status; with `cancel`, looked at every 50 ms, and the process group killed once it is set."""
        if cancel is None:
            return proc.wait(timeout=timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return proc.wait(timeout=0.05)
            if cancel.is_set():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # go build and the compilers it started
                return proc.wait()
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout or 0)

    @staticmethod
    def _drain(proc: subprocess.Popen[str], readers: Sequence[threading.Thread]) -> None:
        for reader in readers:
            reader.join()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    def output(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        hint: str = "",
    ) -> str:
        """Run a read-only query and return its stripped stdout."""
        return self.run(argv, env=env, cwd=cwd, timeout=timeout, hint=hint, mutates=False).stdout.strip()


# Read-only questions about the machine and the sources; never a dry run. Session.open
# gives it the task's verbosity, so V=1 echoes these too.
QUERIES = Runner()


# The module's run/output/echo are QUERIES' (the many call sites that only ask).
run = QUERIES.run
output = QUERIES.output
echo = QUERIES.echo
