"""Fuzz targets: the bundle reader (archives as an attacker would shape them), the bundle manifest
parser, and compose ${VAR} substitution and .env parsing.

Run long: `make fuzz` (HYPOTHESIS_PROFILE=long). The contract is conftest.py's: accepted, or refused
with crossbuild's own one-line UserError; and the reader never writes outside its extraction directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossbuild import bundle, compose
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

NAME = "fz-v1-linux-arm64"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def one_line_error(exc: UserError) -> None:
    text = str(exc)
    assert text.strip(), "empty error message"
    assert "Traceback" not in text
    assert "\n" not in text, f"a multi-line error: {text!r}"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _valid_members() -> list[tuple[str, bytes]]:
    """A small valid bundle (two images sharing a layer), as (path under the top directory, bytes)."""
    shared = b"shared layer bytes"
    images, blobs = [], {_sha(shared): shared}
    for n, ref in enumerate(("r.example:5000/p/api:v1", "r.example:5000/lib/redis:7")):
        own = f"layer of image {n}".encode()
        config = json.dumps({"architecture": "arm64", "os": "linux", "n": n}).encode()
        blobs.update({_sha(own): own, _sha(config): config})
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "c", "digest": _sha(config), "size": len(config)},
                "layers": [{"mediaType": "l", "digest": _sha(b), "size": len(b)} for b in (shared, own)],
            }
        ).encode()
        blobs[_sha(raw)] = raw
        total = len(raw) + len(config) + len(shared) + len(own)
        images.append(bundle.BundleImage(ref, _sha(raw), OCI_MANIFEST, len(raw), "linux/arm64", _sha(config), 2, total))
    manifest = bundle.BundleManifest("fz", "v1", Platform("linux", "arm64"), "2024-01-01T00:00:00Z", tuple(images))
    raws = {i.digest: blobs[i.digest] for i in images}
    entries = bundle.layout_entries(manifest, NAME, raws, lambda _img, digest: blobs[digest])
    sums = bundle.sums_text({e.rel: e.sha256 for e in entries}).encode()
    return [("SHA256SUMS", sums), *((e.rel, e.content()) for e in entries)]


VALID = _valid_members()
_NAMES = [rel for rel, _ in VALID] + ["", ".", "..", "../x", "/etc/passwd", "images", "images/blobs", "x\\y", "a/b/c"]


@st.composite
def member_edits(draw: st.DrawFn) -> list[tuple[str, str, bytes, int, dict[str, str]]]:
    """The valid bundle's members with random edits: (name, kind, data, declared size or -1, pax headers)."""
    members: list[tuple[str, str, bytes, int, dict[str, str]]] = [
        (f"{NAME}/{rel}", "file", data, -1, {}) for rel, data in VALID
    ]
    for _ in range(draw(st.integers(0, 4))):
        if not members:
            break
        n = draw(st.integers(0, len(members) - 1))
        name, kind, data, size, pax = members[n]
        edit = draw(st.sampled_from(["drop", "dup", "move", "rename", "kind", "flip", "cut", "grow", "pax", "size"]))
        if edit == "drop":
            members.pop(n)
        elif edit == "dup":
            members.insert(draw(st.integers(0, len(members))), members[n])
        elif edit == "move":
            members.insert(draw(st.integers(0, len(members) - 1)), members.pop(n))
        elif edit == "rename":
            new = draw(st.one_of(st.sampled_from(_NAMES), st.text(max_size=30)))
            top = draw(st.sampled_from([NAME, "other", "", NAME + "/.."]))
            members[n] = (f"{top}/{new}" if top else new, kind, data, size, pax)
        elif edit == "kind":
            members[n] = (name, draw(st.sampled_from(["dir", "symlink", "hardlink", "fifo", "char"])), b"", -1, pax)
        elif edit == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            members[n] = (name, kind, data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :], size, pax)
        elif edit == "cut":
            members[n] = (name, kind, data[: draw(st.integers(0, len(data)))], size, pax)
        elif edit == "grow":
            members[n] = (name, kind, data + draw(st.binary(max_size=64)), size, pax)
        elif edit == "pax":
            keys = st.sampled_from(["comment", "path", "size", "x"])
            members[n] = (name, kind, data, size, draw(st.dictionaries(keys, st.text(max_size=20), max_size=2)))
        elif edit == "size":
            members[n] = (name, kind, data, draw(st.integers(0, 1 << 40)), pax)
    return members


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "char": tarfile.CHRTYPE,
}


def _archive(members: list[tuple[str, str, bytes, int, dict[str, str]]], truncate: int | None) -> bytes:
    """The members as a .tar.gz; a declared size beyond the data is written as a header only (a bomb's
    promise), and `truncate` cuts the compressed stream."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        for name, kind, data, size, pax in members:
            info = tarfile.TarInfo(name)
            info.type = _TYPES[kind]
            info.linkname = "/etc/passwd" if kind in ("symlink", "hardlink") else ""
            info.pax_headers = pax
            try:
                head = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            except (ValueError, UnicodeError):
                continue  # tarfile cannot write it: not an archive anyone can send
            if kind == "file":
                info.size = len(data) if size < 0 else size
                head = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                gz.write(head + data + bytes(-len(data) % 512))
            else:
                gz.write(head)
        gz.write(bytes(1024))
    raw = out.getvalue()
    return raw if truncate is None else raw[:truncate]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-bundle")


def test_the_unedited_bundle_is_valid(work: Path) -> None:
    path = work / "valid.tar.gz"
    path.write_bytes(_archive([(f"{NAME}/{rel}", "file", data, -1, {}) for rel, data in VALID], None))
    assert len(bundle.verify_archive(path).images) == 2


@given(member_edits(), st.one_of(st.none(), st.integers(0, 4000)), st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_bundle_reader_on_edited_archives(
    work: Path, members: list[tuple[str, str, bytes, int, dict[str, str]]], truncate: int | None, max_size: int | None
) -> None:
    path = work / "edited.tar.gz"
    path.write_bytes(_archive(members, truncate))
    dest = work / "dest"
    if dest.exists():
        shutil.rmtree(dest)
    before = set(os.listdir(work))
    try:
        bundle.read_archive(path, dest, max_size)
    except UserError as exc:
        one_line_error(exc)
    assert set(os.listdir(work)) - before <= {"dest"}, "the reader wrote outside its directory"
    if dest.exists():
        for found in dest.rglob("*"):
            assert not found.is_symlink() and (found.is_dir() or found.is_file())


@given(st.binary(max_size=600), st.booleans())
def test_bundle_reader_on_arbitrary_bytes(work: Path, data: bytes, gzipped: bool) -> None:
    path = work / "bytes.tar.gz"
    path.write_bytes(gzip.compress(data, mtime=0) if gzipped else data)
    try:
        bundle.verify_archive(path)
    except UserError as exc:
        one_line_error(exc)


# --- manifest.json --------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_VALID_MANIFEST = json.loads(dict(VALID)["manifest.json"])
_IMAGE_KEYS = list(_VALID_MANIFEST["images"][0])


@given(json_values)
def test_manifest_parser_on_any_json(data: Any) -> None:
    try:
        bundle.BundleManifest.from_json(data)
    except UserError as exc:
        one_line_error(exc)


@given(
    st.dictionaries(st.sampled_from([*_VALID_MANIFEST, "extra"]), json_values, max_size=3),
    st.dictionaries(st.sampled_from([*_IMAGE_KEYS, "extra"]), json_values, max_size=3),
)
def test_manifest_parser_on_edited_manifests(top: dict[str, Any], image: dict[str, Any]) -> None:
    data = json.loads(json.dumps(_VALID_MANIFEST))
    data.update(top)
    if isinstance(data.get("images"), list) and data["images"] and isinstance(data["images"][0], dict):
        data["images"][0].update(image)
    try:
        parsed = bundle.BundleManifest.from_json(data)
    except UserError as exc:
        one_line_error(exc)
        return
    assert bundle.BundleManifest.from_json(json.loads(parsed.dumps())) == parsed  # round trip


# --- compose ${VAR} and .env -------------------------------------------------------------------------

_COMPOSE_BITS = ["$", "$$", "{", "}", "${", ":-", "-", ":?", "?", ":+", "+", "A", "B_1", "x", "/", ":", " ", "\n"]
compose_text = st.lists(st.sampled_from(_COMPOSE_BITS) | st.text(max_size=3), max_size=15).map("".join)
variables = st.dictionaries(st.sampled_from(["A", "B_1", "EMPTY"]), st.text(max_size=6), max_size=3)


@given(compose_text, variables)
def test_compose_interpolation(text: str, env: dict[str, str]) -> None:
    try:
        result = compose.interpolate(text, env)
    except UserError as exc:
        one_line_error(exc)
        return
    if "$" not in text:
        assert result.text == text and result.unset == []


@given(st.lists(compose_text | st.sampled_from(["A=1", "export B_1='x'", 'C="q\\"', "# c", "D"]), max_size=6))
def test_env_file_parser(work: Path, lines: list[str]) -> None:
    path = work / ".env"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        compose.read_env_file(path, {"A": "from-env"})
    except UserError as exc:
        one_line_error(exc)
