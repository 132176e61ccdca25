"""Faults and edge cases an attack run found, each kept fixed (issue: reliability).

Run against the project's clone with the real registry, BuildKit and docker; results
are read with skopeo and the registry's HTTP API, never with crossbuild itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.clone import Clone, namespace
from support.commands import assert_clean_failure, describe
from support.example import TAG
from support.registries import docker_registry
from support.witness import OCI_INDEX, resolves, skopeo_raw, tags

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

SECOND = "127.0.0.1:5001"  # plain HTTP for the builder too (scripts/tools.sh writes its buildkitd.toml)


def test_one_platform_publishes_an_index_of_one(fresh: Clone, prefix: str) -> None:
    """image.multiarch for one platform used to fail after pushing (`pushed index has platforms none`)."""
    clone = fresh
    proc = clone.invoke(
        "image.multiarch", "--platform", "linux/arm64", "--services", "api", env={"REGISTRY_PREFIX": prefix}
    )
    assert proc.returncode == 0, describe(proc)
    for tag in (TAG, "latest"):
        _raw, index = skopeo_raw(f"{prefix}/api:{tag}")
        assert index["mediaType"] == OCI_INDEX, index
        found = [m["platform"] for m in index["manifests"] if m["platform"].get("architecture") != "unknown"]
        assert found == [{"architecture": "arm64", "os": "linux"}], index


def test_dry_run_exits_non_zero_when_the_real_run_would_fail(fresh: Clone, prefix: str) -> None:
    """A dry run against a registry nobody answers prints the plan, then fails as the real run would."""
    clone = fresh
    prefix = f"127.0.0.1:5999/{namespace(prefix)}"
    proc = clone.invoke("image.multiarch", "--dry-run", env={"REGISTRY_PREFIX": prefix})
    line = assert_clean_failure(proc)
    assert "dry run: the real run would fail: registry 127.0.0.1:5999 is not reachable" in line, describe(proc)
    assert "[dry-run]" in proc.stdout  # the plan was still printed
    assert "buildx bake" in proc.stdout


def test_manifest_refuses_legs_of_another_version_and_verifies_before_tagging(fresh: Clone, prefix: str) -> None:
    """VERSION=v9.9.9 `invoke manifest` used to tag :v9.9.9 and move latest onto images of another commit."""
    clone = fresh
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
    assert tags(f"{namespace(prefix)}/api", "127.0.0.1:5000") == []

    proc = clone.invoke("manifest", env=merge_env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.index("verified api") < proc.stdout.index("index digest"), proc.stdout  # verify, then tags
    assert tags(f"{namespace(prefix)}/api", "127.0.0.1:5000") == sorted([TAG, "latest"])


def test_a_failed_tag_move_names_what_moved_and_a_rerun_finishes(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    """When one tag PUT fails, the error lists moved and pending tags; the rerun only moves the rest."""
    clone = fresh
    ns = namespace(prefix)
    env = {"REGISTRY_PREFIX": f"{SECOND}/{ns}", "IMAGES": "api,push", "PLATFORMS": "linux/amd64"}
    with docker_registry(tmp_path / "registry", SECOND) as registry:
        data = registry.root
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
        assert tags(f"{ns}/push", SECOND) == sorted([TAG, "latest"])
        assert tags(f"{ns}/api", SECOND) == sorted([TAG, "latest"])
