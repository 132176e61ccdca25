"""The stages of `manifest`: merge CI legs (or OpenIM per-arch repositories) into one index each.

plan merge   the legs of every service, refused when they disagree (read-only)
push index   each merged index pushed by digest (a legacy merge: under a staging tag)

then check, verify and tag as image.multiarch does: no tag moves before every index is proven.
"""

from __future__ import annotations

from crossbuild import manifest
from crossbuild import plan as plan_mod
from crossbuild.errors import UserError
from crossbuild.pipeline import Context, Stage
from crossbuild.stages.prepare import say_held_tags


class PlanMerge(Stage):
    name = "plan merge"

    def __init__(self, legacy: bool = False) -> None:
        self.legacy = legacy

    def run(self, ctx: Context) -> None:
        ctx.plan = plan_mod.plan(ctx.cfg, ctx.platforms, ctx.services)
        say_held_tags(ctx)
        targets = ctx.plan.targets
        if self.legacy:
            merges = manifest.plan_from_legacy(targets, ctx.session.client)
        else:
            merges = manifest.plan_from_digests(ctx.cfg, targets)
        ctx.memo["merges"] = merges


class PushIndexes(Stage):
    name = "push index"
    mutates = True

    def _merges(self, ctx: Context) -> list[manifest.MergePlan]:
        merges: list[manifest.MergePlan] = ctx.memo.get("merges", [])
        return merges

    def skip(self, ctx: Context) -> str:
        return "" if self._merges(ctx) else "nothing to merge"

    def run(self, ctx: Context) -> None:
        for merge in self._merges(ctx):
            digest = manifest.stage_index(ctx.session.runner, ctx.cfg, merge, ctx.session.client)
            if not digest:
                raise UserError(f"{merge.target.service.name}: the merged index has no digest")
            ctx.pushed[merge.target.service.name] = digest

    def describe(self, ctx: Context) -> list[str]:
        return [manifest.describe_stage(ctx.cfg, m) for m in self._merges(ctx)]
