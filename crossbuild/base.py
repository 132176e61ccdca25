"""The default runtime base ("static"): scratch plus what a Go service expects
of a distroless-style image, assembled offline from the host's Debian packages.

A `FROM scratch` image has no CA certificates, no zoneinfo and no user
database, so a service that calls a TLS endpoint, loads a time zone or looks
up its user fails at run time. Nothing can be pulled on an air-gapped machine,
so crossbuild builds the base from files the host already has:

- /etc/ssl/certs/ca-certificates.crt (package ca-certificates);
- /usr/share/zoneinfo (package tzdata) without `right/` (leap-second variants
  that Go's time package never reads, as large as the rest), with `posix/`
  kept as links to the zones it duplicates, and without links leaving the
  tree (`localtime` -> /etc/localtime);
- /etc/passwd, /etc/group (root, nobody, nonroot 65532 as in distroless),
  /etc/nsswitch.conf (`hosts: files dns`, which cgo and glibc need spelled out);
- /root (0700), /home/nonroot (65532:65532, 0700), /tmp (1777);
- the two packages' copyright files, when the host keeps them.

Owners, modes and times are fixed in one tar; a Dockerfile ADDs it to scratch
and buildx builds it for every image platform of the run (an index; one
image when there is one platform) with a fixed
SOURCE_DATE_EPOCH and rewrite-timestamp, so the same host files give the same
index digest. It is pushed once as <registry_prefix>/crossbuild-static:<key>
(key: the tar, the platforms, the build settings); a later run finds the tag
and builds nothing. Images use it pinned by digest, so a new CA bundle is a
new base and rebuilds the images.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crossbuild import buildx, incremental, output
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.oci import Client as RegistryClient
from crossbuild.oci import Reference, parse_reference, platforms_of
from crossbuild.platforms import Platform
from crossbuild.runner import Runner

REPOSITORY = "crossbuild-static"  # under [image] registry_prefix
EPOCH = 0  # SOURCE_DATE_EPOCH of the base: its content comes from packages, not from a commit
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
ZONEINFO = "usr/share/zoneinfo"
ZONE_CHECK = f"{ZONEINFO}/Etc/UTC"  # present in every tzdata; proves the tree is there
PACKAGES = ("ca-certificates", "tzdata")
NONROOT = 65532
FORMAT = 1  # bump when the assembly changes in a way the tar digest would not show
FIX = 'install them with `apt-get install ca-certificates tzdata`, or set [image] base_image = "scratch"'

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnobody:x:65534:\nnonroot:x:{NONROOT}:\n"
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nservices: files\nprotocols: files\n"


@dataclass(frozen=True)
class Entry:
    """One member of the root filesystem with its final metadata (the host's are not kept)."""

    path: str  # relative, '/'-separated, no leading slash
    kind: Literal["dir", "file", "link"]
    mode: int = 0o755
    owner: int = 0  # uid and gid
    data: bytes = b""
    target: str = ""  # of a link, relative to its directory


@dataclass(frozen=True)
class Rootfs:
    """The assembled tar and what it was made from."""

    tar: bytes
    packages: tuple[tuple[str, str], ...]  # (name, version) as dpkg knows them; "" when it does not

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.tar).hexdigest()

    def dockerfile(self) -> str:
        versions = " ".join(f"{name}={version or 'unknown'}" for name, version in self.packages)
        return (
            "# crossbuild static base (crossbuild/base.py): CA bundle, zoneinfo, users; from the build host\n"
            "FROM scratch\n"
            f"LABEL dev.crossbuild.base.packages={json.dumps(versions)}\n"
            "ADD rootfs.tar /\n"
        )


def _missing(path: Path, package: str, why: str = "not found") -> UserError:
    return UserError(f"static base: {path} {why} on this host (package {package}); {FIX}")


def ca_bundle(host: Path) -> Entry:
    path = host / CA_BUNDLE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _missing(path, "ca-certificates") from None
    except OSError as exc:
        raise _missing(path, "ca-certificates", f"unreadable ({exc.strerror})") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise _missing(path, "ca-certificates", "holds no certificate (run update-ca-certificates)")
    return Entry(CA_BUNDLE, "file", 0o644, data=data)


def _link_target(rel: str, target: str) -> str | None:
    """Where a link inside zoneinfo points, relative to zoneinfo; None when it leaves the tree."""
    if target.startswith("/"):
        prefix = "/" + ZONEINFO + "/"
        if not target.startswith(prefix):
            return None
        resolved = posixpath.normpath(target.removeprefix(prefix))
    else:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return None if resolved == ".." or resolved.startswith("../") else resolved


def zoneinfo(host: Path) -> list[Entry]:
    """The tzdata tree, paths relative to the image root (see the module docstring for what is left out)."""
    root = host / ZONEINFO
    if not (root / "Etc" / "UTC").is_file():
        raise _missing(host / ZONE_CHECK, "tzdata")
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    links: dict[str, str] = {}  # path -> target, both relative to zoneinfo
    for dirpath, dirnames, filenames in os.walk(root):  # links to directories land in dirnames, not followed
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != "right"]
        for name in sorted(dirnames + filenames):
            path = here / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if path.is_symlink():
                resolved = _link_target(rel, os.readlink(path))
                if resolved is not None:
                    links[rel] = resolved
            elif path.is_dir():
                dirs.add(rel)
            elif path.is_file():
                files[rel] = path.read_bytes()
    # posix/X is the zone X again (older tzdata ships copies): keep the name, store a link
    for rel in [r for r in files if r.startswith("posix/")]:
        same = rel.removeprefix("posix/")
        if files.get(same) == files[rel]:
            links[rel] = same
            del files[rel]
    entries = [Entry(f"{ZONEINFO}/{d}", "dir") for d in sorted(dirs)]
    entries += [Entry(f"{ZONEINFO}/{rel}", "file", 0o644, data=data) for rel, data in files.items()]
    for rel, resolved in links.items():
        if _lands(resolved, files, dirs, links):
            relative = posixpath.relpath(resolved, posixpath.dirname(rel) or ".")
            entries.append(Entry(f"{ZONEINFO}/{rel}", "link", 0o777, target=relative))
    return entries


def _lands(path: str, files: dict[str, bytes], dirs: set[str], links: dict[str, str]) -> bool:
    """Does a link chain, or a path through linked directories, end at something kept?"""
    for _ in range(16):  # deeper chains are loops
        if path in files or path in dirs:
            return True
        parts = path.split("/")
        for i in range(len(parts), 0, -1):  # the longest linked prefix: posix/Asia/X -> Asia/X
            prefix = "/".join(parts[:i])
            if prefix in links:
                path = posixpath.normpath("/".join([links[prefix], *parts[i:]]))
                break
        else:
            return False
    return False


def users() -> list[Entry]:
    text = {"etc/passwd": PASSWD, "etc/group": GROUP, "etc/nsswitch.conf": NSSWITCH}
    return [
        *(Entry(path, "file", 0o644, data=body.encode()) for path, body in text.items()),
        Entry("root", "dir", 0o700),
        Entry("home", "dir", 0o755),
        Entry("home/nonroot", "dir", 0o700, owner=NONROOT),
        Entry("tmp", "dir", 0o1777),
    ]


def licenses(host: Path) -> list[Entry]:
    """/usr/share/doc/<package>/copyright: the terms the files ship under (optional: slim hosts drop docs)."""
    found = []
    for package in PACKAGES:
        rel = f"usr/share/doc/{package}/copyright"
        if (host / rel).is_file():
            found.append(Entry(rel, "file", 0o644, data=(host / rel).read_bytes()))
    return found


def package_versions(host: Path) -> tuple[tuple[str, str], ...]:
    """(package, version) from dpkg's status file; "" for a package dpkg does not list as installed."""
    versions = dict.fromkeys(PACKAGES, "")
    try:
        text = (host / "var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return tuple(versions.items())
    for paragraph in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in paragraph.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Package") in versions and fields.get("Status", "").endswith(" installed"):
            versions[fields["Package"]] = fields.get("Version", "")
    return tuple(versions.items())


def _with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """Every entry, plus its missing parent directories (0755, root), parents first, in a fixed order."""
    by_path = {e.path: e for e in entries}
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = Entry(parent, "dir")
            parent = posixpath.dirname(parent)
    return sorted(by_path.values(), key=lambda e: e.path.split("/"))


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    """A tar whose bytes depend only on the entries: times EPOCH, numeric owners, no user names."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in _with_parents(entries):
            info = tarfile.TarInfo(e.path)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.owner, e.owner, EPOCH
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def assemble(host: Path = Path("/")) -> Rootfs:
    """The base's root filesystem from the host's files; UserError naming the first missing one."""
    entries = [ca_bundle(host), *zoneinfo(host), *users(), *licenses(host)]
    return Rootfs(tar_bytes(entries), package_versions(host))


def content_key(rootfs: Rootfs, platforms: Iterable[Platform], compression_level: int) -> str:
    """What decides the pushed index: the files, the platforms (as a set), how it is built."""
    return incremental.key_of(
        {
            "format": FORMAT,
            "rootfs": rootfs.digest,
            "dockerfile": rootfs.dockerfile(),
            "platforms": sorted({str(p) for p in platforms}),
            "epoch": EPOCH,
            "compression_level": compression_level,
        }
    )


def repository(cfg: Config) -> str:
    return f"{cfg.image.registry_prefix}/{REPOSITORY}"


def write_context(rootfs: Rootfs, directory: Path) -> Path:
    """rootfs.tar and the Dockerfile that ADDs it; return the Dockerfile."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rootfs.tar").write_bytes(rootfs.tar)
    dockerfile = directory / "Dockerfile"
    dockerfile.write_text(rootfs.dockerfile())
    return dockerfile


def _has_platforms(client: RegistryClient, ref: Reference, platforms: Sequence[Platform]) -> bool:
    return {str(p) for p in platforms_of(client, ref)} == {str(p) for p in platforms}


@dataclass(frozen=True)
class Found:
    """What the registry holds of the base this host would make for these platforms."""

    rootfs: Rootfs
    platforms: tuple[Platform, ...]
    tag: Reference  # <registry_prefix>/crossbuild-static:<key>
    pinned: str | None  # repo@sha256:... when it is there already


def find(cfg: Config, client: RegistryClient, platforms: Sequence[Platform], host: Path = Path("/")) -> Found:
    """Assemble the base in memory and look for it in the registry (nothing is written)."""
    rootfs = assemble(host)
    plats = tuple(sorted(set(platforms), key=str))
    key = content_key(rootfs, plats, cfg.image.compression_level)
    tag_ref = parse_reference(f"{repository(cfg)}:{key[:32]}")
    digest = client.manifest_exists(tag_ref)
    if digest is not None and not _has_platforms(client, tag_ref, plats):
        digest = None  # someone else's tag, or a half-finished push: build it again
    return Found(rootfs, plats, tag_ref, f"{repository(cfg)}@{digest}" if digest else None)


def _context(cfg: Config) -> Path:
    return cfg.output_dir / "cache" / "static-base" / "context"


def build_argv(cfg: Config, found: Found) -> list[str]:
    context = _context(cfg)
    return buildx.build_argv(
        context=context,
        file=context / "Dockerfile",
        builder=cfg.builder.name,
        platform=[str(p) for p in found.platforms],
        output=[
            f"type=image,name={found.tag},push=true,oci-mediatypes=true,rewrite-timestamp=true,"
            f"compression=gzip,compression-level={cfg.image.compression_level}"
        ],
        build_arg={"SOURCE_DATE_EPOCH": str(EPOCH)},
        provenance=False,
        metadata_file=context.parent / "metadata.json",
    )


def build(run: Runner, cfg: Config, client: RegistryClient, found: Found) -> str:
    """Build and push the base `find` did not find; return it pinned by digest."""
    size = len(found.rootfs.tar) // 1024
    output.step(
        f"static base {found.tag}: {size} KiB from {', '.join(PACKAGES)} for {', '.join(map(str, found.platforms))}"
    )
    context = _context(cfg)
    write_context(found.rootfs, context)
    metadata_file = context.parent / "metadata.json"
    metadata = buildx.build(run, build_argv(cfg, found), metadata_file)
    digest = metadata.get("containerimage.digest")
    if not isinstance(digest, str) or client.manifest_exists(found.tag) != digest:
        raise UserError(f"static base: {found.tag} is not in the registry after the push; see {metadata_file}")
    if not _has_platforms(client, found.tag, found.platforms):
        raise UserError(f"static base: {found.tag} does not list {', '.join(map(str, found.platforms))} after the push")
    pinned = f"{repository(cfg)}@{digest}"
    output.ok(f"static base pushed: {pinned}")
    return pinned


def ensure(
    run: Runner, cfg: Config, client: RegistryClient, platforms: Sequence[Platform], host: Path = Path("/")
) -> str:
    """The static base for `platforms`, built and pushed unless its tag exists; `repo@sha256:...`."""
    found = find(cfg, client, platforms, host)
    if found.pinned is not None:
        output.ok(f"static base {found.pinned}: already in the registry ({found.tag.tag})")
        return found.pinned
    return build(run, cfg, client, found)
