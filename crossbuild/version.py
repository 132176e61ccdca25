"""Version stamp of a build, from git.

version:   `git describe --tags --always --dirty`, or VERSION when set
commit:    full HEAD commit
tree_state: clean | dirty
date:      UTC RFC 3339; SOURCE_DATE_EPOCH when set, else the HEAD commit's
           time, so that two builds of one commit give identical binaries
           (reproducible builds; GoReleaser's CommitDate does the same);
           the current time outside git.
Outside a git checkout every field falls back to a fixed value instead of failing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crossbuild import runner
from crossbuild.errors import CommandError, UserError

FALLBACK_VERSION = "v0.0.0-dev"
_TAG_INVALID = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class VersionInfo:
    version: str
    commit: str
    tree_state: str
    date: str

    @property
    def short_commit(self) -> str:
        return self.commit[:7] if self.commit != "unknown" else "unknown"

    @property
    def epoch(self) -> int:
        """The date as seconds since 1970, for SOURCE_DATE_EPOCH in image builds."""
        return int(dt.datetime.strptime(self.date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())

    @property
    def version_no_v(self) -> str:
        """The version without the tag's leading v (GoReleaser's .Version): v1.2.3 -> 1.2.3."""
        return self.version[1:] if re.match(r"^v[0-9]", self.version) else self.version

    def template_values(self) -> dict[str, str]:
        return {
            "version": self.version,
            "version_no_v": self.version_no_v,
            "commit": self.commit,
            "short_commit": self.short_commit,
            "tree_state": self.tree_state,
            "date": self.date,
            "date_short": self.date[:10],  # YYYY-MM-DD of the RFC 3339 date
            "timestamp": str(self.epoch),
        }


def _git(repo: Path, *args: str) -> str | None:
    if runner.which("git") is None:
        return None
    try:
        return runner.output(["git", "-C", str(repo), *args])
    except CommandError:
        return None


def _format_epoch(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compute(repo: Path, environ: Mapping[str, str], override: str | None = None) -> VersionInfo:
    """Describe the checkout that holds `repo`; never raises for a missing git."""
    commit = _git(repo, "rev-parse", "HEAD") or "unknown"
    describe = _git(repo, "describe", "--tags", "--always", "--dirty") if commit != "unknown" else None
    if commit == "unknown":
        tree_state = "unknown"
    else:
        status = _git(repo, "status", "--porcelain", "--untracked-files=no")
        tree_state = "dirty" if status else "clean"
    version = override or describe or FALLBACK_VERSION
    epoch_text = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch_text:
        try:
            if not re.fullmatch(r"[0-9]+", epoch_text):
                raise ValueError(epoch_text)
            date = _format_epoch(int(epoch_text))
        except (ValueError, OverflowError, OSError) as exc:
            raise UserError(
                f"SOURCE_DATE_EPOCH must be seconds since 1970 (a non-negative integer before year 10000), "
                f"got '{epoch_text}'"
            ) from exc
    else:
        commit_time = _git(repo, "log", "-1", "--format=%ct") if commit != "unknown" else None
        if commit_time and commit_time.isdigit():
            date = _format_epoch(int(commit_time))
        else:
            date = _format_epoch(int(dt.datetime.now(tz=dt.UTC).timestamp()))
    return VersionInfo(version=version.strip(), commit=commit, tree_state=tree_state, date=date)


def tag_safe(text: str) -> str:
    """Make a string usable as an image tag (docker reference grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}).

    A text with nothing usable in it is an error, never a silent `latest`.
    """
    tag = _TAG_INVALID.sub("-", text).lstrip(".-")[:128]
    if not tag.strip("-."):
        raise UserError(
            f"image tag {text!r} has no letters or digits a tag can use; set VERSION or [image] tags "
            "to something like v1.2.3"
        )
    return tag
