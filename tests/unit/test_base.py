"""Tests for crossbuild.base: the static base's root filesystem, assembled from fake host trees.

Each test builds a small host tree in tmp_path (a CA bundle, a zoneinfo tree
with the shapes tzdata ships, dpkg's status file) and reads the resulting tar
back with tarfile: names, bytes, owners, modes, times.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from crossbuild import base, plan
from crossbuild.config import Config, Overrides
from crossbuild.config import load as load_config
from crossbuild.errors import UserError
from crossbuild.platforms import parse_platform

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB fake\n-----END CERTIFICATE-----\n"
SHANGHAI = b"TZif2 Asia/Shanghai"
UTC = b"TZif2 UTC"
STATUS = (
    "Package: ca-certificates\nStatus: install ok installed\nVersion: 20230311+deb12u1\n\n"
    "Package: tzdata\nStatus: install ok installed\nVersion: 2025b-0+deb12u2\nDescription: tz\n with more\n\n"
    "Package: other\nStatus: install ok installed\nVersion: 1\n"
)
AMD64, ARM64 = parse_platform("linux/amd64"), parse_platform("linux/arm64")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host tree shaped like Debian's: tzdata with posix/ links, right/, a localtime link out of the tree."""
    root = tmp_path / "host"
    _write(root / base.CA_BUNDLE, CERT)
    zi = root / base.ZONEINFO
    _write(zi / "Etc" / "UTC", UTC)
    _write(zi / "Asia" / "Shanghai", SHANGHAI)
    _write(zi / "zone1970.tab", b"CN\t+3114+12128\tAsia/Shanghai\n")
    _link(zi / "UTC", "Etc/UTC")
    _link(zi / "PRC", "Asia/Shanghai")
    _link(zi / "posix" / "Asia", "../Asia")
    _link(zi / "posix" / "UTC", "../Etc/UTC")
    _write(zi / "right" / "Asia" / "Shanghai", b"TZif2 right")
    _link(zi / "right" / "UTC", "Etc/UTC")
    _link(zi / "localtime", "/etc/localtime")
    _link(zi / "Leap", "right/UTC")  # into the dropped right/: dropped too
    _write(root / "usr/share/doc/tzdata/copyright", b"public domain\n")
    _write(root / "var/lib/dpkg/status", STATUS.encode())
    os.chmod(root / base.CA_BUNDLE, 0o600)  # host modes are not kept
    return root


def _members(rootfs: base.Rootfs) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    found = {}
    with tarfile.open(fileobj=io.BytesIO(rootfs.tar)) as tar:
        for info in tar:
            fh = tar.extractfile(info) if info.isfile() else None
            found[info.name] = (info, fh.read() if fh else b"")
    return found


# --- what the root filesystem holds ------------------------------------------------------------------


def test_ca_bundle_is_the_hosts_bytes_world_readable(host: Path) -> None:
    info, data = _members(base.assemble(host))["etc/ssl/certs/ca-certificates.crt"]
    assert data == CERT
    assert (info.mode, info.uid, info.gid) == (0o644, 0, 0)


def test_passwd_and_group_have_root_nobody_and_nonroot(host: Path) -> None:
    members = _members(base.assemble(host))
    passwd = members["etc/passwd"][1].decode().splitlines()
    group = members["etc/group"][1].decode().splitlines()
    assert passwd == [
        "root:x:0:0:root:/root:/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin",
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin",
    ]
    assert group == ["root:x:0:", "nobody:x:65534:", "nonroot:x:65532:"]
    assert "hosts: files dns" in members["etc/nsswitch.conf"][1].decode().splitlines()


@pytest.mark.parametrize(
    ("path", "mode", "owner"),
    [("tmp", 0o1777, 0), ("home/nonroot", 0o700, 65532), ("home", 0o755, 0), ("root", 0o700, 0), ("etc", 0o755, 0)],
    ids=["tmp-sticky", "nonroot-home", "home", "root-home", "implied-parent"],
)
def test_directories_modes_and_owners(host: Path, path: str, mode: int, owner: int) -> None:
    info, _ = _members(base.assemble(host))[path]
    assert info.isdir()
    assert (info.mode, info.uid, info.gid) == (mode, owner, owner)


def test_every_member_has_fixed_time_and_no_user_names(host: Path) -> None:
    members = _members(base.assemble(host))
    assert {(i.mtime, i.uname, i.gname) for i, _ in members.values()} == {(base.EPOCH, "", "")}
    assert {i.uid for i, _ in members.values()} == {0, 65532}
    only_nonroot = [name for name, (i, _) in members.items() if i.uid == 65532]
    assert only_nonroot == ["home/nonroot"]


def test_parents_come_before_children(host: Path) -> None:
    names = list(_members(base.assemble(host)))
    for i, name in enumerate(names):
        parent = name.rpartition("/")[0]
        assert not parent or parent in names[:i], f"{name} before its parent"


def test_zoneinfo_keeps_zones_and_links_inside_the_tree(host: Path) -> None:
    members = _members(base.assemble(host))
    zi = base.ZONEINFO
    assert members[f"{zi}/Asia/Shanghai"][1] == SHANGHAI
    assert members[f"{zi}/Etc/UTC"][1] == UTC
    links = {name.removeprefix(zi + "/"): i.linkname for name, (i, _) in members.items() if i.issym()}
    assert links == {"UTC": "Etc/UTC", "PRC": "Asia/Shanghai", "posix/Asia": "../Asia", "posix/UTC": "../Etc/UTC"}
    assert not [n for n in members if n.startswith(f"{zi}/right")]
    assert f"{zi}/localtime" not in members


def test_posix_copies_become_links(host: Path) -> None:
    zi = host / base.ZONEINFO
    (zi / "posix" / "Asia").unlink()
    _write(zi / "posix" / "Asia" / "Shanghai", SHANGHAI)  # older tzdata: a full copy
    _write(zi / "posix" / "Asia" / "Tokyo", b"TZif2 only here")  # not a copy of anything: kept as a file
    members = _members(base.assemble(host))
    info, _ = members[f"{base.ZONEINFO}/posix/Asia/Shanghai"]
    assert info.issym() and info.linkname == "../../Asia/Shanghai"
    assert members[f"{base.ZONEINFO}/posix/Asia/Tokyo"][1] == b"TZif2 only here"


def test_absolute_link_inside_zoneinfo_is_made_relative(host: Path) -> None:
    _link(host / base.ZONEINFO / "Asia" / "Chongqing", f"/{base.ZONEINFO}/Asia/Shanghai")
    info, _ = _members(base.assemble(host))[f"{base.ZONEINFO}/Asia/Chongqing"]
    assert info.linkname == "Shanghai"


def test_link_loop_is_dropped(host: Path) -> None:
    _link(host / base.ZONEINFO / "A", "B")
    _link(host / base.ZONEINFO / "B", "A")
    members = _members(base.assemble(host))
    assert f"{base.ZONEINFO}/A" not in members and f"{base.ZONEINFO}/B" not in members


def test_copyright_files_when_present(host: Path) -> None:
    members = _members(base.assemble(host))
    assert members["usr/share/doc/tzdata/copyright"][1] == b"public domain\n"
    assert "usr/share/doc/ca-certificates/copyright" not in members  # the host has none: fine


def test_package_versions_from_dpkg_status(host: Path) -> None:
    rootfs = base.assemble(host)
    assert rootfs.packages == (("ca-certificates", "20230311+deb12u1"), ("tzdata", "2025b-0+deb12u2"))
    assert 'LABEL dev.crossbuild.base.packages="ca-certificates=20230311+deb12u1 tzdata=2025b-0+deb12u2"' in (
        rootfs.dockerfile().splitlines()
    )


def test_package_versions_unknown_without_dpkg(host: Path) -> None:
    (host / "var/lib/dpkg/status").unlink()
    assert base.assemble(host).packages == (("ca-certificates", ""), ("tzdata", ""))
    assert "ca-certificates=unknown tzdata=unknown" in base.assemble(host).dockerfile()


def test_dockerfile_adds_the_tar_to_scratch(host: Path) -> None:
    lines = [line for line in base.assemble(host).dockerfile().splitlines() if not line.startswith("#")]
    assert lines[0] == "FROM scratch"
    assert lines[-1] == "ADD rootfs.tar /"


def test_write_context(host: Path, tmp_path: Path) -> None:
    rootfs = base.assemble(host)
    dockerfile = base.write_context(rootfs, tmp_path / "ctx")
    assert dockerfile.read_text() == rootfs.dockerfile()
    assert (tmp_path / "ctx" / "rootfs.tar").read_bytes() == rootfs.tar


# --- determinism and the content key ---------------------------------------------------------------


def test_same_files_same_bytes_whatever_their_times_and_modes(host: Path) -> None:
    first = base.assemble(host)
    for path in (host / base.CA_BUNDLE, host / base.ZONEINFO / "Asia" / "Shanghai"):
        os.utime(path, (1_800_000_000, 1_800_000_000))
        os.chmod(path, 0o640)
    assert base.assemble(host).tar == first.tar


def _key(rootfs: base.Rootfs, platforms: list[str], level: int = 1) -> str:
    return base.content_key(rootfs, [parse_platform(p) for p in platforms], level)


def test_key_follows_the_files(host: Path) -> None:
    before = _key(base.assemble(host), ["linux/amd64"])
    (host / base.CA_BUNDLE).write_bytes(CERT + CERT)
    assert _key(base.assemble(host), ["linux/amd64"]) != before


def test_key_follows_package_versions(host: Path) -> None:
    before = _key(base.assemble(host), ["linux/amd64"])
    (host / "var/lib/dpkg/status").write_text(STATUS.replace("2025b-0+deb12u2", "2025c-0"))
    assert _key(base.assemble(host), ["linux/amd64"]) != before


def test_key_is_the_platform_set_not_its_order(host: Path) -> None:
    rootfs = base.assemble(host)
    both = _key(rootfs, ["linux/amd64", "linux/arm64"])
    assert both == _key(rootfs, ["linux/arm64", "linux/amd64", "linux/arm64"])
    assert both != _key(rootfs, ["linux/amd64"])
    assert both != _key(rootfs, ["linux/amd64", "linux/arm64", "linux/arm/v7"])


def test_key_follows_compression_level(host: Path) -> None:
    rootfs = base.assemble(host)
    assert _key(rootfs, ["linux/amd64"], 1) != _key(rootfs, ["linux/amd64"], 9)


# --- missing host files: one line, the path and the fix -------------------------------------------------


@pytest.mark.parametrize(
    ("remove", "named", "package"),
    [
        (base.CA_BUNDLE, base.CA_BUNDLE, "ca-certificates"),
        ("usr/share/zoneinfo", base.ZONE_CHECK, "tzdata"),
        ("usr/share/zoneinfo/Etc/UTC", base.ZONE_CHECK, "tzdata"),
    ],
    ids=["no-ca-bundle", "no-zoneinfo", "no-utc"],
)
def test_missing_file_names_path_and_fix(host: Path, remove: str, named: str, package: str) -> None:
    target = host / remove
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(UserError) as info:
        base.assemble(host)
    message = str(info.value)
    assert "\n" not in message
    assert str(host / named) in message
    assert f"package {package}" in message
    assert "apt-get install ca-certificates tzdata" in message
    assert 'base_image = "scratch"' in message


def test_empty_ca_bundle_is_refused(host: Path) -> None:
    (host / base.CA_BUNDLE).write_bytes(b"")
    with pytest.raises(UserError, match="holds no certificate"):
        base.assemble(host)


# --- the images use the resolved base ---------------------------------------------------------------


def _config(tmp_path: Path, tiny_module: Path, body: str = "") -> Config:
    (tmp_path / "config.toml").write_text(f'[project]\nmodule_dir = "{tiny_module.name}"\n{body}')
    return load_config(tmp_path / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1"})


PINNED = "localhost:5000/p/crossbuild-static@sha256:" + "a" * 64


@pytest.mark.usefixtures("git_isolated")
def test_plan_uses_the_pinned_base(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _config(tmp_path, tiny_module)
    assert cfg.image.static_base
    (target,) = plan.plan(cfg, [ARM64], list(cfg.services), PINNED).targets
    assert dict(target.args)["BASE_IMAGE"] == PINNED


@pytest.mark.usefixtures("git_isolated")
def test_base_digest_is_in_the_image_content_key(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _config(tmp_path, tiny_module)
    keys = {
        plan.content_key(cfg, plan.plan(cfg, [ARM64], list(cfg.services), ref).targets[0])
        for ref in (PINNED, PINNED.replace("a" * 64, "b" * 64))
    }
    assert len(keys) == 2


@pytest.mark.usefixtures("git_isolated")
@pytest.mark.parametrize("setting", ["scratch", "gcr.io/distroless/static-debian12:nonroot"], ids=["scratch", "other"])
def test_other_bases_are_used_as_they_are(tmp_path: Path, tiny_module: Path, setting: str) -> None:
    cfg = _config(tmp_path, tiny_module, f'[image]\nbase_image = "{setting}"\n')
    assert not cfg.image.static_base
    (target,) = plan.plan(cfg, [AMD64], list(cfg.services)).targets
    assert dict(target.args)["BASE_IMAGE"] == setting
