"""(e) ko: `ko build` of every service for every platform onto a FROM-scratch base index.

ko is installed with `go install` (the newest release that installs, or
--ko-version) and the base index is pushed once; neither is timed. The version
stamp reaches ko's -ldflags through .ko.yaml and BENCH_* variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bench.cases.edits import EditPhases
from bench.context import PLATFORMS, Context, say
from bench.regstats import REGISTRY, image_exists
from bench.results import CaseResult, Target, why_missing
from bench.shell import Unavailable
from bench.workspace import BUILDER

KO_MODULE = "github.com/google/ko"
BASE_SCRATCH = f"{REGISTRY}/bench/base:scratch"


class Ko(EditPhases):
    key = "e"
    slug = "e-ko"
    title = "ko"

    def prepare(self, ctx: Context, res: CaseResult) -> None:
        self.ko, version = ko_binary(ctx)
        scratch_base(ctx)
        res.notes.append(f"ko {version}, base {BASE_SCRATCH}, -ldflags via .ko.yaml, --sbom=none")

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        ws = ctx.workspace
        v = ws.version
        extra = {
            "KO_DOCKER_REPO": res.prefix,
            "KO_DEFAULTBASEIMAGE": BASE_SCRATCH,
            "BENCH_VERSION": v["version"],
            "BENCH_COMMIT": v["commit"],
            "BENCH_DATE": v["date"],
            "BENCH_TREE_STATE": v["tree_state"],
        }
        argv: list[str | os.PathLike[str]] = [
            self.ko, "build", f"--platform={','.join(ws.platforms)}", "--base-import-paths",
            f"--tags={v['version']},latest", "--sbom=none", "--insecure-registry",
            *[f"./cmd/{s}" for s in ws.services]]  # fmt: skip
        ctx.shell.run(argv, env=ctx.env(ctx.gocache(self.slug)), extra=extra, cwd=ws.repo, log=f"{self.key}-{phase}")

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        a, e = results.get("a"), results.get("e")
        if not (a and e and a.ok and e.ok and a.cold_s and e.cold_s and a.warm_s is not None and e.warm_s is not None):
            return [Target("not slower than (e) ko", None, why_missing(e, "e"))]
        return [
            Target("not slower than (e) ko, cold", a.cold_s <= e.cold_s, f"{a.cold_s:.1f}s vs ko {e.cold_s:.1f}s"),
            Target("not slower than (e) ko, warm", a.warm_s <= e.warm_s, f"{a.warm_s:.2f}s vs ko {e.warm_s:.2f}s"),
        ]


def ko_binary(ctx: Context) -> tuple[Path, str]:
    """tools/bin/ko-<version>, installed with `go install` the first time."""
    bindir = ctx.tools / "bin"
    if ctx.args.ko_version:
        versions = [ctx.args.ko_version]
    else:
        listed = subprocess.run(["go", "list", "-m", "-versions", KO_MODULE], capture_output=True, text=True,
                                env={**os.environ, "GOFLAGS": "-mod=mod"}, timeout=120, check=False)  # fmt: skip
        if listed.returncode != 0:
            raise Unavailable(f"go list -m -versions {KO_MODULE} failed: {listed.stderr.strip()[-200:]}")
        versions = [v for v in listed.stdout.split()[1:] if "-" not in v][::-1][:3]
    errors = []
    for v in versions:  # newest first
        exe = bindir / f"ko-{v}"
        if exe.is_file():
            return exe, v
        say(f"installing ko {v} with go install (not timed)")
        gobin = ctx.tools / f"gobin-{v}"
        proc = ctx.shell.run(["go", "install", f"{KO_MODULE}@{v}"],
                             env={**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-mod=mod"},
                             log="setup", check=False, timeout=1200)  # fmt: skip
        if proc.returncode == 0 and (gobin / "ko").is_file():
            bindir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(gobin / "ko"), exe)
            shutil.rmtree(gobin, ignore_errors=True)
            return exe, v
        errors.append(f"{v}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    raise Unavailable("go install ko failed: " + "; ".join(map(str, errors)))


def scratch_base(ctx: Context) -> None:
    """A multi-arch FROM-scratch base index for ko, pushed once."""
    if image_exists(BASE_SCRATCH) and not ctx.args.rebuild_images:
        return
    build = ctx.tools / "base-scratch"
    build.mkdir(parents=True, exist_ok=True)
    (build / "Dockerfile").write_text("FROM scratch\nLABEL org.opencontainers.image.title=bench-base\n")
    argv: list[str | os.PathLike[str]] = [
        "docker", "buildx", "build", "--builder", BUILDER, "--platform", ",".join(PLATFORMS),
        "--provenance=false", "-t", BASE_SCRATCH, "--push", build]  # fmt: skip
    ctx.shell.run(argv, env=ctx.env(), log="setup")
