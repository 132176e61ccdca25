"""Tests for crossbuild.incremental: content keys and the state files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from crossbuild import incremental


def _tree(root: Path) -> Path:
    (root / "cmd" / "api").mkdir(parents=True)
    (root / "cmd" / "api" / "main.go").write_text("package main\n")
    (root / "go.mod").write_text("module x\n")
    return root


# --- file_digest ---------------------------------------------------------------------------------


def test_file_digest_is_sha256_of_content(tmp_path: Path) -> None:
    f = tmp_path / "bin"
    f.write_bytes(b"\x7fELF" + bytes(range(256)) * 5000)
    assert incremental.file_digest(f) == hashlib.sha256(f.read_bytes()).hexdigest()


def test_file_digest_sees_a_same_size_rewrite(tmp_path: Path) -> None:
    f = tmp_path / "bin"
    f.write_bytes(b"a" * 100)
    first = incremental.file_digest(f)
    st = f.stat()
    f.write_bytes(b"b" * 100)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime: only the ctime moved
    assert incremental.file_digest(f) == hashlib.sha256(b"b" * 100).hexdigest() != first


def test_file_digest_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        incremental.file_digest(tmp_path / "nope")


# --- tree_hash -----------------------------------------------------------------------------------


def test_tree_hash_changes_with_content_and_names(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m")
    before = incremental.tree_hash(root)
    assert incremental.tree_hash(root) == before
    (root / "cmd" / "api" / "main.go").write_text("package main\n\nfunc main() {}\n")
    edited = incremental.tree_hash(root)
    assert edited != before
    (root / "cmd" / "api" / "main.go").rename(root / "cmd" / "api" / "api.go")
    assert incremental.tree_hash(root) != edited


def test_tree_hash_ignores_vcs_and_excluded_dirs(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m")
    before = incremental.tree_hash(root, exclude=[root / "build"])
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "build" / "bin").mkdir(parents=True)
    (root / "build" / "bin" / "api").write_bytes(b"binary")
    assert incremental.tree_hash(root, exclude=[root / "build"]) == before
    assert incremental.tree_hash(root) != before  # build/ counts unless excluded


def test_tree_hash_hashes_symlink_targets_not_content(tmp_path: Path) -> None:
    root = _tree(tmp_path / "m")
    (root / "link").symlink_to("go.mod")
    first = incremental.tree_hash(root)
    (root / "go.mod").write_text("module y\n")
    (root / "link").unlink()
    (root / "link").symlink_to("go.mod")
    second = incremental.tree_hash(root)
    assert first != second  # go.mod changed
    (root / "link").unlink()
    (root / "link").symlink_to("cmd")
    assert incremental.tree_hash(root) != second


# --- key_of and State ----------------------------------------------------------------------------


def test_key_of_ignores_key_order_but_not_values() -> None:
    assert incremental.key_of({"a": 1, "b": [1, 2]}) == incremental.key_of({"b": [1, 2], "a": 1})
    assert incremental.key_of({"a": 1, "b": [1, 2]}) != incremental.key_of({"a": 1, "b": [2, 1]})
    assert incremental.key_of({"p": Path("/x")}) == incremental.key_of({"p": "/x"})


def test_state_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "images.json"
    state = incremental.State(path)
    assert state.get("api") == {}
    state.put("api", {"key": "k1", "digest": "sha256:aa"})
    state.put("push", {"key": "k2"})
    state.drop("push")
    state.drop("never-there")
    state.save()
    assert incremental.State(path).data == {"api": {"key": "k1", "digest": "sha256:aa"}}
    assert not path.with_suffix(".tmp").exists()


def test_state_unreadable_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "gobuild.json"
    path.write_text("{not json")
    assert incremental.State(path).data == {}
