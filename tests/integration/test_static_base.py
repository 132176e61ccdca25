"""Integration tests of the default runtime base ("static"): built offline, pushed once, used pinned.

The built-in example is published with `base_image = "scratch"` removed from
its config (so the default, "static", applies) for linux/amd64 and
linux/arm64 under a fresh registry prefix. What it produced is read with
tools that share no code with crossbuild: skopeo (indexes, configs, copies
into an OCI layout), Python's tarfile over the layer blobs, the registry HTTP
API (tags, DELETE), dpkg-query and the docker CLI.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.clone import Clone, namespace, unique_prefix
from support.commands import assert_clean_failure, describe, require_tools, run
from support.example import TAG
from support.registries import LOCAL_API
from support.witness import (
    OciArchive,
    assert_config_platform,
    assert_index,
    docker_run_version,
    image_files,
    index_platforms,
    merged_files,
    remove_docker_images,
    repositories_under,
    sha256_digest,
    skopeo_config,
    skopeo_exists,
    skopeo_raw,
    tags,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

PLATFORMS = ("linux/amd64", "linux/arm64")
BASE_REPO = "crossbuild-static"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CONFIG = "static.toml"  # the example's config.toml without base_image = "scratch"


@dataclass
class Run:
    prefix: str
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def clone(clone: Clone) -> Clone:
    """The module's clone with CONFIG written next to config.toml."""
    require_tools("dpkg-query")
    assert HOST_CA.is_file() and HOST_CA.stat().st_size > 0, "the host has no CA bundle: run `make tools`"
    clone.config_copy(CONFIG, 'base_image = "scratch"\n', "")
    return clone


def multiarch(repo: Clone, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`invoke image.multiarch` on the example with the default base, BASE_IMAGE unset (support.env)."""
    return repo.invoke(
        "image.multiarch", "--config", CONFIG, *args, env={"REGISTRY_PREFIX": prefix, "PLATFORMS": ",".join(PLATFORMS)}
    )


@pytest.fixture(scope="module")
def published(clone: Clone) -> Iterator[Run]:
    clone.reset_build()
    prefix = unique_prefix()
    yield Run(prefix, multiarch(clone, prefix))
    remove_docker_images(prefix)


def base_tag(prefix: str) -> str:
    """The one tag of <prefix>/crossbuild-static, read from the registry API."""
    found = tags(f"{namespace(prefix)}/{BASE_REPO}")
    assert len(found) == 1, f"{prefix}/{BASE_REPO} should have exactly one tag, has {found}"
    return found[0]


def dpkg_version(package: str) -> str:
    proc = run(["dpkg-query", "-W", "-f", "${Version}", package], timeout=30)
    assert proc.returncode == 0, describe(proc)
    return proc.stdout.strip()


# --- the main job on the default base ------------------------------------------------------------


def test_base_is_a_two_platform_index_with_one_shared_layer(published: Run) -> None:
    assert published.proc.returncode == 0, describe(published.proc)
    ref = f"{published.prefix}/{BASE_REPO}:{base_tag(published.prefix)}"
    _, platforms = assert_index(ref, PLATFORMS)
    layers = {p: skopeo_raw(f"{published.prefix}/{BASE_REPO}@{d}")[1]["layers"] for p, d in platforms.items()}
    assert all(len(v) == 1 for v in layers.values()), f"{ref}: layers {layers}"
    assert len({v[0]["digest"] for v in layers.values()}) == 1, f"{ref}: platforms got different layers {layers}"
    config = skopeo_config(f"{published.prefix}/{BASE_REPO}@{platforms['linux/arm64']}")
    assert config.get("created") == "1970-01-01T00:00:00Z", f"{ref}: created {config.get('created')}"
    label = (config.get("config") or {}).get("Labels", {}).get("dev.crossbuild.base.packages")
    assert label == f"ca-certificates={dpkg_version('ca-certificates')} tzdata={dpkg_version('tzdata')}"


def test_service_image_carries_ca_bundle_zoneinfo_and_users(published: Run, tmp_path: Path) -> None:
    assert published.proc.returncode == 0, describe(published.proc)
    _, services = assert_index(f"{published.prefix}/api:{TAG}", PLATFORMS)
    digests, files = image_files(f"{published.prefix}/api@{services['linux/arm64']}", tmp_path / "api-arm64")

    ca_member, ca = files["etc/ssl/certs/ca-certificates.crt"]
    assert ca and ca == HOST_CA.read_bytes(), "the CA bundle in the image differs from the host's"
    assert ca_member.mode & 0o444 == 0o444, f"CA bundle mode {oct(ca_member.mode)}: not world-readable"
    for zone in ("usr/share/zoneinfo/Etc/UTC", "usr/share/zoneinfo/Asia/Shanghai"):
        assert files[zone][1].startswith(b"TZif"), f"{zone} is not a TZif file"
    utc = files["usr/share/zoneinfo/UTC"][0]
    assert utc.issym() and (utc.linkname == "Etc/UTC" or files.get(f"usr/share/zoneinfo/{utc.linkname}")), utc
    assert not [name for name in files if name.startswith("usr/share/zoneinfo/right/")]

    passwd = files["etc/passwd"][1].decode().splitlines()
    assert [line for line in passwd if line.split(":")[2:4] == ["65532", "65532"]] == [
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"
    ], passwd
    assert "nonroot:x:65532:" in files["etc/group"][1].decode().splitlines()
    home = files["home/nonroot"][0]
    assert home.isdir() and (home.uid, home.gid) == (65532, 65532), f"/home/nonroot owned by {home.uid}:{home.gid}"
    tmp = files["tmp"][0]
    assert tmp.isdir() and tmp.mode & 0o7777 == 0o1777, f"/tmp mode {oct(tmp.mode)}"
    assert files["usr/local/bin/api"][1].startswith(b"\x7fELF")

    # built on the pushed base: its one layer comes first
    base_index = skopeo_raw(f"{published.prefix}/{BASE_REPO}:{base_tag(published.prefix)}")[1]
    base_arm64 = skopeo_raw(f"{published.prefix}/{BASE_REPO}@{index_platforms(base_index)['linux/arm64']}")[1]
    assert digests[0] == base_arm64["layers"][0]["digest"], f"api's first layer {digests[0]} is not the base's"


def test_service_image_still_runs_on_arm64(published: Run) -> None:
    assert published.proc.returncode == 0, describe(published.proc)
    fields = docker_run_version(f"{published.prefix}/api:{TAG}", "linux/arm64")
    assert fields.get("platform") == "linux/arm64", fields


def test_rerun_reuses_the_base_and_builds_nothing(clone: Clone, published: Run) -> None:
    assert published.proc.returncode == 0, describe(published.proc)
    before = base_tag(published.prefix)
    digest = sha256_digest(skopeo_raw(f"{published.prefix}/{BASE_REPO}:{before}")[0])
    proc = multiarch(clone, published.prefix)
    assert proc.returncode == 0, describe(proc)
    assert "already in the registry" in proc.stdout, describe(proc)
    assert "static base pushed" not in proc.stdout, describe(proc)
    assert base_tag(published.prefix) == before
    assert sha256_digest(skopeo_raw(f"{published.prefix}/{BASE_REPO}:{before}")[0]) == digest


def test_base_rebuilt_after_deletion_has_the_same_digest(clone: Clone, published: Run) -> None:
    """Reproducible: delete the base from the registry, build it again, compare the index digests."""
    assert published.proc.returncode == 0, describe(published.proc)
    tag = base_tag(published.prefix)
    ref = f"{published.prefix}/{BASE_REPO}:{tag}"
    first = sha256_digest(skopeo_raw(ref)[0])
    api_before = sha256_digest(skopeo_raw(f"{published.prefix}/api:{TAG}")[0])
    url = f"{LOCAL_API}/v2/{namespace(published.prefix)}/{BASE_REPO}/manifests/{first}"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30) as resp:
        assert resp.status == 202, f"DELETE {url}: HTTP {resp.status}"
    assert not skopeo_exists(ref), f"{ref} still resolves after DELETE"

    proc = multiarch(clone, published.prefix)
    assert proc.returncode == 0, describe(proc)
    assert "static base pushed" in proc.stdout, describe(proc)
    assert sha256_digest(skopeo_raw(ref)[0]) == first, "the rebuilt base has another digest: not reproducible"
    # same base digest, so the images' content keys did not change: nothing rebuilt
    assert sha256_digest(skopeo_raw(f"{published.prefix}/api:{TAG}")[0]) == api_before
    assert "unchanged" in proc.stdout, describe(proc)

    # BuildKit's cache plays no part: the context crossbuild left, built again with
    # --no-cache by the buildx CLI under another name, gives the same index
    context = clone.build_dir / "cache" / "static-base" / "context"
    assert (context / "rootfs.tar").is_file(), f"no build context in {context}"
    again = f"{unique_prefix()}/{BASE_REPO}:{tag}"
    proc = run(
        [
            "docker", "buildx", "build", "--builder", "crossbuild", "--no-cache", "--provenance", "false",
            "--platform", ",".join(PLATFORMS), "--build-arg", "SOURCE_DATE_EPOCH=0",
            "--output", f"type=image,name={again},push=true,oci-mediatypes=true,rewrite-timestamp=true,"
            "compression=gzip,compression-level=1",
            str(context),
        ],
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    assert sha256_digest(skopeo_raw(again)[0]) == first, "a --no-cache build of the base gives another digest"


def test_dry_run_prints_the_base_build_and_pushes_nothing(fresh: Clone, prefix: str) -> None:
    clone = fresh
    proc = multiarch(clone, prefix, "--dry-run")
    assert proc.returncode == 0, describe(proc)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[dry-run] docker buildx build")]
    assert len(lines) == 1 and f"name={prefix}/{BASE_REPO}:" in lines[0], describe(proc)
    assert "SOURCE_DATE_EPOCH=0" in lines[0] and "rewrite-timestamp=true" in lines[0], lines[0]
    assert "would build and push" in proc.stdout, describe(proc)
    assert repositories_under(namespace(prefix)) == [], f"--dry-run pushed under {prefix}"


def test_oci_export_builds_on_the_base(fresh: Clone, prefix: str) -> None:
    """`--output oci` writes the layout; the image inside starts with the base's files."""
    clone = fresh
    proc = clone.invoke(
        "image", "--output", "oci", "--platform", "linux/arm64", "--config", CONFIG,
        env={"REGISTRY_PREFIX": prefix, "IMAGES": "api"},
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    layout = OciArchive(clone.build_dir / "oci" / "api.tar")
    top = layout.blob(layout.json("index.json")["manifests"][0]["digest"])
    # one platform: buildx writes the image manifest itself, not an index of one
    manifest = layout.blob(index_platforms(top)["linux/arm64"]) if "manifests" in top else top
    assert_config_platform(layout.blob(manifest["config"]["digest"]), "linux/arm64", "api.tar")
    layers = [layout.members[f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}"] for layer in manifest["layers"]]
    files = merged_files(layers)
    assert files["etc/ssl/certs/ca-certificates.crt"][1] == HOST_CA.read_bytes()
    assert files["usr/local/bin/api"][1].startswith(b"\x7fELF")
    # the base went to the registry (BuildKit pulls it from there); the image did not
    assert repositories_under(namespace(prefix)) == [f"{namespace(prefix)}/{BASE_REPO}"]


def test_push_by_digest_builds_on_the_base(fresh: Clone, prefix: str) -> None:
    """A CI matrix leg: one platform by digest, on a base of that one platform."""
    clone = fresh
    proc = clone.invoke(
        "image", "--push-by-digest", "--platform", "linux/arm64", "--config", CONFIG,
        env={"REGISTRY_PREFIX": prefix, "IMAGES": "api"},
    )  # fmt: skip
    assert proc.returncode == 0, describe(proc)
    (record,) = sorted((clone.build_dir / "digests" / "api").glob("*.json"))
    digest = json.loads(record.read_text())["digest"]
    raw = skopeo_raw(f"{prefix}/api@{digest}")[1]
    manifest = skopeo_raw(f"{prefix}/api@{index_platforms(raw)['linux/arm64']}")[1] if "manifests" in raw else raw
    # one platform: buildx pushes the image itself, not an index of one
    base_ref = f"{prefix}/{BASE_REPO}:{base_tag(prefix)}"
    base_manifest = skopeo_raw(base_ref)[1]
    assert "layers" in base_manifest, f"{base_ref}: {base_manifest}"
    assert_config_platform(skopeo_config(base_ref), "linux/arm64", base_ref)
    assert manifest["layers"][0]["digest"] == base_manifest["layers"][0]["digest"]


def test_load_builds_on_the_base(fresh: Clone, prefix: str) -> None:
    """`--load` into docker: the loaded image holds the host's CA bundle (read back with docker cp)."""
    clone = fresh
    try:
        proc = clone.invoke(
            "image", "--load", "--platform", "linux/arm64", "--config", CONFIG,
            env={"REGISTRY_PREFIX": prefix, "IMAGES": "api"},
        )  # fmt: skip
        assert proc.returncode == 0, describe(proc)
        created = run(["docker", "create", "--platform", "linux/arm64", f"{prefix}/api:{TAG}"], timeout=60)
        assert created.returncode == 0, describe(created)
        container = created.stdout.strip()
        try:
            copied = subprocess.run(
                ["docker", "cp", f"{container}:/etc/ssl/certs/ca-certificates.crt", "-"],
                capture_output=True,
                timeout=60,
                check=False,
            )
            assert copied.returncode == 0, copied.stderr.decode(errors="replace")
            with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as tar:
                fh = tar.extractfile("ca-certificates.crt")
                assert fh is not None and fh.read() == HOST_CA.read_bytes()
        finally:
            run(["docker", "rm", container], timeout=60)
        assert repositories_under(namespace(prefix)) == [f"{namespace(prefix)}/{BASE_REPO}"]
    finally:
        remove_docker_images(prefix)


def test_host_without_ca_bundle_fails_in_one_line_and_pushes_nothing(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    """/etc/ssl/certs hidden under an empty directory in a mount namespace of this test's own."""
    clone = fresh
    empty = tmp_path / "empty"
    empty.mkdir()
    hide = 'mount --bind "$1" /etc/ssl/certs && shift && exec "$@"'
    proc = run(
        [
            "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", hide, "sh", str(empty),
            clone.root / ".venv" / "bin" / "invoke", "image.multiarch", "--config", CONFIG,
        ],
        cwd=clone.root,
        env={"REGISTRY_PREFIX": prefix, "PLATFORMS": ",".join(PLATFORMS)},
    )  # fmt: skip
    line = assert_clean_failure(proc)
    assert str(HOST_CA) in line, line
    assert "apt-get install ca-certificates tzdata" in line and 'base_image = "scratch"' in line, line
    assert repositories_under(namespace(prefix)) == [], f"something was pushed under {prefix}"
    assert not (clone.build_dir / "bin").exists(), "go build ran although the base could not be made"
