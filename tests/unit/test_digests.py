"""crossbuild.incremental's file digests kept between runs, and the Go build ID they trust.

`go build` leaves an up-to-date binary's bytes alone but touches it (new mtime and ctime);
the binary is then known by its Go build ID instead of being read again. The ID is read
from the ELF note and compared with `go tool buildid`, an independent reader.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from crossbuild import incremental


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    (src / "go.mod").write_text("module example.invalid/d\n\ngo 1.22\n")
    (src / "main.go").write_text('package main\n\nfunc main() { println("digests") }\n')
    out = src / "bin" / "d"
    env = {**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "arm64", "GOFLAGS": ""}
    subprocess.run(["go", "build", "-trimpath", "-o", str(out), "."], cwd=src, env=env, check=True)
    return out


@pytest.fixture(autouse=True)
def fresh_process_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new run would: nothing known but what load_digests reads."""
    monkeypatch.setattr(incremental, "_DIGESTS", {})
    monkeypatch.setattr(incremental, "_BY_BUILD_ID", {})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_build_id_is_the_one_go_tool_buildid_reads(go_binary: Path) -> None:
    expected = subprocess.run(["go", "tool", "buildid", str(go_binary)], capture_output=True, text=True, check=True)
    assert incremental.go_build_id(go_binary.read_bytes()[:32768]) == expected.stdout.strip()
    assert incremental.go_build_id(b"#!/bin/sh\n") == ""
    assert incremental.go_build_id(b"\x7fELF" + bytes(60)) == ""


def _copy(go_binary: Path, tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    copy = tmp_path / "bin" / "svc"
    copy.write_bytes(go_binary.read_bytes())
    return copy


def test_a_touched_go_binary_is_known_by_its_build_id(go_binary: Path, tmp_path: Path) -> None:
    binary = _copy(go_binary, tmp_path)
    store = tmp_path / "digests.json"
    digest = incremental.file_digest(binary)
    assert digest == _sha(binary)
    incremental.save_digests(store, tmp_path / "bin")

    incremental._DIGESTS.clear()
    incremental._BY_BUILD_ID.clear()
    incremental.load_digests(store)
    os.utime(binary)  # what `go build` does to a binary it found up to date
    # change a byte far past the build ID note, size kept: a digest read from the file would differ,
    # so getting the recorded one back shows the file was not read again
    data = bytearray(binary.read_bytes())
    data[-100] ^= 0xFF
    binary.write_bytes(bytes(data))
    assert incremental.file_digest(binary) == digest


def test_a_rebuilt_binary_or_a_plain_file_is_read_again(go_binary: Path, tmp_path: Path) -> None:
    binary = _copy(go_binary, tmp_path)
    plain = tmp_path / "bin" / "notes.txt"
    plain.write_text("one")
    store = tmp_path / "digests.json"
    incremental.file_digest(binary)
    incremental.file_digest(plain)
    incremental.save_digests(store, tmp_path / "bin")

    incremental._DIGESTS.clear()
    incremental._BY_BUILD_ID.clear()
    incremental.load_digests(store)
    plain.write_text("two")  # same size, new content, no build ID
    assert incremental.file_digest(plain) == _sha(plain)
    data = binary.read_bytes()
    old_id = incremental.go_build_id(data[:32768])
    new_id = old_id[:-1] + ("A" if old_id[-1] != "A" else "B")  # another build: another content ID
    binary.write_bytes(data.replace(old_id.encode(), new_id.encode()))
    assert incremental.file_digest(binary) == _sha(binary)


def test_metadata_changes_keep_the_digest(go_binary: Path, tmp_path: Path) -> None:
    binary = _copy(go_binary, tmp_path)
    incremental.file_digest(binary)
    os.link(binary, tmp_path / "link")  # a new link moves the ctime
    os.utime(binary, (0, 0))
    incremental._BY_BUILD_ID.clear()  # only the stat key can answer now
    incremental.same_content(binary, "recorded")
    assert incremental.file_digest(binary) == "recorded"  # from the record: the file was not read
    os.utime(binary, (1, 1))  # any later change is a new stat: read again
    assert incremental.file_digest(binary) == _sha(binary)
