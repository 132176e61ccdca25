"""Offline bundles: one release's images for one platform in one .tar.gz, for air-gapped servers.

`create` (writer.py) reads everything through the registry API (no docker daemon): for each
service image (its version tag) and each third-party image it picks the manifest of the bundle's
platform and writes, per platform,
`<output>/bundles/<project>-<version>-<os>-<arch>[-<variant>].tar.gz`:

    <name>/SHA256SUMS      sha256 of every other file, `sha256sum -c` format; first, so readers check as they go
    <name>/manifest.json   the bundle manifest (BundleManifest): refs, manifest digests, sizes, platform
    <name>/README.md       what this is and how to import it, for the operator
    <name>/images/         ONE OCI image layout holding every image, blobs stored once:
        oci-layout, index.json, blobs/sha256/<hex>
        manifest.json      docker-archive index (RepoTags, Config, Layers -> blobs/sha256/<hex>),
                           what `docker load` (20.10 and later) reads; the same blobs, nothing copied

The manifest bytes are stored exactly as the registry served them, so pushing them back gives the
same digests. `load` (loader.py) reads the archive in one bounded, streaming pass (reader.py),
refuses it (one line) unless every size, checksum and cross-reference holds, and only then pushes to
a registry or runs `docker load` on an archive regenerated from the verified content.

The package splits along who runs it: format.py (the format, pure), writer.py (the build machine,
with a Config and a registry), reader.py and loader.py (the air-gapped host: no Config, only the
archive and flags); gzipstream.py frames the archive both ways (layers that are compressed already
go in stored blocks, not deflated again: one gzip member that any gzip reader reads).
"""

from __future__ import annotations

from crossbuild.bundle.format import (
    FORMAT,
    BundleImage,
    BundleManifest,
    blob_path,
    bundle_name,
    docker_archive_manifest,
    oci_index,
    parse_size,
    platform_from_text,
    sums_text,
)
from crossbuild.bundle.loader import check_registry, connect, load, write_docker_archive
from crossbuild.bundle.reader import Verified, default_limit, read_archive, verify_archive
from crossbuild.bundle.writer import Entry, bundle_path, create, layout_entries, write_archive

__all__ = [
    "FORMAT",
    "BundleImage",
    "BundleManifest",
    "Entry",
    "Verified",
    "blob_path",
    "bundle_name",
    "bundle_path",
    "check_registry",
    "connect",
    "create",
    "default_limit",
    "docker_archive_manifest",
    "layout_entries",
    "load",
    "oci_index",
    "parse_size",
    "platform_from_text",
    "read_archive",
    "sums_text",
    "verify_archive",
    "write_archive",
    "write_docker_archive",
]
