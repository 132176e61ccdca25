"""The load side of bundles against hostile archives: bounded, streaming reads; what `docker load`
gets is made from verified content only; nothing left in $TMPDIR on any way out.

Archives are altered the way an attacker would: a consistent forgery (SHA256SUMS rebuilt to match),
a member inflated far beyond its descriptor (gigabytes of zeros that gzip to kilobytes), members
reordered or added. Signals are real: the load runs in a child process that is interrupted,
terminated or killed while it extracts.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from synthetic_bundles import (
    ARM64,
    NAME,
    Image,
    craft,
    entries_for,
    forge,
    items_of,
    members,
    rewrite,
    sha256,
    synthetic,
    two_images,
    write_two,
)

from crossbuild import bundle, commands
from crossbuild.bundle import loader
from crossbuild.errors import UserError
from crossbuild.runner import Runner

GIB = 1 << 30
API = "registry.example:5000/demo/api:v1.0.0"
REDIS = "registry.example:5000/library/redis:7"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_two(tmp_path)


@pytest.fixture
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TMPDIR for this process (tempfile caches it, so set both) pointed at an empty directory."""
    path = tmp_path / "tmpdir"
    path.mkdir()
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


def one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def docker_json(archive: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(members(archive)[f"{NAME}/images/manifest.json"])
    return data


def expected_docker_manifest(images: list[Image]) -> list[dict[str, Any]]:
    """What docker-archive's manifest.json must say, worked out here from the images themselves."""
    out = []
    for image in images:
        manifest = json.loads(image.raw)
        out.append(
            {
                "Config": "blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:"),
                "RepoTags": [image.entry.ref],
                "Layers": ["blobs/sha256/" + d["digest"].removeprefix("sha256:") for d in manifest["layers"]],
            }
        )
    return out


# --- the docker-archive index is checked, and regenerated for docker load ----------------------


def _other_tags(doc: list[dict[str, Any]]) -> None:
    doc[0]["RepoTags"] = ["registry.example:5000/evil/api:v6"]


def _extra_name(doc: list[dict[str, Any]]) -> None:
    doc.append({**doc[1], "RepoTags": ["registry.example:5000/library/redis:latest"]})


def _layers_swapped(doc: list[dict[str, Any]]) -> None:
    doc[0]["Layers"].reverse()


def _config_of_the_other_image(doc: list[dict[str, Any]]) -> None:
    doc[0]["Config"] = doc[1]["Config"]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (_other_tags, "[0].RepoTags[0]: 'registry.example:5000/evil/api:v6' instead of"),
        (_extra_name, "the document: "),
        (_layers_swapped, "[0].Layers[0]:"),
        (_config_of_the_other_image, "[0].Config:"),
    ],
    ids=["other-tags", "an-extra-name", "layers-swapped", "another-config"],
)
def test_a_docker_manifest_that_disagrees_with_the_verified_images_is_refused(
    archive: Path, tmp_path: Path, mutate: Callable[[list[dict[str, Any]]], None], where: str
) -> None:
    """issue 12 Failure 2: SHA256SUMS rebuilt to match, so only the cross-check can catch it."""
    doc = docker_json(archive)
    mutate(doc)
    forged = tmp_path / "forged.tar.gz"
    forge(archive, forged, {"images/manifest.json": (json.dumps(doc, indent=2) + "\n").encode()})
    with pytest.raises(UserError) as exc:
        bundle.verify_archive(forged)
    message = one_line(exc)
    assert "images/manifest.json does not describe the verified images" in message
    assert where in message and "nothing was imported" in message


def test_an_index_json_naming_another_image_is_refused(archive: Path, tmp_path: Path) -> None:
    """skopeo's oci: transport and containerd import by these names."""
    index = json.loads(members(archive)[f"{NAME}/images/index.json"])
    index["manifests"][1]["annotations"]["io.containerd.image.name"] = "registry.example:5000/evil/redis:7"
    forged = tmp_path / "forged.tar.gz"
    forge(archive, forged, {"images/index.json": json.dumps(index).encode()})
    with pytest.raises(UserError, match=r"images/index\.json does not describe the verified images"):
        bundle.verify_archive(forged)


def test_the_forged_bundle_is_refused_by_load_before_docker_is_called(
    archive: Path, tmp_path: Path, tmpdir_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = docker_json(archive)
    _other_tags(doc)
    forged = tmp_path / "forged.tar.gz"
    forge(archive, forged, {"images/manifest.json": json.dumps(doc).encode()})
    bin_dir = tmp_path / "bin"  # a `docker` that records being called: it must not be
    bin_dir.mkdir()
    called = tmp_path / "docker-was-called"
    (bin_dir / "docker").write_text(f"#!/bin/sh\ntouch {called}\nexit 1\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(UserError, match="does not describe the verified images"):
        bundle.load(Runner(), forged, None)
    assert not called.exists()
    assert list(tmpdir_env.iterdir()) == []


def test_docker_load_gets_an_archive_made_from_the_verified_content_only(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "extracted"
    verified = bundle.read_archive(archive, root)
    # Whatever happens to the extracted copies after the check, docker must not read them:
    (root / "images" / "manifest.json").write_text('[{"RepoTags": ["evil:1"], "Config": "x", "Layers": []}]')
    (root / "images" / "index.json").write_text("{}")
    out = tmp_path / "docker-load.tar"
    bundle.write_docker_archive(root, verified, out)

    images = two_images()
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert json.loads(files["manifest.json"]) == expected_docker_manifest(images)
    index = json.loads(files["index.json"])
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [API, REDIS]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    blobs = {**{i.entry.digest: i.raw for i in images}, **{d: b for i in images for d, b in i.blobs.items()}}
    assert {n for n in files if n.startswith("blobs/")} == {"blobs/sha256/" + d.removeprefix("sha256:") for d in blobs}
    for digest, data in blobs.items():
        assert files["blobs/sha256/" + digest.removeprefix("sha256:")] == data


# --- bounded reading ------------------------------------------------------------------------------


def test_a_member_far_larger_than_its_descriptor_is_refused_from_its_header(
    archive: Path, tmp_path: Path, tmpdir_env: Path
) -> None:
    """A 2 GiB run of zeros (a few MiB of gzip) where a small layer belongs: refused before any of it is read."""
    api = two_images()[0]
    own_layer = bundle.blob_path(json.loads(api.raw)["layers"][1]["digest"])
    items = [(m, 2 * GIB if m.name.endswith(own_layer) else data) for m, data in items_of(archive)]
    bomb = tmp_path / "bomb.tar.gz"
    craft(bomb, items)
    assert bomb.stat().st_size < 8 << 20
    for dest in (None, "docker"):
        started = time.monotonic()
        with pytest.raises(UserError) as exc:
            bundle.verify_archive(bomb) if dest is None else bundle.load(Runner(), bomb, None)
        assert time.monotonic() - started < 5
        message = one_line(exc)
        assert f"{own_layer} is {2 * GIB} bytes, but the manifest of {API} declares" in message
    assert list(tmpdir_env.iterdir()) == []


def zero_layer_bundle(tmp_path: Path, size: int) -> Path:
    """A bundle that honestly declares one layer of `size` zero bytes: gzip shrinks it to almost nothing."""
    image = Image("registry.example:5000/demo/big:v1", b"", raw_layer=bytes(size))
    path = tmp_path / "big.tar.gz"
    bundle.write_archive(path, NAME, entries_for([image]))
    return path


def test_the_default_limit_is_sized_to_the_archive(tmp_path: Path) -> None:
    big = zero_layer_bundle(tmp_path, 70 << 20)
    assert big.stat().st_size < 1 << 20
    assert bundle.default_limit(big.stat().st_size) < 70 << 20
    with pytest.raises(UserError) as exc:
        bundle.verify_archive(big)
    message = one_line(exc)
    assert "the bundle declares 70.0 MiB of content, more than the" in message
    assert "default for a" in message and "give --max-size 1GiB" in message
    assert bundle.verify_archive(big, max_size=200 << 20).images[0].ref == "registry.example:5000/demo/big:v1"


def test_a_bundle_declaring_more_than_max_size_is_refused(archive: Path) -> None:
    with pytest.raises(UserError) as exc:
        bundle.verify_archive(archive, max_size=1000)
    assert "more than the 1000 B allowed by the --max-size (or BUNDLE_MAX_SIZE) given" in one_line(exc)
    assert bundle.verify_archive(archive, max_size=1 << 20) == synthetic(two_images())


def test_a_huge_tar_header_is_refused(archive: Path, tmp_path: Path) -> None:
    """pax records are read into memory by tarfile: more than 1 MiB of them is not a bundle's."""
    items = items_of(archive)
    first_file = next(m for m, _ in items if m.isfile())
    first_file.pax_headers = {"comment": "x" * (2 << 20)}
    bad = tmp_path / "pax.tar.gz"
    craft(bad, items)
    with pytest.raises(UserError, match="a tar header is larger than 1 MiB"):
        bundle.verify_archive(bad)


def test_a_member_shorter_than_its_descriptor_is_refused(archive: Path, tmp_path: Path) -> None:
    layer_rel = bundle.blob_path(json.loads(two_images()[0].raw)["layers"][1]["digest"])
    bad = tmp_path / "short.tar.gz"
    rewrite(archive, bad, lambda m, d: [(m, d[:-1] if m.name.endswith(layer_rel) else d)])
    with pytest.raises(UserError, match=rf"{layer_rel} is \d+ bytes, but the manifest of .* declares \d+"):
        bundle.verify_archive(bad)


def test_a_blob_before_manifest_json_is_refused(archive: Path, tmp_path: Path) -> None:
    items = items_of(archive)
    blob = next(n for n, (m, _) in enumerate(items) if "/blobs/sha256/" in m.name and m.isfile())
    items.insert(1, items.pop(blob))
    bad = tmp_path / "early-blob.tar.gz"
    craft(bad, items)
    with pytest.raises(UserError, match=r"comes before manifest\.json"):
        bundle.verify_archive(bad)


def test_a_blob_no_manifest_declares_is_refused(archive: Path, tmp_path: Path) -> None:
    extra = b"not part of any image"
    bad = tmp_path / "extra-blob.tar.gz"
    forge(archive, bad, {}, added={bundle.blob_path(sha256(extra)): extra})  # listed, hashes to its name
    with pytest.raises(UserError, match="is declared by no image manifest before it"):
        bundle.verify_archive(bad)


@pytest.mark.parametrize(
    "name", [f"{NAME}/\n", f"{NAME}/images/\x1b[31mred", f"{NAME}/" + "x" * 5000], ids=["newline", "escape", "long"]
)
def test_member_names_in_errors_are_quoted_on_one_short_line(archive: Path, tmp_path: Path, name: str) -> None:
    """Found by tests/fuzz: a member named "top/\n" gave a two-line error."""
    items = items_of(archive)
    items.insert(2, (tarfile.TarInfo(name), b"x"))
    bad = tmp_path / "named.tar.gz"
    craft(bad, items)
    with pytest.raises(UserError) as exc:
        bundle.verify_archive(bad)
    message = one_line(exc)
    assert "is not a file a bundle has" in message and "\x1b" not in message and len(message) < 400


def test_an_unexpected_directory_is_refused(archive: Path, tmp_path: Path) -> None:
    def add_dir(m: tarfile.TarInfo, data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
        if m.name.endswith("README.md"):
            folder = tarfile.TarInfo(f"{NAME}/images/elsewhere")
            folder.type = tarfile.DIRTYPE
            return [(m, data), (folder, b"")]
        return [(m, data)]

    bad = tmp_path / "dir.tar.gz"
    rewrite(archive, bad, add_dir)
    with pytest.raises(UserError, match="directory 'images/elsewhere' is not one a bundle has"):
        bundle.verify_archive(bad)


def test_a_total_size_that_does_not_add_up_is_refused(archive: Path, tmp_path: Path) -> None:
    manifest = json.loads(members(archive)[f"{NAME}/manifest.json"])
    manifest["images"][0]["totalSize"] -= 1
    bad = tmp_path / "total.tar.gz"
    forge(archive, bad, {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(UserError, match=f"the totalSize of {API} in manifest.json does not add up"):
        bundle.verify_archive(bad)


def test_archives_from_earlier_versions_still_verify(archive: Path, tmp_path: Path) -> None:
    """Before this version SHA256SUMS came last and each image's blobs came together."""
    items = items_of(archive)
    sums = next(n for n, (m, _) in enumerate(items) if m.name.endswith("/SHA256SUMS"))
    items.append(items.pop(sums))
    old = tmp_path / "old.tar.gz"
    craft(old, items)
    assert bundle.verify_archive(old) == synthetic(two_images())


# --- the scratch directory: gone on every way out ----------------------------------------------------

_LOAD = """
import sys
from pathlib import Path
from crossbuild import bundle, commands
from crossbuild.runner import Runner
bundle.load(Runner(), Path(sys.argv[1]), None, max_size=16 << 30)
"""


@pytest.fixture(scope="module")
def slow_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle declaring a 4 GiB layer of zeros, consistently: extracting it takes a while. (Its digest
    is made up: the tests stop the load long before the layer's last byte is hashed.)"""
    config = b'{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "ab" * 32, "size": 4 * GIB}
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [layer],
        }
    ).encode()
    entry = bundle.BundleImage(
        ref="registry.example:5000/demo/big:v1",
        digest=sha256(raw),
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=len(raw),
        platform="linux/arm64",
        config=sha256(config),
        layers=1,
        total_size=len(raw) + len(config) + 4 * GIB,
    )
    manifest = bundle.BundleManifest("demo", "v1.0.0", ARM64, "2023-11-14T22:13:20Z", (entry,))
    entries = bundle.layout_entries(manifest, NAME, {entry.digest: raw}, lambda _img, _digest: config)
    listing = "".join(f"{e.sha256}  {e.rel}\n" for e in sorted(entries, key=lambda e: e.rel)).encode()
    items: list[tuple[tarfile.TarInfo, bytes | int]] = [(tarfile.TarInfo(f"{NAME}/SHA256SUMS"), listing)]
    for e in entries:
        items.append((tarfile.TarInfo(f"{NAME}/{e.rel}"), 4 * GIB if e.size == 4 * GIB else e.content()))
    path = tmp_path_factory.mktemp("slow") / "slow.tar.gz"
    craft(path, items)
    return path


def _start_load(archive: Path, tmpdir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    return subprocess.Popen([sys.executable, "-c", _LOAD, str(archive)], env=env, text=True, stderr=subprocess.PIPE)


def _wait_for_extraction(proc: subprocess.Popen[str], tmpdir: Path, other: Path | None = None) -> Path:
    """The scratch directory (not `other`) once the big layer is being written into it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the load ended early: {proc.communicate()[1]}")
        for layer in tmpdir.glob("crossbuild-bundle-*/bundle/images/blobs/sha256/*"):
            with contextlib.suppress(FileNotFoundError):
                if layer.parents[4] != other and layer.stat().st_size > 32 << 20:
                    return layer.parents[4]
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=60)
    raise AssertionError("the load never started extracting the layer")


@pytest.mark.parametrize(
    ("signum", "returncodes"),
    [(signal.SIGINT, {1, 130, -signal.SIGINT}), (signal.SIGTERM, {143})],
    ids=["ctrl-c", "sigterm"],
)
def test_an_interrupted_load_leaves_nothing_in_tmpdir(
    slow_archive: Path, tmp_path: Path, signum: int, returncodes: set[int]
) -> None:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = _start_load(slow_archive, tmpdir)
    scratch = _wait_for_extraction(proc, tmpdir)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in returncodes, stderr
    assert not scratch.exists()
    assert list(tmpdir.iterdir()) == []


def test_a_killed_load_is_cleaned_up_by_the_next(slow_archive: Path, archive: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    proc = _start_load(slow_archive, tmpdir)
    scratch = _wait_for_extraction(proc, tmpdir)
    busy = _start_load(slow_archive, tmpdir)  # a second, live run: its directory must survive the cleanup
    busy_scratch = _wait_for_extraction(busy, tmpdir, other=scratch)
    proc.kill()
    proc.communicate(timeout=60)
    assert scratch.is_dir()  # SIGKILL: nothing can clean up in the process itself
    assert loader.remove_abandoned(tmpdir) == [scratch]
    assert busy_scratch.is_dir()
    busy.send_signal(signal.SIGTERM)
    _, stderr = busy.communicate(timeout=60)
    assert busy.returncode == 143, stderr
    assert list(tmpdir.iterdir()) == []


def test_a_failed_load_leaves_nothing_in_tmpdir(archive: Path, tmp_path: Path, tmpdir_env: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:-300])
    with pytest.raises(UserError, match="truncated or damaged"):
        bundle.load(Runner(), cut, None)
    assert list(tmpdir_env.iterdir()) == []


# --- flags and sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1 << 20),
        ("20GiB", 20 << 30),
        ("20gib", 20 << 30),
        ("2g", 2 << 30),
        ("500MB", 500_000_000),
        ("1.5 GiB", 3 << 29),
        ("64KiB", 64 << 10),
        ("7B", 7),
    ],
    ids=["bytes", "GiB", "lowercase", "bare-g-binary", "MB-decimal", "fraction-with-space", "KiB", "B"],
)
def test_parse_size(text: str, expected: int) -> None:
    assert bundle.parse_size(text, "--max-size") == expected


@pytest.mark.parametrize("text", ["", "lots", "20 GB please", "-1G", "1e9", "20XB"], ids=repr)
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(UserError, match=r"--max-size .* is not a size: give bytes or a size such as 20GiB"):
        bundle.parse_size(text, "--max-size")


def test_max_size_comes_from_the_flag_then_the_environment(archive: Path) -> None:
    with pytest.raises(UserError, match=r"--max-size 'lots' is not a size"):
        commands.bundle_load(Runner(), str(archive), max_size="lots", environ={"BUNDLE_MAX_SIZE": "1000"})
    with pytest.raises(UserError, match=r"BUNDLE_MAX_SIZE 'lots' is not a size"):
        commands.bundle_load(Runner(), str(archive), environ={"BUNDLE_MAX_SIZE": "lots"})
    with pytest.raises(UserError, match=r"more than the 1000 B allowed by the --max-size \(or BUNDLE_MAX_SIZE\)"):
        commands.bundle_load(Runner(), str(archive), environ={"BUNDLE_MAX_SIZE": "1000"})
    with pytest.raises(UserError, match=r"more than the 900 B allowed"):  # the flag wins
        commands.bundle_load(Runner(), str(archive), max_size="900", environ={"BUNDLE_MAX_SIZE": "1GiB"})


@pytest.mark.parametrize("flag", ["plain_http", "insecure"])
def test_transport_flags_need_a_registry(archive: Path, flag: str) -> None:
    with pytest.raises(UserError, match=r"--(plain-http|insecure) applies to --registry HOST:PORT only"):
        bundle.load(Runner(), archive, None, **{flag: True})


def test_scratch_directory_is_private_and_locked(tmpdir_env: Path) -> None:
    with loader.scratch_dir() as scratch:
        assert scratch.parent == tmpdir_env and scratch.name.startswith(loader.SCRATCH_PREFIX)
        assert oct(scratch.stat().st_mode & 0o777) == "0o700"
        assert loader.remove_abandoned(tmpdir_env) == []  # locked by this run
        assert scratch.is_dir()
    assert list(tmpdir_env.iterdir()) == []


# --- the gzip framing: readable by readers old and new ------------------------------------------


def test_a_bundle_written_at_gzip_level_9_as_before_still_loads(archive: Path, tmp_path: Path) -> None:
    """Archives of earlier versions (one gzip.GzipFile member at level 9) read as they always did."""
    old = tmp_path / "old.tar.gz"
    old.write_bytes(gzip.compress(gzip.decompress(archive.read_bytes()), compresslevel=9, mtime=0))
    assert bundle.verify_archive(old) == bundle.verify_archive(archive) == synthetic(two_images())


def test_the_stored_layers_are_read_by_gzip_and_tarfile_as_earlier_loaders_read_them(archive: Path) -> None:
    """An earlier crossbuild reads the archive with gzip.GzipFile and tarfile's stream mode: the layers it
    holds in stored blocks are ordinary gzip to it."""
    with gzip.open(archive, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for member in tar:
            if member.isfile() and "/images/blobs/sha256/" in member.name:
                data = tar.extractfile(member)
                assert data is not None
                assert hashlib.sha256(data.read()).hexdigest() == member.name.rsplit("/", 1)[1]
