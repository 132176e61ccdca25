"""image.multiarch with BAKE_EARLY=always bakes a platform's images while the other platforms still
compile, then composes each index: the same index, byte for byte, as one multi-platform bake pushes.

Checked through skopeo and buildx's own metadata files, not crossbuild's code.
"""

from __future__ import annotations

import glob
import json
import subprocess
from pathlib import Path

import pytest
from support.clone import Clone
from support.commands import assert_clean_failure
from support.witness import assert_index, image_files, skopeo_raw

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

THREE = ("linux/amd64", "linux/arm64", "linux/arm/v7")


def _early_metadata(clone: Clone) -> dict[str, str]:
    """bake target -> the digest buildx pushed it as, over the early bakes' metadata files."""
    found = {}
    for path in sorted(glob.glob(str(clone.build_dir / "bake" / "multiarch-*.metadata.json"))):
        for target, entry in json.loads(Path(path).read_text()).items():
            if isinstance(entry, dict) and "containerimage.digest" in entry:
                found[target] = entry["containerimage.digest"]
    return found


ARM64_ONLY = """//go:build arm64

package main

import "os"

func init() { _ = os.Getenv("CROSSBUILD_TEST_ARM64_ONLY") }
"""


def test_an_index_baked_in_parts_is_the_one_a_single_bake_pushes(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    """A change to api's arm64 binary alone: that image is baked as soon as arm64 has compiled, its
    other platforms after the decide stage, and the index composed from the two parts is byte for
    byte the index one bake of all three platforms pushes."""
    env = {"IMAGES": "api,push", "PLATFORMS": ",".join(THREE), "SBOM": "0", "BAKE_EARLY": "always"}
    first = fresh.invoke("image.multiarch", env=env)
    assert first.returncode == 0, fresh.describe(first)
    before = {svc: assert_index(f"{prefix}/{svc}:{fresh.tag}", THREE)[0] for svc in ("api", "push")}

    extra = fresh.module_dir / "cmd" / "api" / "only_arm64.go"  # untracked: the version stays clean
    extra.write_text(ARM64_ONLY)
    try:
        second = fresh.invoke("image.multiarch", env=env)
        assert second.returncode == 0, fresh.describe(second)
        parts = _early_metadata(fresh)
        # the same binaries, baked in ONE bake of every platform (nothing tagged)
        again = fresh.invoke("image.multiarch", "--check-reproducible", env=env)
        assert again.returncode == 0, fresh.describe(again)
    finally:
        extra.unlink()

    assert set(parts) == {"api-linux-arm64", "api-linux-amd64-linux-arm-v7"}, fresh.describe(second)
    assert assert_index(f"{prefix}/push:{fresh.tag}", THREE)[0] == before["push"]
    digest, platforms = assert_index(f"{prefix}/api:{fresh.tag}", THREE)
    assert digest != before["api"]
    one_bake = json.loads((fresh.build_dir / "bake" / "repro-1.metadata.json").read_text())
    assert one_bake["api"]["containerimage.digest"] == digest
    # each part is an index buildx pushed by digest, holding the images the published index lists
    for target, part_digest in parts.items():
        _raw, part = skopeo_raw(f"{prefix}/api@{part_digest}")
        held = [p for p in THREE if p.replace("/", "-") in target]
        assert [m["digest"] for m in part["manifests"]] == [platforms[p] for p in held], target
    for arch, present in (("arm64", True), ("amd64", False)):
        _layers, files = image_files(f"{prefix}/api:{fresh.tag}", tmp_path / arch, arch=arch)
        assert (b"CROSSBUILD_TEST_ARM64_ONLY" in files["usr/local/bin/api"][1]) is present, arch


def test_an_edit_to_one_service_bakes_early_only_that_service(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    env = {"IMAGES": "api,push", "PLATFORMS": "linux/amd64,linux/arm64", "BAKE_EARLY": "always"}
    platforms = env["PLATFORMS"].split(",")
    first = fresh.invoke("image.multiarch", env=env)
    assert first.returncode == 0, fresh.describe(first)
    before = {svc: assert_index(f"{prefix}/{svc}:{fresh.tag}", platforms)[0] for svc in ("api", "push")}

    main_go = fresh.module_dir / "cmd" / "api" / "main.go"
    # hidden from git, as the bench's edits are, so the version and every -X value stay as they were
    fresh.git("update-index", "--skip-worktree", str(main_go.relative_to(fresh.root)))
    try:
        main_go.write_text(main_go.read_text().replace("REST API for clients", "REST API for clients, edited"))
        second = fresh.invoke("image.multiarch", env=env)
        assert second.returncode == 0, fresh.describe(second)
        early = _early_metadata(fresh)
    finally:
        fresh.git("update-index", "--no-skip-worktree", str(main_go.relative_to(fresh.root)))
        fresh.git("checkout", "--", str(main_go.relative_to(fresh.root)))

    # api's images, whether the two platforms were gathered into one target or baked as two parts
    assert {target.split("-linux-")[0] for target in early} == {"api"}, fresh.describe(second)
    assert assert_index(f"{prefix}/push:{fresh.tag}", platforms)[0] == before["push"]
    after, _ = assert_index(f"{prefix}/api:{fresh.tag}", platforms)
    assert after != before["api"]
    _layers, files = image_files(f"{prefix}/api:{fresh.tag}", tmp_path / "arm64", arch="arm64")
    _member, binary = files["usr/local/bin/api"]
    assert b"REST API for clients, edited" in binary
    assert binary[:4] == b"\x7fELF" and binary[18] == 183  # e_machine EM_AARCH64


BROKEN_ON_ARM64 = """//go:build arm64

package main

var broken int = "not an int on arm64"
"""


def test_a_platform_failing_beside_an_early_bake_tags_nothing_and_leaves_no_bake(fresh: Clone, prefix: str) -> None:
    (fresh.module_dir / "cmd" / "api" / "broken_arm64.go").write_text(BROKEN_ON_ARM64)
    try:
        env = {"IMAGES": "api,push", "PLATFORMS": "linux/amd64,linux/arm64", "BAKE_EARLY": "always"}
        proc = fresh.invoke("image.multiarch", env=env)
    finally:
        (fresh.module_dir / "cmd" / "api" / "broken_arm64.go").unlink()
    line = assert_clean_failure(proc)
    assert "build failed" in line, fresh.describe(proc)
    assert "broken_arm64.go" in proc.stderr, fresh.describe(proc)
    for svc in ("api", "push"):
        listed = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", f"docker://{prefix}/{svc}"],
            check=False,
            capture_output=True,
            text=True,
        )
        assert listed.returncode != 0 or not json.loads(listed.stdout)["Tags"], listed.stdout
    running = subprocess.run(
        ["pgrep", "-f", str(fresh.build_dir / "bake" / "multiarch-")], check=False, capture_output=True
    )
    assert running.returncode == 1, running.stdout  # no bake outlives the run
