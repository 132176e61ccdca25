"""(d) The OpenIM-style loop: one `go build` per service per platform, one image per service per arch.

As OpenIM's Makefile does it: for each platform, for each service, `go build`
(sequential); for each service, for each arch, `docker buildx build` with push
to <service>-<arch>; then per service `imagetools create` merges the arches.
The notes split each phase's time into those three loops.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from bench.cases.edits import EditPhases
from bench.context import Context
from bench.results import CaseResult, Target, why_missing
from bench.shell import go_env_for
from bench.workspace import BUILDER

USER = "65532:65532"


def arch_slug(platform: str) -> str:
    """OpenIM's per-arch repository suffix: amd64, arm64, armv7."""
    _, arch, *rest = platform.split("/")
    return arch + (rest[0] if rest else "")


class OpenIMLoop(EditPhases):
    key = "d"
    slug = "d-openim"
    title = "OpenIM-style loop"

    def setup(self, ctx: Context, res: CaseResult) -> None:
        for s in ctx.workspace.services:
            (ctx.case_dir(self.slug) / f"{s}.Dockerfile").write_text(
                "\n".join(
                    [
                        "FROM scratch",
                        "ARG TARGETPLATFORM",
                        f"COPY bin/${{TARGETPLATFORM}}/{s} /usr/local/bin/{s}",
                        f"USER {USER}",
                        f'ENTRYPOINT ["/usr/local/bin/{s}"]',
                        "",
                    ]
                )
            )

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        ws = ctx.workspace
        ddir = ctx.case_dir(self.slug)
        env = ctx.env(ctx.gocache(self.slug))
        tag = ws.version["version"]
        log = f"{self.key}-{phase}"
        marks = [time.monotonic()]
        for p in ws.platforms:  # OpenIM's Makefile: for each platform, for each binary
            for s in ws.services:
                ctx.shell.run(["go", "build", "-buildvcs=false", "-trimpath", "-ldflags", ws.ldflags(),
                               "-o", ddir / "bin" / p / s, f"./cmd/{s}"], env=env, extra=go_env_for(p),
                              cwd=ws.repo, log=log)  # fmt: skip
        marks.append(time.monotonic())
        for s in ws.services:
            for p in ws.platforms:
                name = f"{res.prefix}/{s}-{arch_slug(p)}:{tag}"
                ctx.shell.run(["docker", "buildx", "build", "--builder", BUILDER, "--platform", p, "--provenance=false",
                               "-f", ddir / f"{s}.Dockerfile", "--output", f"type=image,name={name},push=true", ddir],
                              env=env, log=log)  # fmt: skip
        marks.append(time.monotonic())
        for s in ws.services:
            sources = [f"{res.prefix}/{s}-{arch_slug(p)}:{tag}" for p in ws.platforms]
            ctx.shell.run(["docker", "buildx", "imagetools", "create", "--builder", BUILDER,
                           "-t", f"{res.prefix}/{s}:{tag}", "-t", f"{res.prefix}/{s}:latest", *sources],
                          env=env, log=log)  # fmt: skip
        marks.append(time.monotonic())
        n = len(ws.services) * len(ws.platforms)
        res.notes.append(
            f"{phase}: {n} go builds {marks[1] - marks[0]:.1f}s, {n} docker builds + pushes "
            f"{marks[2] - marks[1]:.1f}s, {len(ws.services)} manifest merges {marks[3] - marks[2]:.1f}s"
        )

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        a, d, f = results.get("a"), results.get("d"), results.get("f")
        if not (a and d and a.ok and d.ok and a.cold_s and d.cold_s):
            return [Target(">= 3x faster than (d) (cold)", None, why_missing(d, "d"))]
        bound = ""
        if f and f.ok and f.cold_s:  # nothing that compiles the same code can beat the floor
            bound = f"; bound: any tool that compiles is >= the floor, so at most {d.cold_s / f.cold_s:.1f}x"
        out = [Target(">= 3x faster than (d) (cold)", d.cold_s / a.cold_s >= 3,
                      f"{d.cold_s:.1f}s vs {a.cold_s:.1f}s: {d.cold_s / a.cold_s:.1f}x{bound}")]  # fmt: skip
        if a.warm_s and d.warm_s is not None:
            out.append(Target(">= 3x faster than (d) (warm, nothing changed)", d.warm_s / a.warm_s >= 3,
                              f"{d.warm_s:.1f}s vs {a.warm_s:.2f}s: {d.warm_s / a.warm_s:.1f}x"))  # fmt: skip
        return out
