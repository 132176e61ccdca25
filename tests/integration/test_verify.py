"""`invoke verify` and the check before tags move, against real images in the local registry.

Good images come from `invoke image.multiarch` or from `docker buildx build` of
binaries this test cross-compiles itself with the -X values the clone's
config.toml injects. Broken images are made here the same way (or by hand
through the registry API), one defect each, and verify must name it. The
outcome is checked from the exit code, the table, build/reports/*.json, the
step summary, skopeo and `docker ps -a`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from seed import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    PLATFORMS,
    REGISTRY_API,
    TAG,
    VERSION_PKG,
    Clone,
    buildx_push,
    check,
    container_image_ids,
    default_registry,
    describe,
    go_build,
    index_platforms,
    make_clone,
    plain,
    put_manifest,
    remove_docker_images,
    skopeo_config,
    skopeo_digest,
    skopeo_exists,
    skopeo_raw,
    tar_gz_layer,
    unique_prefix,
    upload_blob,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# The image layout crossbuild's prebuilt template makes, with the binary picked by $TARGETARCH
# so a test decides which file each platform gets.
DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY bin/${TARGETARCH}/api /usr/local/bin/api
ENTRYPOINT ["/usr/local/bin/api"]
"""
ARCH_DIR = {"linux/amd64": "amd64", "linux/arm64": "arm64", "linux/arm/v7": "arm"}
# The `platform:` line of `api --version` on each platform.
RUN_SAYS = {"linux/amd64": "linux/amd64", "linux/arm64": "linux/arm64", "linux/arm/v7": "linux/arm GOARM=7"}

# An `api` that ignores its arguments and never exits (a plain `select {}` would be
# reported by the Go runtime as a deadlock and exit 2). The -X variables put this
# build's values into the binary so only the smoke run can fail.
HANG_GO = """\
// Command api never exits, whatever its arguments.
package main

import (
\t"os"
\t"time"
)

var Version, GitCommit, BuildDate, GitTreeState string

func main() {
\tif len(os.Args) > 1000 {
\t\tprintln(Version, GitCommit, BuildDate, GitTreeState)
\t}
\tfor {
\t\ttime.Sleep(time.Hour)
\t}
}
"""

ROW = re.compile(r"^(?P<service>\S+)\s+(?P<platform>\S+)\s+(?P<result>ok|failed|hung|skipped)(?:\s+(?P<detail>.*))?$")


@dataclass(frozen=True)
class Binaries:
    good: dict[str, Path]  # platform -> api with every -X value of this build
    no_version: dict[str, Path]  # platform -> api without the -X of pkg/version.Version
    hang: dict[str, Path]  # platform -> a program that never exits (with this build's values)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    repo = make_clone(tmp_path_factory.mktemp("verify-clone") / "repo")
    with default_registry(repo):
        yield repo


@pytest.fixture(scope="module")
def binaries(clone: Clone, tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    out = tmp_path_factory.mktemp("verify-bins")
    x = clone.x_values()
    without_version = {k: v for k, v in x.items() if k != f"{VERSION_PKG}.Version"}
    hang_src = out / "hang"
    hang_src.mkdir()
    (hang_src / "go.mod").write_text("module example.com/hang\n\ngo 1.22\n")
    (hang_src / "main.go").write_text(HANG_GO)
    hang_x = {f"main.{k.rsplit('.', 1)[1]}": v for k, v in x.items()}
    result = Binaries({}, {}, {})
    for p in PLATFORMS:
        slug = p.replace("/", "-")
        result.good[p] = go_build(clone.module_dir, "./cmd/api", p, out / "good" / slug / "api", x)
        result.no_version[p] = go_build(
            clone.module_dir, "./cmd/api", p, out / "no-version" / slug / "api", without_version
        )
        result.hang[p] = go_build(hang_src, ".", p, out / "hang-bin" / slug / "api", hang_x)
    return result


@pytest.fixture
def prefix() -> Iterator[str]:
    """A registry prefix no other test uses; the images smoke runs pulled from it are removed afterwards."""
    value = unique_prefix()
    yield value
    remove_docker_images(value)


def image_context(directory: Path, files: Mapping[str, Path]) -> Path:
    """A build context: DOCKERFILE plus bin/<TARGETARCH>/api = files[platform]."""
    for platform, binary in files.items():
        target = directory / "bin" / ARCH_DIR[platform] / "api"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return directory


def run_verify(
    clone: Clone, prefix: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`invoke verify ARGS` for the api service under prefix, with a fresh build/reports/."""
    shutil.rmtree(clone.build_dir / "reports", ignore_errors=True)
    return clone.invoke("verify", *args, env={"IMAGES": "api", "REGISTRY_PREFIX": prefix, **(env or {})})


def rows(proc: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """platform -> (result, detail) of the api rows of verify's table ('-' for image-level problems)."""
    found: dict[str, tuple[str, str]] = {}
    for line in plain(proc.stdout).splitlines():
        match = ROW.match(line)
        if match and match["service"] == "api":
            assert match["platform"] not in found or match["platform"] == "-", describe(proc)
            detail = match["detail"] or ""
            if match["platform"] in found:
                detail = found[match["platform"]][1] + "; " + detail
            found[match["platform"]] = (match["result"], detail)
    return found


def results(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """platform -> result word of the api rows of verify's table."""
    return {platform: result for platform, (result, _) in rows(proc).items()}


def report(clone: Clone, name: str = "verify") -> list[dict[str, Any]]:
    path = clone.build_dir / "reports" / f"{name}.json"
    assert path.is_file(), f"no {path}"
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data


def report_platforms(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["platform"]: p for p in entry["platforms"]}


def assert_failed_cleanly(proc: subprocess.CompletedProcess[str]) -> None:
    text = describe(proc)
    assert proc.returncode != 0, text
    assert "Traceback" not in proc.stdout + proc.stderr, text
    assert "verify failed for api" in plain(proc.stderr), text


# --- good images ----------------------------------------------------------------------------


def test_images_built_by_crossbuild_pass(clone: Clone, prefix: str, tmp_path: Path) -> None:
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix}
    check(clone.invoke("image.multiarch", env=env))
    ref = f"{prefix}/api:{TAG}"
    _, index = skopeo_raw(ref)
    assert set(index_platforms(index)) == set(PLATFORMS), index

    summary = tmp_path / "step-summary.md"
    proc = run_verify(clone, prefix, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, describe(proc)
    assert results(proc) == dict.fromkeys(PLATFORMS, "ok"), describe(proc)

    (entry,) = report(clone)
    assert entry["service"] == "api"
    assert entry["ref"] == ref
    assert entry["ok"] is True
    assert entry["problems"] == []
    assert entry["digest"] == skopeo_digest(ref)
    by_platform = report_platforms(entry)
    assert set(by_platform) == set(PLATFORMS)
    for platform, p in by_platform.items():
        assert (p["result"], p["smoke"], p["problems"]) == ("ok", "ok", []), p
        # the smoke output is `api --version` run on that platform (QEMU for the foreign ones)
        assert f"  platform:   {RUN_SAYS[platform]}" in p["smoke_output"].splitlines(), p

    text = summary.read_text()
    assert "| service | platform | result | detail |" in text, text
    lines = text.splitlines()
    for platform in PLATFORMS:
        assert any(line.startswith(f"| api | {platform} | ok |") for line in lines), text


def test_hand_built_image_with_this_builds_values_passes(
    clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path
) -> None:
    """The control for the broken images below: the same recipe with nothing broken passes."""
    ref = f"{prefix}/api:good"
    buildx_push(image_context(tmp_path, binaries.good), ref, PLATFORMS)
    proc = run_verify(clone, prefix, "--image", ref)
    assert proc.returncode == 0, describe(proc)
    assert results(proc) == dict.fromkeys(PLATFORMS, "ok"), describe(proc)
    (entry,) = report(clone)
    assert (entry["ref"], entry["ok"]) == (ref, True)


def test_arm64_entry_holding_an_amd64_binary_fails(
    clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path
) -> None:
    ref = f"{prefix}/api:wrong-arch"
    files = {**binaries.good, "linux/arm64": binaries.good["linux/amd64"]}
    buildx_push(image_context(tmp_path, files), ref, PLATFORMS)
    assert set(index_platforms(skopeo_raw(ref)[1])) == set(PLATFORMS)

    proc = run_verify(clone, prefix, "--image", ref)
    assert_failed_cleanly(proc)
    table = rows(proc)
    assert table["linux/amd64"][0] == "ok", describe(proc)
    assert table["linux/arm/v7"][0] == "ok", describe(proc)
    result, detail = table["linux/arm64"]
    assert result == "failed", describe(proc)
    assert re.search(r"ELF machine is amd64\b.*expected arm64", detail), describe(proc)

    (entry,) = report(clone)
    arm64 = report_platforms(entry)["linux/arm64"]
    assert entry["ok"] is False
    assert arm64["result"] == "failed"
    assert any("machine is amd64" in p and "expected arm64" in p for p in arm64["problems"]), arm64


def test_missing_platform_fails(clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path) -> None:
    ref = f"{prefix}/api:two-platforms"
    two = ("linux/amd64", "linux/arm64")
    buildx_push(image_context(tmp_path, {p: binaries.good[p] for p in two}), ref, two)
    assert set(index_platforms(skopeo_raw(ref)[1])) == set(two)

    proc = run_verify(clone, prefix, "--image", ref)
    assert_failed_cleanly(proc)
    assert "lacks linux/arm/v7" in plain(proc.stdout), describe(proc)
    table = rows(proc)
    assert table["-"][0] == "failed", describe(proc)
    assert "lacks linux/arm/v7" in table["-"][1], describe(proc)
    assert table["linux/amd64"][0] == "ok", describe(proc)
    assert table["linux/arm64"][0] == "ok", describe(proc)

    (entry,) = report(clone)
    assert entry["ok"] is False
    assert any("lacks linux/arm/v7" in p for p in entry["problems"]), entry
    assert set(report_platforms(entry)) == set(two)


def test_config_disagreeing_with_its_index_entry_fails(
    clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path
) -> None:
    repository_ref = f"{prefix}/api"
    repository = repository_ref.split("/", 1)[1]
    buildx_push(image_context(tmp_path, binaries.good), f"{repository_ref}:good", PLATFORMS)
    _, good_index = skopeo_raw(f"{repository_ref}:good")

    # By hand: an arm64 binary in a layer, a config that says amd64, an index entry that says arm64.
    layer, diff_id = tar_gz_layer({"usr/local/bin/api": binaries.good["linux/arm64"].read_bytes()})
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/usr/local/bin/api"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    layer_digest = upload_blob(REGISTRY_API, repository, layer)
    config_digest = upload_blob(REGISTRY_API, repository, config)
    image = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": len(layer)}],
        }
    ).encode()
    image_digest = put_manifest(REGISTRY_API, repository, "crafted-arm64", image, OCI_MANIFEST)
    index = dict(good_index)
    index["manifests"] = [
        {**e, "digest": image_digest, "size": len(image)} if e["platform"]["architecture"] == "arm64" else e
        for e in good_index["manifests"]
    ]
    raw_index = json.dumps(index).encode()
    put_manifest(REGISTRY_API, repository, "config-mismatch", raw_index, index["mediaType"])
    ref = f"{repository_ref}:config-mismatch"
    # what skopeo sees: the index says arm64, the config under it says amd64
    assert index_platforms(skopeo_raw(ref)[1])["linux/arm64"] == image_digest
    crafted_config = skopeo_config(f"{repository_ref}@{image_digest}")
    assert crafted_config["architecture"] == "amd64"

    proc = run_verify(clone, prefix, "--image", ref)
    assert_failed_cleanly(proc)
    table = rows(proc)
    assert table["linux/amd64"][0] == "ok", describe(proc)
    assert table["linux/arm/v7"][0] == "ok", describe(proc)
    result, detail = table["linux/arm64"]
    assert result == "failed", describe(proc)
    assert re.search(r"config says linux/amd64.*index entry says linux/arm64", detail), describe(proc)
    (entry,) = report(clone)
    assert report_platforms(entry)["linux/arm64"]["result"] == "failed"


def test_binary_without_the_version_x_value_fails(
    clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path
) -> None:
    ref = f"{prefix}/api:no-version"
    buildx_push(image_context(tmp_path, binaries.no_version), ref, PLATFORMS)

    proc = run_verify(clone, prefix, "--image", ref)
    assert_failed_cleanly(proc)
    table = rows(proc)
    assert set(table) == set(PLATFORMS), describe(proc)
    want = f"-X {VERSION_PKG}.Version={TAG}"
    for platform, (result, detail) in table.items():
        assert result == "failed", (platform, describe(proc))
        assert want in detail, (platform, describe(proc))
        # only the missing variable is named, not the three that are there
        for other in ("GitCommit", "BuildDate", "GitTreeState"):
            assert f"{VERSION_PKG}.{other}" not in detail, (platform, describe(proc))
    (entry,) = report(clone)
    for p in entry["platforms"]:
        assert p["result"] == "failed"
        assert any(want in problem for problem in p["problems"]), p


def test_smoke_run_that_never_exits_is_killed(clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path) -> None:
    repository_ref = f"{prefix}/api"
    ref = f"{repository_ref}:hang"
    buildx_push(image_context(tmp_path, binaries.hang), ref, PLATFORMS)
    children = index_platforms(skopeo_raw(ref)[1])
    image_ids = {skopeo_raw(f"{repository_ref}@{d}")[1]["config"]["digest"] for d in children.values()}
    timeout = 5
    started = time.monotonic()
    proc = run_verify(clone, prefix, "--image", ref, "--timeout", str(timeout))
    elapsed = time.monotonic() - started
    leftover = {c: i for c, i in container_image_ids().items() if i in image_ids}

    assert_failed_cleanly(proc)
    table = rows(proc)
    assert set(table) == set(PLATFORMS), describe(proc)
    for platform, (result, detail) in table.items():
        assert result == "hung", (platform, describe(proc))
        assert f"no exit within {timeout}s" in detail, (platform, describe(proc))
    # each platform waits the timeout, not more than a few seconds beyond it (pull, start, kill)
    assert len(PLATFORMS) * timeout <= elapsed < len(PLATFORMS) * (timeout + 10), f"{elapsed:.1f}s\n{describe(proc)}"
    (entry,) = report(clone)
    assert {p["platform"]: p["result"] for p in entry["platforms"]} == dict.fromkeys(PLATFORMS, "hung")
    assert leftover == {}, f"smoke containers left behind: {leftover}"


# --- verification before tags move ---------------------------------------------------------------


def test_failed_verification_moves_no_tag_and_verify_0_skips_it(clone: Clone, prefix: str, tmp_path: Path) -> None:
    tag_ref, latest_ref = f"{prefix}/api:{TAG}", f"{prefix}/api:latest"
    (tmp_path / "hello.txt").write_text("the index that was here before\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    old = buildx_push(tmp_path, tag_ref, ("linux/amd64", "linux/arm64"))

    config = clone.config_copy(
        "verify-smoke-fails.toml",
        'package = "./cmd/api"\n',
        'package = "./cmd/api"\nsmoke_args = ["--definitely-not-a-flag"]\n',
    )
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix}
    shutil.rmtree(clone.build_dir / "reports", ignore_errors=True)
    proc = clone.invoke("image.multiarch", "--config", str(config), env=env)
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    assert "no tag was moved" in plain(proc.stderr), describe(proc)
    assert skopeo_digest(tag_ref) == old, "a failed verification moved the version tag"
    assert not skopeo_exists(latest_ref), "a failed verification created the latest tag"
    (entry,) = report(clone, "verify-api")
    assert entry["ok"] is False
    for p in entry["platforms"]:
        assert (p["result"], p["smoke"]) == ("failed", "failed"), p

    proc = clone.invoke("image.multiarch", "--config", str(config), env={**env, "VERIFY": "0"})
    assert proc.returncode == 0, describe(proc)
    new = skopeo_digest(tag_ref)
    assert new != old, "VERIFY=0 did not move the version tag"
    assert set(index_platforms(skopeo_raw(tag_ref)[1])) == set(PLATFORMS)
    assert skopeo_digest(latest_ref) == new
