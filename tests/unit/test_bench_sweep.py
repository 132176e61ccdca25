"""Tests for the growth sweep's pure parts: the points, the ratio and its flatness, the targets, the report,
and the RSS watch that reads crossbuild's own process (a real child process here, no docker or go).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import monorepo, sweepplan, sweepreport
from bench.cases import bakealone
from bench.measure import Phase, RssWatch, peak
from bench.results import CaseResult
from bench.sweepplan import GRIDS, Point, PointResult

MIB_KIB = 1024


# --- the points ------------------------------------------------------------------------


def test_full_grid_is_services_by_platforms_smallest_first() -> None:
    pts = sweepplan.points(GRIDS["full"])
    assert [p.label for p in pts] == ["3x1", "3x3", "3x5", "12x1", "12x3", "12x5", "48x1", "48x3", "48x5"]
    assert pts[-1].platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x")
    assert pts[1].platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert [p.work for p in pts] == [3, 9, 15, 12, 36, 60, 48, 144, 240]
    assert len({p.slug for p in pts}) == 9


def test_tiny_grid_is_what_ci_runs() -> None:
    assert [p.label for p in sweepplan.points(GRIDS["tiny"])] == ["1x1", "1x2", "2x1", "2x2"]


def test_counts_given_replace_the_grids() -> None:
    pts = sweepplan.points(GRIDS["full"], services=(12, 3), platforms=(1,))
    assert [p.label for p in pts] == ["3x1", "12x1"]


def test_a_point_has_the_grids_packages_at_every_size() -> None:
    sizes = {p.size(GRIDS["full"]) for p in sweepplan.points(GRIDS["full"])}
    assert {(s.packages, s.funcs, s.fields) for s in sizes} == {(60, 8, 10)}
    assert sorted({s.services for s in sizes}) == [3, 12, 48]
    assert len({s.name for s in sizes}) == 9


@pytest.mark.parametrize(
    ("text", "most", "expected"),
    [("3,12,48", None, (3, 12, 48)), ("5,1,3,3", 5, (1, 3, 5)), (" 2 ,", None, (2,))],
    ids=["three", "sorted-and-unique", "spaces-and-trailing-comma"],
)
def test_parse_counts(text: str, most: int | None, expected: tuple[int, ...]) -> None:
    assert sweepplan.parse_counts(text, "--x", most) == expected


@pytest.mark.parametrize(
    ("text", "most", "message"),
    [("a,b", None, "comma-separated counts"), ("0,3", None, "at least 1"), ("", None, "at least 1"),
     ("1,6", 5, "at most 5")],
    ids=["not-numbers", "zero", "empty", "more-platforms-than-known"],
)  # fmt: skip
def test_parse_counts_says_what_is_wrong(text: str, most: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sweepplan.parse_counts(text, "--x", most)


def test_sweep_cli_refuses_bad_counts_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import sweep

    with pytest.raises(SystemExit) as exc:
        sweep.parse_args(["--platforms", "1,9"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--platforms: at most 5" in err and "Traceback" not in err


def test_service_names_go_past_the_twelve_openim_names() -> None:
    names = monorepo.service_names(48)
    assert names[:12] == monorepo.SERVICE_NAMES
    assert names[12:14] == ("svc13", "svc14") and names[-1] == "svc48"
    assert len(set(names)) == 48
    assert monorepo.service_names(3) == monorepo.SERVICE_NAMES[:3]


def test_a_monorepo_with_more_services_than_names_builds_every_one(tmp_path: Path) -> None:
    mono = monorepo.generate(tmp_path / "repo", monorepo.Size("sweep-test", 14, 8, 2, 3))
    assert list(mono.services)[-2:] == ["svc13", "svc14"]
    assert (tmp_path / "repo" / "cmd" / "svc14" / "main.go").is_file()
    assert all(mono.reachable(s) for s in mono.services)
    assert mono.summary()["packages"] == 9


# --- ratio, flatness, targets ---------------------------------------------------------------


def _case(key: str, wall: float | None, *, cpu: float = 1.0, rss_kib: int | None = None, status: str = "ok",
          pushed: int = 0) -> CaseResult:  # fmt: skip
    r = CaseResult(key, key, f"prefix/{key}", status=status)
    if wall is not None:
        r.phases["cold"] = Phase(wall, pushed, None, {"bench_cpu_s": cpu}, peak_rss_kib=rss_kib, peak_rss_of="invoke")
    return r


def _point(services: int, platforms: int, floor: float, crossbuild: float | None, rss_mib: float = 40.0,
           status: str = "ok") -> PointResult:  # fmt: skip
    p = Point(services, sweepplan.PLATFORMS[:platforms])
    a = _case("a", crossbuild, cpu=2 * floor, rss_kib=int(rss_mib * MIB_KIB), status=status, pushed=5 << 20)
    return PointResult(p, 61, 20000, _case("f", floor, cpu=floor), a)


def test_ratio_is_crossbuild_wall_over_the_floor_at_the_same_point() -> None:
    r = _point(3, 1, 10.0, 13.0)
    assert r.ratio == pytest.approx(1.3)
    assert r.cpu_ratio == pytest.approx(2.0)
    assert r.rss_mib == pytest.approx(40.0)


def test_no_ratio_for_a_failed_case() -> None:
    assert _point(3, 1, 10.0, 13.0, status="failed: boom").ratio is None
    assert _point(3, 1, 10.0, None).ratio is None


@pytest.mark.parametrize(
    ("walls", "flat"),
    [([13.0, 13.0, 13.0], True), ([12.0, 13.2, 12.5], True), ([12.0, 13.3, 12.5], False), ([20.0, 13.0, 12.5], False)],
    ids=["perfectly-flat", "exactly-ten-percent", "just-over", "small-point-overhead"],
)  # fmt: skip
def test_flatness_is_the_highest_ratio_over_the_lowest(walls: list[float], flat: bool) -> None:
    results = [_point(s, 1, 10.0, w) for s, w in zip((3, 12, 48), walls, strict=True)]
    got = sweepplan.flatness(sweepplan.ratios(results))
    assert got is not None
    assert got.spread == pytest.approx(max(walls) / min(walls))
    assert got.flat is flat
    assert got.low[1] == pytest.approx(min(walls) / 10) and got.high[1] == pytest.approx(max(walls) / 10)


def test_flatness_needs_two_points() -> None:
    assert sweepplan.flatness([("3x1", 1.2)]) is None


def _verdicts(results: list[PointResult]) -> list[bool | None]:
    return [t.passed for t in sweepplan.targets(results)]


def test_targets_pass_when_flat_and_small() -> None:
    results = [_point(3, 1, 10.0, 13.0), _point(12, 3, 30.0, 38.0), _point(48, 5, 100.0, 127.0, rss_mib=80)]
    targets = sweepplan.targets(results)
    assert [t.passed for t in targets] == [True, True]
    assert "48x5" in targets[1].name and "80.0 MiB" in targets[1].detail
    assert "lowest 1.27x at 12x3" in targets[0].detail and "highest 1.30x at 3x1" in targets[0].detail


def test_targets_fail_when_the_ratio_grows_or_the_largest_point_is_fat() -> None:
    results = [_point(3, 1, 10.0, 13.0), _point(48, 5, 100.0, 160.0, rss_mib=151)]
    assert _verdicts(results) == [False, False]


def test_rss_is_judged_at_the_largest_point_only() -> None:
    results = [_point(3, 1, 10.0, 13.0, rss_mib=500), _point(48, 5, 100.0, 130.0, rss_mib=60)]
    assert _verdicts(results) == [True, True]


def test_targets_say_why_they_cannot_be_evaluated() -> None:
    results = [_point(3, 1, 10.0, 13.0), _point(48, 5, 100.0, None, status="failed: bake exited 1")]
    targets = sweepplan.targets(results)
    assert [t.passed for t in targets] == [None, None]
    assert "no ratio at 48x5" in targets[0].detail
    assert targets[1].detail == "failed: bake exited 1"
    assert [t.verdict for t in targets] == ["N/A ", "N/A "]


# --- the report ------------------------------------------------------------------------------


def test_table_puts_the_tools_side_by_side() -> None:
    results = [_point(3, 1, 10.0, 13.0), _point(48, 5, 100.0, 120.0, rss_mib=71.5)]
    lines = sweepreport.table(results).splitlines()
    assert len(lines) == 4
    assert lines[0].count("|") == lines[2].count("|") == lines[3].count("|")
    assert lines[2].startswith("| 3x1 | 3 | 10.0 | 13.0 | 1.30x | 1.083x |")
    assert "| 48x5 | 240 | 100.0 | 120.0 | 1.20x | 1.000x |" in lines[3]
    assert "71.5 MiB" in lines[3] and "5.0 MiB" in lines[3]


def test_chart_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = [_point(3, 1, 10.0, 13.0), _point(12, 3, 30.0, 38.0), _point(48, 5, 100.0, 127.0)]
    path = tmp_path / "sweep.png"
    assert sweepreport.chart(GRIDS["full"], results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_to_json_carries_the_peak_rss() -> None:
    data = json.loads(json.dumps(_point(3, 1, 10.0, 13.0).crossbuild.to_json()))
    assert data["peak_rss"] == {"cold": {"kib": 40 * MIB_KIB, "process": "invoke"}}


# --- peak RSS of a command, not of its children ------------------------------------------------

ALLOCATE = "import time; b = bytearray({mib} << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.3)"


def test_rss_watch_reads_the_child_and_not_its_children() -> None:
    watch = RssWatch(interval=0.02)
    # the child holds 60 MiB itself and starts a grandchild that holds 200 MiB
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {ALLOCATE.format(mib=200)!r}]); " + (
        ALLOCATE.format(mib=60)
    )
    subprocess.run([sys.executable, "-c", child], check=True)
    kib, name = watch.stop()
    assert kib is not None
    assert 60 * MIB_KIB < kib < 150 * MIB_KIB, kib
    assert name.startswith("python")


def test_peak_of_no_readings() -> None:
    assert peak([]) == (None, "")
    assert peak([("go", 10), ("invoke", 30)]) == (30, "invoke")


# --- buildx bake alone (x) at each point -------------------------------------------------------


def _with_bake(point: PointResult, bake_s: float | None, status: str = "ok") -> PointResult:
    x = CaseResult("x", "buildx bake alone", "prefix/x", status=status)
    if bake_s is not None:
        x.phases[bakealone.IMAGES] = Phase(bake_s, 0, None)
    return dataclasses.replace(point, bake=x)


def test_bound_ratio_is_the_floor_plus_buildx_alone_over_the_floor() -> None:
    assert _with_bake(_point(3, 1, 10.0, 13.0), 2.5).bound_ratio == pytest.approx(1.25)
    assert _point(3, 1, 10.0, 13.0).bound_ratio is None  # (x) did not run
    assert _with_bake(_point(3, 1, 10.0, 13.0), None, status="failed: bake").bound_ratio is None


def test_flatness_line_draws_buildx_alone_beside_crossbuild() -> None:
    results = [_with_bake(_point(3, 1, 10.0, 11.0), 0.5), _with_bake(_point(48, 1, 20.0, 32.0), 10.0)]
    (flat, _rss) = sweepplan.targets(results)
    assert flat.passed is False  # 1.60 / 1.10: the bound beside it explains, it does not excuse
    assert "buildx bake alone (x) beside the floor: 1.05x at 3x1 to 1.50x at 48x1, spread 1.429" in flat.detail
    assert "buildx bake alone" not in sweepplan.targets([_point(3, 1, 10.0, 11.0), _point(48, 1, 20.0, 32.0)])[0].detail


def test_table_has_the_bake_alone_columns() -> None:
    lines = sweepreport.table([_with_bake(_point(3, 1, 10.0, 13.0), 2.5), _point(48, 5, 100.0, 120.0)]).splitlines()
    assert "| buildx bake alone s | (floor + bake alone) / floor |" in lines[0]
    assert "| 1.083x | 2.5 | 1.25x |" in lines[2]
    assert lines[0].count("|") == lines[2].count("|") == lines[3].count("|")
