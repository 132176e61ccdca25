"""Typed registry errors and the callers that react to them by type, never by message text:
bundle's resolve_all (one line per image), doctor's registry row; and the upload's hashing as
bytes leave. Clients here are small stand-ins that raise the errors a registry would cause; the
same errors against the real registry are in tests/integration/test_registry_client.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crossbuild import doctor
from crossbuild.bundle import writer
from crossbuild.errors import UserError
from crossbuild.oci import (
    CorruptContent,
    Denied,
    Manifest,
    NotFound,
    Reference,
    RegistryError,
    SpeaksPlainHTTP,
    Unreachable,
    parse_reference,
)
from crossbuild.oci.transport import unreachable
from crossbuild.oci.upload import _Slice
from crossbuild.platforms import Platform

REF = parse_reference("reg.lan:5000/team/app:v1")


@pytest.mark.parametrize("kind", [Unreachable, NotFound, Denied, CorruptContent, SpeaksPlainHTTP], ids=str)
def test_every_kind_is_a_registry_error_and_a_user_error(kind: type[RegistryError]) -> None:
    assert issubclass(kind, RegistryError)
    assert issubclass(kind, UserError)  # front ends print its one line, never a traceback


def test_speaks_plain_http_is_unreachable_with_its_old_line() -> None:
    exc = SpeaksPlainHTTP("reg.lan:5000", "reg.lan:5000/a@sha256:" + "0" * 64)
    assert isinstance(exc, Unreachable)
    assert str(exc) == (
        "registry reg.lan:5000 speaks plain HTTP, not HTTPS; if that is expected, list it in "
        "[registry] insecure (images and credentials then travel unencrypted)"
    )
    assert (exc.host, exc.reason) == ("reg.lan:5000", "speaks plain HTTP, not HTTPS")


@pytest.mark.parametrize(
    ("host", "hint"),
    [
        ("127.0.0.1:5000", "start it with `make registry.up` or check the address"),
        ("localhost:5001", "start a registry there or check the address (REGISTRY_PREFIX)"),
        ("127.0.0.1.nip.io:5000", "check the address and your network or proxy settings"),
    ],
    ids=["embedded-port", "other-loopback", "dns-name"],
)
def test_unreachable_carries_host_reason_and_the_fitting_hint(host: str, hint: str) -> None:
    exc = unreachable(host, "Connection refused", f"{host}/x:v1")
    assert str(exc) == f"registry {host} is not reachable: Connection refused; {hint}"
    assert (exc.host, exc.reference, exc.reason) == (host, f"{host}/x:v1", "Connection refused")
    assert not exc.names_reference


# --- bundle: one problem line per image, chosen by type -------------------------------------------------


class Failing:
    """A client whose every manifest read fails with one given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_manifest(self, ref: Reference) -> Manifest:
        raise self.error


PROBLEMS = [
    (
        "not-found-names-the-image",
        NotFound(f"image {REF} not found in reg.lan:5000", host="reg.lan:5000", reference=str(REF)),
        f"image {REF} not found in reg.lan:5000",
    ),
    (
        "unreachable-gets-the-image-named",
        unreachable("reg.lan:5000", "Connection refused", str(REF)),
        f"{REF}: registry reg.lan:5000 is not reachable: Connection refused; "
        "check the address and your network or proxy settings",
    ),
    (
        "denied-login-names-no-image",
        Denied("registry reg.lan:5000 requires a login: run `docker login reg.lan:5000`", host="reg.lan:5000"),
        f"{REF}: registry reg.lan:5000 requires a login: run `docker login reg.lan:5000`",
    ),
    (
        "error-about-another-manifest",
        CorruptContent("manifest of x is not valid JSON", host="reg.lan:5000", reference="reg.lan:5000/team/app@x"),
        f"{REF}: manifest of x is not valid JSON",
    ),
    (
        "not-an-image",
        UserError("not an image index: it has no 'manifests' list"),
        f"{REF}: not an image index: it has no 'manifests' list",
    ),
]


@pytest.mark.parametrize(("error", "line"), [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS])
def test_resolve_all_lists_each_image_once_by_error_type(error: Exception, line: str) -> None:
    with pytest.raises(UserError) as info:
        writer.resolve_all(Failing(error), [(REF, "app")], [Platform("linux", "arm64")])  # type: ignore[arg-type]
    assert str(info.value) == f"1 image problem(s), no bundle written: {line}"


def test_resolve_all_does_not_catch_bugs() -> None:
    with pytest.raises(KeyError):
        writer.resolve_all(Failing(KeyError("bug")), [(REF, "app")], [Platform("linux", "arm64")])  # type: ignore[arg-type]


# --- doctor's registry row ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (unreachable("h:1", "http: Connection refused, https: Connection refused"),
         "is not reachable: http: Connection refused, https: Connection refused"),
        (SpeaksPlainHTTP("h:1"), "speaks plain HTTP, not HTTPS"),
        (RegistryError("registry h:1 answered HTTP 500 for /v2/", host="h:1", reason="HTTP 500"), "HTTP 500"),
    ],
    ids=["unreachable", "plain-http", "other"],
)  # fmt: skip
def test_doctor_words_the_row_from_the_error_type(error: RegistryError, detail: str) -> None:
    assert doctor._registry_problem(error) == detail


# --- hashing as bytes leave, even when a body is sent twice ----------------------------------------------------


def test_slices_hash_each_byte_once_even_when_a_body_is_sent_again(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    hasher, hashed = hashlib.sha256(), [0]
    with _Slice(blob, 0, 4000, hasher, hashed) as first:
        assert first.read(1000) + first.read(5000) == data[:4000]
        first.seek(0)  # a 401 answered: the same chunk goes again
        assert first.read() == data[:4000]
    with _Slice(blob, 4000, len(data) - 4000, hasher, hashed) as second:
        while second.read(333):
            pass
    assert hashed == [len(data)]
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_file_that_shrinks_mid_upload_is_refused(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * 10)
    with _Slice(blob, 0, 20, hashlib.sha256(), [0]) as body, pytest.raises(UserError, match="shrank"):
        body.read(20)
