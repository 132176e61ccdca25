"""Offline bundles end to end, against the real BuildKit builder, registries, dockerd and QEMU.

The session's clone publishes api and push under a unique prefix on the local registry
(127.0.0.1:5000) with `invoke image.multiarch`; a third-party multi-arch image is
pushed there with `docker buildx build`. The linux/arm64 bundle made from them is
loaded into a second, empty registry on 127.0.0.1:5001 (docker-registry, started
here) and into the docker daemon. skopeo is the independent witness for the
digests, `docker pull` + `docker run` (QEMU) for the result being usable.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from support.clone import Clone, unique_prefix
from support.commands import assert_clean_failure, check, describe, run
from support.example import TAG
from support.inputs import buildx_push
from support.registries import docker_registry, self_signed_certificate
from support.witness import (
    catalog,
    docker_image_arch,
    docker_rmi,
    docker_tags_under,
    remove_docker_images,
    sha256_digest,
    skopeo_digest,
    skopeo_raw,
)

from crossbuild import bundle
from crossbuild.config import Config, Overrides
from crossbuild.config import load as load_config
from crossbuild.errors import UserError
from crossbuild.oci import Client
from crossbuild.platforms import Platform
from crossbuild.runner import Runner

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

ARM64 = Platform("linux", "arm64")
SECOND = "127.0.0.1:5001"


def arm64_digest(index_raw: bytes) -> str:
    index = json.loads(index_raw)
    return next(
        str(m["digest"])
        for m in index["manifests"]
        if m.get("platform", {}).get("architecture") == "arm64" and m["platform"].get("os") == "linux"
    )


@dataclass(frozen=True)
class Published:
    cfg: Config
    clone: Clone
    prefix: str  # localhost:5000/b-<id>
    services: dict[str, str]  # service -> ref of its version tag
    thirdparty: str

    @property
    def refs(self) -> list[str]:
        return [*self.services.values(), self.thirdparty]


@pytest.fixture(scope="module")
def published(clone: Clone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    tmp = tmp_path_factory.mktemp("bundle")
    prefix = unique_prefix("b")
    started = time.monotonic()
    check(clone.invoke("image.multiarch", env={"REGISTRY_PREFIX": prefix, "IMAGES": "api,push"}, timeout=900))
    assert (clone.build_dir / "bin" / "linux" / "arm64" / "api").is_file(), "image.multiarch did not build in the clone"
    print(f"\nimage.multiarch api,push: {time.monotonic() - started:.1f}s")

    context = tmp / "thirdparty"
    context.mkdir()
    (context / "hello.txt").write_text("a third-party image\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    thirdparty = f"{prefix}/thirdparty:1"
    buildx_push(context, thirdparty, ("linux/amd64", "linux/arm64"))
    overrides = Overrides(images=("api", "push"), registry_prefix=prefix)
    cfg = load_config(clone.root / "config.toml", overrides, environ={})
    services = {s.name: f"{cfg.image_ref(s)}:{cfg.image_tags(s)[0]}" for s in cfg.selected_images()}
    assert set(services) == {"api", "push"} and all(r.endswith(f":{TAG}") for r in services.values())
    yield Published(cfg, clone, prefix, services, thirdparty)
    # Whatever this module left in the docker daemon under its unique prefix (smoke runs included).
    remove_docker_images(prefix)


@pytest.fixture(scope="module")
def archive(published: Published) -> Path:
    started = time.monotonic()
    paths = bundle.create(Runner(), published.cfg, Client(), [ARM64], [published.thirdparty])
    print(f"\nbundle.create linux/arm64, 3 images: {time.monotonic() - started:.2f}s")
    assert paths == [published.cfg.output_dir / "bundles" / f"imdemo-{TAG}-linux-arm64.tar.gz"]
    return paths[0]


@dataclass(frozen=True)
class Netns:
    """A network namespace of this test's own with one non-loopback address (10.x, not 127.x): a registry
    there is neither loopback nor one of the host's addresses, so crossbuild's TLS rules really apply."""

    name: str
    ip: str

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def run(self, argv: Sequence[str | Path], extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run([*self.prefix(), *argv], env=extra, timeout=600)


@pytest.fixture
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("network namespace tests need root and iproute2 (make tools)")
    ident = uuid.uuid4()
    ns = Netns(f"cb-{ident.hex[:8]}", f"10.{200 + ident.int % 50}.{ident.int % 250 + 1}.1")
    setup = [  # the address sits on the namespace's own lo: no kernel module (dummy, veth) needed
        ["ip", "netns", "add", ns.name],
        ["ip", "-n", ns.name, "link", "set", "lo", "up"],
        ["ip", "-n", ns.name, "addr", "add", f"{ns.ip}/32", "dev", "lo"],
    ]
    try:
        for argv in setup:
            check(run(argv, timeout=30))
        yield ns
    finally:
        subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, timeout=30, check=False)


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[str]:
    """An empty registry on 127.0.0.1:5001 (plain HTTP, loopback)."""
    with docker_registry(tmp_path / "registry", SECOND) as registry:
        yield registry.address


def test_bundle_holds_each_arm64_image_with_its_registry_digest(published: Published, archive: Path) -> None:
    manifest = bundle.verify_archive(archive)
    assert (manifest.project, manifest.version, manifest.platform) == ("imdemo", TAG, ARM64)
    by_ref = {img.ref: img for img in manifest.images}
    assert list(by_ref) == published.refs
    for ref, img in by_ref.items():
        index_raw = skopeo_raw(ref)[0]
        assert img.digest == arm64_digest(index_raw), ref
        assert img.index_digest == sha256_digest(index_raw)
        assert img.platform == "linux/arm64"
    assert [by_ref[r].service for r in published.refs] == ["api", "push", None]
    with tarfile.open(archive) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"README.md", "manifest.json", "SHA256SUMS", "images/oci-layout", "images/index.json"} <= names
    assert "images/manifest.json" in names


def test_load_into_a_second_registry_keeps_digests_and_the_image_runs(
    published: Published, archive: Path, second_registry: str
) -> None:
    assert catalog(second_registry) == []
    started = time.monotonic()
    imported = bundle.load(Runner(), archive, second_registry)
    print(f"\nbundle.load -> {second_registry}: {time.monotonic() - started:.2f}s")
    expected = []
    for ref in published.refs:
        moved = second_registry + "/" + ref.split("/", 1)[1]
        want = arm64_digest(skopeo_raw(ref)[0])
        assert skopeo_digest(moved) == want, moved  # skopeo on :5001 vs the index on :5000
        expected.append((moved, want))
    assert imported == expected
    assert bundle.load(Runner(), archive, second_registry) == expected  # again: nothing changes

    api = expected[0][0]
    try:
        check(run(["docker", "pull", "--platform", "linux/arm64", api], timeout=300))
        out = check(run(["docker", "run", "--rm", "--platform", "linux/arm64", api, "--version"], timeout=120)).stdout
        assert "linux/arm64" in out, out
    finally:
        docker_rmi([api])


def test_load_into_the_docker_daemon(published: Published, archive: Path) -> None:
    tags = published.refs
    docker_rmi(tags)
    manifest = bundle.verify_archive(archive)
    try:
        started = time.monotonic()
        imported = bundle.load(Runner(), archive, None)
        print(f"\nbundle.load -> docker daemon: {time.monotonic() - started:.2f}s")
        assert imported == [(img.ref, img.config) for img in manifest.images]  # image ID = config digest
        for tag in tags:
            assert docker_image_arch(tag) == "arm64", tag
        assert docker_tags_under(published.prefix) == sorted(tags)  # nothing under any other name
    finally:
        docker_rmi(tags)


def rewrite_flipping(src: Path, dest: Path, member_suffix: str) -> None:
    """Copy the archive with one byte changed inside one member; SHA256SUMS is left as it was."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dest, "w:gz") as tout:
        for member in tin.getmembers():
            handle = tin.extractfile(member) if member.isfile() else None
            data = handle.read() if handle else b""
            if member.name.endswith(member_suffix):
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
            tout.addfile(member, io.BytesIO(data) if member.isfile() else None)


def test_corrupt_archives_are_refused_before_anything_is_imported(
    published: Published, archive: Path, second_registry: str, tmp_path: Path
) -> None:
    manifest = bundle.verify_archive(archive)
    api = manifest.images[0]
    with tarfile.open(archive) as tar:
        layer = max(tar.getmembers(), key=lambda m: m.size)
    assert "/images/blobs/sha256/" in layer.name

    truncated = tmp_path / "truncated.tar.gz"
    data = archive.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.tar.gz"
    rewrite_flipping(archive, flipped, layer.name.split("/", 1)[1])
    docker_rmi(published.refs)

    for bad, why in ((truncated, "truncated"), (flipped, "checksum mismatch")):
        for registry in (second_registry, None):
            with pytest.raises(UserError) as exc:
                bundle.load(Runner(), bad, registry)
            message = str(exc.value)
            assert why in message and "nothing was imported" in message and "\n" not in message
            assert catalog(second_registry) == []
            assert docker_image_arch(api.ref) is None


def test_images_lacking_a_platform_are_all_reported_before_anything_is_written(
    published: Published, tmp_path: Path
) -> None:
    cfg = replace(published.cfg, output_dir=tmp_path / "out")
    missing = f"{published.prefix}/nosuch:1"
    with pytest.raises(UserError) as exc:
        bundle.create(Runner(), cfg, Client(), [ARM64, Platform("linux", "arm", "v7")], [published.thirdparty, missing])
    message = str(exc.value)
    assert "\n" not in message
    assert f"{published.thirdparty} lacks linux/arm/v7 (has linux/amd64, linux/arm64)" in message
    assert f"image {missing} not found" in message
    assert "no bundle written" in message
    assert not (tmp_path / "out").exists()


# --- the command line, hostile archives, registries outside loopback ----------------------------------


def cli(
    published: Published, *args: str | Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`invoke ARGS` in the clone, as a user runs it; never raises for a non-zero exit."""
    return published.clone.invoke(*map(str, args), env=extra, timeout=900)


def archive_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        out = []
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            out.append((member, handle.read() if handle else b""))
        return out


def forge(src: Path, dest: Path, replacements: dict[str, bytes]) -> None:
    """What an attacker who knows the format does: change files, then rebuild SHA256SUMS to match."""
    items = archive_members(src)
    top = items[0][0].name.split("/", 1)[0]
    items = [(m, replacements.get(m.name.removeprefix(top + "/"), data)) for m, data in items]
    sums = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {m.name.removeprefix(top + '/')}\n"
        for m, data in sorted(items, key=lambda item: item[0].name)
        if m.isfile() and not m.name.endswith("/SHA256SUMS")
    ).encode()
    with tarfile.open(dest, "w:gz") as tar:
        for member, original in items:
            data = sums if member.name.endswith("/SHA256SUMS") else original
            member.size = len(data) if member.isfile() else 0
            tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


def test_bundle_and_bundle_load_print_each_line_once(published: Published, archive: Path, second_registry: str) -> None:
    """issue 16: `bundle` printed its step line and "ok wrote" twice, `bundle.load` each "ok ref -> digest"."""
    before = sha256_digest(archive.read_bytes())
    proc = cli(
        published,
        *("bundle", "--platform", "linux/arm64", "--image", published.thirdparty),
        extra={"REGISTRY_PREFIX": published.prefix, "IMAGES": "api,push"},
    )
    assert proc.returncode == 0, describe(proc)
    steps = [line for line in proc.stdout.splitlines() if line.startswith("==> ")]
    assert steps == [f"==> bundle 3 image(s) x linux/arm64 (version {TAG})"], describe(proc)
    wrote = [line for line in proc.stdout.splitlines() if "wrote" in line]
    assert len(wrote) == 1 and wrote[0].startswith(f"  ok wrote {archive} ("), describe(proc)
    assert (
        sha256_digest(archive.read_bytes()) == before
    )  # the command line wrote the same bytes as the API: reproducible

    proc = cli(published, "bundle.load", archive, "--registry", second_registry)
    assert proc.returncode == 0, describe(proc)
    ok = [line for line in proc.stdout.splitlines() if line.startswith("  ok ")]
    for ref in published.refs:
        moved = second_registry + "/" + ref.split("/", 1)[1]
        assert (
            len([line for line in ok if line.startswith(f"  ok {moved} -> {arm64_digest(skopeo_raw(ref)[0])}")]) == 1
        ), describe(proc)
    assert len(ok) == 1 + len(published.refs), describe(proc)  # "N files verified" and one line per image


def test_a_docker_manifest_naming_other_tags_imports_nothing(
    published: Published, archive: Path, tmp_path: Path
) -> None:
    """issue 12 Failure 2: images/manifest.json (what `docker load` obeys) rewritten to another tag, with
    SHA256SUMS rebuilt to match, used to import an image under that never-verified name."""
    evil = f"{published.prefix}/evil:1"
    files = {m.name.split("/", 1)[1]: data for m, data in archive_members(archive) if m.isfile()}
    docker = json.loads(files["images/manifest.json"])
    docker[0]["RepoTags"] = [evil]
    forged = tmp_path / "forged.tar.gz"
    forge(archive, forged, {"images/manifest.json": json.dumps(docker).encode()})
    docker_rmi([*published.refs, evil])
    assert docker_tags_under(published.prefix) == []

    line = assert_clean_failure(cli(published, "bundle.load", forged))
    assert "images/manifest.json does not describe the verified images" in line, line
    assert evil in line and "nothing was imported" in line, line
    assert docker_tags_under(published.prefix) == []  # neither the forged name nor the real ones


def write_gzip_bomb(path: Path, items: list[tuple[tarfile.TarInfo, bytes]], target: tarfile.TarInfo, size: int) -> None:
    """`items` as one gzip member (as `tar czf` writes), with `target` replaced by `size` zero bytes. After a
    full flush deflate refers to nothing before it (RFC 1951), so 1 MiB of zeros compresses to the same few
    hundred bytes every time: writing them N times makes N MiB in a few KiB, with nothing in memory."""
    zero = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(zero) + packer.flush(zlib.Z_FULL_FLUSH)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    crc, total = 0, 0
    with path.open("wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")  # RFC 1952 header: deflate, mtime 0
        for member, data in items:
            if member is target:
                member.size = size
                head = member.tobuf(tarfile.PAX_FORMAT)
                out.write(deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH))
                crc = zlib.crc32(head, crc)
                assert size % len(zero) == 0  # whole blocks: no tar padding needed
                for _ in range(size // len(zero)):
                    out.write(block)
                    crc = zlib.crc32(zero, crc)
                total += len(head) + size
                continue
            member.size = len(data) if member.isfile() else 0
            chunk = member.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)
            out.write(deflate.compress(chunk))
            crc, total = zlib.crc32(chunk, crc), total + len(chunk)
        tail = bytes(1024)
        out.write(deflate.compress(tail) + deflate.flush(zlib.Z_FINISH))
        crc, total = zlib.crc32(tail, crc), total + len(tail)
        out.write(struct.pack("<II", crc, total & 0xFFFFFFFF))


def test_an_archive_inflating_far_beyond_its_sizes_is_refused_quickly(
    published: Published, archive: Path, second_registry: str, tmp_path: Path
) -> None:
    """issue 12: a 12 MB archive inflating to 2 GiB was refused only after writing 2 GiB to $TMPDIR (59 s)."""
    items = archive_members(archive)
    biggest = max((m for m, _ in items if m.isfile()), key=lambda m: m.size)
    assert "/images/blobs/sha256/" in biggest.name
    bomb = tmp_path / "bomb.tar.gz"
    write_gzip_bomb(bomb, items, biggest, 2 << 30)
    assert bomb.stat().st_size < archive.stat().st_size + (8 << 20)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()

    started = time.monotonic()
    proc = cli(published, "bundle.load", bomb, "--registry", second_registry, extra={"TMPDIR": str(tmpdir)})
    elapsed = time.monotonic() - started
    line = assert_clean_failure(proc)
    print(f"\nbomb refused in {elapsed:.2f}s: {line}")
    assert f"{biggest.name.split('/', 1)[1]} is {2 << 30} bytes, but the manifest of" in line, line
    assert "nothing was imported" in line
    assert elapsed < 20, f"took {elapsed:.1f}s"
    assert list(tmpdir.iterdir()) == []
    assert catalog(second_registry) == []


def netns_catalog(netns: Netns, address: str) -> list[str]:
    script = "import json,sys,urllib.request;print(json.dumps(json.load(urllib.request.urlopen(sys.argv[1]))))"
    proc = netns.run([sys.executable, "-c", script, f"http://{address}/v2/_catalog"])
    assert proc.returncode == 0, proc.stderr
    repositories: list[str] = json.loads(proc.stdout)["repositories"]
    return repositories


def netns_load(
    published: Published, netns: Netns, archive: Path, address: str, *flags: str
) -> subprocess.CompletedProcess[str]:
    """`invoke bundle.load ARCHIVE --registry ADDRESS FLAGS` run inside the namespace, as a user there runs it."""
    argv = [published.clone.invoke_bin, "--search-root", published.clone.root, "bundle.load", archive]
    return netns.run([*argv, "--registry", address, *flags], extra={"NO_PROXY": netns.ip, "no_proxy": netns.ip})


def check_pushed(published: Published, netns: Netns, address: str, proc: subprocess.CompletedProcess[str]) -> None:
    """Every image is in the namespace's registry under its own digest (skopeo, inside the namespace)."""
    assert proc.returncode == 0, describe(proc)
    for ref in published.refs:
        moved = address + "/" + ref.split("/", 1)[1]
        raw = netns.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{moved}"])
        assert raw.returncode == 0, raw.stderr
        assert sha256_digest(raw.stdout.encode()) == arm64_digest(skopeo_raw(ref)[0]), moved
        assert len([line for line in proc.stdout.splitlines() if line.startswith(f"  ok {moved} -> ")]) == 1


def test_a_plain_http_registry_is_named_and_needs_plain_http(
    published: Published, archive: Path, netns: Netns, tmp_path: Path
) -> None:
    """issue 16: a plain-HTTP registry was "not reachable: [SSL: WRONG_VERSION_NUMBER]"; issue 12: --insecure
    also allowed plain HTTP. Now --plain-http is the one flag for it, and the error names it."""
    address = f"{netns.ip}:5000"
    with docker_registry(tmp_path / "registry", address, netns=netns.name):

        def load(*flags: str) -> subprocess.CompletedProcess[str]:
            return netns_load(published, netns, archive, address, *flags)

        line = assert_clean_failure(load())
        assert line == (
            f"error: registry {address} speaks plain HTTP, not HTTPS: add --plain-http to push to it over HTTP "
            "(images travel unencrypted)"
        )
        line = assert_clean_failure(load("--insecure"))
        assert "--insecure only accepts an untrusted certificate; add --plain-http" in line, line
        assert netns_catalog(netns, address) == []
        check_pushed(published, netns, address, load("--plain-http"))


def test_a_registry_with_a_self_signed_certificate_needs_insecure(
    published: Published, archive: Path, netns: Netns, tmp_path: Path
) -> None:
    """TLS is verified unless --insecure; --plain-http does not switch verification off."""
    address = f"{netns.ip}:5000"
    cert, key = self_signed_certificate(tmp_path, "crossbuild-test", f"IP:{netns.ip}")
    with docker_registry(tmp_path / "registry", address, tls=(cert, key), netns=netns.name):

        def load(*flags: str) -> subprocess.CompletedProcess[str]:
            return netns_load(published, netns, archive, address, *flags)

        line = assert_clean_failure(load())
        assert line == (
            f"error: registry {address} has a TLS certificate this machine does not trust: add --insecure to accept "
            "it (or install its CA certificate)"
        )
        line = assert_clean_failure(load("--plain-http"))
        assert "speaks HTTPS with a certificate this machine does not trust: add --insecure" in line, line
        check_pushed(published, netns, address, load("--insecure"))
