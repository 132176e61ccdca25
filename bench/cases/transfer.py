"""(t) Memory-bounded transfers: offline bundles of images with --transfer-size (1 GiB) of random layers,
against `skopeo copy` of the same images, each measured in the same run (issue 15, item 4).

Untimed setup writes IMAGES images of LAYERS incompressible layers each (bench/images.py) as an OCI
layout and pushes them with skopeo to the registry on :5000 under the case's prefix: the first ones
as the monorepo's service images at its version tag, the rest as third-party images (`--image`), so
`invoke bundle` takes both of its paths. Then, each phase timed on its own, one platform (linux/amd64):

  crossbuild-create  invoke bundle --platform linux/amd64 --image ...      :5000 -> one .tar.gz
  skopeo-create      skopeo copy docker://:5000/<image> oci:<dir>:<name>   :5000 -> an OCI layout, per image
  crossbuild-load    invoke bundle.load <archive> --registry <scratch>     the .tar.gz -> an empty registry
  skopeo-load        skopeo copy oci:<dir>:<name> docker://<scratch>/...   the layout -> an empty registry
  skopeo-copy        skopeo copy docker://:5000/... docker://<scratch>/... :5000 -> an empty registry

The scratch registry (bench/scratchregistry.py) runs on its own loopback port and is emptied before
each load: into :5000 itself skopeo would mount the blobs from the source repositories and send
nothing. skopeo-create/-load are the like-for-like comparisons (each side writes or reads local
files); skopeo-copy, registry to registry with nothing on disk, is the bar the issue names: each of
crossbuild's phases is held to it. Throughput is the layers' bytes over the phase's wall time. The
peak RSS is the VmHWM of crossbuild's own process (bench/shell.py), sampled while it runs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bench import images
from bench.cases.base import Case
from bench.context import Context
from bench.regstats import REGISTRY, REGISTRY_ADDR
from bench.results import CaseResult, Target, human
from bench.scratchregistry import ScratchRegistry
from bench.shell import CaseFailed, Unavailable

PLATFORM = "linux/amd64"
IMAGES = 4
LAYERS = 4  # per image: 16 layers of 64 MiB for 1 GiB
RSS_LIMIT = 150 << 20
RATIO = 0.8
THIRD_PARTY_TAG = "1.0"
CROSSBUILD = ("crossbuild-create", "crossbuild-load")


class Transfer(Case):
    key = "t"
    slug = "t-transfer"
    title = "bundle transfer vs skopeo"
    phases = ("crossbuild-create", "skopeo-create", "crossbuild-load", "skopeo-load", "skopeo-copy")
    repeatable = False  # a second attempt would push the whole source again
    in_default = False  # minutes and gigabytes: `--cases t` or `make bench.transfer`
    builds = False  # no BuildKit: the images are written by bench/images.py

    def prepare(self, ctx: Context, res: CaseResult) -> None:
        if shutil.which("skopeo") is None:
            raise Unavailable("skopeo not found (make tools installs it)")
        self.registry = ScratchRegistry(ctx.work / "t-scratch-registry")

    def setup(self, ctx: Context, res: CaseResult) -> None:
        """The source images, pushed to :5000; the scratch registry started."""
        work = ctx.case_dir(self.slug)
        self.total = int(ctx.args.transfer_size)
        services = ctx.workspace.services[:IMAGES]
        self.version = ctx.workspace.version["version"]
        names = services + [f"thirdparty-{n}" for n in range(IMAGES - len(services))]
        layout = work / "source"
        made = images.write_layout(layout, names, images.plan(self.total, IMAGES, LAYERS), ctx.args.seed)
        self.refs: dict[str, str] = {}  # layout name -> repository:tag under the prefix, on any registry
        for img in made:
            tag = self.version if img.name in services else THIRD_PARTY_TAG
            self.refs[img.name] = f"{res.prefix.removeprefix(REGISTRY + '/')}/{img.name}:{tag}"
        self.digests = {img.name: img.manifest.digest for img in made}
        self.layer_bytes = sum(img.layer_bytes for img in made)
        res.figures["layer_bytes"] = self.layer_bytes
        for name, ref in self.refs.items():
            self.skopeo(ctx, f"{self.key}-setup", f"oci:{layout}:{name}", f"docker://{REGISTRY_ADDR}/{ref}")
        shutil.rmtree(layout)
        self.third_party = [f"{REGISTRY}/{self.refs[n]}" for n in names[len(services) :]]
        self.archive: Path | None = None
        self.oci = work / "skopeo-oci"
        self.registry.start()
        res.notes.append(
            f"{len(made)} images ({len(services)} services at {self.version}, {len(self.third_party)} third-party), "
            f"{sum(len(i.layers) for i in made)} random layers, {human(self.layer_bytes)} of layers, {PLATFORM}; "
            f"loads go to an empty docker-registry on {self.registry.address}"
        )

    def skopeo(self, ctx: Context, log: str, src: str, dest: str) -> None:
        argv = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", src, dest]
        ctx.shell.run(argv, env=ctx.env(), log=log)

    def before(self, ctx: Context, res: CaseResult, phase: str) -> None:
        if phase in ("skopeo-load", "skopeo-copy"):
            self.check_loaded(res, previous={"skopeo-load": "crossbuild-load", "skopeo-copy": "skopeo-load"}[phase])
        if phase in ("crossbuild-load", "skopeo-load", "skopeo-copy"):
            self.registry.empty()

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        log = f"{self.key}-{phase}"
        dest = self.registry.address
        if phase == "crossbuild-create":
            argv = [*ctx.crossbuild("bundle"), "--platform", PLATFORM]
            for ref in self.third_party:
                argv += ["--image", ref]
            prefix = res.prefix.removesuffix("/")
            ctx.shell.run(argv, env=ctx.env(), extra={"REGISTRY_PREFIX": prefix}, cwd=ctx.workspace.repo, log=log)
            found = sorted((ctx.workspace.repo / "build" / "bundles").glob("*.tar.gz"))
            if len(found) != 1:
                raise CaseFailed(f"invoke bundle wrote {len(found)} archives, expected one")
            self.archive = found[0]
        elif phase == "skopeo-create":
            for name, ref in self.refs.items():
                self.skopeo(ctx, log, f"docker://{REGISTRY_ADDR}/{ref}", f"oci:{self.oci}:{name}")
        elif phase == "crossbuild-load":
            if self.archive is None:
                raise CaseFailed("no archive: crossbuild-create did not run")
            argv = [*ctx.crossbuild("bundle.load"), str(self.archive), "--registry", dest]
            ctx.shell.run(argv, env=ctx.env(), cwd=ctx.workspace.repo, log=log)
        elif phase == "skopeo-load":
            for name, ref in self.refs.items():
                self.skopeo(ctx, log, f"oci:{self.oci}:{name}", f"docker://{dest}/{ref}")
        elif phase == "skopeo-copy":
            for ref in self.refs.values():
                self.skopeo(ctx, log, f"docker://{REGISTRY_ADDR}/{ref}", f"docker://{dest}/{ref}")

    def check_loaded(self, res: CaseResult, previous: str) -> None:
        """Every image in the scratch registry under its tag with its source digest, checked by skopeo
        (an independent tool); a registry accepts a manifest only once it holds every blob it names."""
        for name, ref in self.refs.items():
            url = f"docker://{self.registry.address}/{ref}"
            proc = subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", url],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0 or proc.stdout.strip() != self.digests[name]:
                raise CaseFailed(f"after {previous}: {url} is {proc.stdout.strip() or proc.stderr.strip()[-200:]}, "
                                 f"not {self.digests[name]}")  # fmt: skip
        stored = self.registry.stored_bytes()
        if stored < self.layer_bytes:
            raise CaseFailed(f"after {previous}: the registry stores {human(stored)}, less than the layers")
        res.notes.append(f"{previous}: {len(self.refs)} digests checked with skopeo, {human(stored)} stored")

    def finish(self, ctx: Context, res: CaseResult) -> None:
        try:
            self.check_loaded(res, previous="skopeo-copy")
        finally:
            self.cleanup(ctx)
        for phase in self.phases:
            rate = _rate(res, phase, self.layer_bytes)
            if rate is not None:
                res.figures[f"{phase} MiB/s"] = round(rate / (1 << 20), 1)

    def cleanup(self, ctx: Context) -> None:
        """The scratch registry, the archive and the skopeo layout: gigabytes nobody reads again."""
        self.registry.close()
        if self.archive is not None:
            self.archive.unlink(missing_ok=True)
        shutil.rmtree(self.oci, ignore_errors=True)

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        return transfer_targets(results.get(self.key))


def _rate(res: CaseResult, phase: str, layer_bytes: int) -> float | None:
    p = res.phases.get(phase)
    return layer_bytes / p.wall_s if p and p.wall_s > 0 else None


def transfer_targets(res: CaseResult | None) -> list[Target]:
    """Peak RSS of each crossbuild phase under 150 MiB; its throughput >= 0.8 x skopeo's, against the
    like-for-like skopeo phase and against skopeo's registry-to-registry copy."""
    names = [f"transfer: {p} peak RSS < {RSS_LIMIT >> 20} MiB" for p in CROSSBUILD]
    pairs = [("crossbuild-create", "skopeo-create"), ("crossbuild-create", "skopeo-copy"),
             ("crossbuild-load", "skopeo-load"), ("crossbuild-load", "skopeo-copy")]  # fmt: skip
    names += [f"transfer: {ours} >= {RATIO} x {theirs} (throughput)" for ours, theirs in pairs]
    if res is None or res.status != "ok" or not all(p in res.phases for p in Transfer.phases):
        why = "case t not run" if res is None else res.status if res.status != "ok" else "a phase is missing"
        return [Target(name, None, why) for name in names]
    out = []
    for name, phase in zip(names, CROSSBUILD, strict=False):
        peak = res.phases[phase].peak_rss.get("invoke")
        if peak is None:
            out.append(Target(name, None, "no VmHWM sample of invoke"))
        else:
            out.append(Target(name, peak < RSS_LIMIT, f"{peak / (1 << 20):.0f} MiB"))
    total = int(res.figures.get("layer_bytes", 0))
    for name, (ours, theirs) in zip(names[len(CROSSBUILD) :], pairs, strict=True):
        a, b = _rate(res, ours, total), _rate(res, theirs, total)
        if not a or not b:
            out.append(Target(name, None, "no time"))
            continue
        times = f"{res.phases[ours].wall_s:.1f}s vs {res.phases[theirs].wall_s:.1f}s for {human(total)}"
        detail = f"{a / (1 << 20):.0f} vs {b / (1 << 20):.0f} MiB/s = {a / b:.2f} x ({times})"
        out.append(Target(name, a >= RATIO * b, detail))
    return out
