"""(v) verify in parallel: `invoke verify` of every service x platform against its parts, each alone.

Setup, untimed: the images published by `invoke image.multiarch` with VERIFY=0 (as case a),
under the case's prefix, so nothing is in the docker daemon and no smoke probe is cached:
the verify measured is a user's first `invoke verify` of a release.

Timed phases, one after the other, each after the idle wait:

  verify      `invoke verify` (smoke runs included) of every service on every platform
  smoke-each  every smoke run verify made, one at a time, the way verify makes it
              (bench/verifyparts.py smoke): its slowest one
  layers      every layer of every platform image fetched once from the registry with
              verify's REGISTRY_PARALLEL readers, then once one by one
              (bench/verifyparts.py layers): the faster of the two
  docker-cli  the docker CLI alone pulls, runs and removes the same images, no registry
              checks (bench/verifyparts.py docker): the daemon's share of verify

The target: verify <= 2 x the slowest single smoke run + the layer reads. Beside it, for
the reader judging a FAIL: the machine's busy CPU seconds in verify and in docker-cli.
On a machine whose cores stay busy, busy CPU / cores is a floor no tool driving this
docker daemon can beat, and docker-cli is what the daemon's work alone takes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.cases.base import Case
from bench.context import Context
from bench.results import CaseResult, Target, human
from bench.workspace import PROJECT

VERIFY, SMOKE, LAYERS, DOCKER = "verify", "smoke-each", "layers", "docker-cli"
PARTS = {SMOKE: "smoke", LAYERS: "layers", DOCKER: "docker"}  # phase -> bench/verifyparts.py part
SETTINGS = {"SBOM": "0", "SIGN": "off"}  # as case a published them: no SBOM to expect, nothing signed


class VerifyParallel(Case):
    key = "v"
    slug = "v-verify"
    title = "crossbuild verify, every service x platform"
    phases = (VERIFY, SMOKE, LAYERS, DOCKER)
    repeatable = False  # its smoke runs are containers, not our children: their CPU counts as "other"

    def setup(self, ctx: Context, res: CaseResult) -> None:
        extra = {"REGISTRY_PREFIX": res.prefix, "VERIFY": "0", **SETTINGS}
        ctx.shell.run(ctx.crossbuild("image.multiarch"), env=ctx.env(ctx.gocache(self.slug)), extra=extra,
                      cwd=ctx.workspace.repo, log=f"{self.key}-setup")  # fmt: skip

    def _report(self, ctx: Context) -> Path:
        return ctx.case_dir(self.slug) / "verify.json"

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        if phase == VERIFY:
            extra = {"REGISTRY_PREFIX": res.prefix, **SETTINGS}
            ctx.shell.run(ctx.crossbuild("verify"), env=ctx.env(), extra=extra, cwd=ctx.workspace.repo,
                          log=f"{self.key}-{phase}")  # fmt: skip
            report = ctx.workspace.repo / "build" / "reports" / "verify.json"
            self._report(ctx).write_text(report.read_text())
            return
        part = PARTS[phase]
        argv = [sys.executable, "-m", "bench.verifyparts", part, "--report", str(self._report(ctx)),
                "--out", str(ctx.case_dir(self.slug) / f"{part}.json")]  # fmt: skip
        ctx.shell.run(argv, env=ctx.env(), cwd=PROJECT, log=f"{self.key}-{phase}")

    def finish(self, ctx: Context, res: CaseResult) -> None:
        report = json.loads(self._report(ctx).read_text())
        rows = [p for r in report for p in r["platforms"]]
        smoked = [p for p in rows if p.get("smoke") == "ok"]
        res.figures["verified"] = {"images": len(report), "platforms": len(rows), "smoke_runs": len(smoked)}
        if len(smoked) != len(rows):
            res.notes.append(f"only {len(smoked)} of {len(rows)} platforms smoke-ran: {_not_run(rows)}")
        for part in PARTS.values():
            res.figures[part] = json.loads((ctx.case_dir(self.slug) / f"{part}.json").read_text())

    def tables(self, results: Mapping[str, CaseResult]) -> list[str]:
        v = results.get(self.key)
        if v is None or v.status != "ok" or VERIFY not in v.phases or "smoke" not in v.figures:
            return []
        return [figures_table(v)]

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        name = "verify in parallel: verify <= 2 x slowest smoke run + layer reads"
        v = results.get(self.key)
        parts = bound(v) if v is not None and v.status == "ok" else None
        if v is None or parts is None:
            return [Target(name, None, v.status if v is not None and v.status != "ok" else "needs case v")]
        verify_s, smoke_s, layers_s = parts
        limit = 2 * smoke_s + layers_s
        detail = (f"{verify_s:.1f}s vs limit {limit:.1f}s = 2 x {smoke_s:.2f}s + {layers_s:.2f}s "
                  f"(ratio {verify_s / limit:.2f})")  # fmt: skip
        floor = cpu_floor(v)
        if floor:
            detail += f"; {floor}"
        return [Target(name, verify_s <= limit, detail)]


def _not_run(rows: list[dict[str, Any]]) -> str:
    return "; ".join(f"{p['platform']} {p.get('result')}: {p.get('note') or p.get('problems')}" for p in rows
                     if p.get("smoke") != "ok")[:300]  # fmt: skip


def bound(v: CaseResult) -> tuple[float, float, float] | None:
    """(verify s, slowest single smoke run s, layer reads s) or None when a part is missing."""
    phase = v.phases.get(VERIFY)
    slowest = (v.figures.get("smoke") or {}).get("slowest")
    layers = v.figures.get("layers") or {}
    if phase is None or not slowest or "parallel_s" not in layers:
        return None
    return phase.wall_s, float(slowest["seconds"]), layer_reads(layers)


def cpu_floor(v: CaseResult, cores: int | None = None) -> str:
    """What the machine allowed: verify's and the docker CLI's busy CPU over the cores ("" when not measured)."""
    cores = cores or os.cpu_count() or 1
    verify, docker = v.phases.get(VERIFY), v.phases.get(DOCKER)
    if verify is None or docker is None or "machine_busy_cpu_s" not in verify.cpu:
        return ""
    busy = verify.cpu["machine_busy_cpu_s"]
    docker_busy = docker.cpu.get("machine_busy_cpu_s", 0.0)
    return (f"verify kept the machine busy {busy:.1f} CPU-s (>= {busy / cores:.1f}s on {cores} cores); "
            f"the docker CLI alone pulled and ran the same images in {docker.wall_s:.1f}s, "
            f"{docker_busy:.1f} CPU-s (>= {docker_busy / cores:.1f}s)")  # fmt: skip


def layer_reads(layers: Mapping[str, Any]) -> float:
    """The layer reads of the target: the faster of the two fetches, the tighter bound."""
    return min(float(layers["parallel_s"]), float(layers["sequential_s"]))


def figures_table(v: CaseResult) -> str:
    """What (v) measured, side by side: verify, its smoke runs alone, its layer reads."""
    smoke, layers = v.figures["smoke"], v.figures["layers"]
    runs = smoke["runs"]
    slowest = smoke["slowest"]
    total = sum(r["seconds"] for r in runs)
    verified = v.figures.get("verified", {})
    rows = [
        "| measured | seconds | what |",
        "|---|---|---|",
        f"| `invoke verify` | {v.phases[VERIFY].wall_s:.2f} | {verified.get('images')} images, "
        f"{verified.get('platforms')} platforms, {verified.get('smoke_runs')} smoke runs, probe cache empty |",
        f"| slowest single smoke run | {slowest['seconds']:.2f} | {slowest['service']} {slowest['platform']} "
        f"`{' '.join(slowest['args'])}` (Daemon.run: create, start, wait, logs, remove) |",
        f"| all smoke runs one by one | {total:.2f} | {len(runs)} runs, sum |",
        f"| all smoke runs at once | {smoke.get('all_at_once_s', 0.0):.2f} | the same runs, "
        f"{smoke.get('parallel')} at a time (information: what the daemon and the cores allow) |",
        f"| layer reads, {layers['parallel']} at a time | {layers['parallel_s']:.2f} | {layers['layers']} layers, "
        f"{human(layers['bytes'])}, through crossbuild's registry client |",
        f"| layer reads, one by one | {layers['sequential_s']:.2f} | the same blobs again, sequential |",
        f"| layer reads in the target | {layer_reads(layers):.2f} | the faster of the two |",
    ]
    docker, phase = v.figures.get("docker"), v.phases.get(DOCKER)
    if docker and phase is not None:
        busy = phase.cpu.get("machine_busy_cpu_s", 0.0)
        rows.append(
            f"| the docker CLI alone | {phase.wall_s:.2f} | pull {docker['pull_s']:.2f} ({docker['pull_parallel']} at "
            f"a time), run {docker['run_s']:.2f} ({docker['parallel']} at a time), rmi {docker['rmi_s']:.2f}: "
            f"{docker['runs']} images, no registry checks; machine busy {busy:.1f} CPU-s |"
        )
    verify_busy = v.phases[VERIFY].cpu.get("machine_busy_cpu_s")
    if verify_busy is not None:
        cores = os.cpu_count() or 1
        rows.append(f"| busy CPU / cores in verify | {verify_busy / cores:.2f} | {verify_busy:.1f} CPU-s on "
                    f"{cores} cores: the floor for this work on this machine |")  # fmt: skip
    by_platform: dict[str, list[float]] = {}
    for r in runs:
        by_platform.setdefault(r["platform"], []).append(r["seconds"])
    for platform, secs in by_platform.items():
        rows.append(f"| smoke runs on {platform} | {min(secs):.2f}-{max(secs):.2f} | {len(secs)} runs, min-max |")
    return "\n".join(rows)
