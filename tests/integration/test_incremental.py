"""A rerun with nothing changed builds nothing and pushes nothing; drifted tags are put back.

Checked through the registry's HTTP API and skopeo, not crossbuild's own code.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from support.clone import Clone
from support.witness import skopeo_digest, skopeo_tags

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]


def _catalog_blobs(prefix_repo: str) -> dict[str, str]:
    """tag -> digest for one repository, read with skopeo list-tags + inspect."""
    return {t: skopeo_digest(f"{prefix_repo}:{t}") for t in skopeo_tags(prefix_repo)}


def test_rerun_with_nothing_changed_is_a_no_op_and_drifted_tags_come_back(clone: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api,push", "PLATFORMS": "linux/amd64,linux/arm64"}

    first = clone.invoke("image.multiarch", env=env)
    assert first.returncode == 0, clone.describe(first)
    before = {svc: _catalog_blobs(f"{prefix}/{svc}") for svc in ("api", "push")}
    assert set(before["api"]) == {clone.tag, "latest"}

    start = time.monotonic()
    second = clone.invoke("image.multiarch", env=env)
    elapsed = time.monotonic() - start
    assert second.returncode == 0, clone.describe(second)
    assert "go build skipped" in second.stdout
    assert second.stdout.count("unchanged (inputs unchanged") == 2, clone.describe(second)
    assert "docker buildx bake" not in second.stdout + second.stderr
    # nothing was pushed: same tags, same digests, and no bake metadata rewritten
    assert {svc: _catalog_blobs(f"{prefix}/{svc}") for svc in ("api", "push")} == before
    assert elapsed < 30, f"no-change rerun took {elapsed:.1f}s"

    # Move `latest` of api onto push's index: the rerun must put it back without building.
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--all",
            f"docker://{prefix}/push:latest",
            f"docker://{prefix}/api:latest",
        ],
        capture_output=True,
        check=True,
    )
    assert skopeo_digest(f"{prefix}/api:latest") != before["api"]["latest"]
    third = clone.invoke("image.multiarch", env=env)
    assert third.returncode == 0, clone.describe(third)
    assert "api: retag" in third.stdout, clone.describe(third)
    assert skopeo_digest(f"{prefix}/api:latest") == before["api"]["latest"]


def test_dry_run_prints_the_plan_without_building(clone: Clone, prefix: str) -> None:
    proc = clone.invoke("image.multiarch", "--dry-run", env={"REGISTRY_PREFIX": prefix, "IMAGES": "api"})
    assert proc.returncode == 0, clone.describe(proc)
    assert "[dry-run] " in proc.stdout and "go build" in proc.stdout
    assert "docker buildx bake" in proc.stdout
    plan = [line for line in proc.stdout.splitlines() if line.startswith("api ")]
    assert plan and "build" in plan[0] and f"{prefix}/api:{clone.tag}" in plan[0], clone.describe(proc)
    listed = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{prefix}/api"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode != 0 or json.loads(listed.stdout)["Tags"] in ([], None)


def test_check_reproducible_builds_twice_and_compares(clone: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": "linux/amd64,linux/arm64"}
    proc = clone.invoke("image.multiarch", "--check-reproducible", env=env)
    assert proc.returncode == 0, clone.describe(proc)
    meta = [json.loads((clone.build_dir / "bake" / f"repro-{n}.metadata.json").read_text()) for n in (1, 2)]
    digests = [m["api"]["containerimage.digest"] for m in meta]
    assert digests[0] == digests[1]
    # the digest really is in the registry (pushed by digest, untagged)
    assert skopeo_digest(f"{prefix}/api@{digests[0]}") == digests[0]
