"""crossbuild.gosources: the keys under which go list's and govars' answers are kept.

An edit inside a function body keeps the package graph's key; anything go/build reads
(imports, build constraints, file names, module files, the Go environment) changes it, and
what a key cannot see (a go.work, a replace outside the module) turns the cache off.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crossbuild import gosources

MAIN = b'//go:build linux\n\npackage main\n\nimport (\n\t"fmt"\n)\n\nfunc main() { fmt.Println("a") }\n'


def test_header_is_everything_before_the_first_declaration() -> None:
    assert gosources.header(MAIN) == b'//go:build linux\n\npackage main\n\nimport (\n\t"fmt"\n)\n\n'


@pytest.mark.parametrize(
    "text",
    [
        b'package a\n\nfunc A() {}\n\nimport "fmt"\n',  # an import after a declaration: not Go, read whole
        b'package a\n\nimport _ "embed"\n\n//go:embed x.txt\nvar s string\n',  # embeds are read by go list
    ],
)
def test_a_header_that_cannot_be_cut_safely_is_none(text: bytes) -> None:
    assert gosources.header(text) is None


def test_a_declaration_word_inside_a_block_comment_does_not_cut() -> None:
    text = b'package a\n\n/*\nfunc in a comment\n*/\nimport "C"\n\nvar X = 1\n'
    assert gosources.header(text) == b'package a\n\n/*\nfunc in a comment\n*/\nimport "C"\n\n'


def test_a_file_without_declarations_is_all_header() -> None:
    assert gosources.header(b"package a\n") == b"package a\n"


def _module(root: Path) -> Path:
    (root / "cmd" / "api").mkdir(parents=True)
    (root / "go.mod").write_text("module example.invalid/m\n\ngo 1.22\n")
    (root / "cmd" / "api" / "main.go").write_bytes(MAIN)
    (root / "build").mkdir()
    return root


def _key(root: Path, environ: dict[str, str] | None = None) -> str | None:
    return gosources.graph_key(root, ["./cmd/api"], {"GOOS": "linux"}, (), [root / "build"], environ or {})


def test_a_body_edit_keeps_the_graph_key(tmp_path: Path) -> None:
    root = _module(tmp_path)
    before = _key(root)
    (root / "cmd/api/main.go").write_bytes(MAIN.replace(b'"a"', b'"b"'))
    (root / "build" / "anything.go").write_text("package x\n")  # excluded: the output directory
    assert before is not None and _key(root) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "cmd/api/main.go").write_bytes(MAIN.replace(b'"fmt"\n', b'"fmt"\n\t"os"\n')),
        lambda r: (r / "cmd/api/main.go").write_bytes(MAIN.replace(b"linux", b"darwin")),
        lambda r: (r / "cmd/api/main.go").rename(r / "cmd/api/main_windows.go"),
        lambda r: (r / "go.mod").write_text("module example.invalid/m\n\ngo 1.23\n"),
        lambda r: (r / "cmd/api/extra.s").write_text(""),
    ],
    ids=["import", "constraint", "file name", "go.mod", "new non-Go file"],
)
def test_what_go_list_reads_changes_the_graph_key(tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    root = _module(tmp_path)
    before = _key(root)
    change(root)
    assert _key(root) != before


def test_a_moved_tree_has_a_new_key(tmp_path: Path) -> None:
    """go list answers with absolute directories: the same files elsewhere must be asked again."""
    first = _module(tmp_path / "one")
    before = _key(first)
    second = first.rename(tmp_path / "two")
    assert _key(second) != before


def test_the_go_environment_is_part_of_the_key(tmp_path: Path) -> None:
    root = _module(tmp_path)
    assert _key(root, {"GOFLAGS": "-mod=vendor"}) != _key(root, {"GOFLAGS": ""})
    assert _key(root, {"HOME": "/x"}) == _key(root, {"HOME": "/y"})


def test_a_workspace_or_an_outside_replace_turns_the_cache_off(tmp_path: Path) -> None:
    root = _module(tmp_path / "repo")
    assert _key(root, {"GOWORK": str(tmp_path / "go.work")}) is None
    assert _key(root, {"GOWORK": "off"}) is not None
    (root / "go.mod").write_text("module example.invalid/m\n\nreplace example.invalid/lib => ./third_party/lib\n")
    assert _key(root) is not None  # inside the module: its files are in the key
    (root / "go.mod").write_text("module example.invalid/m\n\nreplace example.invalid/lib => ../lib\n")
    assert _key(root) is None
    (root / "go.mod").write_text("module example.invalid/m\n")
    (root / "go.work").write_text("go 1.22\n\nuse .\n")
    assert _key(root) is None


def test_dir_key_follows_the_directory_files_only(tmp_path: Path) -> None:
    root = _module(tmp_path)
    before = gosources.dir_key(root / "cmd", {"goos": "linux"})
    (root / "cmd/api/main.go").write_bytes(MAIN.replace(b'"a"', b'"b"'))  # a subdirectory: another package
    assert gosources.dir_key(root / "cmd", {"goos": "linux"}) == before
    api = gosources.dir_key(root / "cmd/api", {"goos": "linux"})
    assert api != gosources.dir_key(root / "cmd/api", {"goos": "darwin"})
    (root / "cmd/api/main.go").write_bytes(MAIN.replace(b'"b"', b'"c"'))
    assert gosources.dir_key(root / "cmd/api", {"goos": "linux"}) != api


def _counting_headers(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every file body gosources.header is asked to cut, from now on."""
    calls: list[bytes] = []
    real = gosources.header

    def counted(data: bytes) -> bytes | None:
        calls.append(data)
        return real(data)

    monkeypatch.setattr(gosources, "header", counted)
    return calls


def test_an_unchanged_file_is_not_read_again_and_an_edited_one_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _module(tmp_path)
    (root / "lib.go").write_bytes(b'package lib\n\nimport "os"\n\nvar X = os.Args\n')
    first = _key(root)
    calls = _counting_headers(monkeypatch)
    assert _key(root) == first and calls == []  # the same stat: the share kept in memory
    main = root / "cmd/api/main.go"
    main.write_bytes(MAIN.replace(b'"fmt"', b'"os"'))  # same size, an import changed
    second = _key(root)
    assert [c for c in calls if c.startswith(b"//go:build")] == [main.read_bytes()]  # only the edited file
    assert second != first


def test_an_edit_that_restores_the_time_and_size_is_still_seen(tmp_path: Path) -> None:
    root = _module(tmp_path)
    main = root / "cmd/api/main.go"
    before_stat = main.stat()
    first = _key(root)
    main.write_bytes(MAIN.replace(b'"fmt"', b'"log"'))  # same size
    os.utime(main, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))  # same mtime: the ctime moved
    assert _key(root) != first


def test_saved_shares_spare_the_next_run_the_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _module(tmp_path / "m")
    first = _key(root)
    saved = tmp_path / "state" / "goheaders.json"  # outside the module: its name is no source
    gosources.save_parts(saved)
    monkeypatch.setattr(gosources, "_PARTS", {})  # a new process
    gosources.load_parts(saved)
    calls = _counting_headers(monkeypatch)
    assert _key(root) == first and calls == []
    gosources.load_parts(tmp_path / "missing.json")  # nothing saved yet: nothing known, no error
    (tmp_path / "bad.json").write_text("{not json")
    gosources.load_parts(tmp_path / "bad.json")
