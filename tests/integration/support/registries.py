"""docker-registry (distribution) processes of a test's own, and the machine's local registry.

One launcher for every kind a test needs: plain HTTP, TLS with a self-signed certificate
made here by openssl, and the two auth schemes (htpasswd Basic, and token Bearer with a
token issuer run by the test), on a free or a given loopback port or inside a network
namespace. The process is stopped when the `with` block ends.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .commands import check, describe, run
from .example import REGISTRY
from .inputs import canonical_json

LOCAL_API = f"http://{REGISTRY}"  # the machine's registry (make tools), or the embedded one
SERVICE, ISSUER = "crossbuild-test", "crossbuild-test-issuer"  # names in the test tokens


def free_port() -> int:
    """A loopback port nothing listens on (once the probe socket is closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_closed(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        return sock.connect_ex((host, port)) != 0


def registry_healthy(api: str = LOCAL_API) -> bool:
    """GET /v2/ answers 200 (no proxy: the registries here are on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{api}/v2/", timeout=5) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


# --- certificates and credentials ----------------------------------------------------------


def self_signed_certificate(directory: Path, cn: str, san: str | None = None) -> tuple[Path, Path]:
    """(certificate, key) PEM files made by openssl, valid one day; `san` like "IP:127.0.0.1"."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required to make test certificates (apt-get install openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={cn}"]
    if san:
        argv += ["-addext", f"subjectAltName={san}"]
    check(run([*argv, "-keyout", key, "-out", cert], timeout=60))
    return cert, key


def htpasswd_auth(directory: Path, user: str, password: str, realm: str = SERVICE) -> dict[str, Any]:
    """The registry's `auth:` section for Basic auth, with `user:bcrypt(password)` written to an htpasswd file
    (bcrypt is the only hash docker-registry's htpasswd accepts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt: fine on 3.11, removed in 3.13
        import crypt

    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    assert hashed.startswith("$2"), f"libcrypt made no bcrypt hash: {hashed!r}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "htpasswd"
    path.write_text(f"{user}:{hashed}\n")
    return {"htpasswd": {"realm": realm, "path": str(path)}}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenIssuer:
    """The token server of the distribution token-auth spec: checks the Basic login and returns an
    RS256 JWT signed with openssl. The real registry verifies the token against `cert`."""

    key: Path
    cert: Path
    cert_der: bytes
    user: str
    password: str
    realm: str = ""

    def token(self, scope: str) -> str:
        """A token granting space-separated scopes ("repository:app:pull,push"; a client may ask for
        several: [token] "scope"), or none for ""."""
        access = []
        for one in scope.split():
            kind, name, actions = one.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": ISSUER, "sub": self.user, "aud": SERVICE, "exp": now + 300, "nbf": now - 60, "iat": now}
        claims |= {"jti": hashlib.sha256(f"{now}{scope}{time.monotonic()}".encode()).hexdigest(), "access": access}
        signing_input = f"{_b64url(canonical_json(header))}.{_b64url(canonical_json(claims))}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def auth_config(self) -> dict[str, Any]:
        """The registry's `auth:` section trusting this issuer."""
        return {"token": {"realm": self.realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": str(self.cert)}}

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        issuer = self
        good = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if self.headers.get("Authorization", "") != good:
                    status, body = 401, canonical_json({"details": "incorrect username or password"})
                else:
                    token = issuer.token(" ".join(query.get("scope", [])))
                    status, body = 200, canonical_json({"token": token, "access_token": token, "expires_in": 300})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@contextlib.contextmanager
def token_issuer(directory: Path, user: str, password: str) -> Iterator[TokenIssuer]:
    """A TokenIssuer serving on a free loopback port (its `realm`), with a signing key made here."""
    cert, key = self_signed_certificate(directory, ISSUER)
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], capture_output=True, check=True, timeout=60
    ).stdout
    issuer = TokenIssuer(key, cert, der, user, password)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), issuer.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    issuer.realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- the registry process -------------------------------------------------------------------

_PROBE = """
import ssl, sys, urllib.error, urllib.request
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2, context=context) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except urllib.error.HTTPError as exc:
    sys.exit(0 if exc.code == 401 else 1)
except Exception:
    sys.exit(1)
"""


def _answers(url: str, netns: str | None) -> bool:
    """GET url answers 200, or 401 from a registry asking for credentials (certificates not checked);
    inside the network namespace `netns` when given."""
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, sys.executable, "-c", _PROBE, url]
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # a TLS instance's certificate is self-signed
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=2) as resp:
            return int(resp.status) == 200
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code == 401
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class Registry:
    address: str  # host:port
    root: Path  # the storage root directory (distribution's filesystem driver writes below it)
    scheme: str  # http or https

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"


@contextlib.contextmanager
def docker_registry(
    workdir: Path,
    address: str | None = None,
    *,
    tls: tuple[Path, Path] | None = None,
    auth: Mapping[str, Any] | None = None,
    netns: str | None = None,
) -> Iterator[Registry]:
    """An empty docker-registry of this test's own on `address` (default: a free loopback port), with
    its config, log and data under workdir; inside network namespace `netns` when given. `tls` is
    (certificate, key); `auth` the config's `auth:` section (htpasswd_auth, TokenIssuer.auth_config)."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        pytest.fail("docker-registry is required (apt-get install docker-registry, or make tools)")
    address = address or f"127.0.0.1:{free_port()}"
    host, _, port = address.rpartition(":")
    if netns is None:  # another test's registry may still be shutting down
        deadline = time.monotonic() + 30
        while not port_is_closed(host, int(port)):
            if time.monotonic() > deadline:
                pytest.fail(f"something already listens on {address}; this test needs an empty registry there")
            time.sleep(0.5)
    workdir.mkdir(parents=True, exist_ok=True)
    http_section: dict[str, Any] = {"addr": address}
    if tls is not None:
        http_section["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True}},
        "http": http_section,
    }
    if auth:
        config["auth"] = dict(auth)
    conf = workdir / "config.yml"
    conf.write_text(yaml.safe_dump(config, sort_keys=False))
    registry = Registry(address, workdir / "data", "https" if tls else "http")
    log = workdir / "registry.log"
    argv = [*(["ip", "netns", "exec", netns] if netns else []), binary, "serve", str(conf)]
    with log.open("wb") as log_file:
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not _answers(f"{registry.url}/v2/", netns):
            if proc.poll() is not None:
                pytest.fail(f"docker-registry exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not answer on {address}: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield registry
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- the machine's registry on 127.0.0.1:5000 -------------------------------------------------


@contextlib.contextmanager
def embedded_registry(invoke: Path, home: Path) -> Iterator[str]:
    """The embedded registry on 127.0.0.1:5000, started with `invoke registry.up` run in `home`
    (a checkout of its own, so its data is in no test's build/) and stopped afterwards."""
    proc = run([invoke, "registry.up"], cwd=home, timeout=120)
    assert proc.returncode == 0 and registry_healthy(), (
        f"invoke registry.up did not start {LOCAL_API}\n{describe(proc)}"
    )
    try:
        yield LOCAL_API
    finally:
        run([invoke, "registry.down"], cwd=home, timeout=120)
