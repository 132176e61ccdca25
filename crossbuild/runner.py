"""The one door to the outside: every external command runs through `run`.

It takes an argument list (never a shell string), echoes `shlex.join(argv)`
when verbose, prints instead of running under dry-run, and raises
`CommandError` carrying the command, exit code and output tail.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from crossbuild.errors import CommandError, UserError

_state = threading.local()
_lock = threading.Lock()


@dataclass
class RunnerOptions:
    dry_run: bool = False
    verbose: bool = False
    # Commands printed under dry-run, in order; tests and `--dry-run` read them.
    planned: list[str] = field(default_factory=list)


OPTIONS = RunnerOptions()


def configure(*, dry_run: bool = False, verbose: bool = False) -> None:
    OPTIONS.dry_run = dry_run
    OPTIONS.verbose = verbose
    OPTIONS.planned.clear()


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


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


def _display(argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | os.PathLike[str] | None = None) -> str:
    """The command as a shell line one can paste: `cd DIR && VAR=value cmd args`."""
    prefix = ""
    if cwd is not None and os.path.abspath(cwd) != os.getcwd():
        prefix = f"cd {shlex.quote(str(cwd))} && "
    if env:
        prefix += " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())) + " "
    return prefix + shlex.join(argv)


def echo(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
) -> None:
    """Print `+ <command>` on stderr when verbose.

    `run` echoes every command it starts; callers that reach a tool through
    its API instead of a subprocess (crossbuild.daemon and the docker SDK)
    echo the equivalent CLI line here, so V=1 shows every call either way.
    """
    if OPTIONS.verbose:
        line = _display([str(a) for a in argv], env, cwd)
        with _lock:
            print(f"+ {line}", file=sys.stderr, flush=True)


def run(
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
) -> Result:
    """Run one external command.

    `env` holds only the variables to add to the current environment, so the
    echoed line shows exactly what differs. `mutates=False` marks read-only
    queries (`go env`, `buildx inspect`), which still run under dry-run so the
    plan can be computed.
    """
    argv = [str(a) for a in argv]
    line = _display(argv, env, cwd)
    if OPTIONS.dry_run and mutates:
        with _lock:
            OPTIONS.planned.append(line)
        print(f"[dry-run] {line}", flush=True)
        return Result(argv, 0, "", "")
    echo(argv, env=env, cwd=cwd)
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
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


def output(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    hint: str = "",
) -> str:
    """Run a read-only query and return its stripped stdout."""
    return run(argv, env=env, cwd=cwd, timeout=timeout, hint=hint, mutates=False).stdout.strip()
