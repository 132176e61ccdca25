"""Offline bundles, the parts that need no registry: names, manifest.json, the layout files and
the archive checks, on synthetic bundles written by crossbuild.bundle's own writer.

Corruption is made the way it happens: a file cut short, one byte flipped inside a blob with
SHA256SUMS left alone. `sha256sum -c` (coreutils) is the independent witness for SHA256SUMS.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from synthetic_bundles import (
    ARM64,
    NAME,
    entries_for,
    members,
    rewrite,
    synthetic,
    two_images,
    write_two,
)

from crossbuild import bundle
from crossbuild.config import Overrides
from crossbuild.config import load as load_config
from crossbuild.errors import UserError
from crossbuild.platforms import Platform
from crossbuild.runner import Runner


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_two(tmp_path)


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (Platform("linux", "arm64"), "imdemo-v1.4.2-linux-arm64"),
        (Platform("linux", "arm", "v7"), "imdemo-v1.4.2-linux-arm-v7"),
        (Platform("linux", "amd64"), "imdemo-v1.4.2-linux-amd64"),
    ],
)
def test_bundle_name_is_project_version_os_arch_variant(platform: Platform, expected: str) -> None:
    assert bundle.bundle_name("imdemo", "v1.4.2", platform) == expected


def test_bundle_name_makes_the_version_file_safe() -> None:
    assert bundle.bundle_name("imdemo", "v1.4.2+dirty/x", ARM64) == "imdemo-v1.4.2-dirty-x-linux-arm64"


def test_bundle_path_is_under_build_bundles(tiny_module: Path) -> None:
    conf = tiny_module / "config.toml"
    conf.write_text('[project]\nname = "tiny"\n')
    cfg = load_config(conf, Overrides(version="v2.0.0"), environ={})
    assert bundle.bundle_path(cfg, Platform("linux", "arm", "v7")) == (
        tiny_module / "build" / "bundles" / "tiny-v2.0.0-linux-arm-v7.tar.gz"
    )


def test_blob_path_follows_the_oci_layout() -> None:
    digest = "sha256:" + "ab" * 32
    assert bundle.blob_path(digest) == "images/blobs/sha256/" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/arm64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
    ],
)
def test_platform_from_text(text: str, expected: Platform) -> None:
    assert bundle.platform_from_text(text) == expected


@pytest.mark.parametrize("text", ["linux", "linux/", "a/b/c/d", ""])
def test_platform_from_text_refuses_malformed(text: str) -> None:
    with pytest.raises(UserError, match="os/arch"):
        bundle.platform_from_text(text)


# --- manifest.json ------------------------------------------------------------------


def test_manifest_json_shape_and_round_trip() -> None:
    manifest = synthetic(two_images())
    data = json.loads(manifest.dumps())
    assert data["format"] == "crossbuild-bundle/v1"
    assert (data["project"], data["version"], data["platform"], data["layout"]) == (
        "demo",
        "v1.0.0",
        "linux/arm64",
        "images",
    )
    first = data["images"][0]
    assert set(first) == {
        "ref",
        "service",
        "digest",
        "mediaType",
        "size",
        "platform",
        "config",
        "layers",
        "totalSize",
        "indexDigest",
    }
    assert first["ref"] == "registry.example:5000/demo/api:v1.0.0"
    assert first["service"] == "api"
    assert data["images"][1]["service"] is None
    assert first["digest"].startswith("sha256:") and first["layers"] == 2
    assert bundle.BundleManifest.from_json(data) == manifest


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="something/v9"), "format"),
        (lambda d: d.update(images=[]), "images"),
        (lambda d: d["images"][0].update(digest="sha256:nothex"), "digest"),
        (lambda d: d["images"][0].update(size=True), "size"),
        (lambda d: d["images"][0].update(platform="arm64"), "os/arch"),
        (lambda d: d["images"][0].update(ref="Not A Ref"), "reference"),
        (lambda d: d["images"][0].update(service=3), "service"),
    ],
)
def test_manifest_json_is_validated(mutate: Callable[[dict[str, Any]], None], message: str) -> None:
    data = json.loads(synthetic(two_images()).dumps())
    mutate(data)
    with pytest.raises(UserError, match=message):
        bundle.BundleManifest.from_json(data)


def test_docker_tag_of_a_digest_only_ref_is_none() -> None:
    img = replace(two_images()[0].entry, ref="registry.example:5000/demo/api@sha256:" + "c" * 64)
    assert img.docker_tag is None
    docker = bundle.docker_archive_manifest([img], {img.digest: []})
    assert docker[0]["RepoTags"] == []


def test_layout_files_index_and_docker_archive_point_at_the_same_blobs(archive: Path) -> None:
    files = members(archive)
    top = f"{NAME}/"
    assert top in files  # one top directory
    assert json.loads(files[top + "images/oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files[top + "images/index.json"])
    docker = json.loads(files[top + "images/manifest.json"])
    manifest = json.loads(files[top + "manifest.json"])
    assert [m["digest"] for m in index["manifests"]] == [i["digest"] for i in manifest["images"]]
    assert index["manifests"][0]["platform"] == {"architecture": "arm64", "os": "linux"}
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == (
        "registry.example:5000/demo/api:v1.0.0"
    )
    assert [d["RepoTags"] for d in docker] == [
        ["registry.example:5000/demo/api:v1.0.0"],
        ["registry.example:5000/library/redis:7"],
    ]
    for entry, image in zip(docker, manifest["images"], strict=True):
        raw = files[top + bundle.blob_path(image["digest"])]
        oci = json.loads(raw)
        assert entry["Config"] == "blobs/sha256/" + oci["config"]["digest"].removeprefix("sha256:")
        assert entry["Layers"] == ["blobs/sha256/" + ly["digest"].removeprefix("sha256:") for ly in oci["layers"]]
        for path in [entry["Config"], *entry["Layers"]]:
            assert top + "images/" + path in files
    # the shared base layer is stored once
    blobs = [n for n in files if "/blobs/sha256/" in n and not n.endswith("/")]
    assert len(blobs) == len(set(blobs)) == 2 * 2 + 2 + 1  # 2 manifests, 2 configs, 2 own layers + 1 shared
    readme = files[top + "README.md"].decode()
    assert "sha256sum -c SHA256SUMS" in readme and "docker load" in readme and "--registry" in readme


def test_sha256sums_is_accepted_by_sha256sum(archive: Path, tmp_path: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.fail("sha256sum (coreutils) is required")
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(out)], check=True)
    proc = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=out / NAME, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = {line.split("  ", 1)[1] for line in (out / NAME / "SHA256SUMS").read_text().splitlines()}
    on_disk = {p.relative_to(out / NAME).as_posix() for p in (out / NAME).rglob("*") if p.is_file()}
    assert listed == on_disk - {"SHA256SUMS"}


def test_archives_are_reproducible(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / f"{NAME}.tar.gz", tmp_path / "b" / f"{NAME}.tar.gz"
    bundle.write_archive(a, NAME, entries_for(two_images()), mtime=1_700_000_000)
    bundle.write_archive(b, NAME, entries_for(two_images()), mtime=1_700_000_000)
    assert a.read_bytes() == b.read_bytes()


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def broken() -> bytes:
        raise UserError("registry went away")

    path = tmp_path / "out" / f"{NAME}.tar.gz"
    entries = [bundle.Entry.of("README.md", b"x"), bundle.Entry("images/blobs/sha256/" + "a" * 64, "a" * 64, 1, broken)]
    with pytest.raises(UserError, match="went away"):
        bundle.write_archive(path, NAME, entries)
    assert list(path.parent.iterdir()) == []


def test_sha256sums_comes_first_and_every_manifest_before_any_layer(archive: Path) -> None:
    """A streaming reader knows every checksum and every size before the first layer arrives."""
    with tarfile.open(archive, "r:gz") as tar:
        files = [m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()]
    assert files[:6] == [
        "SHA256SUMS",
        "manifest.json",
        "README.md",
        "images/oci-layout",
        "images/index.json",
        "images/manifest.json",
    ]
    manifests = [bundle.blob_path(i.entry.digest) for i in two_images()]
    assert files[6:8] == manifests


def test_a_blob_that_does_not_match_its_descriptor_is_not_written(tmp_path: Path) -> None:
    images = two_images()
    raw = {i.entry.digest: i.raw for i in images}
    entries = bundle.layout_entries(synthetic(images), NAME, raw, lambda _img, _digest: b"wrong bytes")
    with pytest.raises(UserError, match="does not match its descriptor"):
        bundle.write_archive(tmp_path / "x.tar.gz", NAME, entries)
    assert not (tmp_path / "x.tar.gz").exists()


# --- verification -------------------------------------------------------------------


def test_verify_archive_returns_the_manifest(archive: Path) -> None:
    assert bundle.verify_archive(archive) == synthetic(two_images())


def one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_truncated_archive_is_refused(archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    data = archive.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as exc:
        bundle.verify_archive(cut)
    assert "truncated" in one_line(exc) and "nothing was imported" in one_line(exc)


def test_flipped_byte_in_a_blob_is_refused(archive: Path, tmp_path: Path) -> None:
    target = bundle.blob_path(two_images()[0].entry.config)

    def flip(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name.endswith(target):
            data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
        return [(m, data)]

    bad = tmp_path / "flipped.tar.gz"
    rewrite(archive, bad, flip)
    with pytest.raises(UserError) as exc:
        bundle.verify_archive(bad)
    assert f"checksum mismatch for {target}" in one_line(exc)


def test_a_blob_changed_together_with_sha256sums_is_still_refused(archive: Path, tmp_path: Path) -> None:
    target = bundle.blob_path(two_images()[0].entry.config)
    size = len(two_images()[0].blobs[two_images()[0].entry.config])
    new = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'.ljust(size)

    def swap(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name.endswith(target):
            return [(m, new)]
        if m.name.endswith("SHA256SUMS"):  # a consistent forgery: the checksum column follows the new bytes
            lines = [
                f"{hashlib.sha256(new).hexdigest()}  {target}" if line.endswith(f"  {target}") else line
                for line in data.decode().splitlines()
            ]
            data = ("\n".join(lines) + "\n").encode()
        return [(m, data)]

    bad = tmp_path / "swapped.tar.gz"
    rewrite(archive, bad, swap)
    with pytest.raises(UserError, match="does not hash to its name"):
        bundle.verify_archive(bad)


def test_missing_and_unlisted_files_are_refused(archive: Path, tmp_path: Path) -> None:
    dropped = tmp_path / "dropped.tar.gz"
    rewrite(archive, dropped, lambda m, d: [] if m.name.endswith("README.md") else [(m, d)])
    with pytest.raises(UserError, match=r"missing: README\.md"):
        bundle.verify_archive(dropped)

    extra = tmp_path / "extra.tar.gz"

    def add_extra(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name.endswith("README.md"):
            return [(m, data), (tarfile.TarInfo(f"{NAME}/notes.txt"), b"left by someone")]
        return [(m, data)]

    rewrite(archive, extra, add_extra)
    with pytest.raises(UserError, match=r"'notes\.txt' is not a file a bundle has"):
        bundle.verify_archive(extra)


def test_sha256sums_missing_is_refused(archive: Path, tmp_path: Path) -> None:
    bad = tmp_path / "nosums.tar.gz"
    rewrite(archive, bad, lambda m, d: [] if m.name.endswith("SHA256SUMS") else [(m, d)])
    with pytest.raises(UserError, match="SHA256SUMS is missing"):
        bundle.verify_archive(bad)


@pytest.mark.parametrize("name", [f"{NAME}/../evil", "/etc/evil", "other-top/file"])
def test_members_outside_the_bundle_directory_are_refused(archive: Path, tmp_path: Path, name: str) -> None:
    bad = tmp_path / "escape.tar.gz"

    def escape(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name.endswith("README.md"):
            return [(m, data), (tarfile.TarInfo(name), b"escaped")]
        return [(m, data)]

    rewrite(archive, bad, escape)
    with pytest.raises(UserError, match="corrupt bundle"):
        bundle.verify_archive(bad)


def test_links_are_refused(archive: Path, tmp_path: Path) -> None:
    bad = tmp_path / "link.tar.gz"

    def link(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name.endswith("README.md"):
            sym = tarfile.TarInfo(f"{NAME}/images/passwd")
            sym.type = tarfile.SYMTYPE
            sym.linkname = "/etc/passwd"
            return [(m, data), (sym, b"")]
        return [(m, data)]

    rewrite(archive, bad, link)
    with pytest.raises(UserError, match="link or special file"):
        bundle.verify_archive(bad)


def test_not_a_gzip_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not an archive at all")
    with pytest.raises(UserError, match="truncated or damaged"):
        bundle.verify_archive(junk)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such bundle file"):
        bundle.verify_archive(tmp_path / "absent.tar.gz")


def test_load_into_docker_checks_the_archive_first(archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(UserError, match="corrupt bundle"):
        bundle.load(Runner(), cut, None)


def test_load_into_an_unreachable_registry_fails_before_reading_the_archive(tmp_path: Path) -> None:
    # Port 1 on loopback answers nothing; the archive does not even exist.
    with pytest.raises(UserError, match="not reachable"):
        bundle.load(Runner(), tmp_path / "absent.tar.gz", "127.0.0.1:1")


@pytest.mark.parametrize("registry", ["host/path", "", "UPPER CASE:5000"])
def test_load_refuses_a_malformed_registry(archive: Path, registry: str) -> None:
    with pytest.raises(UserError, match="--registry"):
        bundle.load(Runner(), archive, registry)
