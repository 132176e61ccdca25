"""Independent checks of what crossbuild produced: tools that share no code with it.

skopeo reads manifests, indexes and image configs and copies images into OCI layouts;
plain HTTP (the distribution spec's endpoints) reads tags, the catalog and whether a tag
resolves; Python's tarfile and json read OCI layouts; the docker CLI runs and lists
images. Every check fails with what it saw.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .commands import check, describe, run
from .example import REGISTRY as LOCAL

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# os, architecture and accepted variants of each platform's image config.
CONFIG_PLATFORM = {
    "linux/amd64": ("linux", "amd64", {None, ""}),
    "linux/arm64": ("linux", "arm64", {None, "", "v8"}),
    "linux/arm/v7": ("linux", "arm", {"v7"}),
}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- the registry over plain HTTP -------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def api_url(registry: str) -> str:
    """http://host:port for a registry address; a URL is kept as it is."""
    return registry.rstrip("/") if "://" in registry else f"http://{registry}"


def http_request(
    method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=60) as resp:
            return int(resp.status), dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers.items()), exc.read()


def tags(repository: str, registry: str = LOCAL) -> list[str]:
    """Tags of a repository (path under the registry host); [] when it has none or does not exist."""
    status, _, body = http_request("GET", f"{api_url(registry)}/v2/{repository}/tags/list")
    if status == 404:
        return []
    assert status == 200, f"GET /v2/{repository}/tags/list: HTTP {status} {body[:300]!r}"
    return sorted(json.loads(body).get("tags") or [])


def _catalog_pages(registry: str, last: str = "", page: int = 1000) -> Iterator[str]:
    """Repository names from GET /v2/_catalog after `last`, `page` at a time (the Link header names the next page)."""
    url = f"{api_url(registry)}/v2/_catalog?" + urllib.parse.urlencode({"n": page, "last": last})
    while url:
        status, headers, body = http_request("GET", url)
        assert status == 200, f"GET {url}: HTTP {status} {body[:300]!r}"
        yield from json.loads(body).get("repositories") or []
        link = headers.get("Link") or headers.get("link") or ""
        url = urllib.parse.urljoin(url, link.split(";")[0].strip(" <>")) if 'rel="next"' in link else ""


def catalog(registry: str = LOCAL, *, page: int = 1000) -> list[str]:
    """Every repository the registry holds."""
    return list(_catalog_pages(registry, page=page))


def repositories_under(ns: str, registry: str = LOCAL, *, page: int = 1000) -> list[str]:
    """Every repository in the registry's catalog whose path starts with `ns/`."""
    found = []
    # The catalog is sorted, so everything under ns/ follows `last=ns` directly.
    for repository in _catalog_pages(registry, last=ns, page=page):
        if not repository.startswith(ns + "/"):
            if repository > ns + "/":
                break
            continue
        found.append(repository)
    return found


def resolves(registry: str, repository: str, tag: str) -> bool:
    """Does the registry serve a manifest under this tag (HEAD, [dist] "Checking if content exists")?"""
    accept = f"{OCI_INDEX}, {OCI_MANIFEST}"
    status, _, _ = http_request(
        "HEAD", f"{api_url(registry)}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}
    )
    return status == 200


# --- skopeo ------------------------------------------------------------------------------------


def _skopeo_inspect(ref: str, *flags: str, creds: str | None = None) -> subprocess.CompletedProcess[bytes]:
    auth = ["--creds", creds] if creds else []
    argv = ["skopeo", "inspect", *flags, "--tls-verify=false", *auth, f"docker://{ref}"]
    return subprocess.run(argv, capture_output=True, timeout=120, check=False)


def skopeo_raw(ref: str, *, creds: str | None = None) -> tuple[bytes, dict[str, Any]]:
    """(exact bytes, parsed JSON) of the manifest or index `ref` names (localhost:5000/ns/api:tag)."""
    proc = _skopeo_inspect(ref, "--raw", creds=creds)
    assert proc.returncode == 0, f"skopeo inspect --raw docker://{ref}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout, json.loads(proc.stdout)


def skopeo_digest(ref: str, *, creds: str | None = None) -> str:
    return sha256_digest(skopeo_raw(ref, creds=creds)[0])


def skopeo_config(ref: str) -> dict[str, Any]:
    """The image config of `ref` (a single image, or the host platform's entry of an index)."""
    proc = _skopeo_inspect(ref, "--config", "--raw")
    assert proc.returncode == 0, f"skopeo inspect --config docker://{ref}: {proc.stderr.decode(errors='replace')}"
    config: dict[str, Any] = json.loads(proc.stdout)
    return config


def skopeo_exists(ref: str) -> bool:
    return _skopeo_inspect(ref, "--raw").returncode == 0


def skopeo_tags(repository_ref: str) -> list[str]:
    """`skopeo list-tags` of a repository (localhost:5000/ns/api)."""
    proc = check(run(["skopeo", "list-tags", "--tls-verify=false", f"docker://{repository_ref}"], timeout=120))
    return sorted(json.loads(proc.stdout)["Tags"] or [])


def skopeo_copy(ref: str, layout: Path, *, arch: str | None = None) -> Path:
    """`skopeo copy` one image (the `arch` entry of an index) into an OCI layout directory; the directory."""
    override = [f"--override-arch={arch}"] if arch else []
    argv = ["skopeo", *override, "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:img"]
    check(run(argv, timeout=300))
    return layout


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


def skopeo_index(ref: str) -> dict[str, str]:
    """`ref` is an OCI image index; platform -> manifest digest of its entries, attestations left out."""
    _, index = skopeo_raw(ref)
    assert index.get("mediaType") == OCI_INDEX, f"{ref}: media type {index.get('mediaType')!r}"
    return index_platforms(index)


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


# --- OCI layouts ---------------------------------------------------------------------------------


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


def layout_blob(layout: Path, digest: str) -> bytes:
    """A blob of an OCI layout directory, checked against its digest."""
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    assert sha256_digest(data) == digest, f"{layout}: blob {digest} does not match its digest"
    return data


def merged_files(layers: list[bytes]) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """path -> (member, content) over the layers (any compression), later layers winning, as a container sees them."""
    found: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as tar:
            for member in tar:
                fh = tar.extractfile(member) if member.isfile() else None
                found[member.name.removeprefix("./").rstrip("/")] = (member, fh.read() if fh else b"")
    return found


def image_files(
    ref: str, dest: Path, *, arch: str | None = None
) -> tuple[list[str], dict[str, tuple[tarfile.TarInfo, bytes]]]:
    """(layer digests, merged files) of one image (the `arch` entry of an index), through skopeo copy and tarfile."""
    layout = skopeo_copy(ref, dest, arch=arch)
    index = json.loads((layout / "index.json").read_text())
    manifest: dict[str, Any] = json.loads(layout_blob(layout, index["manifests"][0]["digest"]))
    digests = [layer["digest"] for layer in manifest["layers"]]
    return digests, merged_files([layout_blob(layout, d) for d in digests])


# --- the docker CLI ----------------------------------------------------------------------------------


def version_fields(text: str) -> dict[str, str]:
    """What the example's `<service> --version` printed: its first line as "name", then each `key: value`."""
    lines = text.splitlines()
    fields = {"name": lines[0].strip()} if lines else {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def docker_run_version(ref: str, platform: str) -> dict[str, str]:
    """`docker run --rm --platform P ref --version` (QEMU for foreign arches); its version_fields."""
    proc = run(["docker", "run", "--rm", "--platform", platform, ref, "--version"], timeout=300)
    assert proc.returncode == 0, describe(proc)
    return version_fields(proc.stdout)


def _docker_image_list() -> subprocess.CompletedProcess[str]:
    return run(["docker", "image", "ls", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"], timeout=60)


def docker_images_under(prefix: str) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) of every local docker image whose name is under `prefix`."""
    proc = check(_docker_image_list())
    rows = (line.split() for line in proc.stdout.splitlines() if line.strip())
    return [(r, t, d) for r, t, d in rows if r.startswith(prefix + "/")]


def docker_tags_under(prefix: str) -> list[str]:
    """repository:tag of every local docker image under `prefix`, untagged ones left out."""
    return sorted(f"{r}:{t}" for r, t, _ in docker_images_under(prefix) if t != "<none>")


def remove_docker_images(prefix: str) -> None:
    """Untag every local image under `prefix` (by name, never by ID: IDs may be shared with others' images).
    Nothing to do when the docker daemon cannot list them."""
    listing = _docker_image_list()
    if listing.returncode != 0:
        return
    for line in listing.stdout.splitlines():
        repository, tag, digest = line.split()
        if not repository.startswith(prefix + "/"):
            continue
        if tag != "<none>":
            run(["docker", "rmi", f"{repository}:{tag}"], timeout=60)
        if digest != "<none>":
            run(["docker", "rmi", f"{repository}@{digest}"], timeout=60)


def docker_rmi(refs: Sequence[str]) -> None:
    """`docker rmi -f` of these names, whether or not they exist."""
    if refs:
        run(["docker", "rmi", "-f", *refs], timeout=120)


def docker_image_arch(ref: str) -> str | None:
    """The architecture of a local image, None when the daemon has no such image."""
    proc = run(["docker", "image", "inspect", "--format", "{{.Architecture}}", ref], timeout=60)
    return proc.stdout.strip() if proc.returncode == 0 else None


def container_image_ids() -> dict[str, str]:
    """container id -> full image id of every container the daemon has (running or not)."""
    ids = check(run(["docker", "ps", "-a", "-q", "--no-trunc"], timeout=60)).stdout.split()
    if not ids:
        return {}
    proc = check(run(["docker", "inspect", "--format", "{{.Id}} {{.Image}}", *ids], timeout=60))
    return dict(line.split() for line in proc.stdout.splitlines() if line.strip())
