"""(x) buildx bake alone: BuildKit's time for the images of a change that rebuilt every binary.

crossbuild's cold run and its (i) edit both end the same way: every service's binary is new
on every platform, and `docker buildx bake` makes and pushes an image of each. This case
times that step with nothing of crossbuild's: the same builder, registry and export options
(`type=image,push-by-digest=true,compression=gzip,compression-level=1`, a one-platform build
still an index, no provenance), a bake file and Dockerfiles written here, and binaries built
here with `go build` (untimed, with the floor's Go cache when (f) ran before).

Before its one timed phase, untimed, each binary gets 16 random bytes appended and is laid out
as crossbuild lays out a layer (`<platform>/<service>/usr/local/bin/<service>`, every entry at
one fixed time) in a directory of a new name: BuildKit has seen none of these files, as after
a real edit. The figure goes beside the cold and (i) targets: the floor plus this is what a
tool that compiles with go and assembles with buildx, as crossbuild does, cannot go under.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.cases.base import Case
from bench.context import Context
from bench.measure import Phase
from bench.results import CaseResult
from bench.shell import go_env_for
from bench.workspace import BUILDER

IMAGES = "images"
EPOCH = 1704164645  # any fixed time, as crossbuild sets the commit's on every entry
OUTPUT = "type=image,name={name},push-by-digest=true,name-canonical=true,push=true,compression=gzip,compression-level=1"
DOCKERFILE = """\
FROM scratch
ARG TARGETPLATFORM
COPY ${{TARGETPLATFORM}}/{service}/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/{service}"]
"""


class BakeAlone(Case):
    key = "x"
    slug = "x-bake-alone"
    title = "buildx bake alone: every image from new binaries"
    phases = (IMAGES,)
    floor_slug = "f-floor"  # whose Go cache the untimed go build uses, when that case ran before

    def _bin(self, ctx: Context) -> Path:
        return ctx.case_dir(self.slug) / "bin"

    def setup(self, ctx: Context, res: CaseResult) -> None:
        ws, case = ctx.workspace, ctx.case_dir(self.slug)
        floor_cache = ctx.gocache(self.floor_slug)
        env = ctx.env(floor_cache if floor_cache.is_dir() else ctx.gocache(self.slug))
        pkgs = [f"./cmd/{s}" for s in ws.services]

        def build(platform: str) -> None:
            out = self._bin(ctx) / platform
            out.mkdir(parents=True, exist_ok=True)
            argv = ["go", "build", "-buildvcs=false", "-trimpath", "-ldflags", ws.ldflags(), "-o", f"{out}/", *pkgs]
            ctx.shell.run(argv, env=env, extra=go_env_for(platform), cwd=ws.repo, log=f"{self.key}-setup")

        with ThreadPoolExecutor(max_workers=len(ws.platforms)) as pool:
            list(pool.map(build, ws.platforms))
        for service in ws.services:
            (case / f"{service}.Dockerfile").write_text(DOCKERFILE.format(service=service))

    def before(self, ctx: Context, res: CaseResult, phase: str) -> None:
        ws, case = ctx.workspace, ctx.case_dir(self.slug)
        for old in case.glob("context-*"):
            shutil.rmtree(old)
        context = case / f"context-{os.urandom(4).hex()}"
        layout(self._bin(ctx), context, ws.platforms, ws.services)
        body = definition(context, case, res.prefix, ws.services, ws.platforms)
        (case / "bake.json").write_text(json.dumps(body, indent=2) + "\n")
        res.figures["bake_alone"] = {"images": len(ws.services) * len(ws.platforms), "bytes": tree_bytes(context)}

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        case = ctx.case_dir(self.slug)
        argv = ["docker", "buildx", "bake", "--builder", BUILDER, "--file", "bake.json", "--provenance", "false",
                "--progress", "plain", "--metadata-file", "metadata.json"]  # fmt: skip
        ctx.shell.run(argv, env=ctx.env(), cwd=case, log=f"{self.key}-{phase}")

    def finish(self, ctx: Context, res: CaseResult) -> None:
        metadata = json.loads((ctx.case_dir(self.slug) / "metadata.json").read_text())
        res.figures["digests"] = {s: metadata[s]["containerimage.digest"] for s in ctx.workspace.services}


def seconds(results: Mapping[str, CaseResult]) -> float | None:
    """The bake's wall time, when (x) ran and succeeded."""
    return wall_s(results.get(BakeAlone.key))


def _bake(x: CaseResult | None) -> Phase | None:
    """The bake phase of one BakeAlone result (None when it did not run or failed)."""
    return x.phases.get(IMAGES) if x is not None and x.status == "ok" else None


def wall_s(x: CaseResult | None) -> float | None:
    """The wall time of one BakeAlone result's bake (None when it did not run or failed)."""
    phase = _bake(x)
    return phase.wall_s if phase is not None else None


def beside(floor_s: float, results: Mapping[str, CaseResult], floor_busy: float | None = None,
           cores: int | None = None) -> str:  # fmt: skip
    """The clause the cold and (i) targets add: the floor plus buildx alone, and, with the floor's busy
    CPU seconds, the wall time their CPU alone needs on this machine's cores ("" without (x))."""
    bake_s = seconds(results)
    if bake_s is None:
        return ""
    clause = f"; floor + buildx bake alone (x) {bake_s:.1f}s = {floor_s + bake_s:.1f}s"
    bake_busy = busy(results)
    if floor_busy and bake_busy:
        cores = cores or os.cpu_count() or 1
        total = floor_busy + bake_busy
        clause += f"; their CPU {floor_busy:.1f} + {bake_busy:.1f} CPU-s on {cores} cores >= {total / cores:.1f}s"
    return clause


def busy(results: Mapping[str, CaseResult]) -> float | None:
    """The machine's busy CPU seconds during (x)'s bake (go, BuildKit and the registry all count)."""
    phase = _bake(results.get(BakeAlone.key))
    return phase.cpu.get("machine_busy_cpu_s") if phase is not None else None


def layout(binaries: Path, context: Path, platforms: Sequence[str], services: Sequence[str]) -> None:
    """`<platform>/<service>/usr/local/bin/<service>`: each binary with 16 random bytes appended
    (content BuildKit has not seen), every entry at EPOCH."""
    for platform in platforms:
        for service in services:
            target = context / platform / service / "usr" / "local" / "bin" / service
            target.parent.mkdir(parents=True)
            shutil.copyfile(binaries / platform / service, target)
            with target.open("ab") as f:
                f.write(os.urandom(16))
            target.chmod(0o755)
    for path in sorted(context.rglob("*"), reverse=True):
        os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
    os.utime(context, (EPOCH, EPOCH))


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def definition(context: Path, dockerfiles: Path, prefix: str, services: Sequence[str], platforms: Sequence[str]
               ) -> dict[str, object]:  # fmt: skip
    """The bake file: one target per service over every platform, exported as crossbuild exports."""
    targets: dict[str, Mapping[str, object]] = {
        service: {
            "context": str(context),
            "dockerfile": str(dockerfiles / f"{service}.Dockerfile"),
            "platforms": list(platforms),
            "args": {"BUILDKIT_MULTI_PLATFORM": "1"},
            "output": [OUTPUT.format(name=f"{prefix}/{service}")],
        }
        for service in services
    }
    return {"group": {"default": {"targets": list(services)}}, "target": targets}
