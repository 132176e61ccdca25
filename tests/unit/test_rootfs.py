"""crossbuild.rootfs: the layer trees prebuilt images copy, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossbuild import config, rootfs
from crossbuild.config import Overrides
from crossbuild.gobuild import binary_path
from crossbuild.platforms import parse_platforms

EPOCH = 1_700_000_000
PLATFORMS = parse_platforms("linux/amd64,linux/arm/v7")


def _cfg(root: Path) -> config.Config:
    (root / "mod" / "cmd" / "api").mkdir(parents=True)
    (root / "mod" / "go.mod").write_text("module example.invalid/tree\n\ngo 1.22\n")
    (root / "mod" / "cmd" / "api" / "main.go").write_text("package main\n\nfunc main() {}\n")
    (root / "config.toml").write_text('[project]\nmodule_dir = "mod"\n[[services]]\nname = "api"\n')
    return config.load(root / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": str(EPOCH), "VERSION": "v1"})


def _binaries(cfg: config.Config, content: bytes) -> None:
    for p in PLATFORMS:
        path = binary_path(cfg.bin_dir, p, cfg.services[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # as go build replaces it: a new inode
        path.write_bytes(content + str(p).encode())


@pytest.mark.usefixtures("git_isolated")
def test_each_tree_holds_the_binary_and_every_entry_is_at_the_epoch(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    _binaries(cfg, b"one")
    context = rootfs.write(cfg, PLATFORMS, cfg.services)
    assert context.parent == rootfs.root(cfg)
    for p in PLATFORMS:
        top = rootfs.tree(context, p, cfg.services[0])
        entries = sorted(str(e.relative_to(top)) for e in top.rglob("*"))
        assert entries == ["usr", "usr/local", "usr/local/bin", "usr/local/bin/api"]
        binary = top / "usr/local/bin/api"
        assert binary.read_bytes() == b"one" + str(p).encode()
        assert os.path.samefile(binary, binary_path(cfg.bin_dir, p, cfg.services[0]))  # a link, not a copy
        assert {int(e.stat().st_mtime) for e in [top, *top.rglob("*")]} == {EPOCH}


@pytest.mark.usefixtures("git_isolated")
def test_new_binaries_get_a_new_context_and_the_old_one_goes(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    _binaries(cfg, b"one")
    first = rootfs.write(cfg, PLATFORMS, cfg.services)
    assert rootfs.write(cfg, PLATFORMS, cfg.services) == first  # the same binaries: the same directory
    _binaries(cfg, b"two")  # same size, same time once written: only the name can tell BuildKit
    second = rootfs.write(cfg, PLATFORMS, cfg.services)
    assert second != first
    assert sorted(rootfs.root(cfg).iterdir()) == [second]
    assert (rootfs.tree(second, PLATFORMS[0], cfg.services[0]) / "usr/local/bin/api").read_bytes().startswith(b"two")
