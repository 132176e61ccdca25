"""Tests for the bench's case (x), buildx bake alone: the layer trees it lays out, the bake file it writes
(exported as crossbuild exports a prebuilt image) and the clause it adds to the cold and (i) targets."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bench.cases import bakealone
from bench.cases.floor import bracketed_busy
from bench.measure import Phase
from bench.results import CaseResult
from crossbuild import plan

PLATFORMS = ["linux/amd64", "linux/arm/v7"]
SERVICES = ["api", "rpc-user"]


def _binaries(root: Path) -> Path:
    for platform in PLATFORMS:
        for service in SERVICES:
            path = root / platform / service
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{platform} {service}".encode() * 100)
    return root


def test_layout_is_crossbuilds_tree_with_new_bytes_and_fixed_times(tmp_path: Path) -> None:
    binaries = _binaries(tmp_path / "bin")
    first, second = tmp_path / "ctx1", tmp_path / "ctx2"
    bakealone.layout(binaries, first, PLATFORMS, SERVICES)
    bakealone.layout(binaries, second, PLATFORMS, SERVICES)
    for platform in PLATFORMS:
        for service in SERVICES:
            original = (binaries / platform / service).read_bytes()
            a = (first / platform / service / "usr/local/bin" / service).read_bytes()
            b = (second / platform / service / "usr/local/bin" / service).read_bytes()
            assert a[:-16] == original == b[:-16] and len(a) == len(original) + 16
            assert a[-16:] != b[-16:]  # each layout is content BuildKit has not seen
            assert os.stat(first / platform / service / "usr/local/bin" / service).st_mode & 0o777 == 0o755
    entries = [first, *first.rglob("*")]
    assert {int(p.lstat().st_mtime) for p in entries} == {bakealone.EPOCH}
    assert bakealone.tree_bytes(first) == sum(len(f"{p} {s}".encode() * 100) + 16 for p in PLATFORMS for s in SERVICES)


def test_bake_file_exports_as_crossbuild_exports_a_prebuilt_image(tmp_path: Path) -> None:
    body: dict[str, Any] = bakealone.definition(tmp_path / "ctx", tmp_path, "localhost:5000/b/x", SERVICES, PLATFORMS)
    assert body["group"] == {"default": {"targets": SERVICES}}
    api = body["target"]["api"]
    assert api["platforms"] == PLATFORMS and api["context"] == str(tmp_path / "ctx")
    assert api["dockerfile"] == str(tmp_path / "api.Dockerfile")
    assert api["args"] == {"BUILDKIT_MULTI_PLATFORM": "1"}
    cfg = SimpleNamespace(image=SimpleNamespace(compression_level=1))
    target = SimpleNamespace(repository="localhost:5000/b/x/api", fixed_times=True)
    assert api["output"] == [plan.push_output(cast(Any, cfg), cast(Any, target))]


def test_dockerfile_copies_the_tree_and_runs_the_service() -> None:
    text = bakealone.DOCKERFILE.format(service="api")
    assert "COPY ${TARGETPLATFORM}/api/ /" in text
    assert 'ENTRYPOINT ["/usr/local/bin/api"]' in text and text.startswith("FROM scratch\n")


def test_targets_gain_the_floor_plus_bake_clause_only_when_x_ran() -> None:
    x = CaseResult("x", "buildx bake alone", "localhost:5000/b/x")
    x.phases = {bakealone.IMAGES: Phase(5.5, 0, 0)}
    assert bakealone.beside(6.0, {"x": x}) == "; floor + buildx bake alone (x) 5.5s = 11.5s"
    assert bakealone.beside(6.0, {}) == ""
    x.status = "failed: docker buildx bake exited 1"
    assert bakealone.beside(6.0, {"x": x}) == ""


def test_the_clause_adds_the_wall_time_their_cpu_alone_needs_on_the_cores() -> None:
    x = CaseResult("x", "buildx bake alone", "localhost:5000/b/x")
    x.phases = {bakealone.IMAGES: Phase(5.7, 0, 0, cpu={"machine_busy_cpu_s": 9.1})}
    clause = bakealone.beside(6.8, {"x": x}, floor_busy=13.5, cores=2)
    assert clause == "; floor + buildx bake alone (x) 5.7s = 12.5s; their CPU 13.5 + 9.1 CPU-s on 2 cores >= 11.3s"
    assert "CPU" not in bakealone.beside(6.8, {"x": x}, floor_busy=None, cores=2)


def test_bracketed_busy_is_the_mean_of_the_floors_around_a() -> None:
    def floor(key: str, busy: float) -> CaseResult:
        r = CaseResult(key, "floor", f"localhost:5000/b/{key}")
        r.phases = {"cold": Phase(60.0, 0, 0, cpu={"machine_busy_cpu_s": busy})}
        return r

    assert bracketed_busy({"f": floor("f", 120.0), "f2": floor("f2", 130.0)}) == 125.0
    assert bracketed_busy({"f": floor("f", 120.0)}) == 120.0
    assert bracketed_busy({}) is None
