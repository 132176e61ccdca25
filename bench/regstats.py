"""What the local registry holds, read from its HTTP API or straight from its storage.

The bench counts bytes pushed at the registry, not what a tool says it pushed,
so it must see the registry's side: the files under its storage directory
(found through /proc) or, when that cannot be read, the manifests its API
serves. Nothing here writes to the registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

REGISTRY = "localhost:5000"
REGISTRY_ADDR = "127.0.0.1:5000"

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def registry_up() -> bool:
    return http_ok(f"http://{REGISTRY_ADDR}/v2/")


def registry_get(path: str, accept: str = "application/json") -> tuple[bytes, Mapping[str, str]] | None:
    """GET path from the local registry: (body, headers), or None when absent or unreachable."""
    req = urllib.request.Request(f"http://{REGISTRY_ADDR}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    except (urllib.error.URLError, OSError):
        return None


def catalog() -> list[str]:
    """Every repository of the local registry, page by page: distribution refuses n > 1000 (400)."""
    repos: list[str] = []
    path: str | None = "/v2/_catalog?n=1000"
    while path:
        got = registry_get(path)
        if got is None:
            break
        body, headers = got
        repos += json.loads(body).get("repositories") or []
        # RFC 5988 Link header: </v2/_catalog?last=x&n=1000>; rel="next"
        link = re.match(r'\s*<([^>]+)>;\s*rel="next"', headers.get("Link", ""))
        path = link.group(1) if link else None
    return repos


def image_exists(ref: str) -> bool:
    """HEAD-like check of repository:tag in the local registry."""
    repo, _, tag = ref.removeprefix(REGISTRY + "/").rpartition(":")
    return registry_get(f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT) is not None


def linked_via_api(prefix_path: str) -> dict[str, dict[str, int]]:
    """{repository under the prefix: {digest hex: size}} of every manifest, config and layer tagged there (API)."""
    repos = [r for r in catalog() if r.startswith(prefix_path + "/")]
    out: dict[str, dict[str, int]] = {}

    def walk(into: dict[str, int], repo: str, ref: str) -> None:
        res = registry_get(f"/v2/{repo}/manifests/{ref}", MANIFEST_ACCEPT)
        if res is None:
            return
        body, headers = res
        digest = headers.get("Docker-Content-Digest", "")
        into[digest.removeprefix("sha256:")] = len(body)
        data = json.loads(body)
        for m in data.get("manifests", []):
            walk(into, repo, m["digest"])
        for desc in [data.get("config") or {}, *data.get("layers", [])]:
            if desc.get("digest"):
                into[desc["digest"].removeprefix("sha256:")] = int(desc.get("size", 0))

    for repo in repos:
        into = out.setdefault(repo.removeprefix(prefix_path + "/"), {})
        tags = registry_get(f"/v2/{repo}/tags/list")
        for tag in (json.loads(tags[0]).get("tags") or []) if tags else []:
            walk(into, repo, tag)
    return out


def signed_digests(prefix_path: str, tag: str = "latest") -> list[str]:
    """repository@digest of each `tag`ged index under the prefix and of each platform image in it
    (attestation manifests left out): what crossbuild's sign stage signs, read from the registry."""
    refs: list[str] = []
    for repo in sorted(r for r in catalog() if r.startswith(prefix_path + "/")):
        got = registry_get(f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT)
        if got is None:
            continue
        body, headers = got
        refs.append(f"{REGISTRY}/{repo}@{headers.get('Docker-Content-Digest', '')}")
        for m in json.loads(body).get("manifests", []):
            kind = (m.get("annotations") or {}).get("vnd.docker.reference.type")
            if kind != "attestation-manifest" and (m.get("platform") or {}).get("os") != "unknown":
                refs.append(f"{REGISTRY}/{repo}@{m['digest']}")
    return refs


def find_storage(port: int = 5000) -> tuple[str, Path] | None:
    """(pid, <rootdirectory>/docker/registry/v2) of the registry serving `port`, found through /proc."""
    try:
        import yaml  # noqa: PLC0415 - PyYAML is a crossbuild dependency, needed only here
    except ImportError:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            args = [a.decode() for a in argv if a]
            if not args or Path(args[0]).name not in ("registry", "docker-registry") or "serve" not in args:
                continue
            conf_arg = args[args.index("serve") + 1]
            cwd = Path(os.readlink(proc / "cwd"))
            conf = yaml.safe_load((cwd / conf_arg).read_text())
        except (OSError, IndexError, ValueError, UnicodeDecodeError):
            continue
        except Exception:  # noqa: BLE001 - a malformed config of some other registry: not ours
            continue
        addr = str(((conf or {}).get("http") or {}).get("addr", ":5000"))
        if not addr.endswith(f":{port}"):
            continue
        root = (((conf.get("storage") or {}).get("filesystem")) or {}).get("rootdirectory")
        if not root:
            continue
        v2 = (cwd / root) / "docker" / "registry" / "v2"
        return proc.name, v2
    return None


def blob_size(v2: Path, digest_hex: str) -> int:
    try:
        return (v2 / "blobs" / "sha256" / digest_hex[:2] / digest_hex / "data").stat().st_size
    except OSError:
        return 0


def stored_blobs(v2: Path) -> dict[str, int]:
    """{digest hex: size} of every blob in the storage, whichever repository links it."""
    found = {}
    base = v2 / "blobs" / "sha256"
    if not base.is_dir():
        return {}
    for sub in base.iterdir():
        for d in sub.iterdir():
            with contextlib.suppress(OSError):
                found[d.name] = (d / "data").stat().st_size
    return found


def linked_in_storage(v2: Path, prefix_path: str) -> dict[str, dict[str, int]]:
    """{repository under the prefix: {digest hex: size}} of the layers, configs and manifests linked into it.

    A client's every push leaves a link file under repositories/<repo>/_layers or
    _manifests/revisions; the blob itself is stored once under blobs/.
    """
    base = v2 / "repositories" / prefix_path
    out: dict[str, dict[str, int]] = {}
    if not base.is_dir():
        return out
    for dirpath, dirnames, _files in os.walk(base):
        here = Path(dirpath)
        links = {"_layers": here / "sha256", "_manifests": here / "revisions" / "sha256"}.get(here.name)
        if links is not None:
            into = out.setdefault(here.parent.relative_to(base).as_posix(), {})
            for d in links.glob("*/link"):
                into[d.parent.name] = blob_size(v2, d.parent.name)
            dirnames[:] = []
        elif here.name == "_uploads":
            dirnames[:] = []
    return out
