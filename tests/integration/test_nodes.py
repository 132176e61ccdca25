"""A builder of several native nodes, for real: three buildkitd daemons of this test's own.

The daemons stand for three machines: one whose worker is limited to linux/amd64, one to
linux/arm64, one to linux/arm/v7, the last reached over tcp:// with client certificates
made by openssl here. crossbuild builds a buildx builder over them from config.toml
([builder] and [[builder.nodes]]), and the witnesses are independent of crossbuild: buildx's
own store of the builder, each daemon's own build history (`buildctl debug histories`, the
index it made, `debug logs` for cached steps), skopeo and the registry API for what was
pushed, docker + QEMU for the arm64 binary. The shared `crossbuild` builder and daemon are
never touched. The insecure-registry case runs in a network namespace of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from support.buildkitd import Certs, Daemon, buildx_nodes, buildx_rm, buildx_store, daemons, make_certs
from support.clone import Clone, namespace
from support.commands import assert_clean_failure, describe, plain, require_tools, run
from support.example import GO_IMAGE, PLATFORMS
from support.registries import docker_registry
from support.witness import (
    assert_index,
    docker_run_version,
    remove_docker_images,
    repositories_under,
    skopeo_exists,
    tags,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def farm(certs: Certs) -> Iterator[list[Daemon]]:
    """amd64 and arm64 on unix sockets; arm/v7 also on tcp:// with mutual TLS."""
    require_tools("buildkitd", "buildctl", "openssl", "skopeo", "docker")
    specs = [("amd64", ("linux/amd64",), False), ("arm64", ("linux/arm64",), False), ("armv7", ("linux/arm/v7",), True)]
    with daemons(specs, certs) as started:
        yield started


@pytest.fixture(scope="module")
def builders() -> Iterator[list[str]]:
    """Names of the buildx builders this module made; removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        buildx_rm(name)


def builder_toml(name: str, farm: Sequence[Daemon], certs: Certs) -> str:
    amd64, arm64, armv7 = farm
    return (
        f'[builder]\nname = "{name}"\ndriver = "remote"\nendpoint = "{amd64.unix}"\nplatforms = ["linux/amd64"]\n\n'
        f'[[builder.nodes]]\nname = "{name}-arm64"\nendpoint = "{arm64.unix}"\nplatforms = ["linux/arm64"]\n\n'
        f'[[builder.nodes]]\nname = "{name}-armv7"\nendpoint = "{armv7.tcp}"\nplatforms = ["linux/arm/v7"]\n'
        f'cacert = "{certs.ca}"\ncert = "{certs.client_cert}"\nkey = "{certs.client_key}"\n'
    )


def write_config(clone: Clone, file: str, builder: str) -> Path:
    """The clone's config.toml with its [builder] table (the last one) replaced by `builder`."""
    text = (clone.root / "config.toml").read_text()
    text = text[: text.index("[builder]")] + builder
    path = clone.root / file
    path.write_text(text)
    return path


def new_builder(builders: list[str]) -> str:
    name = f"cbn-{uuid.uuid4().hex[:8]}"
    builders.append(name)
    return name


@pytest.fixture(scope="module")
def farm_builder(clone: Clone, farm: list[Daemon], certs: Certs, builders: list[str]) -> str:
    """The builder over the three daemons, set up once for the module from farm.toml."""
    name = new_builder(builders)
    proc = clone.invoke("setup", "--config", str(write_config(clone, "farm.toml", builder_toml(name, farm, certs))))
    assert proc.returncode == 0, describe(proc)
    return name


@pytest.fixture(scope="module")
def farm_config(clone: Clone, farm_builder: str) -> Path:
    return clone.root / "farm.toml"


def record_refs(d: Daemon) -> set[str]:
    return {r["Ref"] for r in d.records()}


def new_records(d: Daemon, before: set[str]) -> list[dict[str, object]]:
    return [r for r in d.records() if r["Ref"] not in before]


def platforms_of(records: Sequence[Mapping[str, object]]) -> set[str]:
    found = set()
    for r in records:
        attrs = r.get("FrontendAttrs")
        assert isinstance(attrs, dict), r
        found |= set(str(attrs.get("platform", "")).split(","))
    return found - {""}


def built_manifests(d: Daemon, records: Sequence[Mapping[str, object]]) -> set[str]:
    """The image manifests the daemon's own builds produced: each record's result is an index
    (one platform still makes one), read back from that daemon's content store."""
    found = set()
    for r in records:
        result = r.get("Result")
        digest = result.get("ResultDeprecated", {}).get("digest") if isinstance(result, dict) else None
        if not digest:
            continue
        proc = d.buildctl("debug", "get", digest)
        assert proc.returncode == 0, proc.stderr
        found |= {m["digest"] for m in json.loads(proc.stdout).get("manifests", [])}
    return found


# --- setup --------------------------------------------------------------------------------------


def test_setup_builds_the_builder_from_config_and_a_rerun_changes_nothing(
    clone: Clone, farm: list[Daemon], certs: Certs, builders: list[str]
) -> None:
    name = new_builder(builders)
    config = write_config(clone, f"{name}.toml", builder_toml(name, farm, certs))
    first = clone.invoke("setup", "--config", str(config))
    assert first.returncode == 0, describe(first)
    amd64, arm64, armv7 = farm
    tls = {"cacert": str(certs.ca), "cert": str(certs.client_cert), "key": str(certs.client_key)}
    assert buildx_nodes(name) == {
        f"{name}0": {"endpoint": amd64.unix, "pins": ["linux/amd64"], "driver_opts": {}},
        f"{name}-arm64": {"endpoint": arm64.unix, "pins": ["linux/arm64"], "driver_opts": {}},
        f"{name}-armv7": {"endpoint": armv7.tcp, "pins": ["linux/arm/v7"], "driver_opts": tls},
    }
    store = buildx_store(name)
    before = (store.read_bytes(), store.stat().st_mtime_ns)

    second = clone.invoke("setup", "--config", str(config))
    assert second.returncode == 0, describe(second)
    assert "nothing changed" in second.stdout, describe(second)
    assert not re.search(r"created|appended|updated|removed", second.stdout), describe(second)
    assert (store.read_bytes(), store.stat().st_mtime_ns) == before, "a second setup rewrote the builder"


def test_setup_changes_a_node_in_place_and_removes_one_only_when_asked(
    clone: Clone, farm: list[Daemon], certs: Certs, builders: list[str]
) -> None:
    name = new_builder(builders)
    text = builder_toml(name, farm, certs)
    assert clone.invoke("setup", "--config", str(write_config(clone, f"{name}.toml", text))).returncode == 0
    # arm/v7 moves to the arm64 node; the arm/v7 node leaves the config
    moved = text.replace('platforms = ["linux/arm64"]', 'platforms = ["linux/arm64", "linux/arm/v7"]')
    moved = moved[: moved.index(f'[[builder.nodes]]\nname = "{name}-armv7"')]
    config = write_config(clone, f"{name}-moved.toml", moved)
    kept = clone.invoke("setup", "--config", str(config))
    assert kept.returncode == 0, describe(kept)
    assert f"node '{name}-armv7' (" in kept.stdout and "--prune" in kept.stdout, describe(kept)
    nodes = buildx_nodes(name)
    assert nodes[f"{name}-arm64"]["pins"] == ["linux/arm/v7", "linux/arm64"]
    assert f"{name}-armv7" in nodes, "setup removed a node without --prune"

    pruned = clone.invoke("setup", "--config", str(config), "--prune")
    assert pruned.returncode == 0, describe(pruned)
    assert sorted(buildx_nodes(name)) == [f"{name}-arm64", f"{name}0"]


# --- routing ------------------------------------------------------------------------------------


def routing_rows(text: str) -> dict[str, list[str]]:
    """platform -> the other cells of its row in a printed routing table."""
    rows = {}
    for line in plain(text).splitlines():
        cells = line.split()
        if cells and cells[0] in PLATFORMS and len(cells) >= 5:
            rows[cells[0]] = cells[1:]
    return rows


def test_doctor_shows_the_routing_table_and_each_node_can_push(
    clone: Clone, farm: list[Daemon], farm_config: Path, farm_builder: str
) -> None:
    name = farm_builder
    proc = clone.invoke("doctor", "--config", str(farm_config))
    assert proc.returncode == 0, describe(proc)
    rows = routing_rows(proc.stdout)
    amd64, arm64, armv7 = farm
    assert rows == {
        "linux/amd64": [f"{name}0", amd64.unix, "native", "running,", "pinned"],
        "linux/arm64": [f"{name}-arm64", arm64.unix, "native", "running,", "pinned"],
        "linux/arm/v7": [f"{name}-armv7", armv7.tcp, "native", "running,", "pinned"],
    }, describe(proc)
    for node in (f"{name}0", f"{name}-arm64", f"{name}-armv7"):
        assert re.search(rf"ok push from node {re.escape(node)}: pushed a probe", plain(proc.stdout)), describe(proc)


def test_dry_run_prints_the_routing_table_and_builds_nothing(
    clone: Clone, farm: list[Daemon], farm_config: Path, prefix: str
) -> None:
    before = [record_refs(d) for d in farm]
    proc = clone.invoke("image.multiarch", "--config", str(farm_config), "--dry-run", env={"REGISTRY_PREFIX": prefix})
    assert proc.returncode == 0, describe(proc)
    assert set(routing_rows(proc.stdout)) == set(PLATFORMS), describe(proc)
    assert [record_refs(d) for d in farm] == before, "a dry run built something"


# --- builds go where they belong ---------------------------------------------------------------


def test_prebuilt_images_build_each_platform_on_its_own_node(
    clone: Clone, farm: list[Daemon], farm_config: Path, prefix: str
) -> None:
    clone.reset_build()
    before = [record_refs(d) for d in farm]
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api,push"}
    proc = clone.invoke("image.multiarch", "--config", str(farm_config), env=env)
    assert proc.returncode == 0, describe(proc)
    indexes = {s: assert_index(f"{prefix}/{s}:latest", PLATFORMS)[1] for s in ("api", "push")}
    for d, seen in zip(farm, before, strict=True):
        records = new_records(d, seen)
        (mine,) = d.platforms
        assert len(records) >= 2, f"{d.name}: {len(records)} build record(s) for two services"
        assert platforms_of(records) == {mine}, f"{d.name} built {platforms_of(records)}"
        # the manifests in the pushed indexes for this platform are the ones this daemon made
        assert {indexes[s][mine] for s in indexes} <= built_manifests(d, records), d.name
    fields = docker_run_version(f"{prefix}/api@{indexes['api']['linux/arm64']}", "linux/arm64")
    assert fields.get("platform") == "linux/arm64", fields


@pytest.fixture(scope="module")
def go_builder_image(clone: Clone) -> str:
    """The offline Go builder image multistage mode needs (built with the default config if missing)."""
    if not skopeo_exists(GO_IMAGE):
        proc = clone.invoke("go-image")
        assert proc.returncode == 0, describe(proc)
    return GO_IMAGE


def go_build_steps(d: Daemon, records: Sequence[Mapping[str, object]]) -> list[bool]:
    """Whether each recorded run of the builder stage's `go build` step was a cache hit."""
    found = []
    for r in records:
        for v in d.vertices(str(r["Ref"])):
            if "builder" in v.get("name", "") and "go build" in v.get("name", ""):
                found.append(bool(v.get("cached")))
    return found


def test_multistage_shares_a_cache_a_second_fresh_builder_starts_warm_from(
    clone: Clone,
    farm: list[Daemon],
    farm_config: Path,
    certs: Certs,
    builders: list[str],
    go_builder_image: str,
    prefix: str,
) -> None:
    cache = f"{prefix}/buildcache"
    env = {"MODE": "multistage", "GO_IMAGE": go_builder_image, "IMAGES": "api,push", "CACHE_REF": cache, "VERIFY": "0"}
    clone.reset_build()
    before = [record_refs(d) for d in farm]
    cold = clone.invoke("image.multiarch", "--config", str(farm_config), env={**env, "REGISTRY_PREFIX": prefix})
    assert cold.returncode == 0, describe(cold)
    first = assert_index(f"{prefix}/api:latest", PLATFORMS)[0]
    for d, seen in zip(farm, before, strict=True):
        records = new_records(d, seen)
        assert platforms_of(records) == set(d.platforms), f"{d.name} built {platforms_of(records)}"
        steps = go_build_steps(d, records)
        assert steps and not all(steps), f"{d.name}: the first build should have compiled: {steps}"
    # each node exported its own platform's cache, under a tag of its own
    assert tags(f"{namespace(prefix)}/buildcache") == sorted(f"shared-{p.replace('/', '-')}" for p in PLATFORMS)

    second_prefix = f"{prefix}-warm"
    specs = [("amd64", ("linux/amd64",), False), ("arm64", ("linux/arm64",), False), ("armv7", ("linux/arm/v7",), True)]
    with daemons(specs, certs) as fresh:
        name = new_builder(builders)
        config = write_config(clone, f"{name}.toml", builder_toml(name, fresh, certs))
        clone.reset_build()  # empty local state: no build/, no state files
        setup = clone.invoke("setup", "--config", str(config))
        assert setup.returncode == 0, describe(setup)
        warm = clone.invoke("image.multiarch", "--config", str(config), env={**env, "REGISTRY_PREFIX": second_prefix})
        assert warm.returncode == 0, describe(warm)
        for d in fresh:
            records = d.records()
            assert platforms_of(records) == set(d.platforms), f"{d.name} built {platforms_of(records)}"
            steps = go_build_steps(d, records)
            assert steps and all(steps), f"{d.name}: the fresh node compiled instead of using the cache: {steps}"
        buildx_rm(name)
    assert assert_index(f"{second_prefix}/api:latest", PLATFORMS)[0] == first, "the warm build made another index"
    remove_docker_images(second_prefix)


# --- what cannot work is refused up front -----------------------------------------------------------


def test_a_node_that_is_down_is_named_with_its_platforms_and_nothing_is_pushed(
    clone: Clone, farm: list[Daemon], certs: Certs, builders: list[str], prefix: str
) -> None:
    amd64, _, armv7 = farm
    with daemons([("spare", ("linux/arm64",), False)]) as (spare,):
        name = new_builder(builders)
        config = write_config(clone, f"{name}.toml", builder_toml(name, [amd64, spare, armv7], certs))
        assert clone.invoke("setup", "--config", str(config)).returncode == 0
        spare.stop()
        before = [record_refs(d) for d in (amd64, armv7)]
        clone.reset_build()
        proc = clone.invoke("image.multiarch", "--config", str(config), env={"REGISTRY_PREFIX": prefix})
    line = assert_clean_failure(proc)
    assert f"node '{name}-arm64' ({spare.unix}) serves linux/arm64 but is inactive" in line, describe(proc)
    assert "PLATFORMS=linux/amd64,linux/arm/v7" in line, describe(proc)
    assert repositories_under(namespace(prefix)) == []
    assert [record_refs(d) for d in (amd64, armv7)] == before, "the other nodes built something"


def test_oci_output_split_across_nodes_is_refused_before_building(
    clone: Clone, farm: list[Daemon], farm_config: Path
) -> None:
    clone.reset_build()
    before = [record_refs(d) for d in farm]
    proc = clone.invoke("image.multiarch", "--config", str(farm_config), "--output", "oci", env={"IMAGES": "api"})
    line = assert_clean_failure(proc)
    assert "OCI layout from one node only" in line and "PLATFORMS=linux/amd64" in line, describe(proc)
    assert not (clone.build_dir / "oci").exists()
    assert [record_refs(d) for d in farm] == before


# --- a registry the builder cannot reach unless told -----------------------------------------------


@contextlib.contextmanager
def network_namespace() -> Iterator[tuple[str, str]]:
    """A namespace of this test's own with a 10.x address on its lo: neither loopback nor the host's."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("network namespace tests need root and iproute2 (make tools)")
    ident = uuid.uuid4()
    name, ip = f"cbn-{ident.hex[:8]}", f"10.{200 + ident.int % 50}.{ident.int % 250 + 1}.1"
    try:
        for argv in (
            ["ip", "netns", "add", name],
            ["ip", "-n", name, "link", "set", "lo", "up"],
            ["ip", "-n", name, "addr", "add", f"{ip}/32", "dev", "lo"],
        ):
            proc = run(argv, timeout=30)
            assert proc.returncode == 0, describe(proc)
        yield name, ip
    finally:
        run(["ip", "netns", "delete", name], timeout=30)


def in_netns(
    ns: str,
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", ns, *map(str, argv)], cwd=cwd, env=env, timeout=timeout)


_GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


def netns_catalog(ns: str, address: str) -> list[str]:
    proc = in_netns(ns, [sys.executable, "-c", _GET, f"http://{address}/v2/_catalog"], timeout=30)
    assert proc.returncode == 0, describe(proc)
    repositories: list[str] = json.loads(proc.stdout)["repositories"]
    return repositories


def test_an_unmanaged_builder_that_cannot_push_gets_the_buildkitd_stanza(
    clone: Clone, builders: list[str], tmp_path: Path
) -> None:
    with network_namespace() as (ns, ip), docker_registry(tmp_path / "registry", f"{ip}:5000", netns=ns):
        address = f"{ip}:5000"
        stanza = f'[registry."{address}"]\n  http = true\n  insecure = true'
        with daemons([("nsnode", ("linux/amd64",), False)], netns=ns) as (node,):
            name = new_builder(builders)
            builder = f'[builder]\nname = "{name}"\ndriver = "remote"\nendpoint = "{node.unix}"\n'
            text = write_config(clone, f"{name}.toml", builder).read_text()
            text = text.replace('registry_prefix = "localhost:5000/imdemo"', f'registry_prefix = "{address}/team"')
            text = text.replace("embedded = true", f'embedded = false\ninsecure = ["{address}"]')
            config = clone.root / f"{name}.toml"
            config.write_text(text)
            invoke = [clone.root / ".venv" / "bin" / "invoke"]
            env = {"PLATFORMS": "linux/amd64", "IMAGES": "api", "VERIFY": "0", "NO_PROXY": ip, "no_proxy": ip}
            setup = in_netns(ns, [*invoke, "setup", "--config", config], cwd=clone.root, env=env)
            assert setup.returncode == 0, describe(setup)

            doctor = in_netns(ns, [*invoke, "doctor", "--config", config], cwd=clone.root, env=env)
            assert doctor.returncode != 0, describe(doctor)
            out = plain(doctor.stdout + doctor.stderr)
            assert f"push from node {name}0: its buildkitd cannot push to {address}" in out, describe(doctor)
            assert stanza in plain(doctor.stdout), describe(doctor)
            assert netns_catalog(ns, address) == []

            clone.reset_build()
            push = in_netns(ns, [*invoke, "image.multiarch", "--config", config], cwd=clone.root, env=env)
            line = assert_clean_failure(push)
            assert f"cannot push to {address}: the registry answers plain HTTP" in line, describe(push)
            assert stanza in plain(push.stderr), describe(push)
            assert netns_catalog(ns, address) == [], "something was pushed"

            # the stanza doctor printed is the fix: with it the same builder pushes
            node.stop()
            node.start(extra_toml=stanza + "\n")
            doctor = in_netns(ns, [*invoke, "doctor", "--config", config], cwd=clone.root, env=env)
            assert doctor.returncode == 0, describe(doctor)
            assert f"ok push from node {name}0: pushed a probe" in plain(doctor.stdout), describe(doctor)
            clone.reset_build()
            push = in_netns(ns, [*invoke, "image.multiarch", "--config", config], cwd=clone.root, env=env)
            assert push.returncode == 0, describe(push)
            assert "team/api" in netns_catalog(ns, address)
