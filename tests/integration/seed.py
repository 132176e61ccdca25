"""Shared helpers for test_verify.py, test_doctor.py and test_audit.py.

Nothing here imports crossbuild: crossbuild runs as a subprocess
(`<project>/.venv/bin/invoke --search-root <clone>`) in a throwaway clone, and
its results are checked with independent tools - skopeo, `go build`,
`docker buildx build`, the docker CLI and plain HTTP to the registry API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import re
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the integration helpers share one command runner and environment filter
from images_fixtures import describe, run

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INVOKE = PROJECT_ROOT / ".venv" / "bin" / "invoke"
TAG = "v3.1.0"
REGISTRY = "localhost:5000"
REGISTRY_API = "http://127.0.0.1:5000"
BUILDER = "crossbuild"
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
VERSION_PKG = "github.com/crossbuild-example/imdemo/pkg/version"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def plain(text: str) -> str:
    return ANSI_ESCAPE.sub("", text)


def check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, describe(proc)
    return proc


def unique_prefix(letter: str = "v") -> str:
    return f"{REGISTRY}/{letter}-{uuid.uuid4().hex[:8]}"


# --- the clone ----------------------------------------------------------------------


@dataclass(frozen=True)
class Clone:
    """A `git clone` of the project (committed files only) tagged TAG; crossbuild runs from its tasks.py."""

    root: Path

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def module_dir(self) -> Path:
        return self.root / "examples" / "imdemo"

    def invoke(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return run([INVOKE, "--search-root", self.root, *args], cwd=self.root, env=env, timeout=timeout)

    def git(self, *args: str) -> str:
        return check(run(["git", "-C", self.root, *args], timeout=60)).stdout.strip()

    def config_copy(self, name: str, old: str, new: str) -> Path:
        """config.toml with one exact piece of text replaced, written next to it (paths stay relative)."""
        text = (self.root / "config.toml").read_text()
        assert text.count(old) == 1, f"config.toml no longer has exactly one {old!r}; update the test"
        path = self.root / name
        path.write_text(text.replace(old, new))
        return path

    def x_values(self) -> dict[str, str]:
        """The -X values crossbuild injects for this clone's config.toml ([go.x]), computed with git."""
        commit = self.git("rev-parse", "HEAD")
        epoch = int(self.git("log", "-1", "--format=%ct"))
        date = dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            f"{VERSION_PKG}.Version": self.git("describe", "--tags", "--always", "--dirty"),
            f"{VERSION_PKG}.GitCommit": commit,
            f"{VERSION_PKG}.BuildDate": date,
            f"{VERSION_PKG}.GitTreeState": "clean",
        }


def make_clone(dest: Path) -> Clone:
    for tool in ("docker", "skopeo", "go", "git"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} not found: run `make tools` first")
    assert INVOKE.is_file(), f"{INVOKE} missing: run `make` in {PROJECT_ROOT} first"
    check(run(["git", "clone", "--quiet", PROJECT_ROOT, dest], timeout=120))
    clone = Clone(dest)
    existing = clone.git("tag", "--list").split()
    if existing:  # only TAG on HEAD, so `git describe` is exactly TAG
        clone.git("tag", "--delete", *existing)
    clone.git("tag", TAG)
    assert clone.git("describe", "--tags", "--always", "--dirty") == TAG
    return clone


# --- default registry ---------------------------------------------------------------


def registry_healthy(api: str = REGISTRY_API) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/v2/", timeout=5) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def default_registry(clone: Clone) -> Iterator[None]:
    """The local registry answering on 127.0.0.1:5000 (started with `invoke registry.up` if needed)."""
    started = False
    if not registry_healthy():
        check(clone.invoke("registry.up"))
        assert registry_healthy(), "invoke registry.up did not start 127.0.0.1:5000"
        started = True
    try:
        yield
    finally:
        if started:
            clone.invoke("registry.down")


def port_is_closed(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        return sock.connect_ex((host, port)) != 0


@contextlib.contextmanager
def registry_server(workdir: Path, address: str) -> Iterator[str]:
    """A docker-registry (distribution) on `address` with its data under workdir; stopped on exit."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    assert binary, "docker-registry not installed: run `make tools`"
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + 30
    while not port_is_closed(host, int(port)):  # another test's registry may still be shutting down
        assert time.monotonic() < deadline, f"something else listens on {address}"
        time.sleep(0.5)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "config.yml"
    conf.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )
    with (workdir / "registry.log").open("wb") as log:
        proc = subprocess.Popen([binary, "serve", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not registry_healthy(f"http://{address}"):
            assert proc.poll() is None, f"{binary} exited: {(workdir / 'registry.log').read_text()}"
            assert time.monotonic() < deadline, f"{binary} did not answer on {address}"
            time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- registry over plain HTTP ----------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _http(method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=60) as resp:
            return int(resp.status), dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers.items()), exc.read()


def upload_blob(api: str, repository: str, data: bytes) -> str:
    """POST + PUT a blob (monolithic upload) into repository; its digest."""
    digest = sha256_digest(data)
    status, headers, body = _http("POST", f"{api}/v2/{repository}/blobs/uploads/", b"")
    assert status == 202, f"start upload to {repository}: HTTP {status} {body[:300]!r}"
    location = urllib.parse.urljoin(f"{api}/", headers.get("Location") or headers["location"])
    sep = "&" if "?" in location else "?"
    status, _, body = _http(
        "PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201, f"finish upload of {digest} to {repository}: HTTP {status} {body[:300]!r}"
    return digest


def put_manifest(api: str, repository: str, reference: str, raw: bytes, media_type: str) -> str:
    status, _, body = _http("PUT", f"{api}/v2/{repository}/manifests/{reference}", raw, {"Content-Type": media_type})
    assert status == 201, f"PUT manifest {repository}:{reference}: HTTP {status} {body[:300]!r}"
    return sha256_digest(raw)


def tar_gz_layer(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """(gzipped tar, diff_id) holding `files` (path in image -> bytes, mode 0755)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), sha256_digest(uncompressed)


# --- skopeo -------------------------------------------------------------------------------


def skopeo_raw(ref: str) -> tuple[bytes, dict[str, Any]]:
    """(exact bytes, parsed JSON) of the manifest or index `ref` names."""
    proc = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"skopeo inspect --raw docker://{ref}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout, json.loads(proc.stdout)


def skopeo_config(ref: str) -> dict[str, Any]:
    """The image config of `ref` (a single image, or the host platform's entry of an index)."""
    proc = run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{ref}"], timeout=120)
    assert proc.returncode == 0, describe(proc)
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def skopeo_digest(ref: str) -> str:
    return sha256_digest(skopeo_raw(ref)[0])


def skopeo_exists(ref: str) -> bool:
    return run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], timeout=120).returncode == 0


def platform_string(platform: Mapping[str, Any]) -> str:
    text = f"{platform.get('os')}/{platform.get('architecture')}"
    return text + (f"/{platform['variant']}" if platform.get("variant") else "")


def index_platforms(index: Mapping[str, Any]) -> dict[str, str]:
    """platform -> manifest digest, attestation entries (unknown/unknown) left out."""
    found = {}
    for entry in index.get("manifests", []):
        plat = entry.get("platform") or {}
        if "unknown" in (plat.get("os"), plat.get("architecture")):
            continue
        found[platform_string(plat)] = entry["digest"]
    return found


# --- building test inputs ----------------------------------------------------------------


def go_env(platform: str) -> dict[str, str]:
    os_, arch, *variant = platform.split("/")
    env = {"CGO_ENABLED": "0", "GOOS": os_, "GOARCH": arch}
    if arch == "arm":
        env["GOARM"] = (variant[0] if variant else "v7").removeprefix("v")
    return env


def go_build(module_dir: Path, package: str, platform: str, out: Path, x: Mapping[str, str]) -> Path:
    """`go build` of one package for one platform with `-X key=value` for each of x."""
    out.parent.mkdir(parents=True, exist_ok=True)
    ldflags = " ".join(["-s", "-w", *(f"-X {k}={v}" for k, v in x.items())])
    argv = ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out), package]
    check(run(argv, cwd=module_dir, env=go_env(platform), timeout=300))
    return out


def buildx_push(context: Path, ref: str, platforms: Sequence[str], *, provenance: str = "false") -> str:
    """`docker buildx build` of context/Dockerfile, pushed to ref; the pushed digest (per skopeo)."""
    argv = [
        *("docker", "buildx", "build", "--builder", BUILDER, "--provenance", provenance),
        *("--platform", ",".join(platforms)),
        *("--output", f"type=image,name={ref},push=true"),
        str(context),
    ]
    check(run(argv, timeout=300))
    return skopeo_digest(ref)


# --- docker -----------------------------------------------------------------------------


def container_image_ids() -> dict[str, str]:
    """container id -> full image id of every container the daemon has (running or not)."""
    ids = check(run(["docker", "ps", "-a", "-q", "--no-trunc"], timeout=60)).stdout.split()
    if not ids:
        return {}
    proc = check(run(["docker", "inspect", "--format", "{{.Id}} {{.Image}}", *ids], timeout=60))
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())


def remove_docker_images(prefix: str) -> None:
    """Untag every local image under `prefix` (smoke runs pull them), by name, never by id."""
    proc = run(
        [
            "docker",
            "image",
            "ls",
            "--digests",
            "--filter",
            f"reference={prefix}/*",
            "--format",
            "{{.Repository}} {{.Tag}} {{.Digest}}",
        ],
        timeout=60,
    )
    for line in proc.stdout.splitlines():
        repository, tag, digest = line.split()
        if tag != "<none>":
            run(["docker", "rmi", f"{repository}:{tag}"], timeout=60)
        if digest != "<none>":
            run(["docker", "rmi", f"{repository}@{digest}"], timeout=60)
