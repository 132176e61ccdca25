"""Faults and edge cases an attack run found, each kept fixed (issue: reliability).

Run against the project's clone with the real registry, BuildKit and docker; results
are read with skopeo and the registry's HTTP API, never with crossbuild itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

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
