"""(a) crossbuild prebuilt and (av) the same verified: `invoke image.multiarch` in the monorepo.

(a) is the subject of most targets: against the floor here, and against the
emulated build, the OpenIM-style loop and ko in their modules. (av) adds
crossbuild's verify step, for information only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bench import warmprofile
from bench.cases import bakealone, edits
from bench.cases.base import Case
from bench.cases.floor import bracketed_busy, bracketed_floor
from bench.context import Context
from bench.results import CaseResult, Target, human


class ImageMultiarch(Case):
    """crossbuild's image.multiarch under the case's prefix, with the case's settings (VERIFY, MODE, ...)."""

    # crossbuild variables besides REGISTRY_PREFIX; the supply chain off: case (as) measures it
    settings: ClassVar[Mapping[str, str]] = {"VERIFY": "0", "SBOM": "0", "SIGN": "off"}

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        extra = {"REGISTRY_PREFIX": res.prefix, **self.settings}
        ctx.shell.run(ctx.crossbuild("image.multiarch"), env=ctx.env(ctx.gocache(self.slug)), extra=extra,
                      cwd=ctx.workspace.repo, log=f"{self.key}-{phase}")  # fmt: skip


class Prebuilt(edits.EditPhases, ImageMultiarch):
    key = "a"
    slug = "a-prebuilt"
    title = "crossbuild prebuilt"

    def finish(self, ctx: Context, res: CaseResult) -> None:
        if ctx.args.profile:
            ctx.profile = warmprofile.profile_warm_rerun(ctx, res.prefix, ctx.gocache(self.slug))

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        a = results.get("a")
        out: list[Target] = []
        # the first round's bound, then issue 15's: the cold run down to the floor
        floor, drawn = bracketed_floor(results)
        for name, factor, extra in (
            ("cold prebuilt <= 1.3 x floor + 5 s", 1.3, 5.0),
            ("cold prebuilt <= 1.05 x floor", 1.05, 0.0),
        ):
            if a and a.ok and a.cold_s is not None and floor is not None:
                limit = factor * floor + extra
                ratio = a.cold_s / floor
                detail = f"{a.cold_s:.1f}s vs limit {limit:.1f}s ({drawn}; {ratio:.3f} x)"
                detail += bakealone.beside(floor, results, bracketed_busy(results))
                out.append(Target(name, a.cold_s <= limit, detail))
            else:
                out.append(Target(name, None, "needs cases a and f (and f2 after a, to bracket it)"))
        name = "warm no-change rerun <= 2 s with 0 bytes pushed"
        if a and a.ok and a.warm_s is not None:
            detail = f"{a.warm_s:.2f}s, {human(a.bytes_warm)} pushed"
            out.append(Target(name, a.warm_s <= 2 and a.bytes_warm == 0, detail))
        else:
            out.append(Target(name, None, "needs case a"))
        return out + edits.targets(results)


class PrebuiltEarly(ImageMultiarch):
    """(a) with every platform's images baked as soon as its binaries exist, beside the compile
    (BAKE_EARLY=always; crossbuild.earlybake): what that pipelining gains or costs on this machine,
    where crossbuild leaves it off by default because BuildKit shares the compile's cores.
    Information: its cold time is compared with (a)'s and the floor's in the main table."""

    key = "ae"
    slug = "ae-early"
    title = "crossbuild prebuilt, images baked while compiling (BAKE_EARLY=always; info)"
    settings: ClassVar[Mapping[str, str]] = {"VERIFY": "0", "SBOM": "0", "SIGN": "off", "BAKE_EARLY": "always"}


class PrebuiltVerified(ImageMultiarch):
    key = "av"
    slug = "av-verify"
    title = "crossbuild prebuilt, VERIFY=1 (info)"
    settings: ClassVar[Mapping[str, str]] = {"VERIFY": "1", "SBOM": "0", "SIGN": "off"}
    repeatable = False  # its QEMU smoke runs are containers, not our children: their CPU counts as "other"
