"""Reading one file out of an image's layers, without a docker daemon ([image] layer.md).

Layers are downloaded (streamed, digest-checked) into a private temporary directory and read
from there, top layer first, so memory stays bounded whatever the layer size; each layer is
fetched at most once per call, however many symlinks are followed.
"""

from __future__ import annotations

import lzma
import posixpath
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from crossbuild.errors import UserError
from crossbuild.oci.errors import CorruptContent, one_line

MAX_SYMLINKS = 8  # like the kernel's ELOOP guard, far below it


class BlobDownloader(Protocol):
    """What extract_file needs from a client (tests pass a stub)."""

    def download_blob(self, registry: str, repository: str, digest: str, dest: Path) -> int: ...


@dataclass(frozen=True)
class _Found:
    data: bytes


@dataclass(frozen=True)
class _Redirect:
    path: str  # a symlink: look this path up instead, from the top layer


@dataclass(frozen=True)
class _Hidden:
    """A whiteout, opaque directory or non-file shadows the lower layers."""


_HIDDEN = _Hidden()


def clean_path(path: str) -> str:
    """Image paths as layer tars name them: relative, no '.', '..' or '//'."""
    return posixpath.normpath("/" + path).lstrip("/")


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _scan_layer(blob: Path, path: str) -> _Found | _Redirect | _Hidden | None:
    """What one layer says about `path`: the file, a symlink to follow, hidden, or nothing."""
    ancestors = _ancestors(path)
    # [image] layer.md "Whiteouts": `.wh.<name>` deletes name; `.wh..wh..opq` empties a directory below.
    whiteouts = {posixpath.join(posixpath.dirname(p), ".wh." + posixpath.basename(p)) for p in [*ancestors, path]}
    opaque = {posixpath.join(a, ".wh..wh..opq") for a in ancestors}
    target: tarfile.TarInfo | None = None
    parents: dict[str, tarfile.TarInfo] = {}
    hidden = False
    with tarfile.open(blob, mode="r:*") as tar:
        for member in tar:
            name = clean_path(member.name)
            if name == path:
                target = member  # a later entry for the same name wins, as on extraction
            elif name in whiteouts or name in opaque:
                hidden = True
            elif name in ancestors and not member.isdir():
                parents[name] = member
        if target is not None:
            if target.issym():
                base = "" if target.linkname.startswith("/") else posixpath.dirname(path)
                return _Redirect(clean_path(posixpath.join(base, target.linkname)))
            if target.isfile() or target.islnk():
                handle = tar.extractfile(target)
                if handle is None:
                    return _HIDDEN
                with handle:
                    return _Found(handle.read())
            return _HIDDEN
    if hidden:
        return _HIDDEN
    if parents:
        top = min(parents, key=len)  # the outermost replaced directory decides
        member = parents[top]
        if member.issym():
            base = "" if member.linkname.startswith("/") else posixpath.dirname(top)
            return _Redirect(clean_path(posixpath.join(base, member.linkname, path[len(top) + 1 :])))
        return _HIDDEN
    return None


def _layer_descriptors(registry: str, repository: str, manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(digest, media type) of each layer, top layer first."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise UserError(f"{registry}/{repository}: the manifest has no layers list (is it an index?)")
    descriptors: list[tuple[str, str]] = []
    for layer in reversed(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            raise UserError(f"{registry}/{repository}: a layer descriptor has no digest")
        descriptors.append((layer["digest"], str(layer.get("mediaType") or "")))
    return descriptors


def extract_file(
    client: BlobDownloader,
    registry: str,
    repository: str,
    image_manifest_data: Mapping[str, Any],
    path_in_image: str,
) -> bytes | None:
    """Read one file of an image from its layers, top layer first, without a docker daemon.

    Honours whiteouts and follows symlinks (the file's or a parent directory's) within the
    image; returns None when the path is absent, deleted or not a regular file.
    """
    descriptors = _layer_descriptors(registry, repository, image_manifest_data)
    path = clean_path(path_in_image)
    with tempfile.TemporaryDirectory(prefix="crossbuild-layers-") as scratch:
        fetched: dict[str, Path] = {}
        for _ in range(MAX_SYMLINKS + 1):
            result: _Found | _Redirect | _Hidden | None = None
            for digest, media_type in descriptors:
                if "zstd" in media_type:
                    raise UserError(
                        f"layer {digest} of {registry}/{repository} is zstd-compressed ({media_type}); crossbuild "
                        "reads gzip and uncompressed layers only: push with compression=gzip"
                    )
                if digest not in fetched:
                    dest = Path(scratch) / f"layer-{len(fetched)}"
                    client.download_blob(registry, repository, digest, dest)
                    fetched[digest] = dest
                try:
                    result = _scan_layer(fetched[digest], path)
                except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                    raise CorruptContent(
                        f"layer {digest} of {registry}/{repository} is not a readable tar ({one_line(str(exc), 120)})",
                        host=registry,
                        reference=f"{registry}/{repository}@{digest}",
                        reason="not a readable tar",
                    ) from exc
                if result is not None:
                    break
            if isinstance(result, _Found):
                return result.data
            if not isinstance(result, _Redirect):
                return None
            path = result.path
    raise UserError(f"{path_in_image} in {registry}/{repository}: more than {MAX_SYMLINKS} levels of symbolic links")
