"""Every command the benchmark runs, logged where a reader of the results can replay it.

The bench measures external tools (go, invoke, docker buildx, ko), so it needs
their exit codes, their output in a log file and, for results.md, the exact
command line with the environment that differs from the caller's. One class
does that for every case; a case never calls subprocess itself for anything
it times.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# Variables that would steer crossbuild, go or git if inherited (mirrors tests/integration/conftest.py).
LEAKY_ENV = (
    "PLATFORMS", "BINS", "IMAGES", "REGISTRY_PREFIX", "VERSION", "BASE_IMAGE", "GO_IMAGE", "CACHE_REF", "MODE",
    "VERIFY", "BAKE_EARLY", "V", "CONFIG", "CROSSBUILD_CONFIG", "SOURCE_DATE_EPOCH", "GOOS", "GOARCH", "GOARM",
    "GOAMD64", "GOARM64", "CGO_ENABLED", "GOFLAGS", "GOCACHE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "KO_DOCKER_REPO", "KO_DEFAULTBASEIMAGE", "KO_CONFIG_PATH",
)  # fmt: skip


class Unavailable(Exception):
    """A tool this case needs cannot be had on this machine: the case is skipped with this reason."""


class CaseFailed(Exception):
    """A command of the case failed: the case is reported failed, the others still run."""


def clean_env(gocache: Path | None = None) -> dict[str, str]:
    """The caller's environment without anything that would steer the tools, offline and reproducible.

    Every case gets the same starting point, so differences in the table come from
    the tools, not from whatever the shell that started the bench had exported.
    """
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env.update(GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod", BUILDX_NO_DEFAULT_ATTESTATIONS="1")
    if gocache is not None:
        env["GOCACHE"] = str(gocache)
    return env


def go_env_for(platform: str) -> dict[str, str]:
    """GOOS/GOARCH/GOARM for an OCI platform such as linux/arm/v7."""
    os_, arch, *rest = platform.split("/")
    env = {"GOOS": os_, "GOARCH": arch, "CGO_ENABLED": "0"}
    if arch == "arm":
        env["GOARM"] = (rest[0] if rest else "v7").removeprefix("v")
    return env


def peak_rss(pid: int) -> int | None:
    """A live process's own peak resident set (VmHWM of /proc/<pid>/status) in bytes; None once it has exited.

    Not getrusage's ru_maxrss: Linux carries that across execve from the forking process, so a small
    child of a large parent would report the parent's peak.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    return None  # a zombie has no memory left to report


class PeakWatch:
    """Samples a child's VmHWM every `interval` s until it exits: the last sample is its peak, give or
    take what it added in its last `interval` (VmHWM only grows, so nothing earlier is missed)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            value = peak_rss(self.pid)
            if value is not None:
                self.peak = max(self.peak, value)
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


class Shell:
    """Runs argument lists, appends each command and its output to logs/<log>.log and
    records the command line in the list the current case reports (or the setup list).

    Each command's peak RSS (its own process, not its children's) goes to `peaks` as
    (program name, bytes), for measure.PhaseMeter to attribute to the phase that ran it.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.setup_log: list[str] = []
        self._record = self.setup_log
        self.peaks: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def recording(self, commands: list[str]) -> Iterator[None]:
        """Record the commands run inside the block into `commands` (one case's list)."""
        previous, self._record = self._record, commands
        try:
            yield
        finally:
            self._record = previous

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str],
        extra: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log: str,
        timeout: float = 3600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv with env plus `extra` (the variables shown on the recorded line).

        Raises Unavailable when the program is missing and CaseFailed when it exits
        non-zero (with check) or times out, with the tail of its output.
        """
        args = [str(a) for a in argv]
        full = {**env, **(extra or {})}
        line = (
            (f"cd {shlex.quote(str(cwd))} && " if cwd else "")
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted((extra or {}).items()))
            + (" " if extra else "")
            + shlex.join(args)
        )
        self._record.append(line)
        self.logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            child = subprocess.Popen(args, env=full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except FileNotFoundError as exc:
            raise Unavailable(f"{args[0]} not found") from exc
        watch = PeakWatch(child.pid)
        try:
            stdout, stderr = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            child.kill()
            child.communicate()
            raise CaseFailed(f"timed out after {timeout:g}s: {line}") from exc
        finally:
            self.peaks.append((Path(args[0]).name, watch.stop()))
        proc = subprocess.CompletedProcess(args, child.returncode, stdout, stderr)
        with (self.logs / f"{log}.log").open("a") as fh:
            fh.write(f"$ {line}\n# exit {proc.returncode} in {time.monotonic() - started:.2f}s\n")
            fh.write(proc.stdout)
            fh.write(proc.stderr)
            fh.write("\n")
        if check and proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise CaseFailed(f"`{shlex.join(args[:6])}...` exited {proc.returncode}:\n{tail}")
        return proc
