"""What a smoke run must show, and whether it did: pure rules, no daemon.

A smoke run proves that an image *starts on this CPU and behaves as it does
natively*; which CPU the binary is for is proven from its bytes (binaries.py).
Real programs differ in what they answer to: `version` may be a subcommand,
a helper may have no version flag at all, a server may ignore its arguments
and start serving. So unless a service names its `smoke_args`, the program is
probed once on the daemon's native platform with CANDIDATES, and the first
behaviour that fits (exit 0, else any exit, else "still running": a server)
becomes the plan every platform must match. `smoke_exit` and `smoke_expect`
from config.toml override the exit code and add an output pattern. The first
candidate runs alone for PROBE_GRACE seconds, the others beside it only when
it has not decided by then: most programs are probed with one container.

The probe's outcomes are cached per service and native manifest digest, so
a rerun on the same image does not probe again.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# In order of preference: what most CLIs answer with a version and exit 0.
CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("--version",),
    ("version",),
    ("-version",),
    ("-v",),
    ("--help",),
    ("help",),
    ("-h",),
)
# Seconds a probe candidate (and a server's smoke run) is given: long enough
# for a Go binary to start under QEMU on a loaded machine, short enough that
# "still running" means "started and serving".
PROBE_TIMEOUT = 5.0
# Seconds the first candidate (`--version`) runs alone before the others start
# beside it. Most programs answer it well within this, so one container probes
# them instead of len(CANDIDATES); a program that does not (a server) starts the
# rest after it, and one whose `--version` fails starts them the moment it ends.
PROBE_GRACE = 2.5
OUTPUT_LIMIT = 160  # characters of folded output in a table row
CACHED_OUTPUT = 2000  # characters of probe output kept in the cache
CACHE_DIGESTS_PER_SERVICE = 8

OK, FAILED, HUNG = "ok", "failed", "hung"
# Where a platform is on its way to a smoke run (see probe_on).
PENDING, READY, OUT = "pending", "ready", "out"


@dataclass(frozen=True)
class Run:
    """How one smoke container ended."""

    args: tuple[str, ...]
    exit_code: int | None = None  # None: it did not exit (see running / error)
    output: str = ""  # stdout and stderr as the daemon kept them
    seconds: float = 0.0  # from start to exit, or to the kill
    error: str = ""  # it never started: the daemon's reason (e.g. exec format error)
    cancelled: bool = False  # a probe candidate stopped early: its outcome is unknown

    @property
    def running(self) -> bool:
        """Still running when its time was up (and then killed)."""
        return self.exit_code is None and not self.error and not self.cancelled


@dataclass(frozen=True)
class Plan:
    """What every platform's smoke run must do."""

    args: tuple[str, ...]
    exit_code: int | None  # None: keep running for PROBE_TIMEOUT (a server)
    pattern: str = ""  # regular expression the output must match ("" = any)
    source: str = "config"  # "config", "probe on linux/amd64", "cached probe on linux/amd64"
    native: bool = False  # the exit expectation is what the probe saw natively (not smoke_exit)

    def describe(self) -> str:
        what = "keeps running (a server)" if self.exit_code is None else f"exits {self.exit_code}"
        return f"{show_args(self.args)} {what} ({self.source})"


def show_args(args: Sequence[str]) -> str:
    return f"`{shlex.join(args)}`" if args else "(no arguments)"


def fold(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """Output on one line for a table cell: lines joined by ' ⏎ ', the middle cut when long.

    Both ends are kept because the first line usually says what the program
    is and the last one why it stopped.
    """
    line = " ⏎ ".join(" ".join(part.split()) for part in text.splitlines() if part.strip())
    if len(line) <= limit:
        return line
    head = (limit * 2) // 3
    tail = limit - head - 3
    return line[:head].rstrip() + " … " + line[-tail:].lstrip()


def _fits(run: Run, want_exit: int | None, pattern: str) -> bool:
    """Whether a candidate exited the way config.toml asks (exit 0 when it does not say)."""
    if run.exit_code is None:
        return False
    if run.exit_code != (0 if want_exit is None else want_exit):
        return False
    return not pattern or re.search(pattern, run.output, re.MULTILINE) is not None


def choose(
    runs: Sequence[Run | None], *, want_exit: int | None = None, pattern: str = ""
) -> tuple[tuple[str, ...], int | None] | None:
    """The probe's choice, (arguments, expected exit or None for "keeps running"), or None if undecided.

    `runs` follows CANDIDATES; None (or a cancelled run) is a candidate whose
    outcome is not known. The rule: the first candidate that exits 0 (with
    `want_exit`/`pattern`: the first that exits so and matches); if none
    does, the first that exits at all, with its code; if every one keeps
    running, the first, expected to keep running. The choice is made as soon
    as no unknown outcome could change it, so a probe stops once `--version`
    has exited 0; while an earlier candidate is unknown it is None, and it is
    None when no candidate started at all.
    """
    for run in runs:
        if run is None or run.cancelled:
            return None  # an earlier candidate could still fit
        if _fits(run, want_exit, pattern):
            return run.args, run.exit_code
    started = [r for r in runs if r is not None and not r.error]
    for run in started:
        if run.exit_code is not None:
            return run.args, run.exit_code
    if started:
        return started[0].args, None
    return None


def plan_from_probe(runs: Sequence[Run | None], source: str, *, want_exit: int | None, pattern: str) -> Plan | None:
    """The Plan a probe leads to (see choose); `smoke_exit` from config.toml overrides the exit code."""
    picked = choose(runs, want_exit=want_exit, pattern=pattern)
    if picked is None:
        return None
    args, code = picked
    if want_exit is not None:
        return Plan(args, want_exit, pattern, source)
    return Plan(args, code, pattern, source, native=True)


def probe_on(platforms: Sequence[tuple[bool, str]]) -> tuple[bool, int | None]:
    """Which platform the probe runs on: (decided, its index, or None when none can run).

    `platforms` are (native, state) in index order, state PENDING (its checks or
    pull not done), READY or OUT (failed either). The rule is the first READY
    native platform, else the first READY one; it is decided as soon as no
    PENDING platform could change the answer, so the probe starts the moment
    the native image is checked and pulled, without waiting for the others.
    """
    for n, (native, state) in enumerate(platforms):
        if not native:
            continue
        if state == PENDING:
            return False, None
        if state == READY:
            return True, n
    for n, (_, state) in enumerate(platforms):
        if state == PENDING:
            return False, None
        if state == READY:
            return True, n
    return True, None


def judge(plan: Plan, run: Run, timeout: float) -> tuple[str, str]:
    """(result, detail) of one platform's smoke run against the plan.

    A server passes by still running when its time is up (an exec format
    error or a QEMU crash ends it at once); a command passes by exiting with
    the planned code within `timeout`, and is `hung` when it does not exit.
    """
    like = " as on native" if plan.native else ""
    args = show_args(plan.args)
    out = fold(run.output)
    said = f": {out}" if out else ""
    if run.error:
        return FAILED, f"smoke {args} did not start: {fold(run.error)}"
    if plan.exit_code is None:
        if not run.running:
            return (
                FAILED,
                f"smoke {args} exited {run.exit_code} after {run.seconds:.1f}s, "
                f"expected it to keep running{like}{said}",
            )
        verdict = f"{args} still running after {run.seconds:.0f}s{like}"
    elif run.running:
        return HUNG, f"smoke {args}: no exit within {timeout:g}s, container killed{said}"
    elif run.exit_code != plan.exit_code:
        return FAILED, f"smoke {args} exited {run.exit_code}, expected {plan.exit_code}{like}{said}"
    else:
        verdict = f"{args} exited {run.exit_code}{like}"
    if plan.pattern and re.search(plan.pattern, run.output, re.MULTILINE) is None:
        return FAILED, f"smoke {args}: output does not match smoke_expect {plan.pattern!r}{said}"
    return OK, verdict


# --- the probe cache ------------------------------------------------------------------------


def _run_record(run: Run | None) -> dict[str, Any] | None:
    if run is None or run.cancelled:
        return None
    return {
        "args": list(run.args),
        "exit_code": run.exit_code,
        "output": run.output[-CACHED_OUTPUT:],
        "seconds": round(run.seconds, 3),
        "error": run.error,
    }


def _run_from(record: Any, args: tuple[str, ...]) -> Run | None:
    if not isinstance(record, dict) or record.get("args") != list(args):
        return None
    code = record.get("exit_code")
    return Run(
        args,
        code if isinstance(code, int) else None,
        str(record.get("output", "")),
        float(record.get("seconds", 0.0)),
        str(record.get("error", "")),
    )


class ProbeCache:
    """`<output_dir>/state/smoke.json`: probe outcomes per service and probed manifest digest.

    Outcomes rather than the choice are kept, so a changed `smoke_exit` or
    `smoke_expect` is applied to them without probing again. A file that
    cannot be read is an empty cache: at worst the probe runs again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        self.data: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}
        self.changed = False

    def get(self, service: str, digest: str) -> tuple[str, list[Run | None]] | None:
        """(platform probed, outcomes in CANDIDATES order), or None when not probed."""
        record = self.data.get(service, {}).get(digest)
        if not isinstance(record, dict) or not isinstance(record.get("runs"), list):
            return None
        runs = record["runs"]
        if len(runs) != len(CANDIDATES):
            return None
        return str(record.get("platform", "")), [_run_from(r, a) for r, a in zip(runs, CANDIDATES, strict=True)]

    def put(self, service: str, digest: str, platform: str, runs: Sequence[Run | None]) -> None:
        entries = self.data.get(service)
        if not isinstance(entries, dict):
            entries = self.data[service] = {}
        entries.pop(digest, None)
        entries[digest] = {"platform": platform, "runs": [_run_record(r) for r in runs]}
        while len(entries) > CACHE_DIGESTS_PER_SERVICE:
            entries.pop(next(iter(entries)))
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        tmp.replace(self.path)
        self.changed = False
