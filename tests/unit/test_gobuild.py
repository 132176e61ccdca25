"""Tests for crossbuild.gobuild's pure parts: how many platforms at once, which services share a go build."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import config, gobuild
from crossbuild.config import Overrides


def _cfg(root: Path, body: str = "") -> config.Config:
    for name in ("a", "b"):
        (root / "mod" / "cmd" / name).mkdir(parents=True, exist_ok=True)
        (root / "mod" / "cmd" / name / "main.go").write_text("package main\n\nfunc main() {}\n")
    (root / "mod" / "go.mod").write_text("module example.invalid/two\n\ngo 1.22\n")
    path = root / "config.toml"
    path.write_text('[project]\nmodule_dir = "mod"\n' + body)
    return config.load(path, Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1"})


@pytest.mark.parametrize(
    ("jobs", "cores", "platforms", "want"),
    [
        (0, 2, 3, 3),  # twice the cores covers all three
        (0, 2, 8, 4),
        (0, 1, 1, 1),
        (0, None, 5, 2),  # cpu_count unknown: one core assumed
        (1, 16, 3, 1),  # go.jobs wins
        (5, 2, 3, 3),  # never more than there are platforms
    ],
)
@pytest.mark.usefixtures("git_isolated")
def test_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, cores: int | None, platforms: int, want: int
) -> None:
    cfg = _cfg(tmp_path, f"[go]\njobs = {jobs}\n")
    monkeypatch.setattr(gobuild.os, "cpu_count", lambda: cores)
    assert gobuild.workers(cfg, platforms) == want


@pytest.mark.usefixtures("git_isolated")
def test_services_share_one_go_build_when_they_can(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path, '[[services]]\nname = "a"\n[[services]]\nname = "b"\n[[services]]\nname = "gw"\npackage = "./cmd/a"\n'
    )
    shared, single = gobuild.shared_and_single(cfg, cfg.services)
    # ./cmd/a is named by two services: go build -o dir/ could not tell them apart
    assert [s.name for s in shared] == ["b"]
    assert [s.name for s in single] == ["a", "gw"]


@pytest.mark.usefixtures("git_isolated")
def test_service_specific_x_value_is_built_alone(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[go.x]\n"main.who" = "{service}"\n[[services]]\nname = "a"\n[[services]]\nname = "b"\n')
    shared, single = gobuild.shared_and_single(cfg, cfg.services)
    assert shared == []
    assert [s.name for s in single] == ["a", "b"]
    assert "-X=main.who=a" in gobuild.go_build_argv(cfg, "out/a", ["./cmd/a"], single[0])
