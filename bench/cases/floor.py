"""(f) The floor: `go build` of every service per platform, nothing else.

Every other case compiles the same code with the same flags, so none can take
less than this; the table's "ratio to floor" divides by it.
"""

from __future__ import annotations

import os
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
