"""sweep.md, sweep.json and sweep.png from the growth sweep's points (bench/sweep.py).

The chart needs matplotlib, the `bench` extra, as bench/report.py's does; without it
the table and the JSON are still written and one line says what the chart needs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cases import bakealone
from bench.context import Context
from bench.report import go_version, target_lines
from bench.results import Target, human, secs
from bench.sweepplan import FLAT_WITHIN, RSS_LIMIT_MIB, Grid, PointResult, cpu_s, ratios

__all__ = ["chart", "json_data", "markdown", "table", "target_lines"]


def _x(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}x"


def table(results: Sequence[PointResult]) -> str:
    """One row per point: the floor and crossbuild side by side, the ratios, crossbuild's RSS and bytes."""
    lowest = min((r for _, r in ratios(results)), default=None)
    head = ("| point (services x platforms) | images | floor s | crossbuild s | ratio | ratio / lowest "
            "| buildx bake alone s | (floor + bake alone) / floor "
            "| floor CPU s | crossbuild CPU s | CPU ratio | crossbuild peak RSS | crossbuild pushed "
            "| notes |")  # fmt: skip
    rows = [head, "|" + "---|" * 14]
    for r in results:
        a, f = r.crossbuild, r.floor
        rel = r.ratio / lowest if r.ratio is not None and lowest else None
        rss = r.rss_mib
        tools = (("floor", f), ("crossbuild", a))
        notes = "; ".join(
            [f"{name}: {c.status}" for name, c in tools if c.status != "ok"]
            + [f"{name} {n}" for name, c in tools for n in c.notes if "in parallel" not in n]
        )
        rows.append(
            f"| {r.point.label} | {r.point.work} | {secs(f.cold_s)} | {secs(a.cold_s)} | {_x(r.ratio)} "
            f"| {_x(rel, 3)} | {secs(bakealone.wall_s(r.bake))} | {_x(r.bound_ratio)} "
            f"| {secs(cpu_s(f))} | {secs(cpu_s(a))} | {_x(r.cpu_ratio)} "
            f"| {'n/a' if rss is None else f'{rss:.1f} MiB'} | {human(a.bytes_cold)} | {notes} |"
        )
    return "\n".join(rows)


def markdown(ctx: Context, grid: Grid, results: Sequence[PointResult], targets: list[Target], total_s: float) -> str:
    services = sorted({r.point.services for r in results})
    platforms = max((r.point.platforms for r in results), key=len, default=())
    lines = [
        f"# crossbuild growth sweep ({grid.name}, run {ctx.run_id})",
        "",
        f"Points: services {{{', '.join(map(str, services))}}} x platforms "
        f"{{{', '.join(str(n) for n in sorted({len(r.point.platforms) for r in results}))}}} "
        f"(the first N of {', '.join(platforms)}); every point's monorepo has {grid.packages} library packages "
        f"(+ pkg/version) of {grid.funcs} transform functions each; {os.cpu_count()} cores; host {go_version()}; "
        f"{total_s:.0f} s in all.",
        "",
        table(results),
        "",
        "Each point and case ran cold: a fresh GOCACHE, `docker buildx prune --builder crossbuild -af`, "
        "crossbuild's build/ removed, its own registry prefix. The floor is `go build` of every service, one "
        "process per platform, platforms in parallel; crossbuild is `invoke image.multiarch` with VERIFY=0 "
        "SBOM=0 SIGN=off; buildx bake alone is case (x) after them: `docker buildx bake` of every image from "
        "the floor's binaries with new bytes, nothing of crossbuild's (bench/cases/bakealone.py), so "
        "(floor + bake alone) / floor is the ratio a tool that compiles with go and assembles with buildx "
        "reaches at best. ratio = crossbuild's wall time / the floor's at the same point; flat means the "
        f"highest ratio is at most {1 + FLAT_WITHIN:.2f} x the lowest. CPU = the bench's children + "
        "buildkitd (/proc). Peak RSS = the last VmHWM read (every 50 ms) of the invoke process the bench "
        "started, not of go, docker or buildkitd.",
        f"Bytes pushed: {ctx.meter.method} (distinct digests newly linked into the point's repositories).",
        "",
        "## Targets",
        "",
        *[f"- {t.verdict} {t.name}: {t.detail}" for t in targets],
        "",
        "## Machine load during each timed run",
        "",
        "| point | case | wall s | waited for idle s | machine busy CPU-s | bench CPU-s | other CPU-s |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r.point.label} | {c.label} | {cpu.get('wall_s')} | {cpu.get('waited_for_idle_s')} | "
          f"{cpu.get('machine_busy_cpu_s')} | {cpu.get('bench_cpu_s')} | {cpu.get('other_cpu_s')} |"
          for r in results for c in (r.floor, r.crossbuild) for cpu in c.cpu.values()],
        "",
        "## Commands",
        "",
    ]  # fmt: skip
    for r in results:
        for c in (r.floor, r.crossbuild):
            lines += [f"### {r.point.label} {c.label}", "", "```sh", *dict.fromkeys(c.commands), "```", ""]
    return "\n".join(lines)


def json_data(
    ctx: Context, grid: Grid, results: Sequence[PointResult], targets: list[Target], chart_how: str, total_s: float
) -> dict[str, Any]:
    return {
        "size": grid.name,
        "run_id": ctx.run_id,
        "grid": {
            "services": list(grid.services),
            "platforms": list(grid.platforms),
            "packages": grid.packages,
            "funcs": grid.funcs,
            "fields": grid.fields,
        },
        "cores": os.cpu_count(),
        "bytes_method": ctx.meter.method,
        "points": [
            {
                "point": r.point.label,
                "services": r.point.services,
                "platforms": list(r.point.platforms),
                "images": r.point.work,
                "packages": r.packages,
                "go_lines": r.go_lines,
                "ratio": r.ratio,
                "cpu_ratio": r.cpu_ratio,
                "bound_ratio": r.bound_ratio,
                "crossbuild_peak_rss_mib": r.rss_mib,
                "floor": r.floor.to_json(),
                "crossbuild": r.crossbuild.to_json(),
                "bake_alone": r.bake.to_json() if r.bake is not None else None,
            }
            for r in results
        ],
        "targets": [{"target": t.name, "pass": t.passed, "detail": t.detail} for t in targets],
        "setup_commands": ctx.shell.setup_log,
        "chart": chart_how,
        "total_s": total_s,
    }


def _by_services(results: Sequence[PointResult]) -> list[list[PointResult]]:
    """The points in runs of the same service count, fewest platforms first: one line each in the chart."""
    counts = sorted({r.point.services for r in results})
    return [sorted((r for r in results if r.point.services == n), key=lambda r: r.point.work) for n in counts]


def chart(grid: Grid, results: Sequence[PointResult], path: Path) -> bool:
    """Time, ratio and crossbuild's RSS against services x platforms, one line per service count (its platforms
    1, 3, 5 along it); False when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: PLC0415 - optional: the bench extra
    except ImportError:
        path.unlink(missing_ok=True)  # not a chart of an earlier run next to this run's table
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (top, mid, low) = plt.subplots(3, 1, figsize=(9, 11), sharex=True, height_ratios=(3, 2, 2))
    markers = "os^Dv<>p"
    got = ratios(results)
    if got:  # the band a flat ratio stays in
        lowest = min(r for _, r in got)
        mid.axhspan(lowest, lowest * (1 + FLAT_WITHIN), color="#bbddbb", alpha=0.5,
                    label=f"flat: within {FLAT_WITHIN:.0%} of the lowest ratio")  # fmt: skip
    low.axhline(RSS_LIMIT_MIB, color="#cc3311", linestyle=":", label=f"limit {RSS_LIMIT_MIB} MiB")
    for n, line in enumerate(_by_services(results)):
        mark, svc = markers[n % len(markers)], f"{line[0].point.services} svc"
        tools = (("floor", "#999999", [(r.point.work, r.floor) for r in line]),
                 ("crossbuild", "#4477aa", [(r.point.work, r.crossbuild) for r in line]))  # fmt: skip
        for name, color, cases in tools:
            pts = [(work, c.cold_s, cpu_s(c)) for work, c in cases if c.ok and c.cold_s]
            top.plot([p[0] for p in pts], [p[1] for p in pts], f"{mark}-", color=color, label=f"{name}, {svc}: wall")
            top.plot([p[0] for p in pts], [p[2] for p in pts], f"{mark}:", color=color, alpha=0.5, markersize=4,
                     label=f"{name}, {svc}: CPU")  # fmt: skip
        for r in line:
            if r.crossbuild.cold_s:
                top.annotate(r.point.label, (r.point.work, r.crossbuild.cold_s), textcoords="offset points",
                             xytext=(4, 4), fontsize=8)  # fmt: skip
        rs = [(r.point.work, r.ratio, r.cpu_ratio) for r in line if r.ratio is not None]
        mid.plot([g[0] for g in rs], [g[1] for g in rs], f"{mark}-", color="#4477aa", label=f"{svc}: wall")
        bound = [(r.point.work, b) for r in line if (b := r.bound_ratio) is not None]
        mid.plot([g[0] for g in bound], [g[1] for g in bound], f"{mark}--", color="#999999",
                 label=f"{svc}: floor + buildx bake alone")  # fmt: skip
        mid.plot([g[0] for g in rs], [g[2] for g in rs], f"{mark}:", color="#4477aa", alpha=0.5, markersize=4,
                 label=f"{svc}: CPU")  # fmt: skip
        rss = [(r.point.work, mib) for r in line if (mib := r.rss_mib) is not None]
        low.plot([p[0] for p in rss], [p[1] for p in rss], f"{mark}-", color="#ee7733", label=svc)
    top.set_xscale("log")
    top.set_yscale("log")
    top.set_ylabel("seconds, cold (log)")
    top.legend(fontsize=7, ncol=2)
    top.set_title(f"crossbuild growth sweep ({grid.name}, {grid.packages} packages, {os.cpu_count()} cores)")
    mid.set_ylabel("crossbuild / floor")
    mid.legend(fontsize=7, ncol=2)
    low.set_ylim(0, RSS_LIMIT_MIB * 1.2)
    low.set_ylabel("crossbuild's own peak RSS, MiB")
    low.set_xlabel("services x platforms (images shipped), log")
    low.legend(fontsize=7)
    ticks: dict[int, list[str]] = {}
    for r in sorted(results, key=lambda r: r.point.work):
        ticks.setdefault(r.point.work, []).append(r.point.label)
    low.set_xticks(list(ticks), [f"{work}\n{', '.join(labels)}" for work, labels in ticks.items()], fontsize=7)
    low.minorticks_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
