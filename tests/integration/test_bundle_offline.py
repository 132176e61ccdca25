"""Offline bundles end to end, against the real BuildKit builder, registries, dockerd and QEMU.

A fresh clone publishes api and push under a unique prefix on the local registry
(127.0.0.1:5000) with `invoke image.multiarch`; a third-party multi-arch image is
pushed there with `docker buildx build`. The linux/arm64 bundle made from them is
loaded into a second, empty registry on 127.0.0.1:5001 (docker-registry, started
here) and into the docker daemon. skopeo is the independent witness for the
digests, `docker pull` + `docker run` (QEMU) for the result being usable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from crossbuild import bundle
from crossbuild.config import Config, Overrides
from crossbuild.config import load as load_config
from crossbuild.errors import UserError
from crossbuild.platforms import Platform
from crossbuild.registry import RegistryClient

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INVOKE = PROJECT_ROOT / ".venv" / "bin" / "invoke"
TAG = "v1.4.2"
ARM64 = Platform("linux", "arm64")
SECOND = "127.0.0.1:5001"
REGISTRY_BINARY = "/usr/bin/docker-registry"
# Variables that would steer crossbuild, make, go or git if inherited.
LEAKY = frozenset(
    {
        *("PLATFORMS", "BINS", "IMAGES", "REGISTRY_PREFIX", "VERSION", "BASE_IMAGE", "GO_IMAGE", "CACHE_REF", "MODE"),
        "VERIFY",
        *("V", "CONFIG", "CROSSBUILD_CONFIG", "SOURCE_DATE_EPOCH", "GOOS", "GOARCH", "GOARM", "GOAMD64", "GOARM64"),
        *("CGO_ENABLED", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"),
    }
)


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in LEAKY}
    out.update(extra or {})
    return out


def run(
    argv: Sequence[str | Path], timeout: float = 600, extra: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run a command to completion; a failure shows both streams. `cwd` matters to invoke, which reads
    ./config.toml: crossbuild commands run inside the clone so nothing lands in the working tree."""
    proc = subprocess.run(
        [str(a) for a in argv],
        env=env(extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"{argv} exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def catalog(address: str) -> list[str]:
    with urllib.request.urlopen(f"http://{address}/v2/_catalog", timeout=5) as resp:
        repositories: list[str] = json.load(resp)["repositories"]
        return repositories


def skopeo_raw(ref: str) -> bytes:
    proc = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def arm64_digest(index_raw: bytes) -> str:
    index = json.loads(index_raw)
    return next(
        str(m["digest"])
        for m in index["manifests"]
        if m.get("platform", {}).get("architecture") == "arm64" and m["platform"].get("os") == "linux"
    )


def docker_image_arch(ref: str) -> str | None:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Architecture}}", ref],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def docker_rmi(refs: Sequence[str]) -> None:
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, timeout=120, check=False)


@dataclass(frozen=True)
class Published:
    cfg: Config
    prefix: str  # localhost:5000/b-<id>
    services: dict[str, str]  # service -> ref of its version tag
    thirdparty: str

    @property
    def refs(self) -> list[str]:
        return [*self.services.values(), self.thirdparty]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    for tool in ("docker", "skopeo", "git"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (make tools)")
    if not healthy("127.0.0.1:5000"):
        run([INVOKE, "--search-root", PROJECT_ROOT, "registry.up"], timeout=120, cwd=PROJECT_ROOT)
    tmp = tmp_path_factory.mktemp("bundle")
    clone = tmp / "repo"
    run(["git", "clone", "--quiet", PROJECT_ROOT, clone], timeout=120)
    run(["git", "-C", clone, "tag", TAG])
    ident = uuid.uuid4().hex[:8]
    prefix = f"localhost:5000/b-{ident}"
    started = time.monotonic()
    run(
        [INVOKE, "--search-root", clone, "image.multiarch"],
        timeout=900,
        extra={"REGISTRY_PREFIX": prefix, "IMAGES": "api,push"},
        cwd=clone,
    )
    assert (clone / "build" / "bin" / "linux" / "arm64" / "api").is_file(), "image.multiarch did not build in the clone"
    print(f"\nimage.multiarch api,push: {time.monotonic() - started:.1f}s")

    context = tmp / "thirdparty"
    context.mkdir()
    (context / "hello.txt").write_text("a third-party image\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    thirdparty = f"{prefix}/thirdparty:1"
    run(
        [
            "docker",
            "buildx",
            "build",
            "--builder",
            "crossbuild",
            "--platform",
            "linux/amd64,linux/arm64",
            "--provenance",
            "false",
            "--output",
            f"type=image,name={thirdparty},push=true",
            context,
        ]
    )
    cfg = load_config(clone / "config.toml", Overrides(images=("api", "push"), registry_prefix=prefix), environ={})
    services = {s.name: f"{cfg.image_ref(s)}:{cfg.image_tags(s)[0]}" for s in cfg.selected_images()}
    assert set(services) == {"api", "push"} and all(r.endswith(f":{TAG}") for r in services.values())
    yield Published(cfg, prefix, services, thirdparty)
    # Whatever this module left in the docker daemon under its unique prefix (smoke runs included).
    listing = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    docker_rmi(sorted({line.split()[1] for line in listing.splitlines() if f"b-{ident}/" in line}))


@pytest.fixture(scope="module")
def archive(published: Published) -> Path:
    started = time.monotonic()
    paths = bundle.create(published.cfg, RegistryClient(), [ARM64], [published.thirdparty])
    print(f"\nbundle.create linux/arm64, 3 images: {time.monotonic() - started:.2f}s")
    assert paths == [published.cfg.output_dir / "bundles" / f"imdemo-{TAG}-linux-arm64.tar.gz"]
    return paths[0]


def healthy_tls(address: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"https://{address}/v2/", timeout=2, context=context) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def registry_server(workdir: Path, address: str, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """An empty docker-registry (distribution) on `address`, our own process, stopped on exit."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.fail(f"{REGISTRY_BINARY} is required (apt-get install docker-registry, or make tools)")
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        if sock.connect_ex((host, int(port))) == 0:
            pytest.fail(f"something already listens on {address}; stop it, this test needs an empty registry there")
    workdir.mkdir(parents=True, exist_ok=True)
    tls_conf = f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else ""
    conf = workdir / "registry.yml"
    conf.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        f"http:\n  addr: {address}\n{tls_conf}"
    )
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(conf)], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while not (healthy_tls(address) if tls else healthy(address)):
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"docker-registry did not answer on {address}"
                time.sleep(0.1)
            yield address
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def second_registry(tmp_path: Path) -> Iterator[str]:
    """An empty registry on 127.0.0.1:5001 (plain HTTP, loopback)."""
    with registry_server(tmp_path / "registry", SECOND) as address:
        yield address


def non_loopback_ipv4() -> str:
    """An address of this machine that is not loopback, so TLS is really checked."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("203.0.113.1", 9))  # UDP: picks the outgoing address, sends nothing
        ip = str(sock.getsockname()[0])
        if not ip.startswith("127."):
            return ip
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    found = [ip for ip in out if "." in ip and not ip.startswith("127.")]
    if not found:
        pytest.fail("this machine has no non-loopback IPv4 address for the TLS registry test")
    return found[0]


def test_bundle_holds_each_arm64_image_with_its_registry_digest(published: Published, archive: Path) -> None:
    manifest = bundle.verify_archive(archive)
    assert (manifest.project, manifest.version, manifest.platform) == ("imdemo", TAG, ARM64)
    by_ref = {img.ref: img for img in manifest.images}
    assert list(by_ref) == published.refs
    for ref, img in by_ref.items():
        index_raw = skopeo_raw(ref)
        assert img.digest == arm64_digest(index_raw), ref
        assert img.index_digest == sha256(index_raw)
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
    imported = bundle.load(archive, second_registry, None)
    print(f"\nbundle.load -> {second_registry}: {time.monotonic() - started:.2f}s")
    expected = []
    for ref in published.refs:
        moved = second_registry + "/" + ref.split("/", 1)[1]
        want = arm64_digest(skopeo_raw(ref))
        assert sha256(skopeo_raw(moved)) == want, moved  # skopeo on :5001 vs the index on :5000
        expected.append((moved, want))
    assert imported == expected
    assert bundle.load(archive, second_registry, RegistryClient()) == expected  # again: nothing changes

    api = expected[0][0]
    try:
        run(["docker", "pull", "--platform", "linux/arm64", api], timeout=300)
        out = run(["docker", "run", "--rm", "--platform", "linux/arm64", api, "--version"], timeout=120)
        assert "linux/arm64" in out, out
    finally:
        docker_rmi([api])


def test_load_into_the_docker_daemon(published: Published, archive: Path) -> None:
    tags = published.refs
    docker_rmi(tags)
    manifest = bundle.verify_archive(archive)
    try:
        started = time.monotonic()
        imported = bundle.load(archive, None, None)
        print(f"\nbundle.load -> docker daemon: {time.monotonic() - started:.2f}s")
        assert imported == [(img.ref, img.config) for img in manifest.images]  # image ID = config digest
        for tag in tags:
            assert docker_image_arch(tag) == "arm64", tag
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
                bundle.load(bad, registry, None)
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
        bundle.create(cfg, RegistryClient(), [ARM64, Platform("linux", "arm", "v7")], [published.thirdparty, missing])
    message = str(exc.value)
    assert "\n" not in message
    assert f"{published.thirdparty} lacks linux/arm/v7 (has linux/amd64, linux/arm64)" in message
    assert f"image {missing} not found" in message
    assert "no bundle written" in message
    assert not (tmp_path / "out").exists()


def test_load_into_a_registry_with_a_self_signed_certificate(
    published: Published, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS is verified unless the host is listed as insecure; listed, its self-signed certificate is accepted."""
    ip = non_loopback_ipv4()
    with socket.socket() as sock:
        sock.bind((ip, 0))
        address = f"{ip}:{sock.getsockname()[1]}"
    monkeypatch.setenv("NO_PROXY", ip)
    monkeypatch.setenv("no_proxy", ip)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=crossbuild-test"),
            *("-addext", f"subjectAltName=IP:{ip}", "-keyout", key, "-out", cert),
        ]
    )
    manifest = bundle.verify_archive(archive)
    with registry_server(tmp_path / "registry", address, tls=(cert, key)):
        with pytest.raises(UserError, match="TLS certificate not trusted"):
            bundle.load(archive, address, RegistryClient())
        imported = bundle.load(archive, address, RegistryClient(insecure=[address]))
        assert [digest for _, digest in imported] == [img.digest for img in manifest.images]
        for target, digest in imported:
            assert sha256(skopeo_raw(target)) == digest, target
