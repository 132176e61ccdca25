"""Early bakes: which images may start before the compile is over, and the index composed from them."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crossbuild import config, earlybake, incremental, rootfs
from crossbuild import plan as plan_mod
from crossbuild.errors import UserError
from crossbuild.gobuild import BinaryResult, PlatformResult
from crossbuild.plan import ImageTarget, plan
from crossbuild.platforms import parse_platforms

EXAMPLE = Path(__file__).resolve().parents[2] / "config.toml"
REF = "vnd.docker.reference.digest"


@pytest.fixture(scope="module")
def cfg() -> config.Config:
    return config.load(EXAMPLE, config.Overrides(images=("api", "push"), version="v1.0.0"), environ={})


@pytest.fixture(scope="module")
def targets(cfg: config.Config) -> list[ImageTarget]:
    return list(plan(cfg, parse_platforms("linux/amd64,linux/arm64"), cfg.selected_images()).targets)


# --- certain ------------------------------------------------------------------------------------


def _record(t: ImageTarget, frame: str, **inputs: str) -> dict[str, Any]:
    return {"key": "k", "digest": "sha256:" + "0" * 64, "repository": t.repository, "frame": frame, "inputs": inputs}


def test_a_service_never_published_is_certain(targets: list[ImageTarget]) -> None:
    assert earlybake.certain({}, targets[0], "f", "linux/arm64", "d")


def test_a_first_push_to_another_repository_is_certain(targets: list[ImageTarget]) -> None:
    record = {**_record(targets[0], "f", **{"linux/arm64": "d"}), "repository": "elsewhere/api"}
    assert earlybake.certain(record, targets[0], "f", "linux/arm64", "d")


def test_the_same_binary_and_frame_wait_for_the_decide_stage(targets: list[ImageTarget]) -> None:
    record = _record(targets[0], "f", **{"linux/arm64": "d", "linux/amd64": "e"})
    assert not earlybake.certain(record, targets[0], "f", "linux/arm64", "d")


def test_a_new_binary_on_this_platform_is_certain(targets: list[ImageTarget]) -> None:
    record = _record(targets[0], "f", **{"linux/arm64": "d", "linux/amd64": "e"})
    assert earlybake.certain(record, targets[0], "f", "linux/arm64", "new")


def test_a_new_frame_is_certain_whatever_the_binary(targets: list[ImageTarget]) -> None:
    record = _record(targets[0], "f", **{"linux/arm64": "d"})
    assert earlybake.certain(record, targets[0], "other labels", "linux/arm64", "d")


def test_a_platform_the_record_does_not_hold_is_certain(targets: list[ImageTarget]) -> None:
    record = _record(targets[0], "f", **{"linux/amd64": "e"})
    assert earlybake.certain(record, targets[0], "f", "linux/arm64", "d")


def test_a_record_from_before_frames_were_kept_says_nothing(targets: list[ImageTarget]) -> None:
    record = {"key": "k", "digest": "sha256:" + "0" * 64, "repository": targets[0].repository}
    assert not earlybake.certain(record, targets[0], "f", "linux/arm64", "new")


# --- the key's parts ----------------------------------------------------------------------------


def test_the_content_key_is_its_frame_and_inputs(cfg: config.Config, targets: list[ImageTarget]) -> None:
    t = targets[0]
    whole = incremental.key_of({**plan_mod.frame(cfg, t), "inputs": plan_mod.key_inputs(cfg, t)})
    assert plan_mod.content_key(cfg, t) == whole
    assert set(plan_mod.key_inputs(cfg, t)) == {"linux/amd64", "linux/arm64"}


def test_the_frame_key_ignores_the_binaries_but_not_the_labels(cfg: config.Config, targets: list[ImageTarget]) -> None:
    t = targets[0]
    relabelled = replace(t, labels=(*t.labels, ("extra", "1")))
    assert plan_mod.frame_key(cfg, t) == plan_mod.frame_key(cfg, t)
    assert plan_mod.frame_key(cfg, relabelled) != plan_mod.frame_key(cfg, t)


def test_only_images_copying_a_layer_tree_are_baked_a_platform_at_a_time(targets: list[ImageTarget]) -> None:
    assert earlybake.takes(replace(targets[0], fixed_times=True))
    assert not earlybake.takes(replace(targets[0], fixed_times=False))


def test_a_part_is_named_after_its_platforms(targets: list[ImageTarget]) -> None:
    t = targets[0]
    assert replace(t, platforms=parse_platforms("linux/arm/v7"), part=True).bake_name == "api-linux-arm-v7"
    two = replace(t, platforms=parse_platforms("linux/amd64,linux/arm/v7"), part=True)
    assert two.bake_name == "api-linux-amd64-linux-arm-v7"
    assert t.bake_name == "api"


# --- compose ------------------------------------------------------------------------------------


def _image(digest: str, arch: str, variant: str = "") -> dict[str, Any]:
    platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": 836,
        "platform": platform,
    }


def _attestation(digest: str, subject: str) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": 820,
        "annotations": {REF: subject, "vnd.docker.reference.type": "attestation-manifest"},
        "platform": {"architecture": "unknown", "os": "unknown"},
    }


def _one(*manifests: dict[str, Any], title: str = "api") -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": list(manifests),
        "annotations": {
            "org.opencontainers.image.source": "https://x.test/a?b=1&c=<2>",
            "org.opencontainers.image.title": title,
        },
    }


def test_compose_puts_images_in_platform_order_then_their_attestations() -> None:
    parts = [
        _one(_image("sha256:a", "amd64"), _attestation("sha256:aa", "sha256:a")),
        _one(_image("sha256:b", "arm", "v7"), _attestation("sha256:bb", "sha256:b")),
    ]
    index = json.loads(earlybake.compose(parts, ["linux/amd64", "linux/arm/v7"]))
    assert [m["digest"] for m in index["manifests"]] == ["sha256:a", "sha256:b", "sha256:aa", "sha256:bb"]
    assert index["annotations"] == parts[0]["annotations"]
    assert list(index) == ["schemaVersion", "mediaType", "manifests", "annotations"]


def test_compose_orders_parts_of_several_platforms_by_the_service_platforms() -> None:
    """A part of two platforms (gathered) and one of one, handed over in any order."""
    two = _one(
        _image("sha256:b", "arm64"),
        _image("sha256:c", "arm", "v7"),
        _attestation("sha256:bb", "sha256:b"),
        _attestation("sha256:cc", "sha256:c"),
    )
    one = _one(_image("sha256:a", "amd64"), _attestation("sha256:aa", "sha256:a"))
    index = json.loads(earlybake.compose([two, one], ["linux/amd64", "linux/arm64", "linux/arm/v7"]))
    digests = [m["digest"] for m in index["manifests"]]
    assert digests == ["sha256:a", "sha256:b", "sha256:c", "sha256:aa", "sha256:bb", "sha256:cc"]


def test_compose_reads_entry_platforms_as_the_rest_of_crossbuild_does() -> None:
    """arm64/v8 is linux/arm64 (platforms.normalise_platform), and the entry is written as it came."""
    parts = [_one(_image("sha256:b", "arm64", "v8")), _one(_image("sha256:a", "amd64"))]
    index = json.loads(earlybake.compose(parts, ["linux/amd64", "linux/arm64"]))
    assert [m["digest"] for m in index["manifests"]] == ["sha256:a", "sha256:b"]
    assert index["manifests"][1]["platform"]["variant"] == "v8"


def test_compose_of_one_part_is_that_part() -> None:
    part = _one(_image("sha256:a", "amd64"))
    assert json.loads(earlybake.compose([part], ["linux/amd64"])) == part


def test_parts_that_disagree_on_the_index_annotations_are_refused() -> None:
    with pytest.raises(UserError, match="different index annotations"):
        earlybake.compose(
            [_one(_image("sha256:a", "amd64")), _one(_image("sha256:b", "arm64"), title="push")],
            ["linux/amd64", "linux/arm64"],
        )


def test_parts_that_miss_a_platform_are_refused() -> None:
    with pytest.raises(UserError, match="not linux/amd64, linux/arm64"):
        earlybake.compose([_one(_image("sha256:a", "amd64"))], ["linux/amd64", "linux/arm64"])


GO_MARSHAL = """package main

import (
	"encoding/json"
	"os"
)

type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

type Index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []Descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func main() {
	var idx Index
	if err := json.NewDecoder(os.Stdin).Decode(&idx); err != nil {
		panic(err)
	}
	out, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(out)
}
"""


def test_the_composed_index_is_written_as_go_writes_it(tmp_path: Path) -> None:
    """Go's encoding/json (which BuildKit writes its index with) gives the same bytes, escapes included."""
    (tmp_path / "main.go").write_text(GO_MARSHAL)
    (tmp_path / "go.mod").write_text("module marshal\n\ngo 1.22\n")
    parts = [
        _one(_image("sha256:a", "amd64"), _attestation("sha256:aa", "sha256:a")),
        _one(_image("sha256:b", "arm", "v7"), _attestation("sha256:bb", "sha256:b")),
    ]
    for part in parts:
        part["annotations"]["org.opencontainers.image.description"] = "Grüße \u2028 <svc> & co"
    composed = earlybake.compose(parts, ["linux/amd64", "linux/arm/v7"])
    marshalled = subprocess.run(
        ["go", "run", "."], cwd=tmp_path, input=composed, capture_output=True, check=True, timeout=300
    ).stdout
    assert composed == marshalled


# --- layer trees a platform at a time -----------------------------------------------------------


def test_trees_written_a_platform_at_a_time_keep_each_other(tmp_path: Path) -> None:
    cfg = config.load(EXAMPLE, config.Overrides(images=("api",), version="v1.0.0"), environ={})
    cfg = replace(cfg, output_dir=tmp_path / "build")
    api = cfg.selected_images()[0]
    amd64, arm64 = parse_platforms("linux/amd64,linux/arm64")
    for p in (amd64, arm64):
        binary = cfg.bin_dir / str(p) / api.binary_name
        binary.parent.mkdir(parents=True)
        binary.write_bytes(f"binary for {p}".encode())
    stale = rootfs.root(cfg) / "0123456789abcdef"
    stale.mkdir(parents=True)
    first = rootfs.write(cfg, [amd64], [api], prune=False)
    second = rootfs.write(cfg, [arm64], [api], prune=False)
    assert first != second
    assert stale.is_dir() and first.is_dir()
    assert (second / "linux/arm64/api/usr/local/bin/api").read_bytes() == b"binary for linux/arm64"
    rootfs.remove_others(cfg, {first, second})
    assert sorted(p.name for p in rootfs.root(cfg).iterdir()) == sorted([first.name, second.name])


# --- gathering ----------------------------------------------------------------------------------


class _Gathered(earlybake.Baker):
    """A Baker that records which platforms each bake would hold (the gathering under test), and
    bakes nothing: what a bake does with them is the integration tests' (test_early_bakes.py)."""

    def __init__(self, cfg: config.Config, targets: list[ImageTarget], gather: float) -> None:
        super().__init__(None, cfg, None, targets, {}, targets[0].platforms, gather=gather)  # type: ignore[arg-type]
        self.bakes: list[tuple[float, list[str]]] = []

    def _bake(self, pairs: Any, report: Any, early: bool) -> None:
        self.bakes.append((time.monotonic(), sorted({str(p) for _t, p in pairs})))


def _built(tmp_path: Path, cfg: config.Config, platform: str) -> PlatformResult:
    binary = tmp_path / platform.replace("/", "-") / "api"
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_bytes(platform.encode())
    p = parse_platforms(platform)[0]
    return PlatformResult(p, (BinaryResult("api", p, binary, binary.stat().st_size),), 1.0)


@pytest.fixture
def three(tmp_path: Path) -> tuple[config.Config, list[ImageTarget]]:
    cfg = config.load(EXAMPLE, config.Overrides(images=("api",), version="v1.0.0"), environ={})
    cfg = replace(cfg, output_dir=tmp_path / "build")
    plats = parse_platforms("linux/amd64,linux/arm64,linux/arm/v7")
    targets = [replace(t, fixed_times=True) for t in plan(cfg, plats, cfg.selected_images()).targets]
    return cfg, targets


def test_platforms_finishing_together_make_one_bake(
    tmp_path: Path, three: tuple[config.Config, list[ImageTarget]]
) -> None:
    baker = _Gathered(*three, gather=5.0)
    started = time.monotonic()
    for platform in ("linux/arm64", "linux/amd64", "linux/arm/v7"):
        baker.built(_built(tmp_path, three[0], platform))
    baker._join()
    assert [platforms for _when, platforms in baker.bakes] == [["linux/amd64", "linux/arm/v7", "linux/arm64"]]
    assert baker.bakes[0][0] - started < 2.0  # the last platform in: no waiting out the 5 s window


def test_a_bake_names_its_platforms_in_the_order_the_run_does(three: tuple[config.Config, list[ImageTarget]]) -> None:
    """Not by their strings (arm/v7 before arm64): the row and its line read like the go build rows."""
    baker = _Gathered(*three, gather=0.0)
    handed = parse_platforms("linux/arm/v7,linux/arm64,linux/amd64")
    assert [str(p) for p in baker.ordered(handed)] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def test_a_platform_far_ahead_of_the_others_is_baked_without_them(
    tmp_path: Path, three: tuple[config.Config, list[ImageTarget]]
) -> None:
    baker = _Gathered(*three, gather=0.2)
    baker.built(_built(tmp_path, three[0], "linux/amd64"))
    time.sleep(0.6)
    baker.built(_built(tmp_path, three[0], "linux/arm64"))
    baker.built(_built(tmp_path, three[0], "linux/arm/v7"))
    baker._join()
    assert [platforms for _when, platforms in baker.bakes] == [["linux/amd64"], ["linux/arm/v7", "linux/arm64"]]


def test_a_stopped_baker_starts_no_bake(tmp_path: Path, three: tuple[config.Config, list[ImageTarget]]) -> None:
    baker = _Gathered(*three, gather=0.2)
    baker.built(_built(tmp_path, three[0], "linux/amd64"))
    baker.stop()
    baker.built(_built(tmp_path, three[0], "linux/arm64"))
    assert baker.bakes == []


def test_images_already_published_with_these_binaries_are_not_baked_early(
    tmp_path: Path, three: tuple[config.Config, list[ImageTarget]]
) -> None:
    cfg, targets = three
    result = _built(tmp_path, cfg, "linux/amd64")
    record = {
        "key": "k",
        "repository": targets[0].repository,
        "frame": plan_mod.frame_key(cfg, targets[0]),
        "inputs": {"linux/amd64": incremental.file_digest(result.binaries[0].path)},
    }
    baker = earlybake.Baker(None, cfg, None, targets, {"api": record}, targets[0].platforms, gather=0.0)  # type: ignore[arg-type]
    baker.built(result)
    baker._join()
    assert baker.early() == 0


# --- where early bakes run ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("driver", "endpoint", "other_machine"),
    [
        ("remote", "unix:///run/crossbuild-buildkitd.sock", False),
        ("remote", "tcp://127.0.0.1:1234", False),
        ("remote", "tcp://localhost:1234", False),
        ("remote", "tcp://[::1]:1234", False),
        ("remote", "tcp://localhost.:1234", False),
        ("remote", "tcp://[::ffff:127.0.0.1]:1234", False),
        ("remote", "tcp://10.0.0.7:1234", True),
        ("remote", "tcp://buildkit-arm.internal:1234", True),
        ("docker-container", "", False),
        ("docker", "", False),
        ("kubernetes", "", True),
    ],
)
def test_a_node_is_another_machine_when_its_endpoint_says_so(driver: str, endpoint: str, other_machine: bool) -> None:
    assert earlybake.elsewhere(driver, endpoint) is other_machine


def _with(cfg: config.Config, **builder: Any) -> config.Config:
    return replace(cfg, builder=replace(cfg.builder, **builder))


def test_auto_bakes_early_only_when_every_node_is_another_machine(cfg: config.Config) -> None:
    local = _with(cfg, driver="remote", endpoint="unix:///run/crossbuild-buildkitd.sock")
    remote = _with(cfg, driver="remote", endpoint="tcp://10.0.0.7:1234")
    mixed = replace(remote, builder=replace(remote.builder, nodes=(config.BuilderNode("n1", "tcp://127.0.0.1:9"),)))
    assert cfg.image.bake_early == "auto"
    assert not earlybake.wanted(local)
    assert earlybake.wanted(remote)
    assert not earlybake.wanted(mixed)


def test_always_and_never_override_the_builder(cfg: config.Config) -> None:
    local = _with(cfg, driver="remote", endpoint="unix:///run/crossbuild-buildkitd.sock")
    remote = _with(cfg, driver="kubernetes", endpoint="")
    assert earlybake.wanted(replace(local, image=replace(local.image, bake_early="always")))
    assert not earlybake.wanted(replace(remote, image=replace(remote.image, bake_early="never")))


def test_bake_early_comes_from_the_environment_and_a_wrong_value_says_the_choices() -> None:
    overrides = config.Overrides(images=("api",), version="v1.0.0")
    assert config.load(EXAMPLE, overrides, environ={"BAKE_EARLY": "always"}).image.bake_early == "always"
    with pytest.raises(UserError, match=r"BAKE_EARLY 'sometimes': use one of auto, always, never"):
        config.load(EXAMPLE, overrides, environ={"BAKE_EARLY": "sometimes"})
