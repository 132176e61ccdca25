"""crossbuild.oci.Client against a real registry (Debian's docker-registry, distribution 2.8).

The registry is seeded here with plain HTTP calls written from the OCI
distribution-spec (POST + PUT monolithic blob upload, PUT manifest), never with
crossbuild's code, and results are cross-checked with skopeo where the brief
asks for an independent witness. The Bearer/Basic auth flows run twice: against a
small in-process fake (which also counts token requests), and against a real
docker-registry with htpasswd or token auth, whose tokens a test-side issuer signs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.clone import PROJECT_ROOT, PROJECT_VENV_BIN
from support.commands import require_tools, run
from support.inputs import canonical_json as canonical
from support.inputs import put_manifest, tar_gz_layer, upload_blob
from support.registries import docker_registry, free_port, htpasswd_auth, self_signed_certificate, token_issuer
from support.witness import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    http_request,
    sha256_digest,
    skopeo_digest,
)

from crossbuild.errors import UserError
from crossbuild.oci import (
    BlobUploader,
    Client,
    CorruptContent,
    Denied,
    NotFound,
    Reference,
    RegistryError,
    RetryPolicy,
    Unreachable,
    image_for_platform,
    is_index,
    parse_reference,
    platforms_of,
    push_all,
)
from crossbuild.platforms import Platform

pytestmark = pytest.mark.integration

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

HELLO = b"\x7fELF\x01\x01\x01hello from arm/v7\n" + bytes(range(256))
MULTI = "crossbuild/multi"
SINGLE = "crossbuild/single"


@dataclass
class Seeder:
    """Pushes content with the spec's raw endpoints (end-4a/end-6 blob upload, end-7 manifest put)."""

    base: str
    auth: dict[str, str] = field(default_factory=dict)  # an Authorization header, when the registry wants one

    def blob(self, repo: str, data: bytes, media_type: str) -> dict[str, Any]:
        digest = upload_blob(self.base, repo, data, self.auth)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def manifest(self, repo: str, reference: str, media_type: str, raw: bytes) -> str:
        return put_manifest(self.base, repo, reference, raw, media_type, self.auth)

    def image(
        self,
        repo: str,
        config: dict[str, Any],
        layers: list[tuple[bytes, str]],
        *,
        docker: bool = False,
        layer_type: str = OCI_LAYER_GZIP,
        tag: str | None = None,
    ) -> tuple[str, bytes]:
        config = {**config, "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]}}
        config_desc = self.blob(repo, canonical(config), DOCKER_CONFIG if docker else OCI_CONFIG)
        layer_descs = [self.blob(repo, data, layer_type) for data, _ in layers]
        media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        raw = canonical({"schemaVersion": 2, "mediaType": media_type, "config": config_desc, "layers": layer_descs})
        return self.manifest(repo, tag or sha256_digest(raw), media_type, raw), raw


@dataclass
class Seeded:
    host: str
    root: Path  # the registry's storage root directory
    index_digest: str = ""
    index_raw: bytes = b""
    amd64_digest: str = ""
    arm64_digest: str = ""
    attestation_digest: str = ""
    single_digest: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def ref(self, text: str) -> Reference:
        return parse_reference(f"{self.host}/{text}")


def seed(seeder: Seeder, seeded: Seeded) -> None:
    amd_layer = tar_gz_layer({"usr/local/bin/hello": b"amd64 binary"})
    arm_layer = tar_gz_layer({"usr/local/bin/hello": b"arm64 binary"})
    entry = {"Entrypoint": ["/usr/local/bin/hello"]}
    seeded.amd64_digest, amd_raw = seeder.image(
        MULTI, {"architecture": "amd64", "os": "linux", "config": entry}, [amd_layer]
    )
    seeded.arm64_digest, arm_raw = seeder.image(
        MULTI, {"architecture": "arm64", "os": "linux", "config": entry}, [arm_layer]
    )
    # A buildx-style provenance attestation: in-toto layer, unknown/unknown platform in the index.
    statement = canonical(
        {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2"}
    )
    seeded.attestation_digest, att_raw = seeder.image(
        MULTI,
        {"architecture": "unknown", "os": "unknown", "config": {}},
        [(statement, sha256_digest(statement))],
        layer_type="application/vnd.in-toto+json",
    )
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": seeded.amd64_digest,
                "size": len(amd_raw),
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": seeded.arm64_digest,
                "size": len(arm_raw),
                "platform": {"architecture": "arm64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": seeded.attestation_digest,
                "size": len(att_raw),
                "annotations": {
                    "vnd.docker.reference.digest": seeded.amd64_digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            },
        ],
    }
    # Pretty-printed on purpose: the client must keep bytes, not re-serialise.
    seeded.index_raw = json.dumps(index, indent=3).encode()
    seeded.index_digest = seeder.manifest(MULTI, "v1", OCI_INDEX, seeded.index_raw)

    hello_layer = tar_gz_layer({"usr/local/bin/hello": HELLO}, links={"usr/bin/hello": "../local/bin/hello"})
    seeded.single_digest, _ = seeder.image(
        SINGLE,
        {"architecture": "arm", "os": "linux", "variant": "v7", "config": {"Entrypoint": ["/usr/local/bin/hello"]}},
        [hello_layer],
        docker=True,
        layer_type=DOCKER_LAYER,
        tag="v1",
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with docker_registry(tmp_path_factory.mktemp("registry")) as running:
        seeded = Seeded(host=running.address, root=running.root)
        seed(Seeder(running.url), seeded)
        yield seeded


@pytest.fixture
def client() -> Client:
    return Client(timeout=10)


def _blob_file(root: Path, digest: str) -> Path:
    """Where distribution's filesystem driver keeps a blob's bytes."""
    hexpart = digest.removeprefix("sha256:")
    return root / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


# --- reading ------------------------------------------------------------------


def test_probe_uses_plain_http_for_loopback(registry: Seeded, client: Client) -> None:
    assert client.probe(registry.host) == "http"


def test_get_manifest_of_index_keeps_bytes_and_digest(registry: Seeded, client: Client) -> None:
    manifest = client.get_manifest(registry.ref(f"{MULTI}:v1"))
    assert manifest.media_type == OCI_INDEX
    assert is_index(manifest.media_type)
    assert manifest.raw == registry.index_raw
    assert manifest.digest == registry.index_digest == "sha256:" + hashlib.sha256(registry.index_raw).hexdigest()
    assert [m["digest"] for m in manifest.data["manifests"]] == [
        registry.amd64_digest,
        registry.arm64_digest,
        registry.attestation_digest,
    ]


def test_get_manifest_by_digest_and_docker_media_type(registry: Seeded, client: Client) -> None:
    by_digest = client.get_manifest(registry.ref(f"{MULTI}@{registry.arm64_digest}"))
    assert by_digest.digest == registry.arm64_digest
    assert by_digest.media_type == OCI_MANIFEST
    single = client.get_manifest(registry.ref(f"{SINGLE}:v1"))
    assert single.media_type == DOCKER_MANIFEST
    assert single.digest == registry.single_digest
    assert not is_index(single.media_type)


def test_platforms_of_index_skips_attestations(registry: Seeded, client: Client) -> None:
    assert platforms_of(client, registry.ref(f"{MULTI}:v1")) == [Platform("linux", "amd64"), Platform("linux", "arm64")]


def test_platforms_of_single_image_reads_its_config(registry: Seeded, client: Client) -> None:
    assert platforms_of(client, registry.ref(f"{SINGLE}:v1")) == [Platform("linux", "arm", "v7")]


def test_image_for_platform(registry: Seeded, client: Client) -> None:
    manifest, config = image_for_platform(client, registry.ref(f"{MULTI}:v1"), Platform("linux", "arm64", "v8"))
    assert manifest.digest == registry.arm64_digest
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    manifest, config = image_for_platform(client, registry.ref(f"{SINGLE}:v1"), Platform("linux", "arm", "v7"))
    assert manifest.digest == registry.single_digest
    assert config["variant"] == "v7"
    with pytest.raises(UserError, match=r"has no linux/s390x image; it has linux/amd64, linux/arm64"):
        image_for_platform(client, registry.ref(f"{MULTI}:v1"), Platform("linux", "s390x"))
    with pytest.raises(UserError, match=r"single linux/arm/v7 image, not linux/amd64"):
        image_for_platform(client, registry.ref(f"{SINGLE}:v1"), Platform("linux", "amd64"))


def test_extract_file_returns_the_known_bytes(registry: Seeded, client: Client) -> None:
    manifest = client.get_manifest(registry.ref(f"{SINGLE}:v1"))
    assert client.extract_file(registry.host, SINGLE, manifest.data, "/usr/local/bin/hello") == HELLO
    assert client.extract_file(registry.host, SINGLE, manifest.data, "/usr/bin/hello") == HELLO  # symlink
    assert client.extract_file(registry.host, SINGLE, manifest.data, "/usr/local/bin/absent") is None
    amd64, _ = image_for_platform(client, registry.ref(f"{MULTI}:v1"), Platform("linux", "amd64"))
    assert client.extract_file(registry.host, MULTI, amd64.data, "usr/local/bin/hello") == b"amd64 binary"


def test_manifest_exists(registry: Seeded, client: Client) -> None:
    assert client.manifest_exists(registry.ref(f"{MULTI}:v1")) == registry.index_digest
    assert client.manifest_exists(registry.ref(f"{MULTI}@{registry.amd64_digest}")) == registry.amd64_digest
    assert client.manifest_exists(registry.ref(f"{MULTI}:nope")) is None
    assert client.manifest_exists(registry.ref("crossbuild/no-such-repo:v1")) is None


def test_get_json_blob_reads_config(registry: Seeded, client: Client) -> None:
    manifest = client.get_manifest(registry.ref(f"{SINGLE}:v1"))
    config = client.get_json_blob(registry.host, SINGLE, manifest.data["config"]["digest"])
    assert (config["architecture"], config["variant"]) == ("arm", "v7")


# --- writing ------------------------------------------------------------------


def test_put_manifest_moves_a_tag_byte_for_byte(registry: Seeded, client: Client) -> None:
    original = client.get_manifest(registry.ref(f"{MULTI}:v1"))
    digest = client.put_manifest(registry.host, MULTI, "release", original.raw, original.media_type)
    assert digest == original.digest
    require_tools("skopeo")
    assert skopeo_digest(f"{registry.host}/{MULTI}:release") == original.digest
    assert client.get_manifest(registry.ref(f"{MULTI}:release")).raw == original.raw


def test_list_tags(registry: Seeded, client: Client) -> None:
    manifest = client.get_manifest(registry.ref(f"{SINGLE}:v1"))
    for tag in ("b", "a", "c"):
        client.put_manifest(registry.host, SINGLE, tag, manifest.raw, manifest.media_type)
    assert sorted(client.list_tags(registry.host, SINGLE)) == ["a", "b", "c", "v1"]
    assert client.list_tags(registry.host, "crossbuild/no-such-repo") == []


# --- failures -----------------------------------------------------------------


def test_not_found_image_is_a_user_error(registry: Seeded, client: Client) -> None:
    with pytest.raises(UserError, match=rf"^image {registry.host}/{MULTI}:nope not found in {registry.host}$"):
        client.get_manifest(registry.ref(f"{MULTI}:nope"))
    with pytest.raises(UserError, match="not found in"):
        client.get_manifest(registry.ref("crossbuild/no-such-repo:v1"))
    with pytest.raises(UserError, match="not found in"):
        client.get_blob(registry.host, MULTI, "sha256:" + "0" * 64)


def test_unreachable_registry_is_a_user_error() -> None:
    port = free_port()  # nothing listens there once the probe socket is closed
    client = Client(timeout=5)
    with pytest.raises(
        UserError, match=rf"registry 127.0.0.1:{port} is not reachable: .*start a registry there"
    ) as info:
        client.probe(f"127.0.0.1:{port}")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="is not reachable"):
        client.get_manifest(parse_reference(f"127.0.0.1:{port}/x/y:v1"))


def test_corrupt_content_is_refused(registry: Seeded, client: Client) -> None:
    seeder = Seeder(f"http://{registry.host}")
    data = b"unique blob for the corruption test"
    desc = seeder.blob("crossbuild/corrupt", data, "application/octet-stream")
    _blob_file(registry.root, desc["digest"]).write_bytes(b"tampered blob for the corruption tes")
    with pytest.raises(UserError, match="wrong content"):
        client.get_blob(registry.host, "crossbuild/corrupt", desc["digest"])
    # Manifests live in the same blob store: change the bytes but keep valid JSON.
    digest, raw = seeder.image("crossbuild/corrupt", {"architecture": "amd64", "os": "linux"}, [])
    _blob_file(registry.root, digest).write_bytes(raw + b" ")
    with pytest.raises(UserError, match="refusing it"):
        client.get_manifest(registry.ref(f"crossbuild/corrupt@{digest}"))


# --- auth flows against an in-process token server ------------------------------

USER, PASSWORD = "alice", "s3cr3t-pa55"
MANIFEST = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []})


@dataclass
class FakeAuthRegistry:
    """Answers like a token-auth registry (Docker Hub's flow) or a Basic-auth one."""

    mode: str  # "bearer" or "basic"
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    host: str = ""

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def challenge(self, scope: str) -> None:
                if fake.mode == "basic":
                    value = 'Basic realm="fake"'
                else:
                    value = f'Bearer realm="http://{fake.host}/token",service="fake"'
                    value += f',scope="{scope}"' if scope else ""
                error = canonical({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
                self.reply(401, error, {"WWW-Authenticate": value, "Content-Type": "application/json"})

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                good_basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if url.path == "/token":
                    fake.token_requests.append(urllib.parse.parse_qs(url.query))
                    if auth != good_basic:
                        self.reply(401, canonical({"details": "incorrect username or password"}))
                        return
                    self.reply(200, canonical({"token": "tok-1", "expires_in": 300}))
                    return
                expected = good_basic if fake.mode == "basic" else "Bearer tok-1"
                if url.path == "/v2/" and auth == expected:
                    self.reply(200)
                elif url.path == "/v2/":
                    self.challenge("")
                elif url.path == "/v2/app/manifests/v1":
                    if auth != expected:
                        self.challenge("repository:app:pull")
                        return
                    self.reply(
                        200, MANIFEST, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": sha256_digest(MANIFEST)}
                    )
                else:
                    self.reply(404, canonical({"errors": [{"code": "NAME_UNKNOWN", "message": "unknown"}]}))

            do_HEAD = do_GET

        return Handler


@pytest.fixture(params=["bearer", "basic"])
def fake_registry(request: pytest.FixtureRequest) -> Iterator[FakeAuthRegistry]:
    fake = FakeAuthRegistry(mode=request.param)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, password: str) -> None:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))


def test_auth_with_saved_login(
    fake_registry: FakeAuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(tmp_path, monkeypatch, fake_registry.host, PASSWORD)
    client = Client(timeout=10)
    ref = parse_reference(f"{fake_registry.host}/app:v1")
    assert client.get_manifest(ref).raw == MANIFEST
    assert client.manifest_exists(ref) == sha256_digest(MANIFEST)
    if fake_registry.mode == "bearer":
        # One token for the (registry, scope), reused by the second request.
        assert fake_registry.token_requests == [{"service": ["fake"], "scope": ["repository:app:pull"]}]


def test_auth_failures_never_show_the_password(
    fake_registry: FakeAuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(tmp_path, monkeypatch, fake_registry.host, "wrong-" + PASSWORD)
    with pytest.raises(UserError, match="docker login") as info:
        Client(timeout=10).get_manifest(parse_reference(f"{fake_registry.host}/app:v1"))
    assert PASSWORD not in str(info.value)
    assert base64.b64encode(f"{USER}:wrong-{PASSWORD}".encode()).decode() not in str(info.value)


def test_auth_without_login_asks_for_one(
    fake_registry: FakeAuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no config.json there
    with pytest.raises(UserError, match=rf"requires a login: run `docker login {fake_registry.host}`"):
        Client(timeout=10).get_manifest(parse_reference(f"{fake_registry.host}/app:v1"))


# --- the same auth flows against the real registry: htpasswd (Basic) and token (Bearer) ---


@dataclass
class AuthRegistry:
    mode: str
    host: str
    digest: str  # of app:v1
    raw: bytes


@pytest.fixture(params=["basic", "bearer"])
def auth_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    root = tmp_path_factory.mktemp(f"auth-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "basic":
            auth = htpasswd_auth(root, USER, PASSWORD)
            login = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
        else:
            issuer = stack.enter_context(token_issuer(root / "issuer", USER, PASSWORD))
            auth = issuer.auth_config()
            login = {"Authorization": "Bearer " + issuer.token("repository:app:pull,push")}
        running = stack.enter_context(docker_registry(root / "registry", auth=auth))
        digest, raw = Seeder(running.url, login).image(
            "app", {"architecture": "arm64", "os": "linux"}, [tar_gz_layer({"bin/app": HELLO})], tag="v1"
        )
        yield AuthRegistry(request.param, running.address, digest, raw)


def test_real_registry_auth_with_saved_login_reads_and_moves_tags(
    auth_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(tmp_path, monkeypatch, auth_registry.host, PASSWORD)
    client = Client(timeout=10)
    ref = parse_reference(f"{auth_registry.host}/app:v1")
    assert client.get_manifest(ref).raw == auth_registry.raw
    assert client.manifest_exists(ref) == auth_registry.digest
    # moving a tag is a push: the same bytes under a new tag, as image.multiarch does
    client.put_manifest(auth_registry.host, "app", "moved", auth_registry.raw, OCI_MANIFEST)
    assert skopeo_digest(f"{auth_registry.host}/app:moved", creds=f"{USER}:{PASSWORD}") == auth_registry.digest
    assert skopeo_digest(f"{auth_registry.host}/app:v1", creds=f"{USER}:{PASSWORD}") == auth_registry.digest


def test_real_registry_wrong_password_never_shown(
    auth_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _login(tmp_path, monkeypatch, auth_registry.host, "wrong-" + PASSWORD)
    with pytest.raises(UserError, match="docker login") as info:
        Client(timeout=10).get_manifest(parse_reference(f"{auth_registry.host}/app:v1"))
    assert "\n" not in str(info.value)
    assert PASSWORD not in str(info.value)
    assert base64.b64encode(f"{USER}:wrong-{PASSWORD}".encode()).decode() not in str(info.value)


def test_real_registry_without_login_asks_for_one(
    auth_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no config.json there
    with pytest.raises(UserError, match=rf"requires a login: run `docker login {auth_registry.host}`"):
        Client(timeout=10).get_manifest(parse_reference(f"{auth_registry.host}/app:v1"))


def test_real_registry_push_probe(auth_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """probe_push starts and cancels an upload: fine with the right login, one line with a wrong one."""
    _login(tmp_path, monkeypatch, auth_registry.host, PASSWORD)
    Client(timeout=10).probe_push(auth_registry.host, "app")
    _login(tmp_path, monkeypatch, auth_registry.host, "wrong-" + PASSWORD)
    with pytest.raises(UserError) as info:
        Client(timeout=10).probe_push(auth_registry.host, "app")
    message = str(info.value)
    assert f"docker login {auth_registry.host}" in message
    assert "\n" not in message
    assert PASSWORD not in message.replace(f"wrong-{PASSWORD}", "")
    if auth_registry.mode == "basic":
        assert message.startswith(f"401 Unauthorized for {auth_registry.host}")


def test_image_multiarch_with_a_wrong_login_fails_before_building(
    auth_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password is reported in the first seconds, before any go build or bake runs."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "examples" / "imdemo", project / "imdemo")
    (project / "config.toml").write_text(
        '[project]\nname = "imdemo"\nmodule_dir = "imdemo"\n\n[image]\nbase_image = "scratch"\n'
    )
    # buildx keeps its builders under DOCKER_CONFIG: the test's docker config needs them too
    docker_config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    _login(tmp_path, monkeypatch, auth_registry.host, "wrong-" + PASSWORD)
    if (docker_config / "buildx").is_dir():
        shutil.copytree(docker_config / "buildx", tmp_path / "buildx")
    started = time.monotonic()
    proc = run(
        [PROJECT_VENV_BIN / "crossbuild", "image.multiarch", "--config", project / "config.toml"],
        env={"REGISTRY_PREFIX": f"{auth_registry.host}/team", "DOCKER_CONFIG": str(tmp_path)},
        cwd=project,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "\x1b[31m\x1b[1merror:"))]
    assert len(errors) == 1, proc.stderr
    assert f"docker login {auth_registry.host}" in errors[0]
    assert "go build" not in proc.stdout, proc.stdout  # nothing was compiled
    assert not (project / "build" / "bin").exists()
    assert elapsed < 60, f"took {elapsed:.0f}s to find out"


def test_tls_registry_with_self_signed_certificate(tmp_path: Path) -> None:
    """A loopback registry serving HTTPS with a self-signed certificate is used over unverified TLS."""
    cert, key = self_signed_certificate(tmp_path, "localhost", "IP:127.0.0.1")
    with docker_registry(tmp_path / "registry", tls=(cert, key)) as running:
        host = running.address
        client = Client(timeout=10)
        assert client.probe(host) == "https"  # plain HTTP gets "400 Client sent an HTTP request to an HTTPS server"
        assert client.list_tags(host, "crossbuild/empty") == []
        with pytest.raises(UserError, match=f"not found in {host}"):
            client.get_manifest(parse_reference(f"{host}/crossbuild/empty:v1"))


# --- typed errors against the real registry ------------------------------------------------------


def test_not_found_is_typed_with_host_reference_and_reason(registry: Seeded, client: Client) -> None:
    ref = registry.ref(f"{MULTI}:nope")
    with pytest.raises(NotFound) as info:
        client.get_manifest(ref)
    assert (info.value.host, info.value.reference, info.value.reason) == (registry.host, str(ref), "HTTP 404")
    assert str(info.value) == f"image {ref} not found in {registry.host}"
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFound) as blob_info:
        client.get_blob(registry.host, MULTI, missing)
    assert blob_info.value.reference == f"{registry.host}/{MULTI}@{missing}"
    with pytest.raises(NotFound, match=r"has no linux/s390x image"):
        image_for_platform(client, registry.ref(f"{MULTI}:v1"), Platform("linux", "s390x"))


def test_unreachable_is_typed() -> None:
    port = free_port()
    with pytest.raises(Unreachable) as info:
        Client(timeout=5).get_manifest(parse_reference(f"127.0.0.1:{port}/x/y:v1"))
    assert info.value.host == f"127.0.0.1:{port}"
    assert "Connection refused" in info.value.reason
    assert not isinstance(info.value, NotFound | Denied | CorruptContent)


def test_corrupt_content_is_typed_and_leaves_no_file(registry: Seeded, client: Client, tmp_path: Path) -> None:
    seeder = Seeder(f"http://{registry.host}")
    data = b"a blob that will be tampered with on the registry's disk" * 1000
    desc = seeder.blob("crossbuild/typed-corrupt", data, "application/octet-stream")
    _blob_file(registry.root, desc["digest"]).write_bytes(data[:-1] + b"!")
    with pytest.raises(CorruptContent) as info:
        client.get_blob(registry.host, "crossbuild/typed-corrupt", desc["digest"])
    assert info.value.reason.startswith("hashes to sha256:")
    assert info.value.reference == f"{registry.host}/crossbuild/typed-corrupt@{desc['digest']}"
    dest = tmp_path / "out" / "blob"
    dest.parent.mkdir()
    with pytest.raises(CorruptContent, match="wrong content"):
        client.download_blob(registry.host, "crossbuild/typed-corrupt", desc["digest"], dest)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a partial one


def test_denied_is_typed(auth_registry: AuthRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = parse_reference(f"{auth_registry.host}/app:v1")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no login at all
    with pytest.raises(Denied) as info:
        Client(timeout=10).get_manifest(ref)
    assert (info.value.host, info.value.reason) == (auth_registry.host, "login required")
    _login(tmp_path, monkeypatch, auth_registry.host, "wrong-" + PASSWORD)
    with pytest.raises(Denied):
        Client(timeout=10).get_manifest(ref)
    with pytest.raises(Denied) as push_info:
        Client(timeout=10).probe_push(auth_registry.host, "app")
    assert PASSWORD not in str(push_info.value).replace(f"wrong-{PASSWORD}", "")


# --- streaming blobs -----------------------------------------------------------------------------------


def blob_via_http(host: str, repository: str, digest: str) -> tuple[int, str]:
    """(size, sha256) of a blob as the registry's HTTP API serves it, hashed here in pieces: the witness."""
    hasher, size = hashlib.sha256(), 0
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/blobs/{digest}", timeout=60) as resp:
        while chunk := resp.read(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    return size, "sha256:" + hasher.hexdigest()


def blob_status(host: str, repository: str, digest: str) -> int:
    status, _, _ = http_request("HEAD", f"http://{host}/v2/{repository}/blobs/{digest}")
    return status


def write_blob(path: Path, mib: float) -> str:
    """A file of random content (so no earlier run left it in the registry), written in pieces; its digest."""
    hasher = hashlib.sha256()
    block = os.urandom(1 << 20)
    left = int(mib * (1 << 20))
    with path.open("wb") as out:
        counter = 0
        while left:
            piece = (counter.to_bytes(8, "big") + block[8:])[:left]
            out.write(piece)
            hasher.update(piece)
            left -= len(piece)
            counter += 1
    return "sha256:" + hasher.hexdigest()


def test_chunked_upload_mount_and_streamed_download(registry: Seeded, client: Client, tmp_path: Path) -> None:
    """A blob larger than the PATCH size goes up in chunks; a second repository gets it by a mount."""
    src = tmp_path / "blob"
    digest = write_blob(src, 3.5)
    uploader = BlobUploader(client, registry.host, monolithic_max=1 << 20, patch_size=1 << 20)
    assert uploader.push("crossbuild/chunked", digest, src) == src.stat().st_size
    assert blob_via_http(registry.host, "crossbuild/chunked", digest) == (src.stat().st_size, digest)
    assert uploader.push("crossbuild/chunked", digest, src) == 0  # already there: nothing sent
    assert uploader.push("crossbuild/chunked-mounted", digest, src) == 0  # mounted, not sent again
    assert blob_via_http(registry.host, "crossbuild/chunked-mounted", digest) == (src.stat().st_size, digest)
    dest = tmp_path / "copy"
    assert client.download_blob(registry.host, "crossbuild/chunked-mounted", digest, dest) == src.stat().st_size
    assert dest.read_bytes() == src.read_bytes()


def test_upload_of_a_file_that_does_not_hash_to_its_digest(registry: Seeded, client: Client, tmp_path: Path) -> None:
    src = tmp_path / "blob"
    real = write_blob(src, 2.5)
    claimed = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    for monolithic_max in (8 << 20, 1 << 20):  # one PUT, then PATCHes
        uploader = BlobUploader(client, registry.host, monolithic_max=monolithic_max, patch_size=1 << 20)
        with pytest.raises(CorruptContent, match=f"hashes to {real}, not the {claimed}"):
            uploader.push("crossbuild/liar", claimed, src)
        assert blob_status(registry.host, "crossbuild/liar", claimed) == 404
        assert blob_status(registry.host, "crossbuild/liar", real) == 404


def test_push_all_sends_each_blob_once_in_parallel(registry: Seeded, client: Client, tmp_path: Path) -> None:
    files = []
    for n in range(5):
        path = tmp_path / f"b{n}"
        files.append((path, write_blob(path, 0.25 + n / 8)))
    wanted = [("crossbuild/par-a", d, p) for p, d in files] + [("crossbuild/par-b", d, p) for p, d in files[:3]]
    sent = push_all(BlobUploader(client, registry.host), wanted, parallel=3)
    assert {key: n > 0 for key, n in sent.items()} == {(r, d): r == "crossbuild/par-a" for r, d, _ in wanted}
    for repository, digest, path in wanted:
        assert blob_via_http(registry.host, repository, digest) == (path.stat().st_size, digest)


# The peak is this process's own mm's high-water mark (VmHWM), not getrusage's ru_maxrss: Linux carries
# ru_maxrss across execve from the forking process, so under a pytest that has grown past the blob's size
# the child's "before" already exceeds what the blob adds and nothing is seen.
_RSS_PROBE = """
import json, sys
from pathlib import Path

def peak_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM in /proc/self/status")

from crossbuild.oci import BlobUploader, Client
host, repository, src, dest, digest, mode = sys.argv[1:]
client = Client(timeout=120)
client.probe(host)
before = peak_kib()
if mode == "stream":
    BlobUploader(client, host).push(repository, digest, Path(src))
    client.download_blob(host, repository, digest, Path(dest))
else:  # the control: the same blob read into memory, which the instrument must see
    held = client.get_blob(host, repository, digest)  # kept alive until measured: a freed mapping's
    assert len(held) > 0  # pages may leave before the kernel folds them into the high-water mark
after = peak_kib()
print(json.dumps({"before_kib": before, "after_kib": after}))
"""


def _peak_rss_delta(host: str, repository: str, src: Path, dest: Path, digest: str, mode: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, host, repository, str(src), str(dest), digest, mode],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return (int(result["after_kib"]) - int(result["before_kib"])) * 1024  # VmHWM is in kB


def test_a_256_mib_blob_round_trips_in_bounded_memory(registry: Seeded, tmp_path: Path) -> None:
    """Up (chunked PATCH) and down (streamed, digest checked) with the peak RSS growing by far less than the
    blob; the control run that holds the blob in memory shows the measurement can see it."""
    size = 256 << 20
    src, dest = tmp_path / "big", tmp_path / "big-copy"
    digest = write_blob(src, 256)
    delta = _peak_rss_delta(registry.host, "crossbuild/big", src, dest, digest, "stream")
    assert blob_via_http(registry.host, "crossbuild/big", digest) == (size, digest)
    assert dest.stat().st_size == size
    assert delta < 48 << 20, f"peak RSS grew by {delta >> 20} MiB streaming a {size >> 20} MiB blob"
    dest.unlink()
    control = _peak_rss_delta(registry.host, "crossbuild/big", src, dest, digest, "memory")
    # a blob held whole shows up (at least three quarters of it: the pages of a growing buffer are counted
    # as they are touched), so the bound above measures something
    assert control > size * 3 // 4, f"the in-memory control grew by {control >> 20} MiB only: the measurement is blind"
    print(f"peak RSS growth: streaming {delta >> 20} MiB, in memory {control >> 20} MiB, blob {size >> 20} MiB")


# --- retries: a relay in front of the real registry that resets, cuts or 503s on cue ---------------------


class FlakyRelay:
    """A TCP relay to the registry; each new connection takes the next step of `script`:
    "reset" (read the request, answer with a TCP RST), "503" (a 503 answer), "cut:N" (relay, but
    reset after N bytes of the answer) or "pass" (relay), "pass" once the script is used up."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.script: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                step = self.script.pop(0) if self.script else "pass"
            threading.Thread(target=self._serve, args=(conn, step), daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    @staticmethod
    def _request(conn: socket.socket) -> bytes:
        """One whole request: urllib sends one per connection (Connection: close), headers then body."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _serve(self, conn: socket.socket, step: str) -> None:
        conn.settimeout(30)
        request = self._request(conn)
        if step == "reset":
            self._reset(conn)
            return
        if step == "503":
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()
            return
        limit = int(step.removeprefix("cut:")) if step.startswith("cut:") else -1
        sent = 0
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(request)
            while data := upstream.recv(65536):
                if 0 <= limit < sent + len(data):
                    conn.sendall(data[: limit - sent])
                    self._reset(conn)
                    return
                conn.sendall(data)
                sent += len(data)
        conn.close()

    def arm(self, *steps: str) -> None:
        with self.lock:
            self.script = list(steps)
            self.connections = 0

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def relay(registry: Seeded) -> Iterator[FlakyRelay]:
    flaky = FlakyRelay(registry.host)
    try:
        yield flaky
    finally:
        flaky.close()


FAST = RetryPolicy(attempts=4, first_delay=0.05, max_delay=0.2, budget=10.0)


def relayed_client(relay: FlakyRelay, policy: RetryPolicy = FAST) -> Client:
    client = Client(timeout=10, retry=policy)
    assert client.probe(relay.host) == "http"  # the scheme is settled before the script starts
    return client


@pytest.mark.parametrize(
    ("steps", "connections"),
    [(("reset",), 2), (("reset", "reset", "reset"), 4), (("503",), 2), (("503", "reset"), 3)],
    ids=["one-reset", "three-resets", "one-503", "503-then-reset"],
)
def test_resets_and_5xx_are_retried(
    registry: Seeded, relay: FlakyRelay, steps: tuple[str, ...], connections: int
) -> None:
    client = relayed_client(relay)
    relay.arm(*steps)
    manifest = client.get_manifest(parse_reference(f"{relay.host}/{MULTI}:v1"))
    assert manifest.raw == registry.index_raw
    assert relay.connections == connections


def test_retries_are_bounded_in_count(relay: FlakyRelay) -> None:
    client = relayed_client(relay, RetryPolicy(attempts=3, first_delay=0.05, budget=10.0))
    relay.arm(*["reset"] * 10)
    started = time.monotonic()
    with pytest.raises(Unreachable, match=rf"^registry {relay.host} is not reachable: ") as info:
        client.get_manifest(parse_reference(f"{relay.host}/{MULTI}:v1"))
    assert relay.connections == 3
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 5


def test_retries_are_bounded_in_time(relay: FlakyRelay) -> None:
    client = relayed_client(relay, RetryPolicy(attempts=100, first_delay=0.4, factor=1.0, budget=1.0))
    relay.arm(*["503"] * 100)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="HTTP 503"):
        client.get_manifest(parse_reference(f"{relay.host}/{MULTI}:v1"))
    assert time.monotonic() - started < 3
    assert relay.connections == 3  # waits of 0.4 s fit twice in the 1 s budget


def test_a_blob_cut_mid_stream_is_fetched_again(registry: Seeded, relay: FlakyRelay, tmp_path: Path) -> None:
    src = tmp_path / "blob"
    digest = write_blob(src, 3)
    Seeder(f"http://{registry.host}").blob("crossbuild/cut", src.read_bytes(), "application/octet-stream")
    client = relayed_client(relay)
    relay.arm("cut:1500000", "cut:200000")
    dest = tmp_path / "copy"
    assert client.download_blob(relay.host, "crossbuild/cut", digest, dest) == src.stat().st_size
    assert dest.read_bytes() == src.read_bytes()
    assert relay.connections == 3


def test_a_blob_cut_every_time_leaves_no_file(registry: Seeded, relay: FlakyRelay, tmp_path: Path) -> None:
    src = tmp_path / "blob"
    digest = write_blob(src, 2)
    Seeder(f"http://{registry.host}").blob("crossbuild/cut-always", src.read_bytes(), "application/octet-stream")
    client = relayed_client(relay, RetryPolicy(attempts=2, first_delay=0.05, budget=10.0))
    relay.arm(*["cut:1000000"] * 10)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Unreachable, match=r"bytes of the body unsent|reset"):
        client.download_blob(relay.host, "crossbuild/cut-always", digest, out / "copy")
    assert relay.connections == 2
    assert list(out.iterdir()) == []
