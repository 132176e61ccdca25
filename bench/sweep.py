#!/usr/bin/env python3
"""crossbuild growth sweep: does crossbuild's cost stay proportional to the floor as the work grows?

    .venv/bin/python bench/sweep.py --size tiny|small|full --out build/bench-sweep

For every point of services x platforms (full: {3, 12, 48} x {1, 3, 5}; platforms are
the first N of linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x),
a monorepo with that many services is generated (the same library packages at every
point) and two cases run COLD, each under its own registry prefix
localhost:5000/bench/<run-id>/sweep-s<S>-p<P>-<case>:

  f   the floor: one `go build` per platform over all services (bench/cases/floor.py)
  a   crossbuild prebuilt: invoke image.multiarch, VERIFY=0 SBOM=0 SIGN=off (bench/cases/prebuilt.py)
  x   buildx bake alone of every image from new binaries (bench/cases/bakealone.py), after (f) with
      its Go cache: the floor plus this is the best a tool compiling with go and assembling with
      buildx can do at the point, and its ratio to the floor is drawn beside crossbuild's

Cold as in bench/run.py: a fresh GOCACHE, `docker buildx prune --builder crossbuild -af`,
crossbuild's build/ removed. Measured per point and case (bench/measure.py): wall time,
CPU time (the bench's children + buildkitd), bytes pushed (at the registry) and the peak
RSS of the process the bench started (for crossbuild: its invoke python, not go or buildx).

Writes <out>/sweep.md, sweep.json and sweep.png (time against services x platforms, the
ratio, crossbuild's RSS; with the `bench` extra's matplotlib) and prints the table and
the PASS/FAIL lines: the ratio to the floor flat within 10 % (max / min over the points)
and crossbuild's own peak RSS under 150 MiB at the largest point.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a script (bench/sweep.py): import the bench package from the project root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import report, sweepplan, sweepreport
from bench.cases.bakealone import BakeAlone
from bench.cases.floor import Floor
from bench.cases.prebuilt import ImageMultiarch
from bench.context import Context, open_run, say
from bench.driver import run_case
from bench.results import human
from bench.sweepplan import Point, PointResult


class FloorAt(Floor):
    """(f) at one point: the cold phase only, under the point's own prefix and GOCACHE."""

    phases = ("cold",)

    def __init__(self, point: Point) -> None:
        self.key = f"{point.slug}-f"  # logs/s48-p5-f-cold.log
        self.slug = f"sweep-{point.slug}-f"


class CrossbuildAt(ImageMultiarch):
    """(a) at one point: `invoke image.multiarch` with VERIFY=0 SBOM=0 SIGN=off, cold only."""

    title = "crossbuild prebuilt"
    phases = ("cold",)

    def __init__(self, point: Point) -> None:
        self.key = f"{point.slug}-a"
        self.slug = f"sweep-{point.slug}-a"


class BakeAloneAt(BakeAlone):
    """(x) at one point, with the point's floor's Go cache."""

    def __init__(self, point: Point) -> None:
        self.key = f"{point.slug}-x"
        self.slug = f"sweep-{point.slug}-x"
        self.floor_slug = FloorAt(point).slug


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=list(sweepplan.GRIDS), default="tiny")
    ap.add_argument("--out", default="build/bench-sweep", help="output directory (default build/bench-sweep)")
    ap.add_argument("--services", default="", help="service counts instead of the size's, e.g. 3,12")
    ap.add_argument("--platforms", default="", help="platform counts (1-5) instead of the size's, e.g. 1,3")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-id", default="", help="registry prefix component (default: a timestamp)")
    ap.add_argument("--invoke", default="", help="invoke command line (default: <project>/.venv/bin/invoke)")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=300,
        help="before each timed run wait up to this many s for the machine to be idle (0: never)",
    )
    ap.add_argument(
        "--retry-busy",
        type=int,
        default=1,
        help="run a point's case again (up to N times) when other processes took >10%% of the CPU meanwhile",
    )
    args = ap.parse_args(argv)
    args.grid = sweepplan.GRIDS[args.size]
    try:
        services = sweepplan.parse_counts(args.services, "--services") if args.services else ()
        platforms = (
            sweepplan.parse_counts(args.platforms, "--platforms", len(sweepplan.PLATFORMS)) if args.platforms else ()
        )
    except ValueError as exc:
        ap.error(str(exc))
    args.points = sweepplan.points(args.grid, services, platforms)
    args.profile = False  # what bench/run.py's cases read; the sweep profiles nothing
    return args


def run_point(ctx: Context, point: Point, grid: sweepplan.Grid) -> PointResult:
    """Generate the point's monorepo, then run the floor and crossbuild on it, each cold."""
    ctx.generate(point.size(grid), point.platforms)
    mono = ctx.workspace.mono
    packages = len(mono.packages) + 1  # + pkg/version
    say(f"point {point.label}: {point.services} services x {', '.join(point.platforms)}, "
        f"{packages} packages, {mono.lines} lines of Go")  # fmt: skip
    floor, crossbuild, bake = FloorAt(point), CrossbuildAt(point), BakeAloneAt(point)
    results = [run_case(ctx, case) for case in (floor, crossbuild, bake)]
    for case in (floor, crossbuild, bake):  # its GOCACHE and binaries: not needed again, and 48x5's are large
        for scratch in (ctx.gocache(case.slug), ctx.case_dir(case.slug)):
            shutil.rmtree(scratch, ignore_errors=True)
    return PointResult(point, packages, mono.lines, *results)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    ctx = open_run(args)
    say(f"sweep {args.size}: {len(args.points)} points " + ", ".join(p.label for p in args.points))
    results: list[PointResult] = []
    for point in args.points:
        t0 = time.monotonic()
        results.append(res := run_point(ctx, point, args.grid))
        say(f"point {point.label} done in {time.monotonic() - t0:.0f}s: floor {res.floor.cold_s or 0:.1f}s, "
            f"crossbuild {res.crossbuild.cold_s or 0:.1f}s, {human(res.crossbuild.bytes_cold)} pushed")  # fmt: skip
    ctx.workspace.restore()
    targets = sweepplan.targets(results)
    total = time.monotonic() - started
    (ctx.out / "sweep.md").write_text(sweepreport.markdown(ctx, args.grid, results, targets, total))
    drawn = sweepreport.chart(args.grid, results, ctx.out / "sweep.png")
    data = sweepreport.json_data(ctx, args.grid, results, targets, report.how_drawn(drawn), total)
    (ctx.out / "sweep.json").write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(sweepreport.table(results))
    print()
    print("\n".join(sweepreport.target_lines(targets)))
    print("\n".join(report.closing_lines(ctx.out, "sweep", drawn, ctx.logs, total)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
