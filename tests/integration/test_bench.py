"""bench/run.py works end to end on the tiny monorepo (not a timed assertion).

Runs the crossbuild prebuilt case (a), the OpenIM-style loop (d) and the
`go build` floor (f) against the real go, BuildKit builder and local registry,
then checks results.json and the PNG chart. About 2 minutes on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.clone import PROJECT_ROOT as PROJECT
from support.commands import run

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_bench_tiny_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = run(
        [
            sys.executable,
            PROJECT / "bench" / "run.py",
            *("--size", "tiny", "--cases", "a,d,f", "--out", out),
            *("--wait-idle", "0", "--retry-busy", "0"),  # proves it works; the numbers are not asserted
        ],
        cwd=PROJECT,
        timeout=600,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    data = json.loads((out / "results.json").read_text())
    assert data["size"] == "tiny"
    assert set(data["cases"]) == {"a", "d", "f"}
    for key, case in data["cases"].items():
        assert case["status"] == "ok", f"case {key}: {case['status']}"
        assert case["cold_s"] > 0, key
        assert case["warm_s"] > 0, key
        assert case["commands"], key
    # the image cases pushed something cold; the floor pushes nothing
    assert data["cases"]["a"]["bytes_cold"] > 0
    assert data["cases"]["d"]["bytes_cold"] > 0
    assert data["cases"]["f"]["bytes_cold"] == 0
    # (d) reports where its cold time went, phase by phase
    assert [n for n in data["cases"]["d"]["notes"] if n.startswith("cold: ") and "go builds" in n]
    assert {t["target"] for t in data["targets"]}, "no target lines evaluated"
    # the edit phases: one service's main.go changed pushes into that service's repository only; a shared
    # package changed pushes into every repository the cold run pushed; the floor pushes nothing
    for key in ("a", "d", "f"):
        assert set(data["cases"][key]["phases"]) >= {"edit-main", "edit-shared"}, key
    pushed = data["cases"]["a"]["bytes_by_repo"]
    assert len(pushed["edit-main"]) == 1 and set(pushed["edit-main"]) < set(pushed["cold"]), pushed
    assert set(pushed["edit-shared"]) == set(pushed["cold"]), pushed
    assert data["cases"]["f"]["phases"]["edit-main"]["bytes_pushed"] == 0
    assert any(t["target"].startswith("(h) ") for t in data["targets"]), data["targets"]

    png = out / "results.png"
    assert png.is_file()
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert "| case | cold s | warm s |" in (out / "results.md").read_text()
    assert "(a) crossbuild prebuilt" in proc.stdout
