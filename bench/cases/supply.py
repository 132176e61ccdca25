"""(as) crossbuild prebuilt with the supply chain on: an SBOM per platform and cosign signatures.

The same `invoke image.multiarch` as (a), which runs with SBOM=0 and no signing, here with SBOM=1
and SIGN=<a key made by `cosign generate-key-pair` in prepare, outside the repository>. Its target:
the cold run costs at most 5% more than (a)'s.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import ClassVar

from bench.cases.prebuilt import ImageMultiarch
from bench.context import Context
from bench.results import CaseResult, Target
from bench.shell import Unavailable

PASSWORD = "bench"  # a throwaway key for this run only


class PrebuiltSupply(ImageMultiarch):
    key = "as"
    slug = "as-supply"
    title = "crossbuild prebuilt, SBOM + cosign signing"
    settings: ClassVar[Mapping[str, str]] = {"VERIFY": "0", "SBOM": "1", "COSIGN_PASSWORD": PASSWORD}

    def prepare(self, ctx: Context, res: CaseResult) -> None:
        if shutil.which("cosign") is None:
            raise Unavailable("cosign is not installed (make tools)")
        keys = ctx.work / f"{self.slug}-keys"  # not the case dir: the cold reset empties it
        if not (keys / "cosign.key").is_file():
            keys.mkdir(parents=True, exist_ok=True)
            env = {**ctx.env(), "COSIGN_PASSWORD": PASSWORD}
            ctx.shell.run(["cosign", "generate-key-pair"], env=env, cwd=keys, log=f"{self.key}-setup")

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        key = ctx.work / f"{self.slug}-keys" / "cosign.key"
        extra = {"REGISTRY_PREFIX": res.prefix, **self.settings, "SIGN": str(key)}
        ctx.shell.run(ctx.crossbuild("image.multiarch"), env=ctx.env(ctx.gocache(self.slug)), extra=extra,
                      cwd=ctx.workspace.repo, log=f"{self.key}-{phase}")  # fmt: skip

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        a, s = results.get("a"), results.get("as")
        name = "cold with SBOM + signing <= 1.05 x cold without (a)"
        if a and s and a.ok and s.ok and a.cold_s is not None and s.cold_s is not None:
            limit = 1.05 * a.cold_s
            return [Target(name, s.cold_s <= limit, f"{s.cold_s:.1f}s vs limit {limit:.1f}s ((a) {a.cold_s:.1f}s)")]
        return [Target(name, None, "needs cases a and as")]
