"""results.md, results.json and results.png from the cases' results and targets.

The chart needs matplotlib, the `bench` extra (`pip install -e '.[bench]'`,
which `make bench` installs); without it the table and JSON are still written
and one line says what the chart needs.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.results import STANDARD_PHASES, CaseResult, Target, by_repo, human, secs


def how_drawn(drawn: bool) -> str:
    """What drew the chart, as results.json and sweep.json record it."""
    return "matplotlib" if drawn else "none: matplotlib not installed (the bench extra)"


def closing_lines(out: Path, stem: str, drawn: bool, logs: Path, total_s: float) -> list[str]:
    """The lines a bench CLI ends with: what it wrote (<stem>.md, .json, .png), why no chart, the time."""
    png = f"{stem}.png ({how_drawn(drawn)})" if drawn else f"no {stem}.png"
    lines = [f"\nwrote {out / (stem + '.md')}, {stem}.json, {png}; logs in {logs}"]
    if not drawn:
        lines.append(f"{stem}.png not drawn: the chart needs matplotlib, the bench extra (pip install -e '.[bench]')")
    return [*lines, f"total {total_s:.0f}s"]


def table(results: Mapping[str, CaseResult]) -> str:
    """The main table: one row per case that has a cold phase, with its ratio to the floor (f)."""
    floor = results.get("f")
    fcold = floor.cold_s if floor and floor.ok else None
    head = ("| case | cold s | warm s | bytes pushed cold | bytes pushed warm | cold ratio to floor "
            "| cold s per service x arch | cold s extrapolated to all services (not measured) | notes |")  # fmt: skip
    rows = [head, "|" + "---|" * 9]
    for key, r in results.items():
        if r.phases and "cold" not in r.phases:
            continue
        name = f"({key}) {r.label}"
        if not r.ok:
            rows.append(f"| {name} | {r.status} | | | | | | | |")
            continue
        ratio = f"{r.cold_s / fcold:.2f}x" if fcold and r.cold_s else "n/a"
        unit = r.per_unit()
        extrap = (
            f"~{r.extrapolated_cold_s:.0f} (= measured x {r.total_services}/{r.services}, extrapolated)"
            if r.extrapolated_cold_s
            else ""
        )
        notes = "; ".join([f"{r.services} svc x {r.platforms} platforms", *r.notes])
        rows.append(
            f"| {name} | {secs(r.cold_s)} | {secs(r.warm_s)} | {human(r.bytes_cold)} | {human(r.bytes_warm)} "
            f"| {ratio} | {unit:.2f} | {extrap} | {notes} |"
        )
    return "\n".join(rows)


def _other_phases(r: CaseResult) -> list[str]:
    """The phases of a case that times something else than cold and warm (an edit, a sweep point)."""
    return [n for n in r.phases if n not in STANDARD_PHASES]


def phase_tables(results: Mapping[str, CaseResult]) -> list[str]:
    """One table per distinct list of phases other than cold and warm (the edits, a sweep's points),
    side by side for the cases that time them; cold and warm stay in the main table."""
    groups: dict[tuple[str, ...], list[CaseResult]] = {}
    for r in results.values():
        if others := _other_phases(r):
            groups.setdefault(tuple(others), []).append(r)
    out = []
    for phases, rs in groups.items():
        head = ["case", *[f"{p} s" for p in phases], *[f"bytes pushed {p}" for p in phases],
                *[f"pushed into ({p})" for p in phases], "notes"]  # fmt: skip
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rs:
            times = [secs(p.wall_s) if (p := r.phases.get(n)) else "n/a" for n in phases]
            sizes = [human(p.bytes_pushed) if (p := r.phases.get(n)) else "n/a" for n in phases]
            where = [by_repo(p.pushed_by_repo) if (p := r.phases.get(n)) else "n/a" for n in phases]
            shown = "cold" in r.phases  # its notes are in the main table already
            notes = "; ".join([r.status if r.status != "ok" else "", *([] if shown else r.notes)]).strip("; ")
            rows.append("| " + " | ".join([f"({r.key}) {r.label}", *times, *sizes, *where, notes]) + " |")
        out.append("\n".join(rows))
    return out


def target_lines(targets: Iterable[Target]) -> list[str]:
    return [f"{t.verdict}  {t.name}: {t.detail}" for t in targets]


def go_version() -> str:
    return subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout.strip()


def markdown(ctx: Context, results: Mapping[str, CaseResult], targets: list[Target], tables: Iterable[str] = ()) -> str:
    ws = ctx.workspace
    summary = ws.mono.summary()
    lines = [
        f"# crossbuild benchmark ({ws.size}, run {ctx.run_id})",
        "",
        f"Monorepo: {summary.get('services')} services, {summary.get('packages')} packages, "
        f"{summary.get('go_lines')} lines of Go; platforms {', '.join(ws.platforms)}; "
        f"{os.cpu_count()} cores; host {go_version()}.",
        "",
        table(results),
        "",
        *[line for t in [*phase_tables(results), *tables] for line in (t, "")],
        "Cold: fresh GOCACHE, `docker buildx prune --builder crossbuild -af`, crossbuild's build/ removed. "
        "Warm: the same command again with nothing changed.",
        f"Bytes pushed: {ctx.meter.method} (distinct digests newly linked into the case's repositories).",
        "",
        "## Targets",
        "",
        *[f"- {t.verdict} {t.name}: {t.detail}" for t in targets],
        "",
        "## Registry storage growth (new blobs registry-wide; shared blobs are stored once)",
        "",
        "Counts everything stored in the registry while the phase ran, including other processes' pushes; "
        "0 B for a case that pushed only blobs another case already stored (reproducible builds).",
        "",
        "| case | cold | warm |",
        "|---|---|---|",
        *[f"| ({k}) {r.label} | {human(_growth(r, 'cold'))} | {human(_growth(r, 'warm'))} |"
          for k, r in results.items() if r.ok],
        "",
        "## Machine load during each timed phase",
        "",
        "CPU seconds on the whole machine (/proc/stat) while the phase ran; bench = this script's children "
        "+ buildkitd; other = the rest (concurrent work on the machine, which slows the case).",
        "",
        "| case | phase | wall s | waited for idle s | machine busy CPU-s | bench CPU-s | other CPU-s |",
        "|---|---|---|---|---|---|---|",
        *[f"| ({k}) {r.label} | {ph} | {c.get('wall_s')} | {c.get('waited_for_idle_s')} | "
          f"{c.get('machine_busy_cpu_s')} | {c.get('bench_cpu_s')} | {c.get('other_cpu_s')} |"
          for k, r in results.items() for ph, c in r.cpu.items()],
        "",
    ]  # fmt: skip
    if ctx.profile:
        lines += [
            "## Warm rerun profile (crossbuild prebuilt)",
            "",
            "```",
            json.dumps(ctx.profile, indent=2),
            "```",
            "",
        ]
    lines += ["## Commands", ""]
    for k, r in results.items():
        lines += [f"### ({k}) {r.label}", "", "```sh", *dict.fromkeys(r.commands), "```", ""]
    return "\n".join(lines)


def _growth(r: CaseResult, phase: str) -> int | None:
    p = r.phases.get(phase)
    return p.registry_growth if p else None


def json_data(
    ctx: Context, results: Mapping[str, CaseResult], targets: list[Target], chart_how: str, total_s: float
) -> dict[str, Any]:
    ws = ctx.workspace
    return {
        "size": ws.size,
        "run_id": ctx.run_id,
        "platforms": list(ws.platforms),
        "cores": os.cpu_count(),
        "monorepo": ws.mono.summary(),
        "version": ws.version,
        "bytes_method": ctx.meter.method,
        "cases": {k: r.to_json() for k, r in results.items()},
        "targets": [{"target": t.name, "pass": t.passed, "detail": t.detail} for t in targets],
        "profile": ctx.profile,
        "setup_commands": ctx.shell.setup_log,
        "chart": chart_how,
        "total_s": total_s,
    }


def chart(ctx: Context, results: Mapping[str, CaseResult], path: Path) -> bool:
    """Bar chart of cold and warm times (log scale) with matplotlib; False when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: PLC0415 - optional: the bench extra
    except ImportError:
        path.unlink(missing_ok=True)  # not a chart of an earlier run next to this run's table
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = [
        (f"({k}) {r.label}" + (f"\n[{r.services} of {r.total_services} services measured]"
                               if r.extrapolated_cold_s else ""), r)
        for k, r in results.items()
        if r.ok
    ]  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.7 * max(1, len(rows))))
    names = [n for n, _ in rows][::-1]
    colds = [r.cold_s or 0 for _, r in rows][::-1]
    warms = [r.warm_s or 0 for _, r in rows][::-1]
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], colds, height=0.4, label="cold", color="#4477aa")
    ax.barh([y - 0.2 for y in ys], warms, height=0.4, label="warm (no change)", color="#ee7733")
    for y, (_, r) in zip(ys, rows[::-1], strict=True):
        if r.extrapolated_cold_s:
            ax.barh(y + 0.2, r.extrapolated_cold_s, height=0.4, fill=False, hatch="//", edgecolor="#4477aa",
                    label="cold, extrapolated to all services")  # fmt: skip
            ax.text(r.extrapolated_cold_s * 1.05, y + 0.2, f"~{r.extrapolated_cold_s:.0f}s (extrapolated)",
                    va="center", fontsize=8, color="#4477aa")  # fmt: skip
        ax.text((r.cold_s or 0) * 1.05, y + 0.2, f"{r.cold_s:.1f}s", va="center", fontsize=8)
        if r.warm_s is not None:  # a cold-only case (f2) has no warm bar
            ax.text(max(r.warm_s, 0.01) * 1.05, y - 0.2, f"{r.warm_s:.2f}s", va="center", fontsize=8)
    ax.set_yticks(list(ys), names)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ws = ctx.workspace
    ax.set_title(f"crossbuild bench, {ws.size}: {ws.mono.summary().get('services')} services x "
                 f"{len(ws.platforms)} platforms, {os.cpu_count()} cores")  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
