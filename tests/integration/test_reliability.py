"""Faults and edge cases an attack run found, each kept fixed (issue: reliability).

Run against the project's clone with the real registry, BuildKit and docker; results
are read with skopeo and the registry's HTTP API, never with crossbuild itself.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from images_fixtures import (
    OCI_INDEX,
    TAG,
    Clone,
    assert_clean_failure,
    describe,
    make_clone,
    namespace,
    registry_healthy,
    skopeo_raw,
    unique_prefix,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

SECOND = "127.0.0.1:5001"  # plain HTTP for the builder too (scripts/tools.sh writes its buildkitd.toml)


@contextlib.contextmanager
def own_registry(workdir: Path, address: str = SECOND) -> Iterator[Path]:
    """An empty docker-registry on `address`, our own process; yields its storage root."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is required (make tools)")
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        if sock.connect_ex((host, int(port))) == 0:
            pytest.fail(f"something already listens on {address}; this test needs an empty registry there")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "registry.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: {address}\n"
    )
    with (
        (workdir / "registry.log").open("wb") as log,
        subprocess.Popen([binary, "serve", str(workdir / "registry.yml")], stdout=log, stderr=log) as proc,
    ):
        try:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(OSError), urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        break
                assert proc.poll() is None and time.monotonic() < deadline, (workdir / "registry.log").read_text()
                time.sleep(0.1)
            yield workdir / "data"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def resolves(address: str, repository: str, tag: str) -> bool:
    """Does the registry serve a manifest under this tag (HEAD, [dist] "Checking if content exists")?"""
    accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    request = urllib.request.Request(
        f"http://{address}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def tags_of(address: str, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/{repository}/tags/list", timeout=10) as resp:
            return sorted(json.loads(resp.read()).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    for tool in ("docker", "skopeo", "go", "git", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run `make tools` first")
    if not registry_healthy():
        pytest.fail("the registry on 127.0.0.1:5000 is not answering: run `make tools`")
    yield make_clone(tmp_path_factory.mktemp("reliability") / "repo")


def test_one_platform_publishes_an_index_of_one(clone: Clone) -> None:
    """image.multiarch for one platform used to fail after pushing (`pushed index has platforms none`)."""
    clone.reset_build()
    prefix = unique_prefix()
    proc = clone.invoke(
        "image.multiarch", "--platform", "linux/arm64", "--services", "api", env={"REGISTRY_PREFIX": prefix}
    )
    assert proc.returncode == 0, describe(proc)
    for tag in (TAG, "latest"):
        _raw, index = skopeo_raw(f"{prefix}/api:{tag}")
        assert index["mediaType"] == OCI_INDEX, index
        found = [m["platform"] for m in index["manifests"] if m["platform"].get("architecture") != "unknown"]
        assert found == [{"architecture": "arm64", "os": "linux"}], index


def test_dry_run_exits_non_zero_when_the_real_run_would_fail(clone: Clone) -> None:
    """A dry run against a registry nobody answers prints the plan, then fails as the real run would."""
    clone.reset_build()
    prefix = f"127.0.0.1:5999/t-{namespace(unique_prefix())}"
    proc = clone.invoke("image.multiarch", "--dry-run", env={"REGISTRY_PREFIX": prefix})
    line = assert_clean_failure(proc)
    assert "dry run: the real run would fail: registry 127.0.0.1:5999 is not reachable" in line, describe(proc)
    assert "[dry-run]" in proc.stdout  # the plan was still printed
    assert "buildx bake" in proc.stdout


def test_manifest_refuses_legs_of_another_version_and_verifies_before_tagging(clone: Clone) -> None:
    """VERSION=v9.9.9 `invoke manifest` used to tag :v9.9.9 and move latest onto images of another commit."""
    clone.reset_build()
    prefix = unique_prefix()
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix}
    for platform in ("linux/amd64", "linux/arm64"):
        proc = clone.invoke("image", "--platform", platform, "--push-by-digest", env=env)
        assert proc.returncode == 0, describe(proc)
    record = json.loads((clone.build_dir / "digests" / "api" / "linux-arm64.json").read_text())
    assert (record["version"], record["tree_state"]) == (TAG, "clean"), record
    merge_env = {**env, "PLATFORMS": "linux/amd64 linux/arm64"}

    proc = clone.invoke("manifest", env={**merge_env, "VERSION": "v9.9.9"})
    line = assert_clean_failure(proc)
    assert f"legs were built at {TAG}" in line and "this merge runs at v9.9.9" in line, describe(proc)
    assert tags_of("127.0.0.1:5000", f"{namespace(prefix)}/api") == []

    proc = clone.invoke("manifest", env=merge_env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.index("verified api") < proc.stdout.index("index digest"), proc.stdout  # verify, then tags
    assert tags_of("127.0.0.1:5000", f"{namespace(prefix)}/api") == sorted([TAG, "latest"])


def test_a_failed_tag_move_names_what_moved_and_a_rerun_finishes(clone: Clone, tmp_path: Path) -> None:
    """When one tag PUT fails, the error lists moved and pending tags; the rerun only moves the rest."""
    clone.reset_build()
    ns = namespace(unique_prefix())
    env = {"REGISTRY_PREFIX": f"{SECOND}/{ns}", "IMAGES": "api,push", "PLATFORMS": "linux/amd64"}
    with own_registry(tmp_path / "registry") as data:
        # a file where the registry must create the directory of push:latest: that one PUT fails
        blocker = data / "docker/registry/v2/repositories" / ns / "push/_manifests/tags/latest"
        blocker.parent.mkdir(parents=True)
        blocker.write_text("not a directory\n")
        proc = clone.invoke("image.multiarch", env=env)
        line = assert_clean_failure(proc)
        assert f"moving tags stopped at {SECOND}/{ns}/push:latest" in line, describe(proc)
        assert f"moved: {SECOND}/{ns}/api:{TAG}, {SECOND}/{ns}/api:latest, {SECOND}/{ns}/push:{TAG};" in line
        assert f"not moved: {SECOND}/{ns}/push:latest" in line
        assert "rerun the same command" in line
        assert resolves(SECOND, f"{ns}/push", TAG)
        assert not resolves(SECOND, f"{ns}/push", "latest")

        blocker.unlink()
        proc = clone.invoke("image.multiarch", env=env)
        assert proc.returncode == 0, describe(proc)
        assert "push: retag" in proc.stdout, proc.stdout
        assert "buildx bake" not in proc.stdout + proc.stderr
        assert tags_of(SECOND, f"{ns}/push") == sorted([TAG, "latest"])
        assert tags_of(SECOND, f"{ns}/api") == sorted([TAG, "latest"])
