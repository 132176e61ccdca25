"""(f) The floor: `go build` of every service per platform, nothing else.

Every other case compiles the same code with the same flags, so none can take
less than this; the table's "ratio to floor" divides by it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from bench.cases.edits import EditPhases
from bench.context import Context
from bench.results import CaseResult
from bench.shell import go_env_for


class Floor(EditPhases):
    key = "f"
    slug = "f-floor"
    title = "floor: go build only"

    def setup(self, ctx: Context, res: CaseResult) -> None:
        self.workers = max(1, min(2 * (os.cpu_count() or 1), len(ctx.workspace.platforms)))
        res.notes.append(f"{self.workers} platform(s) in parallel, like crossbuild's go.jobs=0 (twice the cores)")

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        ws = ctx.workspace
        out = ctx.case_dir(self.slug) / "bin"
        env = ctx.env(ctx.gocache(self.slug))
        pkgs = [f"./cmd/{s}" for s in ws.services]

        def one(platform: str) -> None:
            (out / platform).mkdir(parents=True, exist_ok=True)
            argv = ["go", "build", "-buildvcs=false", "-trimpath", "-ldflags", ws.ldflags(),
                    "-o", f"{out / platform}/", *pkgs]  # fmt: skip
            ctx.shell.run(argv, env=env, extra=go_env_for(platform), cwd=ws.repo, log=f"{self.key}-{phase}")

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(one, ws.platforms))


class FloorAgain(Floor):
    """(f2) The floor's cold run again, right after crossbuild's (a): this machine's speed drifts by
    15% from one minute to the next (the same `go build`, cold, measured 84.9 s and then 73.2 s
    here), more than the 5% the cold target allows. (a) is compared with the mean of the two
    floors around it, so a drift in between cancels out."""

    key = "f2"
    slug = "f2-floor"
    title = "floor again, after (a): cold only"
    phases = ("cold",)


def bracketed_floor(results: Mapping[str, CaseResult]) -> tuple[float | None, str]:
    """The cold floor (a) is compared with: the mean of (f) before it and (f2) after it when both
    ran, else (f) alone; and how it was drawn, for the target's line."""
    f, f2 = results.get("f"), results.get("f2")
    before = f.cold_s if f is not None and f.ok else None
    after = f2.cold_s if f2 is not None and f2.ok else None
    if before is not None and after is not None:
        return (
            before + after
        ) / 2, f"floor {(before + after) / 2:.1f}s = mean of {before:.1f}s before and {after:.1f}s after"
    return before, f"floor {before:.1f}s" if before is not None else "no floor"


def bracketed_busy(results: Mapping[str, CaseResult], phase: str = "cold") -> float | None:
    """The machine's busy CPU seconds in the floor's `phase`, drawn as bracketed_floor draws its time:
    the mean of (f) and (f2) when both measured it, else (f)'s."""
    found = [
        p.cpu["machine_busy_cpu_s"]
        for r in (results.get("f"), results.get("f2"))
        if r is not None and r.ok and (p := r.phases.get(phase)) is not None and "machine_busy_cpu_s" in p.cpu
    ]
    return sum(found) / len(found) if found else None
