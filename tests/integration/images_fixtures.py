"""Helpers for test_images.py: a tagged clone to run crossbuild in, and independent witnesses.

Nothing here imports crossbuild. Results are read with tools that have no
code in common with it: skopeo (manifests and image configs), plain HTTP to
the registry API (tags and repositories), the docker CLI (pull, run, inspect)
and Python's tarfile/json for OCI layout tarballs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TAG = "v2.3.4"
SERVICES = ("api", "msggateway", "push", "rpc-user")
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
REGISTRY = "localhost:5000"
REGISTRY_API = "http://127.0.0.1:5000"
GO_IMAGE = f"{REGISTRY}/golang:local"
SOURCE_URL = "https://github.com/crossbuild-example/imdemo"  # [project] source in config.toml
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# os, architecture, accepted variants of each platform's image config.
CONFIG_PLATFORM = {
    "linux/amd64": ("linux", "amd64", {None, ""}),
    "linux/arm64": ("linux", "arm64", {None, "", "v8"}),
    "linux/arm/v7": ("linux", "arm", {"v7"}),
}
# The `platform:` line `<service> --version` prints on each platform.
RUN_SAYS = {
    "linux/amd64": "linux/amd64",
    "linux/arm64": "linux/arm64",
    "linux/arm/v7": "linux/arm GOARM=7",
}

# Variables that would steer crossbuild, make, go or git if inherited from the caller.
_LEAKY_ENV = (
    "PLATFORMS",
    "BINS",
    "IMAGES",
    "REGISTRY_PREFIX",
    "VERSION",
    "BASE_IMAGE",
    "GO_IMAGE",
    "CACHE_REF",
    "MODE",
    "VERIFY",
    "SBOM",
    "SIGN",
    "COSIGN_PASSWORD",
    "V",
    "CONFIG",
    "CROSSBUILD_CONFIG",
    "SOURCE_DATE_EPOCH",
    "GOOS",
    "GOARCH",
    "GOARM",
    "GOAMD64",
    "GOARM64",
    "GOFLAGS",
    "CGO_ENABLED",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GITHUB_STEP_SUMMARY",
)


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command and return its result; never raises for a non-zero exit."""
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    argv = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
    return f"$ {argv}\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


def unique_prefix() -> str:
    return f"{REGISTRY}/t-{uuid.uuid4().hex[:8]}"


def namespace(prefix: str) -> str:
    """The repository path under the registry host: localhost:5000/t-1234 -> t-1234."""
    return prefix.split("/", 1)[1]


@dataclass(frozen=True)
class Clone:
    """A `git clone` of the project (committed files only), tagged TAG, with its own .venv."""

    root: Path

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def module_dir(self) -> Path:
        return self.root / "examples" / "imdemo"

    def invoke(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run([self.root / ".venv" / "bin" / "invoke", *args], cwd=self.root, env=env)

    def make(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run(["make", "--no-print-directory", *args], cwd=self.root, env=env)

    def git(self, *args: str) -> str:
        proc = run(["git", "-C", self.root, *args], timeout=60)
        assert proc.returncode == 0, describe(proc)
        return proc.stdout.strip()

    def reset_build(self) -> None:
        """Remove build/ except build/registry (an embedded registry may serve from it)."""
        if not self.build_dir.is_dir():
            return
        for child in self.build_dir.iterdir():
            if child.name == "registry":
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def config_copy(self, name: str, old: str, new: str) -> Path:
        """config.toml with one exact line replaced, written next to it (paths stay relative to the clone)."""
        text = (self.root / "config.toml").read_text()
        assert text.count(old) == 1, f"config.toml no longer has exactly one {old!r}; update the test"
        path = self.root / name
        path.write_text(text.replace(old, new))
        return path


def make_clone(dest: Path) -> Clone:
    proc = run(["git", "clone", "--quiet", PROJECT_ROOT, dest], timeout=120)
    assert proc.returncode == 0, describe(proc)
    clone = Clone(dest)
    # Only TAG on HEAD, so `git describe` (the version) is exactly TAG whatever tags the project has.
    existing = clone.git("tag", "--list").split()
    if existing:
        clone.git("tag", "--delete", *existing)
    clone.git("tag", TAG)
    # The first make target creates .venv and installs the clone's crossbuild into it.
    proc = clone.make("build", "BINS=api")
    assert proc.returncode == 0, describe(proc)
    assert (dest / ".venv" / "bin" / "invoke").is_file(), "make did not create .venv/bin/invoke"
    clone.reset_build()
    return clone


# --- command output -----------------------------------------------------------


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in ANSI_ESCAPE.sub("", proc.stderr).splitlines() if line.startswith("error:")]


def assert_clean_failure(proc: subprocess.CompletedProcess[str]) -> str:
    """Non-zero exit, no traceback, exactly one `error:` line on stderr; return that line."""
    report = describe(proc)
    assert proc.returncode != 0, report
    assert "Traceback" not in proc.stdout + proc.stderr, report
    lines = error_lines(proc)
    assert len(lines) == 1, report
    return lines[0]


# --- registry over plain HTTP ------------------------------------------------------


def _get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, None


def registry_healthy() -> bool:
    try:
        with urllib.request.urlopen(f"{REGISTRY_API}/v2/", timeout=5) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def tags(repository: str) -> list[str]:
    """Tags of a repository (path under the registry host); [] when it has none or does not exist."""
    status, body = _get_json(f"{REGISTRY_API}/v2/{repository}/tags/list")
    if status == 404:
        return []
    assert status == 200, f"GET /v2/{repository}/tags/list: HTTP {status}"
    return sorted(body.get("tags") or [])


def repositories_under(ns: str) -> list[str]:
    """Every repository in the registry's catalog whose path starts with `ns/`."""
    query = urllib.parse.urlencode({"n": 1000, "last": ns})
    status, body = _get_json(f"{REGISTRY_API}/v2/_catalog?{query}")
    assert status == 200, f"GET /v2/_catalog: HTTP {status}"
    # The catalog is sorted, so everything under ns/ follows `last=ns` directly.
    return [r for r in body.get("repositories") or [] if r.startswith(ns + "/")]


def port_is_closed(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        return sock.connect_ex((host, port)) != 0


# --- skopeo -------------------------------------------------------------------------


def skopeo_raw(ref: str) -> tuple[bytes, dict[str, Any]]:
    """(exact bytes, parsed JSON) of a manifest or index; ref like localhost:5000/ns/api:tag."""
    proc = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"skopeo inspect --raw docker://{ref}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout, json.loads(proc.stdout)


def skopeo_config(ref: str) -> dict[str, Any]:
    proc = run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{ref}"], timeout=120)
    assert proc.returncode == 0, describe(proc)
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def skopeo_exists(ref: str) -> bool:
    proc = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], timeout=120)
    return proc.returncode == 0


def sha256_digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def platform_string(platform: Mapping[str, Any]) -> str:
    text = f"{platform.get('os')}/{platform.get('architecture')}"
    return text + (f"/{platform['variant']}" if platform.get("variant") else "")


def index_platforms(index: Mapping[str, Any]) -> dict[str, str]:
    """platform -> manifest digest of an image index, attestation entries (unknown/unknown) left out."""
    found: dict[str, str] = {}
    for entry in index.get("manifests", []):
        plat = entry.get("platform") or {}
        if plat.get("os") == "unknown" or plat.get("architecture") == "unknown":
            continue
        name = platform_string(plat)
        assert name not in found, f"platform {name} listed twice in the index"
        found[name] = entry["digest"]
    return found


def assert_index(ref: str, platforms: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`ref` is an OCI index of exactly `platforms`; return (index digest, platform -> digest)."""
    raw, index = skopeo_raw(ref)
    assert index.get("mediaType") == OCI_INDEX, f"{ref}: media type {index.get('mediaType')!r}"
    found = index_platforms(index)
    assert set(found) == set(platforms), f"{ref}: platforms {sorted(found)}, expected {sorted(platforms)}"
    return sha256_digest(raw), found


def assert_config_platform(config: Mapping[str, Any], platform: str, where: str) -> None:
    os_, arch, variants = CONFIG_PLATFORM[platform]
    assert config.get("os") == os_, f"{where}: config os {config.get('os')!r}, expected {os_!r}"
    assert config.get("architecture") == arch, f"{where}: config architecture {config.get('architecture')!r}"
    assert config.get("variant") in variants, f"{where}: config variant {config.get('variant')!r} for {platform}"


# --- docker CLI -----------------------------------------------------------------------


def docker_run_version(ref: str, platform: str) -> dict[str, str]:
    """`docker run --rm --platform P ref --version` (QEMU for foreign arches); its `key: value` fields."""
    proc = run(["docker", "run", "--rm", "--platform", platform, ref, "--version"], timeout=300)
    assert proc.returncode == 0, describe(proc)
    lines = proc.stdout.splitlines()
    fields = {"name": lines[0].strip()} if lines else {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def docker_images_under(prefix: str) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) of every local docker image whose name is under `prefix`."""
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
    assert proc.returncode == 0, describe(proc)
    return [(r, t, d) for r, t, d in (line.split() for line in proc.stdout.splitlines() if line.strip())]


def remove_docker_images(prefix: str) -> None:
    """Untag every local image under `prefix` (by name, never by ID: IDs may be shared with others' images)."""
    for repo, tag, digest in docker_images_under(prefix):
        if tag != "<none>":
            run(["docker", "rmi", f"{repo}:{tag}"], timeout=60)
        if digest != "<none>":
            run(["docker", "rmi", f"{repo}@{digest}"], timeout=60)


# --- OCI layout tarballs ---------------------------------------------------------------


class OciArchive:
    """Read an OCI image layout stored as a tar (image-spec image-layout.md)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.members: dict[str, bytes] = {}
        with tarfile.open(path) as tar:
            for member in tar:
                fh = tar.extractfile(member) if member.isfile() else None
                if fh is not None:
                    with fh:
                        self.members[member.name.removeprefix("./")] = fh.read()

    def json(self, name: str) -> dict[str, Any]:
        assert name in self.members, f"{self.path}: no {name} (has {sorted(self.members)[:10]} ...)"
        data: dict[str, Any] = json.loads(self.members[name])
        return data

    def blob(self, digest: str) -> dict[str, Any]:
        algorithm, _, hexdigest = digest.partition(":")
        name = f"blobs/{algorithm}/{hexdigest}"
        assert name in self.members, f"{self.path}: blob {digest} missing"
        assert sha256_digest(self.members[name]) == digest, f"{self.path}: blob {digest} does not match its digest"
        return self.json(name)
