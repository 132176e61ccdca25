"""Integration tests of the image tasks: buildx + BuildKit + the local registry + QEMU, for real.

Every command runs in the session's throwaway clone of the repository (committed
files only, tagged so the version is predictable), through its own `make` /
`.venv/bin/invoke`, and pushes under a registry prefix no other test uses.
Results are read only with independent tools (see support/witness.py):
skopeo, plain HTTP to the registry API, the docker CLI, and tarfile/json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.clone import Clone, namespace, unique_prefix
from support.commands import assert_clean_failure, describe, run
from support.example import GO_IMAGE, RUN_SAYS, SERVICES, SOURCE_URL, TAG
from support.example import PLATFORMS as DEFAULT_PLATFORMS
from support.inputs import buildx_push
from support.registries import port_is_closed
from support.witness import (
    OCI_INDEX,
    OciArchive,
    assert_config_platform,
    assert_index,
    docker_images_under,
    docker_run_version,
    index_platforms,
    remove_docker_images,
    repositories_under,
    sha256_digest,
    skopeo_config,
    skopeo_copy,
    skopeo_exists,
    skopeo_raw,
    tags,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

TWO_PLATFORMS = ("linux/amd64", "linux/arm64")
LABEL = "org.opencontainers.image."


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def go_builder_image(clone: Clone) -> str:
    """The offline Go builder image for multistage mode, built once if the registry lacks it."""
    if not skopeo_exists(GO_IMAGE):
        proc = clone.invoke("go-image")
        assert proc.returncode == 0, describe(proc)
        clone.reset_build()
        assert skopeo_exists(GO_IMAGE), f"`invoke go-image` did not push {GO_IMAGE}"
    return GO_IMAGE


@dataclass
class Published:
    prefix: str
    proc: subprocess.CompletedProcess[str]
    digests: dict[str, str] = field(default_factory=dict)  # service -> index digest of :TAG right after the run


@pytest.fixture(scope="module")
def published(clone: Clone) -> Iterator[Published]:
    """`make image.multiarch` with the default config (4 services x 3 platforms) under a new prefix."""
    clone.reset_build()
    value = unique_prefix()
    proc = clone.make("image.multiarch", env={"REGISTRY_PREFIX": value})
    result = Published(value, proc)
    if proc.returncode == 0:
        for service in SERVICES:
            if skopeo_exists(f"{value}/{service}:{TAG}"):
                result.digests[service] = sha256_digest(skopeo_raw(f"{value}/{service}:{TAG}")[0])
    yield result
    remove_docker_images(value)


# --- helpers ----------------------------------------------------------------------------


def assert_nothing_pushed(prefix: str) -> None:
    ns = namespace(prefix)
    assert repositories_under(ns) == [], f"something was pushed under {prefix}"


def assert_no_tags(prefix: str, service: str) -> None:
    found = tags(f"{namespace(prefix)}/{service}")
    assert found == [], f"{prefix}/{service} has tags {found}; no tag should exist"


def utc(text: str) -> dt.datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), f"not an RFC 3339 UTC time: {text!r}"
    return dt.datetime.fromisoformat(text)


def commit_time(repo: Clone) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(repo.git("log", "-1", "--format=%ct")), tz=dt.UTC)


def digest_files(repo: Clone, service: str) -> dict[str, str]:
    """build/digests/<service>/*.json -> the one sha256 digest each file records."""
    found = {}
    for path in sorted((repo.build_dir / "digests" / service).glob("*.json")):
        digests = set(re.findall(r"sha256:[0-9a-f]{64}", path.read_text()))
        assert len(digests) == 1, f"{path} should record exactly one digest: {path.read_text()}"
        found[path.name] = digests.pop()
    return found


def assert_image_config(repo: Clone, ref: str, platform: str, service: str) -> dict[str, Any]:
    """Platform, user and OCI labels of one platform's image, read with skopeo."""
    config = skopeo_config(ref)
    assert_config_platform(config, platform, ref)
    inner = config.get("config") or {}
    assert inner.get("User") == "65532:65532", f"{ref}: runs as {inner.get('User')!r}, expected 65532:65532"
    labels = inner.get("Labels") or {}
    assert labels.get(LABEL + "version") == TAG, f"{ref}: labels {labels}"
    assert labels.get(LABEL + "revision") == repo.git("rev-parse", "HEAD"), f"{ref}: labels {labels}"
    assert labels.get(LABEL + "source") == SOURCE_URL, f"{ref}: labels {labels}"
    assert labels.get(LABEL + "title") == service, f"{ref}: labels {labels}"
    assert utc(labels.get(LABEL + "created", "")) == commit_time(repo), f"{ref}: labels {labels}"
    return config


# --- 1 + 8: the main job ------------------------------------------------------------------


def layer_entries(layout: Path) -> list[list[tuple[str, int, int]]]:
    """(name, mtime, uid) of every entry of every layer of the one image in an OCI layout, in order."""
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    layers = []
    for layer in manifest["layers"]:
        with tarfile.open(blobs / layer["digest"].split(":")[1], "r:*") as tar:
            layers.append([(m.name + ("/" if m.isdir() else ""), int(m.mtime), m.uid) for m in tar.getmembers()])
    return layers


def test_make_image_multiarch_pushes_one_checked_index_per_service(
    clone: Clone, published: Published, tmp_path: Path
) -> None:
    assert published.proc.returncode == 0, describe(published.proc)
    prefix = published.prefix
    assert sorted(repositories_under(namespace(prefix))) == sorted(f"{namespace(prefix)}/{s}" for s in SERVICES)
    api_platforms: dict[str, str] = {}
    for service in SERVICES:
        repo = f"{prefix}/{service}"
        assert tags(f"{namespace(prefix)}/{service}") == sorted([TAG, "latest"])
        digest, platforms = assert_index(f"{repo}:{TAG}", DEFAULT_PLATFORMS)
        latest, _ = assert_index(f"{repo}:latest", DEFAULT_PLATFORMS)
        assert latest == digest, f"{repo}: :latest is {latest}, :{TAG} is {digest}"
        for platform, manifest in platforms.items():
            config = assert_image_config(clone, f"{repo}@{manifest}", platform, service)
            # prebuilt mode: the image copies the layer tree $TARGETPLATFORM/<service>/ from build/rootfs,
            # its build context, so nothing of output_dir's path is in the image
            history = " ".join(str(h.get("created_by", "")) for h in config.get("history", []))
            assert f"COPY {platform}/{service}/ /" in history, f"{repo} {platform}: {history}"
            assert "build/" not in history, f"{repo} {platform}: {history}"
        if service == "api":
            api_platforms = platforms

    # The binary's layer, read with skopeo and tarfile: the binary and the directories COPY made,
    # every entry at the commit time (SOURCE_DATE_EPOCH), root-owned, nothing else.
    layout = skopeo_copy(f"{prefix}/api:{TAG}", tmp_path / "api-arm64", arch="arm64")
    entries = layer_entries(layout)[-1]
    assert [name for name, _mtime, _uid in entries] == ["usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/api"]
    epoch = int(commit_time(clone).timestamp())
    assert {(mtime, uid) for _name, mtime, uid in entries} == {(epoch, 0)}, entries

    # Every platform of one service really runs (QEMU for arm64 and arm/v7) and says what it is.
    for platform, manifest in api_platforms.items():
        fields = docker_run_version(f"{prefix}/api@{manifest}", platform)
        assert fields.get("name") == "api", fields
        assert fields.get("platform") == RUN_SAYS[platform], f"{platform}: {fields}"
        assert fields.get("version") == TAG, f"{platform}: {fields}"
    # And the tag picks the right image for the platform docker asks for.
    fields = docker_run_version(f"{prefix}/api:{TAG}", "linux/arm64")
    assert fields.get("platform") == "linux/arm64", fields


def test_make_image_multiarch_again_moves_no_tag(clone: Clone, published: Published) -> None:
    assert published.proc.returncode == 0, describe(published.proc)
    assert set(published.digests) == set(SERVICES), "the first run did not push every service"
    proc = clone.make("image.multiarch", env={"REGISTRY_PREFIX": published.prefix})
    assert proc.returncode == 0, describe(proc)
    for service in SERVICES:
        repo = f"{published.prefix}/{service}"
        assert tags(f"{namespace(published.prefix)}/{service}") == sorted([TAG, "latest"])
        for tag in (TAG, "latest"):
            digest, _ = assert_index(f"{repo}:{tag}", DEFAULT_PLATFORMS)
            assert digest == published.digests[service], f"{repo}:{tag} moved from {published.digests[service]}"


def test_the_image_digest_does_not_depend_on_the_output_directory(fresh: Clone, prefix: str) -> None:
    """Where the artifacts go (project.output_dir) is the user's local choice; the same commit must
    publish byte-identical indexes from build/ and from another directory."""
    moved = fresh.config_copy("output-elsewhere.toml", 'output_dir = "build"\n', 'output_dir = "_elsewhere/out"\n')
    first, second = f"{prefix}-a", f"{prefix}-b"
    proc = fresh.make("image.multiarch", env={"IMAGES": "api", "REGISTRY_PREFIX": first})
    assert proc.returncode == 0, describe(proc)
    proc = fresh.make("image.multiarch", env={"IMAGES": "api", "REGISTRY_PREFIX": second, "CONFIG": str(moved)})
    assert proc.returncode == 0, describe(proc)
    assert (fresh.root / "_elsewhere" / "out" / "bin").is_dir(), "the moved config did not build into _elsewhere/out"

    a, platforms_a = assert_index(f"{first}/api:{TAG}", DEFAULT_PLATFORMS)
    b, platforms_b = assert_index(f"{second}/api:{TAG}", DEFAULT_PLATFORMS)
    assert platforms_a == platforms_b, f"per-platform manifests differ: {platforms_a} vs {platforms_b}"
    assert a == b, f"index digest changed with output_dir: {a} vs {b}"


# --- 2: multistage -------------------------------------------------------------------------


def test_multistage_mode_builds_in_the_go_image(fresh: Clone, prefix: str, go_builder_image: str) -> None:
    env = {"MODE": "multistage", "GO_IMAGE": go_builder_image, "IMAGES": "api", "REGISTRY_PREFIX": prefix}
    proc = fresh.make("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    ns = namespace(prefix)
    assert repositories_under(ns) == [f"{ns}/api"], "IMAGES=api pushed other services"
    assert tags(f"{ns}/api") == sorted([TAG, "latest"])
    _, platforms = assert_index(f"{prefix}/api:{TAG}", DEFAULT_PLATFORMS)
    for platform, manifest in platforms.items():
        config = assert_image_config(fresh, f"{prefix}/api@{manifest}", platform, "api")
        # A prebuilt image copies <platform>/api from the binary directory; a multistage one from its Go stage.
        history = " ".join(str(h.get("created_by", "")) for h in config.get("history", []))
        assert f"COPY {platform}/api " not in history, f"{platform}: looks like a prebuilt image: {history}"
        assert "/out/api" in history, f"{platform}: {history}"
    fields = docker_run_version(f"{prefix}/api@{platforms['linux/arm64']}", "linux/arm64")
    assert fields.get("platform") == "linux/arm64", fields
    assert fields.get("version") == TAG, fields


def test_multistage_exports_one_shared_cache_to_the_registry(fresh: Clone, prefix: str, go_builder_image: str) -> None:
    # two services share one builder stage: one cache, exported once, under [image] cache_ref
    cache = f"{prefix}/buildcache"
    env = {
        **{"MODE": "multistage", "GO_IMAGE": go_builder_image, "IMAGES": "api,push", "REGISTRY_PREFIX": prefix},
        **{"PLATFORMS": " ".join(TWO_PLATFORMS), "CACHE_REF": cache, "VERIFY": "0"},
    }
    proc = fresh.make("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    ns = namespace(prefix)
    assert tags(f"{ns}/buildcache") == ["shared"]
    raw, data = skopeo_raw(f"{cache}:shared")
    # BuildKit's registry cache: a manifest whose config is the cache graph, with the layers it holds
    media_types = {str(d.get("mediaType")) for d in [data.get("config") or {}, *data.get("manifests", [])]}
    assert "application/vnd.buildkit.cacheconfig.v0" in media_types, raw[:400]
    assert data.get("layers") or data.get("manifests"), raw[:400]
    for service in ("api", "push"):
        assert_index(f"{prefix}/{service}:{TAG}", TWO_PLATFORMS)


# --- 3: CI matrix: push by digest, merge once ------------------------------------------------


def test_push_by_digest_twice_then_manifest_merges_and_is_idempotent(fresh: Clone, prefix: str) -> None:
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix}
    pushed: dict[str, str] = {}
    for platform in TWO_PLATFORMS:
        proc = fresh.invoke("image", "--platform", platform, "--push-by-digest", env=env)
        assert proc.returncode == 0, describe(proc)
    recorded = digest_files(fresh, "api")
    assert set(recorded) == {"linux-amd64.json", "linux-arm64.json"}, recorded
    for name, digest in recorded.items():
        platform = name.removesuffix(".json").replace("-", "/")
        assert_config_platform(skopeo_config(f"{prefix}/api@{digest}"), platform, name)
        pushed[platform] = digest
    assert_no_tags(prefix, "api")

    merge_env = {**env, "PLATFORMS": " ".join(TWO_PLATFORMS)}
    proc = fresh.invoke("manifest", env=merge_env)
    assert proc.returncode == 0, describe(proc)
    digest, platforms = assert_index(f"{prefix}/api:{TAG}", TWO_PLATFORMS)
    assert platforms == pushed, "the index does not point at the pushed per-platform images"
    annotations = skopeo_raw(f"{prefix}/api:{TAG}")[1].get("annotations") or {}
    assert annotations.get(LABEL + "version") == TAG, f"the merged index's annotations: {annotations}"
    assert annotations.get(LABEL + "revision") == fresh.git("rev-parse", "HEAD"), annotations
    assert tags(f"{namespace(prefix)}/api") == sorted([TAG, "latest"])
    assert assert_index(f"{prefix}/api:latest", TWO_PLATFORMS)[0] == digest

    again = fresh.invoke("manifest", env=merge_env)
    assert again.returncode == 0, describe(again)
    assert assert_index(f"{prefix}/api:{TAG}", TWO_PLATFORMS)[0] == digest, "rerunning `invoke manifest` moved the tag"
    assert assert_index(f"{prefix}/api:latest", TWO_PLATFORMS)[0] == digest


def test_manifest_with_a_missing_arch_fails_and_tags_nothing(fresh: Clone, prefix: str) -> None:
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix}
    proc = fresh.invoke("image", "--platform", "linux/amd64", "--push-by-digest", env=env)
    assert proc.returncode == 0, describe(proc)
    assert set(digest_files(fresh, "api")) == {"linux-amd64.json"}

    proc = fresh.invoke("manifest", env={**env, "PLATFORMS": " ".join(TWO_PLATFORMS)})
    line = assert_clean_failure(proc)
    assert "linux/arm64" in line, describe(proc)
    assert_no_tags(prefix, "api")


# --- 4: legacy per-arch repositories -----------------------------------------------------------


def test_manifest_legacy_merges_per_arch_repositories(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    context = tmp_path / "context"
    (context / "Dockerfile").parent.mkdir()
    (context / "Dockerfile").write_text(
        'FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}/api /usr/local/bin/api\nENTRYPOINT ["/usr/local/bin/api"]\n'
    )
    pushed = {}
    for platform in TWO_PLATFORMS:
        arch = platform.split("/")[1]
        proc = run(
            ["go", "build", "-trimpath", "-o", context / arch / "api", "./cmd/api"],
            cwd=fresh.module_dir,
            env={"GOOS": "linux", "GOARCH": arch, "CGO_ENABLED": "0"},
        )
        assert proc.returncode == 0, describe(proc)
        pushed[platform] = buildx_push(context, f"{prefix}/api-{arch}:{TAG}", (platform,))
    assert_no_tags(prefix, "api")

    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix, "PLATFORMS": " ".join(TWO_PLATFORMS)}
    proc = fresh.invoke("manifest", "--legacy", env=env)
    assert proc.returncode == 0, describe(proc)
    _, platforms = assert_index(f"{prefix}/api:{TAG}", TWO_PLATFORMS)
    assert platforms == pushed, "the merged index does not point at the per-arch images"
    for platform, manifest in platforms.items():
        assert_config_platform(skopeo_config(f"{prefix}/api@{manifest}"), platform, platform)


# --- 5: OCI layout export ------------------------------------------------------------------------


def test_oci_export_writes_a_multi_platform_layout_and_pushes_nothing(fresh: Clone, prefix: str) -> None:
    proc = fresh.invoke("image.multiarch", "--output", "oci", env={"IMAGES": "api", "REGISTRY_PREFIX": prefix})
    assert proc.returncode == 0, describe(proc)
    tarball = fresh.build_dir / "oci" / "api.tar"
    assert tarball.is_file(), describe(proc)
    assert sorted(p.name for p in (fresh.build_dir / "oci").iterdir()) == ["api.tar"]

    layout = OciArchive(tarball)
    assert layout.json("oci-layout").get("imageLayoutVersion") == "1.0.0"
    top = layout.json("index.json")
    assert top["manifests"], f"{tarball}: empty index.json"
    ref_names = set()
    for entry in top["manifests"]:
        ref_names.add((entry.get("annotations") or {}).get("org.opencontainers.image.ref.name"))
        assert entry.get("mediaType") == OCI_INDEX, f"{tarball}: index.json entry {entry}"
        nested = layout.blob(entry["digest"])
        platforms = index_platforms(nested)
        assert set(platforms) == set(DEFAULT_PLATFORMS), f"{tarball}: platforms {sorted(platforms)}"
        for platform, digest in platforms.items():
            manifest = layout.blob(digest)
            assert_config_platform(layout.blob(manifest["config"]["digest"]), platform, f"{tarball} {platform}")
    assert TAG in ref_names, f"{tarball}: ref names {ref_names}"
    assert_nothing_pushed(prefix)


# --- 6: one platform into the docker daemon -------------------------------------------------------


def test_image_load_one_foreign_platform(fresh: Clone, prefix: str) -> None:
    proc = fresh.invoke(
        "image", "--platform", "linux/arm64", "--load", env={"IMAGES": "api", "REGISTRY_PREFIX": prefix}
    )
    assert proc.returncode == 0, describe(proc)
    inspect = run(["docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", f"{prefix}/api:{TAG}"])
    assert inspect.returncode == 0, describe(inspect)
    assert inspect.stdout.strip() == "linux/arm64"
    assert_nothing_pushed(prefix)


def test_a_platform_no_node_offers_builds_when_nothing_runs_on_it(fresh: Clone, prefix: str) -> None:
    """buildx sends a platform that no node offers to the first node; an image that only copies its
    binary in builds there (a RUN step would need QEMU), so crossbuild builds it instead of refusing."""
    builder = run(["docker", "buildx", "inspect", "crossbuild"])
    assert builder.returncode == 0, describe(builder)
    if "linux/loong64" in builder.stdout:
        pytest.skip("this builder offers linux/loong64 (QEMU for it is registered): no fallback to show")
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix, "PLATFORMS": "linux/amd64,linux/loong64"}
    proc = fresh.invoke("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    _, found = assert_index(f"{prefix}/api:{TAG}", ["linux/amd64", "linux/loong64"])
    config = skopeo_config(f"{prefix}/api@{found['linux/loong64']}")
    assert (config.get("os"), config.get("architecture")) == ("linux", "loong64"), config
    # the doctor's routing table says where it went and why
    doctor = fresh.invoke("doctor", env=env)
    assert re.search(r"linux/loong64 +crossbuild\S* .*not offered .*no node offers it", doctor.stdout), describe(doctor)


def test_image_load_two_platforms_is_refused_in_one_line(fresh: Clone, prefix: str) -> None:
    proc = fresh.invoke(
        "image",
        "--platform",
        "linux/amd64",
        "--platform",
        "linux/arm64",
        "--load",
        env={"IMAGES": "api", "REGISTRY_PREFIX": prefix},
    )
    line = assert_clean_failure(proc)
    assert "--load" in line, line
    assert "one platform" in line, line
    assert len([x for x in proc.stderr.splitlines() if x.strip()]) == 1, describe(proc)
    assert docker_images_under(prefix) == []
    assert_nothing_pushed(prefix)


# --- 7: failures: one line with the fix, nothing built or tagged --------------------------------------


def test_registry_down_fails_before_building(fresh: Clone) -> None:
    if not port_is_closed("127.0.0.1", 5999):
        pytest.fail("something listens on 127.0.0.1:5999; this test needs nothing there")
    proc = fresh.invoke("image.multiarch", env={"IMAGES": "api", "REGISTRY_PREFIX": "127.0.0.1:5999/x"})
    line = assert_clean_failure(proc)
    assert "127.0.0.1:5999" in line, line
    assert "make registry.up" in line or "REGISTRY_PREFIX" in line or "address" in line, line
    assert port_is_closed("127.0.0.1", 5999), "crossbuild started something on 127.0.0.1:5999"
    assert not (fresh.build_dir / "bin").exists(), "binaries were built before the registry was checked"
    assert not (fresh.build_dir / "bake").exists(), "an image build was started"


def test_missing_builder_is_reported_with_the_fix(fresh: Clone, prefix: str) -> None:
    config = fresh.config_copy("images-no-builder.toml", 'name = "crossbuild"', 'name = "no-such-builder"')
    try:
        proc = fresh.invoke(
            "image.multiarch", "--config", config.name, env={"IMAGES": "api", "REGISTRY_PREFIX": prefix}
        )
    finally:
        config.unlink()
    created = run(["docker", "buildx", "inspect", "no-such-builder"]).returncode == 0
    if created:
        run(["docker", "buildx", "rm", "no-such-builder"])
    assert not created, "the image task created builder no-such-builder as a side effect"
    line = assert_clean_failure(proc)
    assert "no-such-builder" in line, line
    assert "make setup" in line, line
    assert_nothing_pushed(prefix)


def test_unknown_service_lists_the_known_ones(fresh: Clone, prefix: str) -> None:
    proc = fresh.invoke("image.multiarch", env={"IMAGES": "nosuch", "REGISTRY_PREFIX": prefix})
    line = assert_clean_failure(proc)
    assert "nosuch" in line, line
    for service in SERVICES:
        assert service in line, line
    assert_nothing_pushed(prefix)
    assert not (fresh.build_dir / "bin").exists()


def test_darwin_image_platform_is_refused(fresh: Clone, prefix: str) -> None:
    proc = fresh.invoke(
        "image.multiarch", env={"IMAGES": "api", "REGISTRY_PREFIX": prefix, "PLATFORMS": "darwin/arm64"}
    )
    line = assert_clean_failure(proc)
    assert "darwin/arm64" in line, line
    assert "linux" in line.lower(), line
    assert_nothing_pushed(prefix)
    assert not (fresh.build_dir / "bin").exists()


def test_multistage_with_a_missing_go_image(fresh: Clone, prefix: str) -> None:
    missing = "localhost:5000/golang:nope"
    assert not skopeo_exists(missing), f"{missing} exists; this test needs it absent"
    env = {"IMAGES": "api", "REGISTRY_PREFIX": prefix, "MODE": "multistage", "GO_IMAGE": missing}
    proc = fresh.invoke("image.multiarch", env=env)
    line = assert_clean_failure(proc)
    assert missing in line, line
    assert "go-image" in line, line
    assert_nothing_pushed(prefix)
    assert not (fresh.build_dir / "bake").exists(), "an image build was started"


def test_missing_buildx_plugin_is_reported_with_the_fix(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    real = shutil.which("docker")
    assert real is not None
    wrapper = tmp_path / "bin" / "docker"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "buildx" ]; then\n'
        "  echo \"docker: 'buildx' is not a docker command.\" >&2\n"
        "  echo \"See 'docker --help'\" >&2\n"
        "  exit 1\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    path = f"{wrapper.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    check = run(["docker", "buildx", "version"], env={"PATH": path})
    assert check.returncode != 0, "the wrapper does not hide buildx"
    assert run(["docker", "version", "--format", "{{.Client.Version}}"], env={"PATH": path}).returncode == 0

    proc = fresh.invoke("image.multiarch", env={"IMAGES": "api", "REGISTRY_PREFIX": prefix, "PATH": path})
    line = assert_clean_failure(proc)
    assert "buildx" in line, line
    assert "install" in line or "make tools" in line, line
    assert_nothing_pushed(prefix)
    assert not (fresh.build_dir / "bin").exists()
