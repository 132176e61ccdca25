"""The growth sweep's points and verdicts: services x platforms, crossbuild's ratio to the floor, its flatness.

Pure (no go, docker or registry), so the grid, the ratios and the targets are unit
tested; bench/sweep.py runs the points and bench/sweepreport.py writes them out.

Every point is its own monorepo: the grid's package count (the same at every point,
so only the number of services and platforms grows), its number of services, and
the first N platforms of PLATFORMS in its config.toml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.cases import bakealone
from bench.monorepo import Size
from bench.results import CaseResult, Target

# in the order a point takes them: its first N
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x")
FLAT_WITHIN = 0.10  # the ratio to the floor may vary by this much over the points: max / min <= 1.10
RSS_LIMIT_MIB = 150  # crossbuild's own process at the largest point
MIB = 1024 * 1024


@dataclass(frozen=True)
class Grid:
    """A sweep size: which service and platform counts it crosses, and how much code every point has."""

    name: str
    services: tuple[int, ...]
    platforms: tuple[int, ...]  # counts: the first N of PLATFORMS
    packages: int  # library packages (+ pkg/version), the same at every point
    funcs: int  # transform functions per package (monorepo.Size.funcs)
    fields: int  # fields of each package's record type (monorepo.Size.fields)


GRIDS = {
    # CI proves the sweep works (about 2 minutes on 2 cores); the numbers mean little
    "tiny": Grid("tiny", (1, 2), (1, 2), 8, 4, 6),
    "small": Grid("small", (2, 6), (1, 3), 24, 8, 10),
    # issue 15: about 20 minutes on this 2-core machine (bench/README.md, "Growth sweep")
    "full": Grid("full", (3, 12, 48), (1, 3, 5), 60, 8, 10),
}


@dataclass(frozen=True)
class Point:
    services: int
    platforms: tuple[str, ...]

    @property
    def label(self) -> str:
        """`48x5`: services x platforms, as the table and the chart name the point."""
        return f"{self.services}x{len(self.platforms)}"

    @property
    def slug(self) -> str:
        """`s48-p5`: the point's part of its cases' registry prefixes and scratch directories."""
        return f"s{self.services}-p{len(self.platforms)}"

    @property
    def work(self) -> int:
        """Images to ship: services x platforms, the x axis of the chart."""
        return self.services * len(self.platforms)

    def size(self, grid: Grid) -> Size:
        """The monorepo this point builds (monorepo.generate)."""
        return Size(f"sweep-{grid.name}-{self.slug}", self.services, grid.packages, grid.funcs, grid.fields)


def parse_counts(text: str, what: str, most: int | None = None) -> tuple[int, ...]:
    """`3,12,48` -> (3, 12, 48); ValueError with a one-line reason for anything else."""
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated counts such as 1,3,5, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"{what}: expected counts of at least 1, got {text!r}")
    if most is not None and max(counts) > most:
        raise ValueError(f"{what}: at most {most} ({', '.join(PLATFORMS)}), got {max(counts)}")
    return tuple(sorted(set(counts)))


def points(grid: Grid, services: Sequence[int] = (), platforms: Sequence[int] = ()) -> list[Point]:
    """Every services x platforms point of the grid (or of the counts given instead), smallest first."""
    if len(PLATFORMS) < max(platforms or grid.platforms):
        raise ValueError(f"at most {len(PLATFORMS)} platforms: {', '.join(PLATFORMS)}")
    counts = sorted(platforms or grid.platforms)
    return [Point(s, PLATFORMS[:p]) for s in sorted(services or grid.services) for p in counts]


@dataclass
class PointResult:
    """One point: the floor (f) and crossbuild (a), each a one-phase ("cold") case result."""

    point: Point
    packages: int  # as generated, with pkg/version
    go_lines: int
    floor: CaseResult
    crossbuild: CaseResult
    bake: CaseResult | None = None  # (x) buildx bake alone at the point, when it ran

    @property
    def ok(self) -> bool:
        return self.floor.ok and self.crossbuild.ok

    @property
    def ratio(self) -> float | None:
        """crossbuild's cold wall time over the floor's at this point."""
        a, f = self.crossbuild.cold_s, self.floor.cold_s
        return a / f if self.ok and a is not None and f else None

    @property
    def bound_ratio(self) -> float | None:
        """(floor + buildx bake alone) over the floor: the ratio a tool that compiles with go and
        assembles with buildx reaches at best at this point."""
        f = self.floor.cold_s
        bake = bakealone.wall_s(self.bake)
        return (f + bake) / f if self.floor.ok and f and bake is not None else None

    @property
    def cpu_ratio(self) -> float | None:
        """The same for CPU seconds (the bench's children + buildkitd)."""
        a, f = cpu_s(self.crossbuild), cpu_s(self.floor)
        return a / f if self.ok and a is not None and f else None

    @property
    def rss_mib(self) -> float | None:
        """Peak RSS of crossbuild's own process (the invoke python), MiB."""
        p = self.crossbuild.phases.get("cold")
        return p.peak_rss_kib / 1024 if p is not None and p.peak_rss_kib is not None else None


def cpu_s(r: CaseResult) -> float | None:
    p = r.phases.get("cold")
    return p.cpu.get("bench_cpu_s") if p is not None and r.ok else None


@dataclass(frozen=True)
class Flatness:
    """How much the ratio to the floor varies over the points: max / min (1.0 = perfectly flat)."""

    spread: float
    low: tuple[str, float]  # (point label, ratio)
    high: tuple[str, float]

    @property
    def flat(self) -> bool:
        return self.spread <= 1 + FLAT_WITHIN + 1e-9


def flatness(ratios: Sequence[tuple[str, float]]) -> Flatness | None:
    """max / min of the ratios, with where each is; None with fewer than two points."""
    if len(ratios) < 2:
        return None
    low, high = min(ratios, key=lambda r: r[1]), max(ratios, key=lambda r: r[1])
    return Flatness(high[1] / low[1], low, high)


def ratios(results: Sequence[PointResult]) -> list[tuple[str, float]]:
    return [(r.point.label, ratio) for r in results if (ratio := r.ratio) is not None]


def bound_ratios(results: Sequence[PointResult]) -> list[tuple[str, float]]:
    return [(r.point.label, ratio) for r in results if (ratio := r.bound_ratio) is not None]


def targets(results: Sequence[PointResult]) -> list[Target]:
    """The two PASS/FAIL lines of issue 15's growth item."""
    out: list[Target] = []
    name = f"time ratio to the floor flat within {FLAT_WITHIN:.0%} as the work grows (max / min over the points)"
    got = ratios(results)
    missing = [r.point.label for r in results if r.ratio is None]
    flat = flatness(got)
    if flat is None or missing:
        why = f"no ratio at {', '.join(missing)}" if missing else "needs two points"
        out.append(Target(name, None, why))
    else:
        detail = (f"{flat.spread:.3f}: lowest {flat.low[1]:.2f}x at {flat.low[0]}, highest {flat.high[1]:.2f}x "
                  f"at {flat.high[0]}; all: " + ", ".join(f"{label} {r:.2f}x" for label, r in got))  # fmt: skip
        bound = flatness(bound_ratios(results))
        if bound is not None:
            detail += (f"; buildx bake alone (x) beside the floor: {bound.low[1]:.2f}x at {bound.low[0]} to "
                       f"{bound.high[1]:.2f}x at {bound.high[0]}, spread {bound.spread:.3f}")  # fmt: skip
        out.append(Target(name, flat.flat, detail))
    largest = max(results, key=lambda r: (r.point.work, r.point.services), default=None)
    label = largest.point.label if largest else "the largest point"
    name = f"crossbuild's own peak RSS < {RSS_LIMIT_MIB} MiB at {label}"
    rss = largest.rss_mib if largest else None
    if largest is None or not largest.crossbuild.ok:
        out.append(Target(name, None, largest.crossbuild.status if largest else "no point measured"))
    elif rss is None:
        out.append(Target(name, None, "crossbuild's process was not seen (ran shorter than the sampling interval?)"))
    else:
        out.append(Target(name, rss < RSS_LIMIT_MIB, f"{rss:.1f} MiB (VmHWM of the invoke process)"))
    return out
