"""(as) crossbuild prebuilt with the supply chain on: an SBOM per platform and cosign signatures.

The same `invoke image.multiarch` as (a), which runs with SBOM=0 and no signing, here with SBOM=1
and SIGN=<a key made by `cosign generate-key-pair` in prepare, outside the repository>. Its target:
the cold run costs at most 5% more than (a)'s.

A third phase, cosign-alone, times cosign by itself: `cosign sign` of the same digests the cold
run signed (each index and its platform images, listed from the registry), with the same key,
in as many processes side by side as crossbuild's sign stage runs. It shows what signing costs
whatever tool runs it: cosign decrypts the password-protected key once per reference.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from bench import regstats
from bench.cases.prebuilt import ImageMultiarch
from bench.context import Context
from bench.results import CaseResult, Target
from bench.shell import CaseFailed, Unavailable

PASSWORD = "bench"  # a throwaway key for this run only
COSIGN_ALONE = "cosign-alone"
SIGN_PARALLEL = 4  # as crossbuild.cosign.SIGN_PARALLEL: the same number of cosign processes


class PrebuiltSupply(ImageMultiarch):
    key = "as"
    slug = "as-supply"
    title = "crossbuild prebuilt, SBOM + cosign signing"
    settings: ClassVar[Mapping[str, str]] = {"VERIFY": "0", "SBOM": "1", "COSIGN_PASSWORD": PASSWORD}
    phases = ("cold", "warm", COSIGN_ALONE)

    def prepare(self, ctx: Context, res: CaseResult) -> None:
        if shutil.which("cosign") is None:
            raise Unavailable("cosign is not installed (make tools)")
        keys = ctx.work / f"{self.slug}-keys"  # not the case dir: the cold reset empties it
        if not (keys / "cosign.key").is_file():
            keys.mkdir(parents=True, exist_ok=True)
            env = {**ctx.env(), "COSIGN_PASSWORD": PASSWORD}
            ctx.shell.run(["cosign", "generate-key-pair"], env=env, cwd=keys, log=f"{self.key}-setup")

    def _refs_file(self, ctx: Context) -> Path:
        return ctx.work / f"{self.slug}-keys" / "signed-refs.txt"

    def before(self, ctx: Context, res: CaseResult, phase: str) -> None:
        if phase == COSIGN_ALONE:
            refs = regstats.signed_digests(res.prefix.removeprefix(regstats.REGISTRY + "/"))
            if not refs:
                raise CaseFailed(f"no signed image under {res.prefix} to sign again")
            self._refs_file(ctx).write_text("\n".join(refs) + "\n")
            res.figures["cosign_alone"] = {"references": len(refs), "processes": SIGN_PARALLEL}

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        key = ctx.work / f"{self.slug}-keys" / "cosign.key"
        if phase == COSIGN_ALONE:
            refs = self._refs_file(ctx).read_text().split()
            per = -(-len(refs) // SIGN_PARALLEL)  # references per process, rounded up
            argv = ["xargs", "-a", str(self._refs_file(ctx)), "-P", str(SIGN_PARALLEL), "-n", str(per),
                    *cosign_sign_argv(key)]  # fmt: skip
            ctx.shell.run(argv, env=ctx.env(), extra={"COSIGN_PASSWORD": PASSWORD}, cwd=ctx.work,
                          log=f"{self.key}-{phase}")  # fmt: skip
            return
        extra = {"REGISTRY_PREFIX": res.prefix, **self.settings, "SIGN": str(key)}
        ctx.shell.run(ctx.crossbuild("image.multiarch"), env=ctx.env(ctx.gocache(self.slug)), extra=extra,
                      cwd=ctx.workspace.repo, log=f"{self.key}-{phase}")  # fmt: skip

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        a, s = results.get("a"), results.get("as")
        name = "cold with SBOM + signing <= 1.05 x cold without (a)"
        if a and s and a.ok and s.ok and a.cold_s is not None and s.cold_s is not None:
            limit = 1.05 * a.cold_s
            detail = f"{s.cold_s:.1f}s vs limit {limit:.1f}s ((a) {a.cold_s:.1f}s)"
            alone = s.phases.get(COSIGN_ALONE)
            if alone is not None:
                refs = s.figures.get("cosign_alone", {}).get("references", "?")
                detail += (f"; cosign alone signs the same {refs} references in {alone.wall_s:.1f}s "
                           f"of the {limit - a.cold_s:.1f}s allowed for SBOMs and signing")  # fmt: skip
            return [Target(name, s.cold_s <= limit, detail)]
        return [Target(name, None, "needs cases a and as")]


def cosign_sign_argv(key: Path) -> list[str]:
    """crossbuild's own `cosign sign` line for a key file (crossbuild.cosign.sign_argv), references appended."""
    return ["cosign", "sign", "--yes", "--key", str(key), "--tlog-upload=false"]  # loopback: plain HTTP to cosign
