"""Tests for the bench's edit phases (h, i): the edits, the bytes per repository and the targets.

Pure logic, plus git for real in tmp_path for the edit that must keep the version
stamp; nothing here runs go, docker or a registry.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import report, workspace
from bench.cases import edits
from bench.measure import Meter, Phase, Snapshot
from bench.monorepo import SIZES, Monorepo, Package
from bench.results import CaseResult

KIB = 1024


def _mono(deps: dict[int, list[int]], services: dict[str, list[int]]) -> Monorepo:
    packages = [Package(i, "auth", sorted(deps.get(i, []))) for i in range(max(deps) + 1)]
    return Monorepo(Path("/nonexistent"), SIZES["tiny"], packages, services, 0)


# --- the edits -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\n\tx := 1\nb\n", "a\n\tx := 2\nb\n"),
        ("\t\t  x := 1", "\t\t  x := 2"),
    ],
    ids=["tab-indented", "mixed-indent-no-newline"],
)
def test_replace_line_keeps_indentation(text: str, expected: str) -> None:
    assert workspace.replace_line(text, "x := 1", "x := 2") == expected


@pytest.mark.parametrize("text", ["y := 1\n", "x := 1\nx := 1\n", "x := 10\n"], ids=["absent", "twice", "prefix"])
def test_replace_line_wants_exactly_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="exactly one line"):
        workspace.replace_line(text, "x := 1", "x := 2")


@pytest.mark.parametrize(
    ("deps", "services", "expected"),
    [
        ({0: [], 1: [0], 2: [0], 3: [1]}, {"x": [3], "y": [2]}, 0),
        ({0: [], 1: [], 2: [1], 3: [1, 2]}, {"x": [0, 3], "y": [2]}, 1),
        ({0: [], 1: []}, {"x": [0, 1]}, 0),
    ],
    ids=["deepest-shared", "not-every-service-imports-p000", "one-service"],
)
def test_shared_package_is_the_deepest_every_service_imports(
    deps: dict[int, list[int]], services: dict[str, list[int]], expected: int
) -> None:
    assert edits.shared_package(_mono(deps, services)).index == expected


def test_shared_package_needs_one_every_service_imports() -> None:
    with pytest.raises(ValueError, match="every service"):
        edits.shared_package(_mono({0: [], 1: []}, {"x": [0], "y": [1]}))


def test_edits_apply_to_the_generated_monorepo_and_keep_the_version_stamp(tmp_path: Path) -> None:
    """Each edit changes one line of the tiny monorepo; git still describes the tagged, clean commit."""
    repo = tmp_path / "repo"
    ws = workspace.create(repo, "tiny", seed=1, platforms=("linux/amd64",), run_id="t", storage=None)
    before = {rel: (repo / rel).read_text() for rel in (e(ws.mono).path for e in edits.EDITS.values())}
    for phase, make in edits.EDITS.items():
        edit = make(ws.mono)
        ws.edit_line(edit.path, edit.old, edit.new)
        text = (repo / edit.path).read_text()
        assert edit.new in text, phase
        changed = [(a, b) for a, b in zip(before[edit.path].splitlines(), text.splitlines(), strict=True) if a != b]
        assert len(changed) == 1, phase

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    assert git("describe", "--tags", "--always", "--dirty").strip() == "v1.0.0"
    assert git("status", "--porcelain", "--untracked-files=no") == ""
    assert edits.main_edit(ws.mono).path == f"cmd/{ws.services[0]}/main.go"
    ws.restore()
    assert {rel: (repo / rel).read_text() for rel in before} == before
    assert ws.edited == []
    assert "S " not in git("ls-files", "-v")  # no file left skip-worktree


# --- bytes per repository -----------------------------------------------------------------


def test_diff_counts_new_digests_per_repository() -> None:
    before = Snapshot("r", None, {"api": {"l1": 100, "m1": 10}, "rpc": {"l2": 200}})
    after = Snapshot(
        "r", None, {"api": {"l1": 100, "m1": 10, "l3": 300, "m3": 5}, "rpc": {"l2": 200}, "new": {"l1": 100}}
    )
    pushed = Meter.diff(before, after)
    assert pushed.total == 305  # distinct digests: l1 was under the prefix already
    assert pushed.by_repo == {"api": 305, "new": 100}  # per repository: l1 newly linked into "new"


def test_diff_across_a_replaced_registry_with_an_empty_prefix_reads_the_new_one() -> None:
    pushed = Meter.diff(Snapshot("old", None, {}), Snapshot("new", None, {"api": {"l": 7}}))
    assert (pushed.total, pushed.by_repo) == (7, {"api": 7})
    assert "replaced" in pushed.note


# --- the targets ---------------------------------------------------------------------------


def _phase(wall: float, by_repo: dict[str, int]) -> Phase:
    return Phase(wall, sum(by_repo.values()), None, pushed_by_repo=by_repo)


COLD_A = {"api": 300 * KIB, "rpc": 350 * KIB}


def _result(key: str, cold: Phase, main: Phase, shared: Phase, status: str = "ok") -> CaseResult:
    r = CaseResult(key, key, f"prefix/{key}", status=status, services=2, platforms=3, total_services=2)
    if status == "ok":
        r.phases = {"cold": cold, "warm": _phase(0.5, {}), edits.MAIN: main, edits.SHARED: shared}
    return r


def _results(a_main: Phase | None = None, e_status: str = "ok") -> dict[str, CaseResult]:
    return {
        "f": _result("f", _phase(20, {}), _phase(2.0, {}), _phase(8.0, {})),
        "a": _result(
            "a",
            _phase(25, COLD_A),
            a_main or _phase(3.0, {"api": 290 * KIB}),
            _phase(10.0, {"api": 300 * KIB, "rpc": 351 * KIB}),
        ),
        "e": _result("e", _phase(40, COLD_A), _phase(12.0, {"api": 290 * KIB}), _phase(20, COLD_A), e_status),
    }


def _verdicts(results: dict[str, CaseResult]) -> dict[str, bool | None]:
    return {t.name: t.passed for t in edits.targets(results)}


def test_targets_pass_when_crossbuild_is_near_the_floor_and_pushes_one_service() -> None:
    got = _verdicts(_results())
    assert len(got) == 5
    assert all(got.values()), got


@pytest.mark.parametrize(
    ("a_main", "failing"),
    [
        (_phase(4.5, {"api": 290 * KIB}), ["floor + 2 s", "3x faster than ko"]),
        (_phase(3.0, {"api": 290 * KIB, "rpc": 2 * KIB}), ["one service's layers"]),
        (_phase(3.0, {"api": 400 * KIB}), ["one service's layers"]),
        (_phase(3.0, {}), ["one service's layers"]),
    ],
    ids=["slow", "pushed-into-two-repositories", "more-than-its-cold-push", "nothing-pushed"],
)
def test_h_targets_fail(a_main: Phase, failing: list[str]) -> None:
    got = _verdicts(_results(a_main))
    assert sorted(n for n, ok in got.items() if ok is False) == sorted(n for n in got for f in failing if f in n), got


def test_targets_say_why_they_cannot_be_evaluated() -> None:
    results = _results(e_status="unavailable: go install ko failed")
    del results["f"]
    by_name = {t.name: t for t in edits.targets(results)}
    ko = by_name["(h) edit main.go: crossbuild >= 3x faster than ko"]
    assert ko.passed is None and "unavailable: go install ko failed" in ko.detail
    floor = by_name["(h) edit main.go: crossbuild <= floor + 2 s"]
    assert floor.passed is None and floor.detail == "case f not run"
    assert by_name["(h) edit main.go: crossbuild pushes one service's layers only"].passed is True


def test_phase_table_shows_the_edits_side_by_side_and_the_main_table_keeps_cold() -> None:
    results = _results()
    main = report.table(results)
    assert "| (a) a | 25.0 |" in main
    (edit_table,) = report.phase_tables(results)
    head = edit_table.splitlines()[0]
    assert "edit-main s" in head and "cold s" not in head
    assert "| (a) a | 3.0 | 10.0 | 290.0 KiB |" in edit_table
    assert "api 290.0 KiB" in edit_table


def _cold_only(key: str, wall: float) -> CaseResult:
    r = CaseResult(key, key, f"prefix/{key}", status="ok", services=2, platforms=3, total_services=2)
    r.phases = {"cold": _phase(wall, {})}
    return r


def test_the_cold_target_brackets_a_between_the_floor_before_and_after_it() -> None:
    """A machine that slows down between (f) and (a) must not count against (a): with (f2) run after
    it, (a) is compared with the mean of both floors."""
    from bench.cases.floor import bracketed_floor
    from bench.cases.prebuilt import Prebuilt

    results = {"f": _cold_only("f", 65.0), "a": _cold_only("a", 70.0)}
    cold = {t.name: t for t in Prebuilt().targets(results) if t.name.startswith("cold prebuilt <= 1.05")}
    assert [t.passed for t in cold.values()] == [False]  # 70 > 1.05 x 65
    results["f2"] = _cold_only("f2", 73.0)
    assert bracketed_floor(results) == (69.0, "floor 69.0s = mean of 65.0s before and 73.0s after")
    cold = {t.name: t for t in Prebuilt().targets(results) if t.name.startswith("cold prebuilt <= 1.05")}
    [target] = cold.values()
    assert target.passed and "mean of 65.0s before and 73.0s after" in target.detail
    results["f2"].status = "failed: x"
    assert bracketed_floor(results) == (65.0, "floor 65.0s")
