"""Tests for the bench's case (v), verify in parallel: which smoke runs it repeats, its target and table.

Pure logic on hand-made verify reports and phases; nothing here runs docker or a registry.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.cases import verify as case_v
from bench.measure import Phase
from bench.results import CaseResult
from bench.verifyparts import SmokeTime, slowest, smoke_items

REPO = "localhost:5000/bench/run/v-verify/api"


def _row(platform: str, smoke: str = "ok", args: list[str] | None = None, exit_code: int | None = 0) -> dict[str, Any]:
    return {
        "platform": platform,
        "digest": f"sha256:{platform.replace('/', '-')}",
        "smoke": smoke,
        "smoke_args": args,
        "smoke_exit": exit_code,
    }


def test_smoke_items_are_the_runs_verify_made_with_its_arguments() -> None:
    report = [
        {
            "service": "api",
            "ref": f"{REPO}:v1.0.0",
            "platforms": [
                _row("linux/amd64", args=["--version"]),
                _row("linux/arm64", args=["serve"], exit_code=None),
                _row("linux/arm/v7", smoke="skipped"),
            ],
        }
    ]
    items = smoke_items(report)
    assert [(i.platform, i.ref, i.args, i.server) for i in items] == [
        ("linux/amd64", f"{REPO}@sha256:linux-amd64", ("--version",), False),
        ("linux/arm64", f"{REPO}@sha256:linux-arm64", ("serve",), True),
    ]


def test_slowest_is_the_longest_single_run() -> None:
    times = [
        SmokeTime("api", "linux/amd64", ["--version"], 0.4, 0, 0.0),
        SmokeTime("api", "linux/arm/v7", ["--version"], 1.2, 0, 0.0),
        SmokeTime("push", "linux/arm64", ["--version"], 0.9, 0, 0.0),
    ]
    worst = slowest(times)
    assert worst is not None and (worst.service, worst.platform) == ("api", "linux/arm/v7")
    assert slowest([]) is None


def _case_v(verify_s: float, slowest_s: float, parallel_s: float, sequential_s: float) -> CaseResult:
    res = CaseResult("v", "crossbuild verify", "localhost:5000/bench/run/v-verify")
    res.phases = {case_v.VERIFY: Phase(verify_s, 0, 0), case_v.SMOKE: Phase(9.0, 0, 0), case_v.LAYERS: Phase(1.0, 0, 0)}
    run = {"service": "api", "platform": "linux/arm/v7", "args": ["--version"], "seconds": slowest_s,
           "exit_code": 0, "verify_seconds": 1.0}  # fmt: skip
    res.figures = {
        "verified": {"images": 1, "platforms": 3, "smoke_runs": 3},
        "smoke": {"runs": [run, {**run, "platform": "linux/amd64", "seconds": 0.3}], "slowest": run},
        "layers": {"layers": 3, "bytes": 3 << 20, "parallel": 8, "parallel_s": parallel_s,
                   "sequential_s": sequential_s},
    }  # fmt: skip
    return res


@pytest.mark.parametrize(
    ("verify_s", "passed"),
    [(2.9, True), (3.0, True), (3.1, False)],
    ids=["under-the-limit", "at-the-limit", "over-the-limit"],
)
def test_target_is_twice_the_slowest_smoke_run_plus_the_faster_layer_reads(verify_s: float, passed: bool) -> None:
    # limit = 2 x 1.2 + min(0.6, 0.9) = 3.0
    (target,) = case_v.VerifyParallel().targets({"v": _case_v(verify_s, 1.2, 0.6, 0.9)})
    assert target.passed is passed
    assert "limit 3.0s = 2 x 1.20s + 0.60s" in target.detail


def test_target_is_not_applicable_without_case_v_or_when_it_failed() -> None:
    (missing,) = case_v.VerifyParallel().targets({})
    assert missing.passed is None and missing.detail == "needs case v"
    failed = _case_v(1.0, 1.0, 1.0, 1.0)
    failed.status = "failed: invoke verify exited 1"
    (target,) = case_v.VerifyParallel().targets({"v": failed})
    assert target.passed is None and target.detail == failed.status


def test_table_shows_every_figure_side_by_side() -> None:
    (table,) = case_v.VerifyParallel().tables({"v": _case_v(2.5, 1.2, 0.6, 0.9)})
    lines = table.splitlines()
    assert lines[0] == "| measured | seconds | what |"
    assert any(line.startswith("| `invoke verify` | 2.50 |") for line in lines)
    assert any(line.startswith("| slowest single smoke run | 1.20 | api linux/arm/v7") for line in lines)
    assert any(line.startswith("| layer reads in the target | 0.60 |") for line in lines)
    assert any(line.startswith("| smoke runs on linux/amd64 | 0.30-0.30 |") for line in lines)
    assert case_v.VerifyParallel().tables({}) == []


def _with_docker_phase(res: CaseResult, verify_busy: float, docker_s: float, docker_busy: float) -> CaseResult:
    res.phases[case_v.VERIFY].cpu = {"machine_busy_cpu_s": verify_busy}
    res.phases[case_v.DOCKER] = Phase(docker_s, 0, 0, cpu={"machine_busy_cpu_s": docker_busy})
    res.figures["docker"] = {"runs": 3, "servers_left_out": 0, "pull_parallel": 4, "parallel": 16,
                             "pull_s": 1.5, "run_s": 2.25, "rmi_s": 0.25}  # fmt: skip
    return res


def test_cpu_floor_is_the_busy_cpu_over_the_cores_of_verify_and_of_the_docker_cli() -> None:
    res = _with_docker_phase(_case_v(14.0, 1.2, 0.6, 0.9), verify_busy=27.0, docker_busy=23.0, docker_s=12.0)
    floor = case_v.cpu_floor(res, cores=2)
    assert "busy 27.0 CPU-s (>= 13.5s on 2 cores)" in floor
    assert "docker CLI alone pulled and ran the same images in 12.0s, 23.0 CPU-s (>= 11.5s)" in floor
    assert case_v.cpu_floor(_case_v(14.0, 1.2, 0.6, 0.9), cores=2) == ""  # no docker-cli phase: nothing claimed


def test_target_detail_carries_the_floor_and_the_verdict_stays_the_issues_limit() -> None:
    res = _with_docker_phase(_case_v(14.0, 1.2, 0.6, 0.9), verify_busy=27.0, docker_busy=23.0, docker_s=12.0)
    (target,) = case_v.VerifyParallel().targets({"v": res})
    assert target.passed is False  # 14.0 > 3.0: the floor explains a FAIL, it does not turn it into a PASS
    assert "docker CLI alone" in target.detail and "limit 3.0s" in target.detail


def test_table_shows_the_docker_cli_steps_and_the_cpu_floor() -> None:
    res = _with_docker_phase(_case_v(14.0, 1.2, 0.6, 0.9), verify_busy=27.0, docker_busy=23.0, docker_s=12.0)
    (table,) = case_v.VerifyParallel().tables({"v": res})
    docker_row = next(line for line in table.splitlines() if line.startswith("| the docker CLI alone |"))
    assert "| 12.00 |" in docker_row and "pull 1.50 (4 at a time), run 2.25 (16 at a time), rmi 0.25" in docker_row
    assert "busy 23.0 CPU-s" in docker_row
    assert any(line.startswith("| busy CPU / cores in verify |") for line in table.splitlines())
