"""Test inputs made without crossbuild: Go binaries from `go build`, images from
`docker buildx build`, and registry content pushed through the distribution spec's raw
endpoints (POST + PUT monolithic blob upload, PUT manifest). What a test then asks of
crossbuild is compared with what was made here.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .commands import check, run
from .example import BUILDER
from .witness import api_url, http_request, sha256_digest, skopeo_digest


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """Compact JSON with sorted keys: the bytes of a manifest, config or token a test writes."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def go_env(platform: str) -> dict[str, str]:
    """GOOS/GOARCH/GOARM (cgo off) of a platform like linux/arm/v7."""
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


def tar_gz_layer(files: Mapping[str, bytes], links: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(gzipped tar, diff_id = sha256 of the uncompressed tar) as image-spec layer.md defines them:
    `files` (path in the image -> bytes, mode 0755) and `links` (path -> symlink target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size = len(content)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), sha256_digest(uncompressed)


def upload_blob(registry: str, repository: str, data: bytes, headers: Mapping[str, str] | None = None) -> str:
    """POST + PUT a blob (monolithic upload, [dist] end-4a/end-6) into repository; its digest.
    `headers` carries an Authorization header when the registry wants one."""
    api = api_url(registry)
    digest = sha256_digest(data)
    status, answer, body = http_request("POST", f"{api}/v2/{repository}/blobs/uploads/", b"", headers)
    assert status == 202, f"start upload to {repository}: HTTP {status} {body[:300]!r}"
    location = urllib.parse.urljoin(f"{api}/", answer.get("Location") or answer["location"])
    sep = "&" if "?" in location else "?"
    status, _, body = http_request(
        "PUT",
        f"{location}{sep}digest={urllib.parse.quote(digest)}",
        data,
        {"Content-Type": "application/octet-stream", **(headers or {})},
    )
    assert status == 201, f"finish upload of {digest} to {repository}: HTTP {status} {body[:300]!r}"
    return digest


def put_manifest(
    registry: str,
    repository: str,
    reference: str,
    raw: bytes,
    media_type: str,
    headers: Mapping[str, str] | None = None,
) -> str:
    """PUT a manifest or index ([dist] end-7) under a tag or digest; its digest, as the registry confirms it."""
    url = f"{api_url(registry)}/v2/{repository}/manifests/{reference}"
    status, answer, body = http_request("PUT", url, raw, {"Content-Type": media_type, **(headers or {})})
    assert status == 201, f"PUT manifest {repository}:{reference}: HTTP {status} {body[:300]!r}"
    digest = sha256_digest(raw)
    assert answer.get("Docker-Content-Digest") == digest, f"PUT {repository}:{reference}: registry says {answer}"
    return digest
