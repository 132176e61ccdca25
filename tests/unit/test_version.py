"""Tests for crossbuild.version against real temporary git repositories.

Each repository gets a fixed identity and fixed commit dates (see conftest.py),
so versions and dates are exact. Git is real; nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossbuild.errors import UserError
from crossbuild.version import FALLBACK_VERSION, VersionInfo, compute, tag_safe

# The fixtures come from tests/conftest.py: make_git_repo(path) -> GitRepo.
MakeRepo = Callable[[Path], Any]

pytestmark = pytest.mark.usefixtures("git_isolated")

COMMIT_EPOCH = 1_700_000_000
COMMIT_DATE = "2023-11-14T22:13:20Z"  # COMMIT_EPOCH in UTC
HEX40 = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture
def tagged(tmp_path: Path, make_git_repo: MakeRepo) -> Any:
    """A clean repository whose only commit is tagged v1.2.3."""
    repo = make_git_repo(tmp_path / "repo")
    repo.write("main.go", "package main\n")
    repo.commit("initial")
    repo.tag("v1.2.3")
    return repo


# --- from git -------------------------------------------------------------------------


def test_tagged_commit(tagged: Any) -> None:
    info = compute(tagged.path, {})
    assert info == VersionInfo(version="v1.2.3", commit=tagged.head(), tree_state="clean", date=COMMIT_DATE)


def test_annotated_tag(tmp_path: Path, make_git_repo: MakeRepo) -> None:
    repo = make_git_repo(tmp_path / "repo")
    repo.write("a.txt", "a\n")
    repo.commit()
    repo.tag("v2.0.0-rc.1", annotated=True)
    assert compute(repo.path, {}).version == "v2.0.0-rc.1"


def test_commit_is_full_40_hex(tagged: Any) -> None:
    info = compute(tagged.path, {})
    assert HEX40.match(info.commit)
    assert info.short_commit == info.commit[:7]


def test_commits_after_tag(tagged: Any) -> None:
    tagged.write("main.go", "package main\n\nfunc main() {}\n")
    sha = tagged.commit("second", epoch=COMMIT_EPOCH + 60)
    info = compute(tagged.path, {})
    assert info.version == f"v1.2.3-1-g{sha[:7]}"
    assert info.commit == sha
    assert info.tree_state == "clean"


def test_two_commits_after_tag(tagged: Any) -> None:
    tagged.commit("second")
    sha = tagged.commit("third")
    assert compute(tagged.path, {}).version == f"v1.2.3-2-g{sha[:7]}"


def test_latest_tag_wins(tagged: Any) -> None:
    tagged.commit("second")
    tagged.tag("v1.3.0")
    assert compute(tagged.path, {}).version == "v1.3.0"


def test_dirty_tracked_change(tagged: Any) -> None:
    (tagged.path / "main.go").write_text("package main // edited\n")
    info = compute(tagged.path, {})
    assert info.version == "v1.2.3-dirty"
    assert info.tree_state == "dirty"
    assert info.commit == tagged.head()


def test_dirty_staged_change(tagged: Any) -> None:
    tagged.write("new.go", "package main\n")
    tagged.git("add", "new.go")
    info = compute(tagged.path, {})
    assert (info.version, info.tree_state) == ("v1.2.3-dirty", "dirty")


def test_untracked_file_is_not_dirty(tagged: Any) -> None:
    # `git describe --dirty` ignores untracked files; tree_state must agree with it.
    tagged.write("scratch.txt", "notes\n")
    info = compute(tagged.path, {})
    assert (info.version, info.tree_state) == ("v1.2.3", "clean")


def test_untagged_is_short_sha(tmp_path: Path, make_git_repo: MakeRepo) -> None:
    repo = make_git_repo(tmp_path / "repo")
    repo.write("a.txt", "a\n")
    sha = repo.commit()
    info = compute(repo.path, {})
    assert info.version == sha[:7]
    assert info.commit == sha
    assert info.tree_state == "clean"


def test_untagged_dirty(tmp_path: Path, make_git_repo: MakeRepo) -> None:
    repo = make_git_repo(tmp_path / "repo")
    repo.write("a.txt", "a\n")
    sha = repo.commit()
    (repo.path / "a.txt").write_text("b\n")
    info = compute(repo.path, {})
    assert info.version == f"{sha[:7]}-dirty"
    assert info.tree_state == "dirty"


def test_module_in_subdirectory_of_repo(tagged: Any) -> None:
    tagged.write("examples/mod/go.mod", "module x\n")
    sha = tagged.commit("add module")
    info = compute(tagged.path / "examples" / "mod", {})
    assert info.version == f"v1.2.3-1-g{sha[:7]}"
    assert info.commit == sha


def test_no_trailing_whitespace(tagged: Any) -> None:
    info = compute(tagged.path, {})
    for value in dataclasses.astuple(info):
        assert value == value.strip()
        assert "\n" not in value


# --- dates --------------------------------------------------------------------------------


def test_date_is_commit_date_in_utc(tmp_path: Path, make_git_repo: MakeRepo) -> None:
    repo = make_git_repo(tmp_path / "repo")
    # author and committer times differ: the commit (committer) time is the build date
    repo.commit("c", epoch=1_600_000_000, author_epoch=1_500_000_000)
    assert compute(repo.path, {}).date == "2020-09-13T12:26:40Z"


@pytest.mark.parametrize(
    ("epoch", "date"),
    [
        ("0", "1970-01-01T00:00:00Z"),
        ("1700000000", "2023-11-14T22:13:20Z"),
        (" 1234567890\n", "2009-02-13T23:31:30Z"),
        ("253402300799", "9999-12-31T23:59:59Z"),
    ],
    ids=["epoch-zero", "2023", "surrounding-whitespace", "last-second-of-9999"],
)
def test_source_date_epoch_overrides_commit_date(tagged: Any, epoch: str, date: str) -> None:
    assert compute(tagged.path, {"SOURCE_DATE_EPOCH": epoch}).date == date


def test_empty_source_date_epoch_is_ignored(tagged: Any) -> None:
    assert compute(tagged.path, {"SOURCE_DATE_EPOCH": "  "}).date == COMMIT_DATE


BAD_EPOCHS = [
    ("yesterday", "word"),
    ("-5", "negative"),
    ("1.5", "fraction"),
    ("1e9", "exponent"),
    ("0x10", "hex"),
    ("12 34", "two-numbers"),
    ("253402300800", "year-10000"),
    ("99999999999999999999", "beyond-time_t"),
    ("\u00b2", "superscript-two"),
]


@pytest.mark.parametrize("epoch", [e for e, _ in BAD_EPOCHS], ids=[i for _, i in BAD_EPOCHS])
def test_bad_source_date_epoch(tagged: Any, epoch: str) -> None:
    # always a one-line UserError naming the variable and the value, never ValueError/OverflowError
    with pytest.raises(UserError) as info:
        compute(tagged.path, {"SOURCE_DATE_EPOCH": epoch})
    msg = str(info.value)
    assert msg.startswith("SOURCE_DATE_EPOCH must be seconds since 1970")
    assert msg.endswith(f"got '{epoch}'")
    assert "\n" not in msg


# --- override ---------------------------------------------------------------------------------


def test_override_replaces_version_only(tagged: Any) -> None:
    info = compute(tagged.path, {}, override="v9.9.9")
    assert info == VersionInfo(version="v9.9.9", commit=tagged.head(), tree_state="clean", date=COMMIT_DATE)


def test_override_is_stripped(tagged: Any) -> None:
    assert compute(tagged.path, {}, override=" v9.9.9\n").version == "v9.9.9"


def test_override_does_not_hide_dirty_state(tagged: Any) -> None:
    (tagged.path / "main.go").write_text("package main // edited\n")
    info = compute(tagged.path, {}, override="v9.9.9")
    assert (info.version, info.tree_state) == ("v9.9.9", "dirty")


def test_environ_version_is_not_read_by_compute(tagged: Any) -> None:
    # VERSION from the environment is resolved by config.load and passed as `override`.
    assert compute(tagged.path, {"VERSION": "v0.0.1"}).version == "v1.2.3"


# --- without git --------------------------------------------------------------------------------


def test_plain_directory_falls_back(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    info = compute(plain, {"SOURCE_DATE_EPOCH": "0"})
    assert info == VersionInfo(
        version=FALLBACK_VERSION, commit="unknown", tree_state="unknown", date="1970-01-01T00:00:00Z"
    )
    assert FALLBACK_VERSION == "v0.0.0-dev"
    assert info.short_commit == "unknown"


def test_plain_directory_override(tmp_path: Path) -> None:
    info = compute(tmp_path, {"SOURCE_DATE_EPOCH": "0"}, override="v3.0.0")
    assert (info.version, info.commit, info.tree_state) == ("v3.0.0", "unknown", "unknown")


def test_plain_directory_date_is_now(tmp_path: Path) -> None:
    before = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
    info = compute(tmp_path, {})
    after = dt.datetime.now(tz=dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.date)
    stamped = dt.datetime.strptime(info.date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert before <= stamped <= after


def test_repository_without_commits_falls_back(tmp_path: Path, make_git_repo: MakeRepo) -> None:
    repo = make_git_repo(tmp_path / "empty")
    info = compute(repo.path, {"SOURCE_DATE_EPOCH": "0"})
    assert (info.version, info.commit, info.tree_state) == (FALLBACK_VERSION, "unknown", "unknown")


def test_git_not_installed(tagged: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A real repository, but no git on PATH: the fallback, not an exception.
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    info = compute(tagged.path, {"SOURCE_DATE_EPOCH": "0"})
    assert (info.version, info.commit, info.tree_state) == (FALLBACK_VERSION, "unknown", "unknown")


# --- VersionInfo ------------------------------------------------------------------------------------


def test_template_values() -> None:
    info = VersionInfo(
        version="v1.0.0", commit="0123456789abcdef" * 2 + "01234567", tree_state="clean", date="2023-11-14T22:13:20Z"
    )
    assert info.template_values() == {
        "version": "v1.0.0",
        "version_no_v": "1.0.0",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "short_commit": "0123456",
        "tree_state": "clean",
        "date": "2023-11-14T22:13:20Z",
        "date_short": "2023-11-14",
        "timestamp": "1700000000",
    }


@pytest.mark.parametrize(
    ("version", "bare"),
    [("v1.2.3", "1.2.3"), ("1.2.3", "1.2.3"), ("v0.0.0-dev", "0.0.0-dev"), ("vendor-7", "vendor-7"), ("v", "v")],
    ids=["tag", "no-v", "dev", "word-starting-with-v", "lone-v"],
)
def test_version_no_v_strips_only_a_tag_prefix(version: str, bare: str) -> None:
    assert VersionInfo(version, "unknown", "unknown", "2023-11-14T22:13:20Z").version_no_v == bare


def test_version_info_is_frozen() -> None:
    info = VersionInfo("v1", "unknown", "unknown", "D")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.version = "v2"  # type: ignore[misc]


# --- tag_safe ---------------------------------------------------------------------------------------

TAGS = [
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3-1-gabcdef0-dirty", "v1.2.3-1-gabcdef0-dirty"),
    ("v1.2.3+build.7", "v1.2.3-build.7"),
    ("feature/login", "feature-login"),
    ("release 1", "release-1"),
    ("snake_case_OK", "snake_case_OK"),
    (".hidden", "hidden"),
    ("-leading-dash", "leading-dash"),
    ("..-.x", "x"),
    ("a" * 200, "a" * 128),
    ("-" + "b" * 200, "b" * 128),
]


@pytest.mark.parametrize(
    ("text", "want"),
    TAGS,
    ids=[
        "plain",
        "describe-dirty",
        "semver-build-metadata",
        "slash",
        "space",
        "underscore-and-case",
        "leading-dot",
        "leading-dash",
        "leading-mixed",
        "too-long",
        "too-long-after-strip",
    ],
)
def test_tag_safe(text: str, want: str) -> None:
    assert tag_safe(text) == want


@pytest.mark.parametrize(
    "text", ["", "...", "+", "..", "-/-"], ids=["empty", "dots-only", "invalid-only", "dotdot", "dashes"]
)
def test_tag_safe_refuses_a_text_with_nothing_usable(text: str) -> None:
    """VERSION=.. used to publish only `latest` (issue 12): now it is one clear error."""
    with pytest.raises(UserError, match="has no letters or digits a tag can use"):
        tag_safe(text)


@pytest.mark.parametrize("text", ["v1.2.3+x", "a/b/c", "ünïcode", "x" * 300, "...x"])
def test_tag_safe_matches_docker_tag_grammar(text: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag_safe(text))
