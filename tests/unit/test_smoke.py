"""Tests for crossbuild.smoke: choosing a probe result, judging a platform against native, folding output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossbuild import smoke
from crossbuild.smoke import CANDIDATES, Plan, ProbeCache, Run, choose, fold, judge, plan_from_probe


def runs(*outcomes: int | str | None) -> list[Run | None]:
    """One Run per candidate, in CANDIDATES order: an int exits so, "run" keeps running,
    "err" never starts, "cancel" was stopped early, None is not known yet."""
    result: list[Run | None] = []
    for args, outcome in zip(CANDIDATES, outcomes, strict=False):
        if outcome is None:
            result.append(None)
        elif outcome == "run":
            result.append(Run(args, None, "serving", 5.0))
        elif outcome == "err":
            result.append(Run(args, error="exec format error"))
        elif outcome == "cancel":
            result.append(Run(args, cancelled=True))
        else:
            assert isinstance(outcome, int)
            result.append(Run(args, outcome, f"out {args[0]}", 0.1))
    result += [None] * (len(CANDIDATES) - len(result))
    return result


ALL_RUN = ("run",) * len(CANDIDATES)


# --- choose -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "want"),
    [
        ((0, 2, 2, 2, 0, 2, 0), (("--version",), 0)),
        ((2, 0, 2, 2, 0, 0, 0), (("version",), 0)),
        ((2, 2, 2, 2, 2, 2, 2), (("--version",), 2)),
        (("run", 2, 2, 2, 2, 2, 2), (("version",), 2)),
        (("run", "run", 1, "run", 0, "run", 0), (("--help",), 0)),
        (ALL_RUN, (("--version",), None)),
        (("err", "run", "run", "run", "run", "run", "run"), (("version",), None)),
        (("err", "err", 3, "err", "err", "err", "err"), (("-version",), 3)),
        ((0, None, None, None, None, None, None), (("--version",), 0)),
        ((0, "cancel", "cancel", "cancel", "cancel", "cancel", "cancel"), (("--version",), 0)),
        ((2, 0, "cancel", "cancel", "cancel", "cancel", "cancel"), (("version",), 0)),
    ],
    ids=[
        "version-flag-exits-0",
        "version-subcommand-only",
        "no-version-usage-exit-2",
        "first-that-exits-when-none-exits-0",
        "help-exits-0-after-servers",
        "server-ignores-arguments",
        "server-first-does-not-start",
        "only-one-starts",
        "decided-before-the-rest-end",
        "decided-rest-cancelled",
        "second-decides-rest-cancelled",
    ],
)
def test_choose(outcomes: tuple[int | str | None, ...], want: tuple[tuple[str, ...], int | None]) -> None:
    assert choose(runs(*outcomes)) == want


@pytest.mark.parametrize(
    "outcomes",
    [
        (None, 0, 0, 0, 0, 0, 0),
        (2, None, 0, 0, 0, 0, 0),
        (2, 2, 2, 2, 2, 2, None),
        ("run", "run", "run", "run", "run", "run", None),
        ("err",) * len(CANDIDATES),
        (2, "cancel", 0, 0, 0, 0, 0),
    ],
    ids=[
        "first-unknown",
        "earlier-unknown-could-still-exit-0",
        "last-unknown-could-exit-0",
        "last-unknown-could-exit",
        "nothing-started",
        "cancelled-counts-as-unknown",
    ],
)
def test_choose_undecided(outcomes: tuple[int | str | None, ...]) -> None:
    assert choose(runs(*outcomes)) is None


def test_choose_with_a_wanted_exit_code_prefers_the_candidate_that_exits_so() -> None:
    assert choose(runs(0, 2, 1, 2, 0, 0, 0), want_exit=1) == (("-version",), 1)
    # none exits 1: the ordinary rule applies (the plan then fails with smoke_exit's code)
    assert choose(runs(0, 2, 2, 2, 0, 0, 0), want_exit=1) == (("--version",), 0)


def test_choose_with_a_pattern_prefers_the_candidate_whose_output_matches() -> None:
    outcomes = runs(0, 0, 2, 2, 0, 0, 0)
    assert choose(outcomes, pattern=r"out version$") == (("version",), 0)
    assert choose(outcomes, pattern=r"nowhere") == (("--version",), 0)


def test_plan_from_probe_takes_smoke_exit_from_config() -> None:
    plan = plan_from_probe(runs(0, 0, 0, 0, 0, 0, 0), "probe on linux/amd64", want_exit=3, pattern="")
    assert plan == Plan(("--version",), 3, "", "probe on linux/amd64")
    plan = plan_from_probe(runs(*ALL_RUN), "probe on linux/amd64", want_exit=None, pattern="x")
    assert plan == Plan(("--version",), None, "x", "probe on linux/amd64", native=True)
    assert plan_from_probe(runs(None), "probe", want_exit=None, pattern="") is None


def test_plan_describe() -> None:
    assert Plan(("version",), 0, source="probe on linux/amd64").describe() == (
        "`version` exits 0 (probe on linux/amd64)"
    )
    assert Plan((), None).describe() == "(no arguments) keeps running (a server) (config)"
    assert Plan(("--addr", ":0"), 2).describe() == "`--addr :0` exits 2 (config)"


# --- judge ----------------------------------------------------------------------------------

PROBED = Plan(("--version",), 0, source="probe on linux/amd64", native=True)
SERVER = Plan(("--version",), None, source="probe on linux/amd64", native=True)
CONFIGURED = Plan(("--version",), 0)


@pytest.mark.parametrize(
    ("plan", "run", "want"),
    [
        (PROBED, Run(("--version",), 0, "v1 linux/arm64", 0.3), ("ok", "`--version` exited 0 as on native")),
        (CONFIGURED, Run(("--version",), 0, "", 0.3), ("ok", "`--version` exited 0")),
        (
            Plan(("version",), 2, source="probe on linux/amd64", native=True),
            Run(("version",), 2, "usage: helper", 0.1),
            ("ok", "`version` exited 2 as on native"),
        ),
        (
            Plan(("--version",), 3, source="probe on linux/amd64"),
            Run(("--version",), 0, "v1", 0.1),
            ("failed", "smoke `--version` exited 0, expected 3: v1"),
        ),
        (
            PROBED,
            Run(("--version",), 139, "qemu: uncaught target signal 11 (Segmentation fault)\ncore dumped", 0.2),
            (
                "failed",
                "smoke `--version` exited 139, expected 0 as on native: "
                "qemu: uncaught target signal 11 (Segmentation fault) ⏎ core dumped",
            ),
        ),
        (
            PROBED,
            Run(("--version",), None, "", 30.0),
            ("hung", "smoke `--version`: no exit within 30s, container killed"),
        ),
        (
            SERVER,
            Run(("--version",), None, "listening on :8080", 5.0),
            ("ok", "`--version` still running after 5s as on native"),
        ),
        (
            SERVER,
            Run(("--version",), 1, "exec /app: exec format error", 0.1),
            (
                "failed",
                "smoke `--version` exited 1 after 0.1s, expected it to keep running as on native: "
                "exec /app: exec format error",
            ),
        ),
        (
            PROBED,
            Run(("--version",), error="exec format error"),
            ("failed", "smoke `--version` did not start: exec format error"),
        ),
        (
            Plan(("--version",), 0, r"^v\d"),
            Run(("--version",), 0, "dev build", 0.1),
            ("failed", "smoke `--version`: output does not match smoke_expect '^v\\\\d': dev build"),
        ),
        (
            Plan(("--version",), 0, r"^v\d"),
            Run(("--version",), 0, "name\nv1.2.3\n", 0.1),
            ("ok", "`--version` exited 0"),
        ),
    ],
    ids=[
        "same-exit-as-native",
        "configured-exit-0",
        "usage-exit-2-like-native",
        "smoke-exit-from-config-is-not-native",
        "qemu-crash",
        "hang-when-native-exits",
        "server-keeps-running",
        "server-exits-at-once",
        "does-not-start",
        "pattern-mismatch",
        "pattern-matches-a-later-line",
    ],
)
def test_judge(plan: Plan, run: Run, want: tuple[str, str]) -> None:
    assert judge(plan, run, timeout=30) == want


def test_judge_never_says_only_ok() -> None:
    result, detail = judge(CONFIGURED, Run(("--version",), 0), timeout=30)
    assert result == "ok"
    assert detail not in ("", "ok")


# --- fold -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", ""),
        ("one line\n", "one line"),
        ("api v1.0\n  platform:   linux/arm64\n\n  go: go1.26\n", "api v1.0 ⏎ platform: linux/arm64 ⏎ go: go1.26"),
        ("a\r\nb\r\n", "a ⏎ b"),
        ("tabs\tand   spaces", "tabs and spaces"),
    ],
    ids=["empty", "one-line", "multi-line", "crlf", "whitespace-runs"],
)
def test_fold(text: str, want: str) -> None:
    assert fold(text) == want


def test_fold_cuts_the_middle_of_long_output_and_keeps_both_ends() -> None:
    text = "Usage of helper:\n" + "".join(f"  -flag{n} string\n\tdoes thing {n}\n" for n in range(50)) + "exit 2\n"
    folded = fold(text, limit=80)
    assert len(folded) <= 80
    assert "\n" not in folded
    assert folded.startswith("Usage of helper:")
    assert folded.endswith("exit 2")
    assert " … " in folded


# --- the probe cache ------------------------------------------------------------------------


def test_probe_cache_round_trip_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "state" / "smoke.json"
    cache = ProbeCache(path)
    assert cache.get("api", "sha256:aa") is None
    probe = runs(2, 0, "cancel", "cancel", "cancel", "cancel", "cancel")
    cache.put("api", "sha256:aa", "linux/amd64", probe)
    cache.save()

    again = ProbeCache(path)
    got = again.get("api", "sha256:aa")
    assert got is not None
    platform, cached = got
    assert platform == "linux/amd64"
    assert cached[:2] == probe[:2]
    assert cached[2:] == [None] * (len(CANDIDATES) - 2)
    assert choose(cached) == (("version",), 0)
    assert again.get("api", "sha256:bb") is None, "another native digest must probe again"
    assert again.get("push", "sha256:aa") is None, "another service must probe again"
    assert json.loads(path.read_text())["api"]["sha256:aa"]["platform"] == "linux/amd64"


def test_probe_cache_keeps_a_few_digests_per_service(tmp_path: Path) -> None:
    cache = ProbeCache(tmp_path / "smoke.json")
    for n in range(smoke.CACHE_DIGESTS_PER_SERVICE + 3):
        cache.put("api", f"sha256:{n:02d}", "linux/amd64", runs(0))
    assert cache.get("api", "sha256:00") is None
    assert cache.get("api", f"sha256:{smoke.CACHE_DIGESTS_PER_SERVICE + 2:02d}") is not None
    assert len(cache.data["api"]) == smoke.CACHE_DIGESTS_PER_SERVICE


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"api": {"sha256:aa": {"runs": "x"}}}', '{"api": {"sha256:aa": {"runs": [1, 2]}}}'],
    ids=["garbage", "not-an-object", "runs-not-a-list", "wrong-length"],
)
def test_probe_cache_treats_a_bad_file_as_empty(tmp_path: Path, content: str) -> None:
    path = tmp_path / "smoke.json"
    path.write_text(content)
    assert ProbeCache(path).get("api", "sha256:aa") is None


def test_probe_cache_ignores_records_for_other_candidates(tmp_path: Path) -> None:
    path = tmp_path / "smoke.json"
    records = [{"args": ["--other"], "exit_code": 0}] + [None] * (len(CANDIDATES) - 1)
    path.write_text(json.dumps({"api": {"sha256:aa": {"platform": "linux/amd64", "runs": records}}}))
    got = ProbeCache(path).get("api", "sha256:aa")
    assert got is not None
    assert got[1] == [None] * len(CANDIDATES)
    assert choose(got[1]) is None


# --- probe_on -------------------------------------------------------------------------------

P, R, X = smoke.PENDING, smoke.READY, smoke.OUT


@pytest.mark.parametrize(
    ("platforms", "want"),
    [
        ([(True, R), (False, P), (False, P)], (True, 0)),
        ([(False, P), (True, R), (False, P)], (True, 1)),
        ([(False, R), (True, P), (False, R)], (False, None)),
        ([(False, R), (True, X), (False, P)], (True, 0)),
        ([(False, P), (True, X), (False, R)], (False, None)),
        ([(False, X), (True, X), (False, R)], (True, 2)),
        ([(True, X), (True, R)], (True, 1)),
        ([(True, P), (True, R)], (False, None)),
        ([(False, R), (False, P)], (True, 0)),
        ([(False, X), (False, X)], (True, None)),
        ([], (True, None)),
    ],
    ids=[
        "native-ready-first-others-pending",
        "native-ready-in-the-middle",
        "native-pending-waits-though-others-are-ready",
        "native-out-first-ready-other",
        "native-out-an-earlier-one-pending",
        "native-out-the-last-one-ready",
        "second-native-when-the-first-is-out",
        "first-native-pending-waits",
        "no-native-first-ready",
        "everything-out-nothing-to-probe",
        "no-platforms",
    ],
)
def test_probe_on_starts_on_native_as_soon_as_no_pending_platform_could_change_it(
    platforms: list[tuple[bool, str]], want: tuple[bool, int | None]
) -> None:
    assert smoke.probe_on(platforms) == want
