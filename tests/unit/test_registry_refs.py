"""Unit tests for the pure parts of crossbuild.oci (and the platform rules it reads index entries with).

Expected values are written out literally (docker's documented normalisation,
buildx's attestation layout, the OCI whiteout rules) rather than computed with
the module's own helpers, so a wrong rule cannot make both sides agree.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from crossbuild.errors import UserError
from crossbuild.hosts import api_host
from crossbuild.oci import (
    Challenge,
    Credentials,
    PlatformEntry,
    Reference,
    docker_credentials,
    extract_file,
    index_entries,
    is_index,
    parse_reference,
    parse_www_authenticate,
)
from crossbuild.platforms import Platform, normalise_platform, platform_of_config

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64
HEX = "a" * 64

# --- parse_reference ----------------------------------------------------------

_GOOD = [
    ("alpine", Reference("docker.io", "library/alpine", "latest", None)),
    ("alpine:3.19", Reference("docker.io", "library/alpine", "3.19", None)),
    ("golang:1.22-bookworm", Reference("docker.io", "library/golang", "1.22-bookworm", None)),
    ("library/alpine", Reference("docker.io", "library/alpine", "latest", None)),
    ("user/app:v1", Reference("docker.io", "user/app", "v1", None)),
    ("docker.io/alpine", Reference("docker.io", "library/alpine", "latest", None)),
    ("docker.io/user/app", Reference("docker.io", "user/app", "latest", None)),
    ("index.docker.io/library/alpine:edge", Reference("docker.io", "library/alpine", "edge", None)),
    ("ghcr.io/org/app:1.2.3", Reference("ghcr.io", "org/app", "1.2.3", None)),
    ("ghcr.io/app", Reference("ghcr.io", "app", "latest", None)),
    ("localhost:5000/x/y:tag", Reference("localhost:5000", "x/y", "tag", None)),
    ("localhost/x", Reference("localhost", "x", "latest", None)),
    ("127.0.0.1:5000/crossbuild/api", Reference("127.0.0.1:5000", "crossbuild/api", "latest", None)),
    ("[::1]:5000/a/b:c", Reference("[::1]:5000", "a/b", "c", None)),
    ("registry.example.com:443/a/b-c_d.e__f:T_1", Reference("registry.example.com:443", "a/b-c_d.e__f", "T_1", None)),
    ("foo/bar/baz", Reference("docker.io", "foo/bar/baz", "latest", None)),
    (f"alpine@sha256:{HEX}", Reference("docker.io", "library/alpine", None, f"sha256:{HEX}")),
    (f"alpine:3.19@sha256:{HEX}", Reference("docker.io", "library/alpine", "3.19", f"sha256:{HEX}")),
    (f"localhost:5000/x@sha256:{HEX}", Reference("localhost:5000", "x", None, f"sha256:{HEX}")),
    ("  padded:1  ", Reference("docker.io", "library/padded", "1", None)),
]


@pytest.mark.parametrize(("text", "expected"), _GOOD, ids=[t.strip() for t, _ in _GOOD])
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(("text", "expected"), _GOOD, ids=[t.strip() for t, _ in _GOOD])
def test_str_is_canonical_and_round_trips(text: str, expected: Reference) -> None:
    ref = parse_reference(text)
    assert str(ref) == (
        f"{expected.registry}/{expected.repository}"
        + (f":{expected.tag}" if expected.tag else "")
        + (f"@{expected.digest}" if expected.digest else "")
    )
    assert parse_reference(str(ref)) == ref


def test_str_examples() -> None:
    assert str(parse_reference("alpine")) == "docker.io/library/alpine:latest"
    assert str(parse_reference(f"alpine:3@sha256:{HEX}")) == f"docker.io/library/alpine:3@sha256:{HEX}"
    assert str(Reference("localhost:5000", "x/y", None, D1)) == f"localhost:5000/x/y@{D1}"


def test_reference_property_prefers_digest() -> None:
    assert parse_reference(f"a:1@sha256:{HEX}").reference == f"sha256:{HEX}"
    assert parse_reference("a:1").reference == "1"
    assert parse_reference("ghcr.io/org/app:1").name == "ghcr.io/org/app"


_BAD = [
    ("empty", "", "empty image reference"),
    ("blank", "   ", "empty image reference"),
    ("uppercase-repo", "MyOrg/app", "lowercase"),
    ("uppercase-after-registry", "ghcr.io/Org/app", "lowercase"),
    ("empty-tag", "alpine:", "empty tag"),
    ("tag-starts-with-dash", "alpine:-x", "tag '-x'"),
    ("tag-too-long", "alpine:" + "t" * 129, "tag"),
    ("short-digest", "alpine@sha256:abc", "64 lowercase hex"),
    ("uppercase-digest", "alpine@sha256:" + "A" * 64, "64 lowercase hex"),
    ("md5-digest", "alpine@md5:" + "a" * 32, "sha256:<64 hex>"),
    ("two-ats", f"a@sha256:{HEX}@sha256:{HEX}", "more than one '@'"),
    ("double-slash", "ghcr.io/a//b", "empty path component"),
    ("trailing-slash", "ghcr.io/a/", "empty path component"),
    ("registry-only", "ghcr.io/", "missing repository"),
    ("url-scheme", "https://ghcr.io/org/app", "URL scheme"),
    ("whitespace", "alpine 3", "whitespace"),
    ("bad-separator", "a..b", "path component 'a..b'"),
    ("leading-dash", "-alpine", "path component '-alpine'"),
    ("bad-port", "localhost:port/x", "registry 'localhost:port'"),
    ("image-id", HEX, "image ID"),
    ("only-tag", ":latest", "missing repository"),
    ("too-long", "ghcr.io/" + "/".join(["abcdefghij"] * 30), "longer than 255"),
]


@pytest.mark.parametrize(("text", "fragment"), [(t, f) for _, t, f in _BAD], ids=[i for i, _, _ in _BAD])
def test_bad_references_say_what_is_wrong_in_one_line(text: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        parse_reference(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("registry", "host"),
    [
        ("docker.io", "registry-1.docker.io"),
        ("index.docker.io", "registry-1.docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("localhost:5000", "localhost:5000"),
    ],
    ids=["docker.io", "index.docker.io", "ghcr", "localhost"],
)
def test_api_host(registry: str, host: str) -> None:
    assert api_host(registry) == host


# --- WWW-Authenticate -----------------------------------------------------------

_CHALLENGES = [
    (
        "docker-hub",
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull"',
        [
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:library/alpine:pull",
                },
            )
        ],
    ),
    (
        "scope-with-comma",
        'Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:o/a:pull,push"',
        [
            Challenge(
                "bearer", {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:o/a:pull,push"}
            )
        ],
    ),
    ("basic", 'Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    ("scheme-case-and-token-values", "BASIC Realm=reg", [Challenge("basic", {"realm": "reg"})]),
    (
        "two-challenges",
        'Basic realm="r", Bearer realm="https://t/token",service=s',
        [Challenge("basic", {"realm": "r"}), Challenge("bearer", {"realm": "https://t/token", "service": "s"})],
    ),
    ("escaped-quote", r'Basic realm="say \"hi\""', [Challenge("basic", {"realm": 'say "hi"'})]),
    ("bare-scheme", "Negotiate", [Challenge("negotiate", {})]),
    ("empty", "", []),
]


@pytest.mark.parametrize(("header", "expected"), [(h, e) for _, h, e in _CHALLENGES], ids=[c[0] for c in _CHALLENGES])
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


# --- index_entries ------------------------------------------------------------

# What `docker buildx build --platform linux/amd64,linux/arm64 --push` stores: one
# image manifest per platform, then one attestation manifest per image.
BUILDX_INDEX = json.loads(
    f"""{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{D1}", "size": 1076,
      "platform": {{"architecture": "amd64", "os": "linux"}}}},
    {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{D2}", "size": 1076,
      "platform": {{"architecture": "arm64", "os": "linux"}}}},
    {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{D3}", "size": 566,
      "annotations": {{"vnd.docker.reference.digest": "{D1}",
                       "vnd.docker.reference.type": "attestation-manifest"}},
      "platform": {{"architecture": "unknown", "os": "unknown"}}}},
    {{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{D4}", "size": 566,
      "annotations": {{"vnd.docker.reference.digest": "{D2}",
                       "vnd.docker.reference.type": "attestation-manifest"}},
      "platform": {{"architecture": "unknown", "os": "unknown"}}}}
  ]
}}"""
)

OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def test_index_entries_buildx_oci_index_flags_attestations() -> None:
    assert index_entries(BUILDX_INDEX) == [
        PlatformEntry(Platform("linux", "amd64"), D1, OCI, 1076, False),
        PlatformEntry(Platform("linux", "arm64"), D2, OCI, 1076, False),
        PlatformEntry(None, D3, OCI, 566, True),
        PlatformEntry(None, D4, OCI, 566, True),
    ]


def test_attestation_by_annotation_alone_or_by_unknown_platform_alone() -> None:
    data = {
        "manifests": [
            {
                "digest": D1,
                "mediaType": OCI,
                "size": 1,
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
            {"digest": D2, "mediaType": OCI, "size": 2, "platform": {"os": "unknown", "architecture": "unknown"}},
            {"digest": D3, "mediaType": OCI, "size": 3},
        ]
    }
    assert index_entries(data) == [
        PlatformEntry(None, D1, OCI, 1, True),
        PlatformEntry(None, D2, OCI, 2, True),
        PlatformEntry(None, D3, OCI, 3, False),  # no platform: unknown, but not an attestation
    ]


def test_index_entries_docker_manifest_list_normalises_variants() -> None:
    manifest_list = json.loads(
        f"""{{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests": [
        {{"mediaType": "{DOCKER_V2}", "size": 528, "digest": "{D1}",
          "platform": {{"architecture": "amd64", "os": "linux", "variant": "v1"}}}},
        {{"mediaType": "{DOCKER_V2}", "size": 528, "digest": "{D2}",
          "platform": {{"architecture": "arm", "os": "linux", "variant": "v6"}}}},
        {{"mediaType": "{DOCKER_V2}", "size": 528, "digest": "{D3}",
          "platform": {{"architecture": "arm", "os": "linux"}}}},
        {{"mediaType": "{DOCKER_V2}", "size": 528, "digest": "{D4}",
          "platform": {{"architecture": "arm64", "os": "linux", "variant": "v8"}}}}
      ]
    }}"""
    )
    assert index_entries(manifest_list) == [
        PlatformEntry(Platform("linux", "amd64"), D1, DOCKER_V2, 528, False),
        PlatformEntry(Platform("linux", "arm", "v6"), D2, DOCKER_V2, 528, False),
        PlatformEntry(Platform("linux", "arm", "v7"), D3, DOCKER_V2, 528, False),
        PlatformEntry(Platform("linux", "arm64"), D4, DOCKER_V2, 528, False),
    ]


_VARIANTS = [
    ("linux", "arm64", "v8", "linux/arm64"),
    ("linux", "arm64", "v8.0", "linux/arm64"),
    ("linux", "arm64", "v9", "linux/arm64/v9"),
    ("linux", "amd64", "v1", "linux/amd64"),
    ("linux", "amd64", "v3", "linux/amd64/v3"),
    ("linux", "arm", "", "linux/arm/v7"),
    ("linux", "arm", "v5", "linux/arm/v5"),
    ("linux", "x86_64", "", "linux/amd64"),
    ("linux", "aarch64", "", "linux/arm64"),
    ("linux", "riscv64", "", "linux/riscv64"),
    ("windows", "amd64", "", "windows/amd64"),
]


@pytest.mark.parametrize(
    ("os_", "arch", "variant", "expected"), _VARIANTS, ids=[row[3] + "<-" + row[1] + row[2] for row in _VARIANTS]
)
def test_normalise_platform(os_: str, arch: str, variant: str, expected: str) -> None:
    assert str(normalise_platform(os_, arch, variant)) == expected


def test_platform_of_config() -> None:
    assert platform_of_config({"os": "linux", "architecture": "arm"}) == Platform("linux", "arm", "v7")
    assert platform_of_config({"os": "linux", "architecture": "arm64", "variant": "v8"}) == Platform("linux", "arm64")
    with pytest.raises(UserError, match="no os/architecture"):
        platform_of_config({"mediaType": "application/vnd.cncf.helm.config.v1+json"})


def test_index_entries_rejects_non_index() -> None:
    with pytest.raises(UserError, match="not an image index"):
        index_entries({"schemaVersion": 2, "config": {}, "layers": []})


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        ("application/vnd.oci.image.index.v1+json", True),
        ("application/vnd.docker.distribution.manifest.list.v2+json", True),
        ("application/vnd.oci.image.manifest.v1+json", False),
        ("application/vnd.docker.distribution.manifest.v2+json", False),
        ("application/json", False),
    ],
    ids=["oci-index", "docker-list", "oci-manifest", "docker-manifest", "json"],
)
def test_is_index(media_type: str, expected: bool) -> None:
    assert is_index(media_type) is expected


# --- extract_file on in-memory layers -------------------------------------------


def _tar(entries: list[tuple[str, bytes | str | None]], gzip: bool = True) -> bytes:
    """A layer tar: bytes = regular file, str = symlink target, None = directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(content, str):
                info.type = tarfile.SYMTYPE
                info.linkname = content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


class StubBlobs:
    """Blobs by digest, counting fetches, standing in for a crossbuild.oci.Client."""

    def __init__(self, layers: list[bytes]) -> None:
        self.blobs = {f"sha256:{i:064x}": data for i, data in enumerate(layers)}
        self.fetched: list[str] = []

    def manifest(self, media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip") -> dict[str, object]:
        return {"layers": [{"mediaType": media_type, "digest": d, "size": len(b)} for d, b in self.blobs.items()]}

    def get_blob(self, registry: str, repository: str, digest: str) -> bytes:
        self.fetched.append(digest)
        return self.blobs[digest]

    def download_blob(self, registry: str, repository: str, digest: str, dest: Path) -> int:
        """What extract_file calls: the client streams layers to files."""
        dest.write_bytes(self.get_blob(registry, repository, digest))
        return dest.stat().st_size


def _extract(layers: list[bytes], path: str) -> bytes | None:
    stub = StubBlobs(layers)
    return extract_file(stub, "r.example", "app", stub.manifest(), path)


def test_extract_file_reads_from_the_top_layer_that_has_it() -> None:
    lower = _tar([("usr/local/bin/app", b"old"), ("etc/os-release", b"debian")])
    upper = _tar([("./usr/local/bin/app", b"new")], gzip=False)
    assert _extract([lower, upper], "/usr/local/bin/app") == b"new"
    assert _extract([lower, upper], "etc/os-release") == b"debian"
    assert _extract([lower, upper], "/missing") is None


def test_extract_file_whiteout_hides_lower_file_and_parent() -> None:
    lower = _tar([("app", b"x"), ("opt/tool/bin", b"y")])
    assert _extract([lower, _tar([(".wh.app", b"")])], "/app") is None
    assert _extract([lower, _tar([("opt/.wh.tool", b"")])], "/opt/tool/bin") is None
    assert _extract([lower, _tar([("opt/.wh.other", b"")])], "/opt/tool/bin") == b"y"


def test_extract_file_opaque_directory_hides_lower_contents_only() -> None:
    lower = _tar([("data/a", b"lower-a"), ("data/b", b"lower-b")])
    upper = _tar([("data/.wh..wh..opq", b""), ("data/a", b"upper-a")])
    assert _extract([lower, upper], "/data/a") == b"upper-a"
    assert _extract([lower, upper], "/data/b") is None


def test_extract_file_follows_symlinks_and_symlinked_parents() -> None:
    layer = _tar(
        [
            ("usr/local/bin/app", b"binary"),
            ("usr/bin/app", "../local/bin/app"),
            ("app", "/usr/bin/app"),
            ("bin", "usr/bin"),
        ]
    )
    assert _extract([layer], "/usr/bin/app") == b"binary"
    assert _extract([layer], "/app") == b"binary"  # two hops
    assert _extract([layer], "/bin/app") == b"binary"  # through a symlinked directory


def test_extract_file_symlink_loop_is_a_user_error() -> None:
    layer = _tar([("a", "b"), ("b", "a")])
    with pytest.raises(UserError, match="levels of symbolic links"):
        _extract([layer], "/a")


def test_extract_file_directory_is_not_a_file() -> None:
    assert _extract([_tar([("usr/bin", None)])], "/usr/bin") is None


def test_extract_file_fetches_each_layer_once() -> None:
    stub = StubBlobs([_tar([("app", b"x")]), _tar([("link", "app")]), _tar([("other", b"")])])
    assert extract_file(stub, "r", "app", stub.manifest(), "/link") == b"x"
    assert sorted(stub.fetched) == sorted(set(stub.fetched))


def test_extract_file_zstd_layer_is_a_user_error() -> None:
    stub = StubBlobs([b"\x28\xb5\x2f\xfd"])
    with pytest.raises(UserError, match="zstd"):
        extract_file(stub, "r", "app", stub.manifest("application/vnd.oci.image.layer.v1.tar+zstd"), "/app")


def test_extract_file_corrupt_layer_is_a_user_error() -> None:
    with pytest.raises(UserError, match="not a readable tar"):
        _extract([b"\x1f\x8b\x08\x00garbage"], "/app")


# --- docker config credentials ---------------------------------------------------


def _write_config(directory: Path, data: dict[str, object]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))


def test_credentials_from_auths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = base64.b64encode(b"alice:s3cr3t:with-colon").decode()
    hub = base64.b64encode(b"bob:hubpass").decode()
    _write_config(
        tmp_path,
        {"auths": {"r.example:5000": {"auth": auth}, "https://index.docker.io/v1/": {"auth": hub}}},
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_credentials("r.example:5000") == Credentials("alice", "s3cr3t:with-colon")
    assert docker_credentials("docker.io") == Credentials("bob", "hubpass")
    assert docker_credentials("other.example") is None


def test_credentials_repr_hides_secrets() -> None:
    text = repr(Credentials("alice", "s3cr3t", "refresh-tok"))
    assert "alice" in text
    assert "s3cr3t" not in text
    assert "refresh-tok" not in text


def test_credentials_from_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    # The credential-helper protocol: server on stdin, JSON on stdout, non-zero when unknown.
    helper.write_text(
        "#!/bin/sh\n"
        "read server\n"
        'if [ "$server" = "r.example" ]; then\n'
        '  echo \'{"ServerURL":"r.example","Username":"carol","Secret":"helper-pass"}\'\n'
        "else\n"
        "  echo 'credentials not found in native keychain'; exit 1\n"
        "fi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    _write_config(tmp_path / "cfg", {"credHelpers": {"r.example": "fake"}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    assert docker_credentials("r.example") == Credentials("carol", "helper-pass")
    _write_config(tmp_path / "cfg", {"credsStore": "fake"})
    assert docker_credentials("unknown.example") is None


def test_missing_credential_helper_means_anonymous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_config(tmp_path, {"credsStore": "no-such-helper-xyz"})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_credentials("ghcr.io") is None


def test_broken_config_is_a_user_error_without_its_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path.joinpath("config.json").write_text('{"auths": {"r": {"auth": "c2VjcmV0"}')
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(UserError, match="not valid JSON") as info:
        docker_credentials("r")
    assert "c2VjcmV0" not in str(info.value)
