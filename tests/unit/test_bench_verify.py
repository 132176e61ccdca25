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
