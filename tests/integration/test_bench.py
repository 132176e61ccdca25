"""bench/run.py and bench/sweep.py work end to end at their tiny sizes (not timed assertions).

Runs the crossbuild prebuilt case (a), the OpenIM-style loop (d) and the
`go build` floor (f) against the real go, BuildKit builder and local registry,
then checks results.json and the PNG chart (about 2 minutes on 2 cores); then the
growth sweep's four tiny points, (a) and (f) at each, and its sweep.json and chart; then
(a), (as) and (v) with the phases that time cosign and the docker CLI alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support.clone import PROJECT_ROOT as PROJECT
from support.commands import run

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _tiny_bench(out: Path, cases: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`bench/run.py --size tiny --cases <cases>` into `out`, which must succeed; its output and results.json."""
    proc = run(
        [
            sys.executable,
            PROJECT / "bench" / "run.py",
            *("--size", "tiny", "--cases", cases, "--out", out),
            *("--wait-idle", "0", "--retry-busy", "0"),  # proves it works; the numbers are not asserted
        ],
        cwd=PROJECT,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return proc, data


def test_bench_tiny_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc, data = _tiny_bench(out, "a,ae,d,f,f2,x", timeout=600)
    assert data["size"] == "tiny"
    assert set(data["cases"]) == {"a", "ae", "d", "f", "f2", "x"}
    x = data["cases"].pop("x")  # buildx bake alone: one phase, not cold and warm
    assert x["status"] == "ok" and x["phases"]["images"]["wall_s"] > 0, x
    for key, case in data["cases"].items():
        assert case["status"] == "ok", f"case {key}: {case['status']}"
        assert case["cold_s"] > 0, key
        assert key == "f2" or case["warm_s"] > 0, key  # f2: the floor's cold run again, nothing else
        assert case["commands"], key
    assert data["cases"]["f2"]["warm_s"] is None and "phases" not in data["cases"]["f2"]  # cold only
    cold_target = next(t for t in data["targets"] if t["target"] == "cold prebuilt <= 1.05 x floor")
    assert "before and" in cold_target["detail"], cold_target  # (a) bracketed by the floors around it
    assert "floor + buildx bake alone (x)" in cold_target["detail"], cold_target
    # (x) pushed one index per service, each listing every platform (the registry's API, not the bench)
    x_prefix = x["prefix"].removeprefix("localhost:5000/")
    pushed_cold = data["cases"]["a"]["bytes_by_repo"]["cold"]
    assert set(x["bytes_by_repo"]["images"]) == set(pushed_cold)
    for repo in pushed_cold:
        digest = x["figures"]["digests"][repo]
        index = _manifest(f"{x_prefix}/{repo}", digest)
        assert index is not None and len(index["manifests"]) == len(data["platforms"]), (repo, index)
    # (ae) baked each platform's images beside the compile and published every service's index of every
    # platform, as (a) did (the registry's API again)
    ae = data["cases"]["ae"]
    assert "beside the compile" in (out / "logs" / "ae-cold.log").read_text()
    assert set(ae["bytes_by_repo"]["cold"]) == set(pushed_cold)
    for repo in pushed_cold:
        index = _manifest(f"{ae['prefix'].removeprefix('localhost:5000/')}/{repo}", "latest")
        assert index is not None and len(index["manifests"]) == len(data["platforms"]), (repo, index)
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


def test_bench_sweep_tiny_runs_and_reports(tmp_path: Path) -> None:
    """`bench/sweep.py --size tiny` at two of its points, 1 x 1 and 1 x 2, the floor and crossbuild at each.

    Two points, not the grid's four: every point and tool compiles the standard library
    cold (~17 CPU-s a platform), so the whole tiny grid takes about 3 minutes, these two 1.5.
    """
    out = tmp_path / "sweep"
    proc = run(
        [
            sys.executable,
            PROJECT / "bench" / "sweep.py",
            *("--size", "tiny", "--services", "1", "--platforms", "1,2"),
            *("--out", out, "--wait-idle", "0", "--retry-busy", "0"),
        ],
        cwd=PROJECT,
        timeout=600,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"

    data = json.loads((out / "sweep.json").read_text())
    assert [p["point"] for p in data["points"]] == ["1x1", "1x2"]
    for point in data["points"]:
        for key in ("floor", "crossbuild"):
            case = point[key]
            assert case["status"] == "ok", f"{point['point']} {key}: {case['status']}"
            assert case["cold_s"] > 0 and case["cpu"]["cold"]["bench_cpu_s"] > 0, (point["point"], key)
        assert point["floor"]["bytes_cold"] == 0
        assert point["crossbuild"]["bytes_cold"] > 0
        # one repository per service, under the point's own prefix
        assert len(point["crossbuild"]["bytes_by_repo"]["cold"]) == point["services"]
        assert point["ratio"] > 0
        # buildx bake alone (x) ran at the point too: the floor plus it, over the floor
        assert point["bake_alone"]["status"] == "ok" and point["bound_ratio"] > 1, point["bake_alone"]
        # the invoke process itself: a Python interpreter with crossbuild loaded, not go or buildx
        assert point["crossbuild"]["peak_rss"]["cold"]["process"] == "invoke"
        assert 10 < point["crossbuild_peak_rss_mib"] < 1000
    assert [t["pass"] is not None for t in data["targets"]] == [True, True], data["targets"]
    assert (out / "sweep.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "| 1x2 | 2 |" in (out / "sweep.md").read_text()
    assert "crossbuild's own peak RSS < 150 MiB at 1x2" in proc.stdout


def _manifest(repo_ref: str, reference: str) -> dict[str, object] | None:
    """A manifest from the local registry's HTTP API (not through crossbuild), None when absent."""
    req = urllib.request.Request(
        f"http://127.0.0.1:5000/v2/{repo_ref}/manifests/{reference}",
        headers={"Accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, object] = json.loads(resp.read())
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def test_bench_tiny_supply_and_verify_floors(tmp_path: Path) -> None:
    """(as) times cosign alone on the digests its cold run signed; (v) times the docker CLI alone on the
    images verify smoke-ran. Checked at the registry's API and the docker CLI, not through the bench."""
    out = tmp_path / "bench"
    _proc, data = _tiny_bench(out, "a,as,v", timeout=900)
    for key in ("a", "as", "v"):
        assert data["cases"][key]["status"] == "ok", (key, data["cases"][key]["status"])

    # (as): cosign alone signed every index and platform image of every service again; each carries the
    # signature of the cold run (cosign finds its own key's signature there and adds no duplicate)
    refs = (out / "work" / "as-supply-keys" / "signed-refs.txt").read_text().split()
    prefix = data["cases"]["as"]["prefix"].removeprefix("localhost:5000/")
    services = list(data["monorepo"]["packages_per_service"])  # what the bench generated, one repository each
    assert len(services) == data["cases"]["as"]["services"] > 0, services
    indexes = [_manifest(f"{prefix}/{service}", "latest") for service in services]
    assert all(indexes), dict(zip(services, indexes, strict=True))
    expected = sum(1 + sum(1 for m in i["manifests"] if m["platform"]["os"] != "unknown") for i in indexes if i)
    assert len(refs) == expected == data["cases"]["as"]["figures"]["cosign_alone"]["references"]
    for ref in refs:
        repo, _, digest = ref.removeprefix("localhost:5000/").partition("@")
        sig = _manifest(repo, digest.replace(":", "-") + ".sig")
        assert sig is not None and len(sig["layers"]) == 1, (ref, sig)
    cosign_log = (out / "logs" / "as-cosign-alone.log").read_text()
    assert cosign_log.count("Pushing signature to: ") == len(refs), cosign_log[-2000:]
    assert data["cases"]["as"]["phases"]["cosign-alone"]["wall_s"] > 0

    # (v): the docker CLI ran as many images as verify smoke-ran, and removed them all again
    figures = data["cases"]["v"]["figures"]
    assert figures["docker"]["runs"] == figures["verified"]["smoke_runs"] > 0
    report = json.loads((out / "work" / "v-verify" / "verify.json").read_text())
    for image in report:
        repository = image["ref"].rpartition(":")[0]
        for row in image["platforms"]:
            gone = run(["docker", "image", "inspect", f"{repository}@{row['digest']}"], timeout=60)
            assert gone.returncode != 0, f"{repository}@{row['digest']} left in the docker daemon"
    details = {t["target"]: t["detail"] for t in data["targets"]}
    assert any("docker CLI alone pulled and ran" in d for d in details.values()), details
    assert any("cosign alone signs the same" in d for d in details.values()), details
