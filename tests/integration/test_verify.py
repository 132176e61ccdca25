"""`invoke verify` and the check before tags move, against real images in the local registry.

Good images come from `invoke image.multiarch` or from `docker buildx build` of
binaries this test cross-compiles itself with the -X values the clone's
config.toml injects. Broken images are made here the same way (or by hand
through the registry API), one defect each, and verify must name it. Small
FROM-scratch programs written here stand for real ones that do not answer
`--version`: a `version` subcommand, a helper with only a usage message, a
server, and a binary that hangs on one architecture only. The outcome is
checked from the exit code, the table, build/reports/*.json, the step
summary, skopeo, `docker ps -a` and `docker image ls`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.clone import Clone
from support.commands import check, describe, plain, run
from support.example import PLATFORMS, TAG, VERSION_PKG
from support.inputs import buildx_push, go_build, put_manifest, tar_gz_layer, upload_blob
from support.registries import LOCAL_API as REGISTRY_API
from support.witness import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    container_image_ids,
    docker_images_under,
    index_platforms,
    skopeo_config,
    skopeo_digest,
    skopeo_exists,
    skopeo_raw,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

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


def image_context(directory: Path, files: Mapping[str, Path]) -> Path:
    """A build context: DOCKERFILE plus bin/<TARGETARCH>/api = files[platform]."""
    for platform, binary in files.items():
        target = directory / "bin" / ARCH_DIR[platform] / "api"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return directory


# buildx_push attaches no SBOM, and the example's config asks for one ([image] sbom, on by default): the
# hand-built images below are checked for everything else (test_supply_chain covers the SBOM check itself)
HAND_BUILT = {"SBOM": "0"}


def run_verify(
    clone: Clone, prefix: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`invoke verify ARGS` for the api service under prefix, with a fresh build/reports/."""
    shutil.rmtree(clone.build_dir / "reports", ignore_errors=True)
    return clone.invoke("verify", *args, env={"IMAGES": "api", "REGISTRY_PREFIX": prefix, **(env or {})})


def rows(proc: subprocess.CompletedProcess[str], service: str = "api") -> dict[str, tuple[str, str]]:
    """platform -> (result, detail) of the service's rows of verify's table ('-' for image-level problems)."""
    found: dict[str, tuple[str, str]] = {}
    for line in plain(proc.stdout).splitlines():
        match = ROW.match(line)
        if match and match["service"] == service:
            assert match["platform"] not in found or match["platform"] == "-", describe(proc)
            detail = match["detail"] or ""
            if match["platform"] in found:
                detail = found[match["platform"]][1] + "; " + detail
            found[match["platform"]] = (match["result"], detail)
    return found


def results(proc: subprocess.CompletedProcess[str], service: str = "api") -> dict[str, str]:
    """platform -> result word of the service's rows of verify's table."""
    return {platform: result for platform, (result, _) in rows(proc, service).items()}


def report(clone: Clone, name: str = "verify") -> list[dict[str, Any]]:
    path = clone.build_dir / "reports" / f"{name}.json"
    assert path.is_file(), f"no {path}"
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data


def report_platforms(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["platform"]: p for p in entry["platforms"]}


def assert_failed_cleanly(proc: subprocess.CompletedProcess[str], services: str = "api") -> None:
    text = describe(proc)
    assert proc.returncode != 0, text
    assert "Traceback" not in proc.stdout + proc.stderr, text
    assert f"verify failed for {services}:" in plain(proc.stderr), text


def local_images(prefix: str) -> list[str]:
    """`repository tag digest` of every image the docker daemon holds under prefix (seen by the docker CLI)."""
    return sorted(" ".join(row) for row in docker_images_under(prefix))


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
    # the detail says what passed, never a second `ok`
    for platform, (_, detail) in rows(proc).items():
        assert re.fullmatch(r"`--version` exited 0 as on native; SBOM spdx: \d+ modules, as in the binary", detail), (
            platform,
            describe(proc),
        )
    assert local_images(prefix) == [], "verify left the images it pulled in the docker daemon"

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
    """The control for the broken images below: the same recipe with nothing broken passes once the SBOM
    the config asks for is not required; with it required, every platform fails for that alone."""
    ref = f"{prefix}/api:good"
    buildx_push(image_context(tmp_path, binaries.good), ref, PLATFORMS)
    proc = run_verify(clone, prefix, "--image", ref, "--no-smoke")
    assert proc.returncode == 1, describe(proc)
    for platform, (result, detail) in rows(proc).items():
        assert (result, detail.startswith("no SBOM attached")) == ("failed", True), (platform, describe(proc))
        assert "SBOM=0" in detail, describe(proc)
    assert set(rows(proc)) == set(PLATFORMS), describe(proc)

    proc = run_verify(clone, prefix, "--image", ref, env=HAND_BUILT)
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

    proc = run_verify(clone, prefix, "--image", ref, env=HAND_BUILT)
    assert_failed_cleanly(proc)
    table = rows(proc)
    assert table["linux/amd64"][0] == "ok", describe(proc)
    assert table["linux/arm/v7"][0] == "ok", describe(proc)
    result, detail = table["linux/arm64"]
    assert result == "failed", describe(proc)
    assert re.search(r"ELF machine is amd64\b.*expected arm64", detail), describe(proc)
    # the second witness: the GOARCH Go recorded in the binary's build info
    assert "built with GOARCH=amd64, expected GOARCH=arm64 for linux/arm64" in detail, describe(proc)

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

    proc = run_verify(clone, prefix, "--image", ref, env=HAND_BUILT)
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

    proc = run_verify(clone, prefix, "--image", ref, env=HAND_BUILT)
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

    proc = run_verify(clone, prefix, "--image", ref, env=HAND_BUILT)
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


def test_smoke_run_that_never_exits_with_configured_args_is_killed(
    clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path
) -> None:
    """With smoke_args in config.toml the run must exit 0; one that never exits is `hung` on every platform."""
    repository_ref = f"{prefix}/api"
    ref = f"{repository_ref}:hang"
    buildx_push(image_context(tmp_path, binaries.hang), ref, PLATFORMS)
    children = index_platforms(skopeo_raw(ref)[1])
    image_ids = {skopeo_raw(f"{repository_ref}@{d}")[1]["config"]["digest"] for d in children.values()}
    config = clone.config_copy(
        "verify-api-version.toml", 'package = "./cmd/api"\n', 'package = "./cmd/api"\nsmoke_args = ["--version"]\n'
    )
    timeout = 5
    proc = run_verify(clone, prefix, "--image", ref, "--timeout", str(timeout), "--config", str(config), env=HAND_BUILT)
    leftover = {c: i for c, i in container_image_ids().items() if i in image_ids}

    assert_failed_cleanly(proc)
    table = rows(proc)
    assert set(table) == set(PLATFORMS), describe(proc)
    for platform, (result, detail) in table.items():
        assert result == "hung", (platform, describe(proc))
        assert f"no exit within {timeout}s" in detail, (platform, describe(proc))
    (entry,) = report(clone)
    assert {p["platform"]: p["result"] for p in entry["platforms"]} == dict.fromkeys(PLATFORMS, "hung")
    assert leftover == {}, f"smoke containers left behind: {leftover}"
    assert local_images(prefix) == [], "verify left the images it pulled in the docker daemon"


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
    # the usage text api prints is several lines; each row keeps it on its own line
    table = rows(proc)
    assert set(table) == set(PLATFORMS), describe(proc)
    for platform, (result, detail) in table.items():
        assert result == "failed", (platform, describe(proc))
        assert "exited 2, expected 0" in detail, (platform, describe(proc))
        assert " ⏎ " in detail, (platform, describe(proc))
    assert not any(line.lstrip().startswith("-addr") for line in plain(proc.stdout).splitlines()), describe(proc)
    assert local_images(prefix) == [], "the check before tagging left pulled images in the docker daemon"

    proc = clone.invoke("image.multiarch", "--config", str(config), env={**env, "VERIFY": "0"})
    assert proc.returncode == 0, describe(proc)
    new = skopeo_digest(tag_ref)
    assert new != old, "VERIFY=0 did not move the version tag"
    assert set(index_platforms(skopeo_raw(tag_ref)[1])) == set(PLATFORMS)
    assert skopeo_digest(latest_ref) == new


# --- programs that do not answer --version --------------------------------------------------------
# Each is its own image under a repository no service of config.toml uses, so verify runs the
# registry checks without -X values and probes the smoke arguments (there is no smoke_args).

PROGRAM_DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY bin/${TARGETARCH}/prog /usr/local/bin/prog
ENTRYPOINT ["/usr/local/bin/prog"]
"""

# `version` is a subcommand (as in restic): `--version` is an unknown flag (exit 2), `-h` exits 0.
SUBCMD_GO = """\
// Command subcmd prints its version only for the `version` subcommand.
package main

import (
\t"flag"
\t"fmt"
\t"os"
\t"runtime"
)

var Version = "dev"

func main() {
\tflag.Parse()
\tif flag.NArg() == 1 && flag.Arg(0) == "version" {
\t\tfmt.Printf("subcmd %s compiled with %s on %s/%s\\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
\t\treturn
\t}
\tfmt.Fprintln(os.Stderr, "usage: subcmd version")
\tos.Exit(1)
}
"""

# A helper binary with no version at all: whatever it is given, a usage message and exit 2.
HELPER_GO = """\
// Command helper copies a file; it has no flags and no version.
package main

import (
\t"fmt"
\t"os"
)

func main() {
\tfmt.Fprintln(os.Stderr, "usage: helper SOURCE DEST")
\tfmt.Fprintln(os.Stderr, "")
\tfmt.Fprintln(os.Stderr, "copies SOURCE to DEST")
\tos.Exit(2)
}
"""

# A server that ignores its arguments and serves until killed.
SERVER_GO = """\
// Command server listens on a loopback port and serves until it is killed.
package main

import (
\t"fmt"
\t"net"
\t"net/http"
\t"os"
)

func main() {
\tln, err := net.Listen("tcp", "127.0.0.1:0")
\tif err != nil {
\t\tfmt.Fprintln(os.Stderr, err)
\t\tos.Exit(1)
\t}
\tfmt.Println("listening on", ln.Addr())
\tif err := http.Serve(ln, http.NotFoundHandler()); err != nil {
\t\tfmt.Fprintln(os.Stderr, err)
\t\tos.Exit(1)
\t}
}
"""

# Prints its arch and exits, except on the architectures in HangOn (set with -X), where it never exits.
HANGON_GO = """\
// Command hangon never exits on the architectures listed in HangOn.
package main

import (
\t"fmt"
\t"runtime"
\t"strings"
\t"time"
)

var HangOn = ""

func main() {
\tfor _, arch := range strings.Split(HangOn, ",") {
\t\tif arch == runtime.GOARCH {
\t\t\tfor {
\t\t\t\ttime.Sleep(time.Hour)
\t\t\t}
\t\t}
\t}
\tfmt.Println("hangon on", runtime.GOARCH)
}
"""


@dataclass(frozen=True)
class Programs:
    """image platform -> binary, for each program."""

    subcmd: dict[str, Path]
    helper: dict[str, Path]
    server: dict[str, Path]
    hang_arm64: dict[str, Path]  # hangon with HangOn=arm64
    hang_two: dict[str, Path]  # hangon with HangOn=arm64,arm
    goarm5: Path  # subcmd built with GOARM=5


def _program(root: Path, name: str, source: str) -> Path:
    src = root / "src" / name
    src.mkdir(parents=True)
    (src / "go.mod").write_text(f"module example.com/{name}\n\ngo 1.22\n")
    (src / "main.go").write_text(source)
    return src


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Programs:
    root = tmp_path_factory.mktemp("verify-programs")
    sources = {
        "subcmd": (_program(root, "subcmd", SUBCMD_GO), {"main.Version": TAG}),
        "helper": (_program(root, "helper", HELPER_GO), {}),
        "server": (_program(root, "server", SERVER_GO), {}),
    }
    hangon = _program(root, "hangon", HANGON_GO)
    sources["hang_arm64"] = (hangon, {"main.HangOn": "arm64"})
    sources["hang_two"] = (hangon, {"main.HangOn": "arm64,arm"})
    built: dict[str, dict[str, Path]] = {}
    for name, (src, x) in sources.items():
        built[name] = {
            p: go_build(src, ".", p, root / "bin" / name / p.replace("/", "-") / "prog", x) for p in PLATFORMS
        }
    goarm5 = go_build(sources["subcmd"][0], ".", "linux/arm/v5", root / "bin" / "goarm5" / "prog", {})
    return Programs(goarm5=goarm5, **built)


def program_image(directory: Path, ref: str, files: Mapping[str, Path]) -> dict[str, str]:
    """Push a FROM-scratch image of files[platform] to ref; platform -> manifest digest, per skopeo."""
    for platform, binary in files.items():
        target = directory / "bin" / ARCH_DIR[platform] / "prog"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target)
    (directory / "Dockerfile").write_text(PROGRAM_DOCKERFILE)
    buildx_push(directory, ref, tuple(files))
    return index_platforms(skopeo_raw(ref)[1])


def report_of(clone: Clone, service: str) -> dict[str, Any]:
    entries = [e for e in report(clone) if e["service"] == service]
    assert len(entries) == 1, entries
    return entries[0]


def smoke_runs_echoed(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The `docker run` lines V=1 echoed for the smoke runs and probes."""
    return [line for line in proc.stderr.splitlines() if line.startswith("+ docker run ")]


def test_version_subcommand_is_found_by_the_probe_and_cached(clone: Clone, prefix: str, programs: Programs) -> None:
    ref = f"{prefix}/subcmd:{TAG}"
    children = program_image(clone.root / "ctx-subcmd", ref, programs.subcmd)

    proc = run_verify(clone, prefix, "--image", ref, env={"V": "1"})
    assert proc.returncode == 0, describe(proc)
    table = rows(proc, "subcmd")
    assert set(table) == set(PLATFORMS), describe(proc)
    for platform, (result, detail) in table.items():
        assert (result, detail) == ("ok", "`version` exited 0 as on native"), (platform, describe(proc))
    assert "subcmd: smoke `version` exits 0 (probe on linux/amd64)" in plain(proc.stdout), describe(proc)
    entry = report_of(clone, "subcmd")
    for platform, p in report_platforms(entry).items():
        assert p["smoke_args"] == ["version"], p
        arch = platform.split("/")[1]
        assert f"subcmd {TAG} compiled with go" in p["smoke_output"], p
        assert p["smoke_output"].rstrip().endswith(f"on linux/{arch}"), p
    # every candidate was tried on the native image (the daemon is linux/amd64 here)
    probes = [line for line in smoke_runs_echoed(proc) if "--platform linux/amd64" in line]
    assert any(line.endswith(" --version") for line in probes), describe(proc)
    assert any(line.endswith(" version") for line in probes), describe(proc)

    # the probe's outcomes are cached per service and native manifest digest
    cache = json.loads((clone.build_dir / "state" / "smoke.json").read_text())
    record = cache["subcmd"][children["linux/amd64"]]
    assert record["platform"] == "linux/amd64"
    by_args = {tuple(r["args"]): r for r in record["runs"] if r is not None}
    assert by_args[("version",)]["exit_code"] == 0, record
    assert by_args[("--version",)]["exit_code"] == 2, record
    assert local_images(prefix) == [], "verify left the images it pulled in the docker daemon"

    # a rerun on the same image does not probe again: one `docker run version` per platform
    again = run_verify(clone, prefix, "--image", ref, env={"V": "1"})
    assert again.returncode == 0, describe(again)
    assert "subcmd: smoke `version` exits 0 (cached probe on linux/amd64)" in plain(again.stdout), describe(again)
    echoed = smoke_runs_echoed(again)
    assert len(echoed) == len(PLATFORMS), describe(again)
    assert all(line.endswith(" version") for line in echoed), describe(again)
    assert local_images(prefix) == []


def test_helper_without_a_version_flag_exits_2_as_on_native(clone: Clone, prefix: str, programs: Programs) -> None:
    ref = f"{prefix}/helper:{TAG}"
    program_image(clone.root / "ctx-helper", ref, programs.helper)

    proc = run_verify(clone, prefix, "--image", ref)
    assert proc.returncode == 0, describe(proc)
    for platform, (result, detail) in rows(proc, "helper").items():
        assert (result, detail) == ("ok", "`--version` exited 2 as on native"), (platform, describe(proc))
    assert len(rows(proc, "helper")) == len(PLATFORMS), describe(proc)
    entry = report_of(clone, "helper")
    for p in entry["platforms"]:
        assert p["smoke_exit"] == 2, p
        assert "usage: helper SOURCE DEST\n\ncopies SOURCE to DEST" in p["smoke_output"], p
    # the three-line usage stays in the report; the table has one line per row
    assert not any(line.startswith("copies SOURCE") for line in plain(proc.stdout).splitlines()), describe(proc)
    assert local_images(prefix) == []


def test_server_that_never_exits_passes_by_still_running(clone: Clone, prefix: str, programs: Programs) -> None:
    ref = f"{prefix}/server:{TAG}"
    program_image(clone.root / "ctx-server", ref, programs.server)

    proc = run_verify(clone, prefix, "--image", ref)
    assert proc.returncode == 0, describe(proc)
    table = rows(proc, "server")
    assert set(table) == set(PLATFORMS), describe(proc)
    for platform, (result, detail) in table.items():
        assert result == "ok", (platform, describe(proc))
        assert re.fullmatch(r"`--version` still running after \d+s as on native", detail), (platform, describe(proc))
    assert "server: smoke `--version` keeps running (a server) (probe on linux/amd64)" in plain(proc.stdout)
    for p in report_of(clone, "server")["platforms"]:
        assert p["smoke_exit"] is None, p
        assert "listening on 127.0.0.1:" in p["smoke_output"], p
    assert local_images(prefix) == []


def test_binary_that_hangs_only_on_arm64_is_hung_there_only(clone: Clone, prefix: str, programs: Programs) -> None:
    ref = f"{prefix}/hangon:{TAG}"
    children = program_image(clone.root / "ctx-hang-arm64", ref, programs.hang_arm64)
    image_ids = {skopeo_raw(f"{prefix}/hangon@{d}")[1]["config"]["digest"] for d in children.values()}
    timeout = 8

    proc = run_verify(clone, prefix, "--image", ref, "--timeout", str(timeout))
    assert_failed_cleanly(proc, "hangon")
    table = rows(proc, "hangon")
    assert {p: r for p, (r, _) in table.items()} == {
        "linux/amd64": "ok",
        "linux/arm64": "hung",
        "linux/arm/v7": "ok",
    }, describe(proc)
    assert table["linux/arm64"][1] == f"smoke `--version`: no exit within {timeout}s, container killed"
    assert table["linux/arm/v7"][1] == "`--version` exited 0 as on native"
    leftover = {c: i for c, i in container_image_ids().items() if i in image_ids}
    assert leftover == {}, f"smoke containers left behind: {leftover}"
    assert local_images(prefix) == []


def test_two_hanging_platforms_cost_about_one_timeout(clone: Clone, prefix: str, programs: Programs) -> None:
    ref = f"{prefix}/hangon:{TAG}"
    program_image(clone.root / "ctx-hang-two", ref, programs.hang_two)
    timeout = 15

    started = time.time()
    proc = run_verify(clone, prefix, "--image", ref, "--timeout", str(timeout))
    ended = time.time()
    entry = report_of(clone, "hangon")
    seconds = {p["platform"]: p["smoke_seconds"] for p in entry["platforms"]}
    timeline = (
        f"verify started {time.strftime('%H:%M:%S', time.localtime(started))}, "
        f"ended {time.strftime('%H:%M:%S', time.localtime(ended))} ({ended - started:.1f}s); "
        f"smoke run seconds per platform: {seconds}"
    )
    print(timeline)

    assert_failed_cleanly(proc, "hangon")
    assert results(proc, "hangon") == {
        "linux/amd64": "ok",
        "linux/arm64": "hung",
        "linux/arm/v7": "hung",
    }, describe(proc)
    # run one after another, the two hangs alone would take 2 x timeout
    assert ended - started < 1.6 * timeout, f"{timeline}\n{describe(proc)}"
    assert local_images(prefix) == []


def test_goarm5_binary_labelled_v7_fails_naming_the_variant(clone: Clone, prefix: str, programs: Programs) -> None:
    ref = f"{prefix}/armv5:{TAG}"
    program_image(clone.root / "ctx-goarm5", ref, {**programs.subcmd, "linux/arm/v7": programs.goarm5})

    proc = run_verify(clone, prefix, "--image", ref)
    assert_failed_cleanly(proc, "armv5")
    table = rows(proc, "armv5")
    assert table["linux/amd64"][0] == "ok", describe(proc)
    assert table["linux/arm64"][0] == "ok", describe(proc)
    result, detail = table["linux/arm/v7"]
    assert result == "failed", describe(proc)
    assert "/usr/local/bin/prog: built with GOARM=5, expected GOARM=7 for linux/arm/v7" in detail, describe(proc)
    # a wrong binary is not smoke-run: its row names only the architecture problem
    assert "smoke" not in detail, describe(proc)
    assert local_images(prefix) == []


def test_every_failing_image_is_reported_in_one_run(clone: Clone, prefix: str, programs: Programs) -> None:
    hang, armv5, good = f"{prefix}/hangon:{TAG}", f"{prefix}/armv5:{TAG}", f"{prefix}/subcmd:{TAG}"
    program_image(clone.root / "ctx-all-hang", hang, programs.hang_arm64)
    program_image(clone.root / "ctx-all-armv5", armv5, {**programs.subcmd, "linux/arm/v7": programs.goarm5})
    program_image(clone.root / "ctx-all-good", good, programs.subcmd)

    proc = run_verify(clone, prefix, "--image", hang, "--image", armv5, "--image", good, "--timeout", "6")
    assert_failed_cleanly(proc, "hangon, armv5")
    assert results(proc, "hangon")["linux/arm64"] == "hung", describe(proc)
    assert results(proc, "armv5")["linux/arm/v7"] == "failed", describe(proc)
    assert results(proc, "subcmd") == dict.fromkeys(PLATFORMS, "ok"), describe(proc)
    # the table keeps the order of the --image arguments
    services = [m["service"] for line in plain(proc.stdout).splitlines() if (m := ROW.match(line))]
    assert services == ["hangon"] * 3 + ["armv5"] * 3 + ["subcmd"] * 3, describe(proc)
    assert [e["service"] for e in report(clone)] == ["hangon", "armv5", "subcmd"]
    assert local_images(prefix) == []


def test_images_pulled_for_smoke_runs_are_removed_and_earlier_ones_kept(
    clone: Clone, prefix: str, programs: Programs
) -> None:
    ref = f"{prefix}/subcmd:{TAG}"
    repository = f"{prefix}/subcmd"
    children = program_image(clone.root / "ctx-keep", ref, programs.subcmd)
    arm64 = f"{repository}@{children['linux/arm64']}"
    amd64 = f"{repository}@{children['linux/amd64']}"
    kept_tag = f"{prefix}/mine:kept"
    # there before: the arm64 image by its own reference, and the amd64 image under another name only
    check(run(["docker", "pull", "--quiet", "--platform", "linux/arm64", arm64]))
    check(run(["docker", "pull", "--quiet", "--platform", "linux/amd64", amd64]))
    check(run(["docker", "tag", amd64, kept_tag]))
    check(run(["docker", "rmi", amd64]))
    amd64_id = check(run(["docker", "image", "inspect", "--format", "{{.Id}}", kept_tag])).stdout.strip()
    before = local_images(prefix)
    assert f"{repository} <none> {children['linux/arm64']}" in before, before
    assert not any(children["linux/amd64"] in line for line in before), before

    proc = run_verify(clone, prefix, "--image", ref)
    assert proc.returncode == 0, describe(proc)
    # what verify pulled (amd64 by digest, sharing the kept tag's image ID; arm/v7) is gone,
    # what was there before is still there under the same names
    assert local_images(prefix) == before, describe(proc)
    assert check(run(["docker", "image", "inspect", "--format", "{{.Id}}", kept_tag])).stdout.strip() == amd64_id


def test_smoke_expect_from_config_is_checked_on_every_platform(
    clone: Clone, prefix: str, binaries: Binaries, tmp_path: Path
) -> None:
    ref = f"{prefix}/api:expect"
    buildx_push(image_context(tmp_path, binaries.good), ref, PLATFORMS)
    good = clone.config_copy(
        "verify-expect-good.toml",
        'package = "./cmd/api"\n',
        "package = \"./cmd/api\"\nsmoke_expect = 'version:\\s+v3\\.1\\.0'\n",
    )
    proc = run_verify(clone, prefix, "--image", ref, "--config", str(good), env=HAND_BUILT)
    assert proc.returncode == 0, describe(proc)
    assert results(proc) == dict.fromkeys(PLATFORMS, "ok"), describe(proc)

    bad = clone.config_copy(
        "verify-expect-bad.toml", 'package = "./cmd/api"\n', "package = \"./cmd/api\"\nsmoke_expect = 'v0\\.0\\.0'\n"
    )
    proc = run_verify(clone, prefix, "--image", ref, "--config", str(bad), env=HAND_BUILT)
    assert_failed_cleanly(proc)
    for platform, (result, detail) in rows(proc).items():
        assert result == "failed", (platform, describe(proc))
        assert "output does not match smoke_expect 'v0\\\\.0\\\\.0'" in detail, (platform, describe(proc))
    assert local_images(prefix) == []


def test_check_before_tagging_names_every_failing_service_and_moves_no_tag(clone: Clone, prefix: str) -> None:
    text = (clone.root / "config.toml").read_text()
    for old, new in (
        ('package = "./cmd/api"\n', 'package = "./cmd/api"\nsmoke_exit = 3\n'),
        (
            'package = "./cmd/push"\nsmoke_args = ["--version"]\n',
            'package = "./cmd/push"\nsmoke_expect = "no such text"\n',
        ),
    ):
        assert text.count(old) == 1, f"config.toml no longer has exactly one {old!r}; update the test"
        text = text.replace(old, new)
    config = clone.root / "verify-two-fail.toml"
    config.write_text(text)
    env = {"IMAGES": "api push", "REGISTRY_PREFIX": prefix}
    shutil.rmtree(clone.build_dir / "reports", ignore_errors=True)

    proc = clone.invoke("image.multiarch", "--config", str(config), env=env)
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    assert "verification failed for api, push (table above); no tag was moved" in plain(proc.stderr), describe(proc)
    for service in ("api", "push"):
        assert not skopeo_exists(f"{prefix}/{service}:{TAG}"), f"a failed verification tagged {service}"
        assert not skopeo_exists(f"{prefix}/{service}:latest"), f"a failed verification tagged {service}"
    for platform, (result, detail) in rows(proc, "api").items():
        assert result == "failed", (platform, describe(proc))
        assert "smoke `--version` exited 0, expected 3: " in detail, (platform, describe(proc))
    for platform, (result, detail) in rows(proc, "push").items():
        assert result == "failed", (platform, describe(proc))
        assert "output does not match smoke_expect 'no such text'" in detail, (platform, describe(proc))
    for service in ("api", "push"):
        (entry,) = report(clone, f"verify-{service}")
        assert entry["ok"] is False
        assert {p["platform"]: p["result"] for p in entry["platforms"]} == dict.fromkeys(PLATFORMS, "failed")
    assert local_images(prefix) == []


def test_without_a_docker_daemon_the_smoke_runs_are_skipped_with_the_reason(
    clone: Clone, prefix: str, programs: Programs
) -> None:
    ref = f"{prefix}/helper:{TAG}"
    program_image(clone.root / "ctx-no-daemon", ref, programs.helper)
    proc = run_verify(clone, prefix, "--image", ref, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert proc.returncode == 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    for platform, (result, detail) in rows(proc, "helper").items():
        assert result == "skipped", (platform, describe(proc))
        assert detail.startswith("no docker daemon: "), (platform, describe(proc))
    assert len(rows(proc, "helper")) == len(PLATFORMS), describe(proc)
