"""Tests for the verify table and report: one line per row, every failure listed, no bare `ok` detail."""

from __future__ import annotations

import json
from pathlib import Path

from crossbuild.verify import ImageReport, PlatformReport, markdown, table_rows, write_json


def _reports() -> list[ImageReport]:
    api = ImageReport(
        "api",
        "localhost:5000/x/api:v1",
        platforms=[
            PlatformReport("linux/amd64", smoke="ok", note="`--version` exited 0 as on native"),
            PlatformReport("linux/arm64"),
        ],
    )
    api.platforms[1].fail("smoke `--version` exited 2, expected 0 as on native: usage:\n  api [flags]")
    api.platforms[1].fail("/usr/local/bin/api: built with GOARCH=amd64, expected GOARCH=arm64 for linux/arm64")
    push = ImageReport("push", "localhost:5000/x/push:v1", problems=["index lacks linux/arm/v7\n(found 2)"])
    push.platforms = [PlatformReport("linux/amd64"), PlatformReport("linux/arm64")]
    push.platforms[1].hang("smoke `--version`: no exit within 30s, container killed")
    push.platforms[0].skip("no QEMU binfmt handler for s390x")
    return [api, push]


def test_table_has_one_line_per_row_and_every_failure() -> None:
    rows = table_rows(_reports())
    assert rows == [
        ["api", "linux/amd64", "ok", "`--version` exited 0 as on native"],
        [
            "api",
            "linux/arm64",
            "failed",
            "smoke `--version` exited 2, expected 0 as on native: usage: ⏎ api [flags]; "
            "/usr/local/bin/api: built with GOARCH=amd64, expected GOARCH=arm64 for linux/arm64",
        ],
        ["push", "-", "failed", "index lacks linux/arm/v7 ⏎ (found 2)"],
        ["push", "linux/amd64", "skipped", "no QEMU binfmt handler for s390x"],
        ["push", "linux/arm64", "hung", "smoke `--version`: no exit within 30s, container killed"],
    ]
    assert all("\n" not in cell for row in rows for cell in row)


def test_detail_never_repeats_the_result_word() -> None:
    for _, _, result, detail in table_rows(_reports()):
        assert detail != result


def test_hang_stays_hung_when_more_problems_follow() -> None:
    pr = PlatformReport("linux/arm64")
    pr.hang("no exit")
    pr.fail("also this")
    assert pr.result == "hung"


def test_ok_counts_skipped_as_passing_and_any_problem_as_failing() -> None:
    api, push = _reports()
    assert not api.ok
    assert not push.ok
    fine = ImageReport("a", "r", platforms=[PlatformReport("linux/amd64"), PlatformReport("linux/arm64")])
    fine.platforms[1].skip("no daemon")
    assert fine.ok


def test_markdown_escapes_pipes_and_stays_one_line_per_row() -> None:
    report = ImageReport("api", "r", platforms=[PlatformReport("linux/amd64")])
    report.platforms[0].fail("output a | b\nsecond")
    text = markdown([report])
    assert text.splitlines() == [
        "| service | platform | result | detail |",
        "|---|---|---|---|",
        "| api | linux/amd64 | failed | output a \\| b ⏎ second |",
    ]


def test_write_json_records_the_smoke_fields(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "verify.json"
    write_json(_reports(), path)
    data = json.loads(path.read_text())
    assert [r["ok"] for r in data] == [False, False]
    first = data[0]["platforms"][0]
    assert {"smoke", "smoke_args", "smoke_exit", "smoke_seconds", "smoke_output", "note", "digest"} <= set(first)
