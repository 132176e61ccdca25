"""A small OCI Distribution API v2 client, stdlib only.

crossbuild reads indexes, manifests, configs and layers straight from the
registry (no docker daemon, skopeo or crane needed) to check what was pushed,
and moves a tag by re-putting an existing manifest byte-for-byte (like
`crane tag`), so a tag only ever points at an index that passed its checks.

References in comments:
  [dist]  OCI distribution-spec, https://github.com/opencontainers/distribution-spec/blob/main/spec.md
          ("end-N" are its endpoint ids)
  [image] OCI image-spec, https://github.com/opencontainers/image-spec (descriptor.md, image-index.md, layer.md)
  [ref]   docker's reference grammar, https://github.com/distribution/reference (reference.go, normalize.go)
  [token] https://distribution.github.io/distribution/spec/auth/token/ (and its oauth.md)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import io
import ipaddress
import json
import lzma
import os
import posixpath
import re
import ssl
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from crossbuild import runner
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

# --- media types ([image] media-types.md, plus Docker's schema2 equivalents) ---

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
# [dist] "Pulling manifests": the client SHOULD list the manifest types it understands.
_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)

# buildx stores provenance/SBOM as extra index entries with this annotation
# (https://docs.docker.com/build/metadata/attestations/attestation-storage/).
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_MANIFEST = "attestation-manifest"

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# The key `docker login` writes for Docker Hub in config.json and asks credential helpers for.
_HUB_CONFIG_KEY = "https://index.docker.io/v1/"

_MAX_REDIRECTS = 5
_MAX_SYMLINKS = 8  # like the kernel's ELOOP guard, far below it
_MAX_TAG_PAGES = 1000
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})

# --- references ([ref] grammar) ---------------------------------------------

# domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/, an IPv6 host in brackets, optional port
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
# path-component := alpha-numeric [separator alpha-numeric]*; separator := /[_.]|__|[-]+/
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# tag := /[\w][\w.-]{0,127}/ (ASCII word characters)
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
# A bare 64-hex string is an image ID, which docker refuses as a name.
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
_NAME_MAX = 255  # NameTotalLengthMax
# [image] descriptor.md "Registered algorithms": sha256 and sha512, lowercase hex.
_DIGEST_HEX = {"sha256": 64, "sha512": 128}
_REF_HELP = "use [registry/]repository[:tag][@sha256:<64 hex>], for example ghcr.io/org/app:v1"


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: where the image lives and which manifest."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """The <reference> of the manifests endpoint: the digest wins over the tag ([dist] end-3)."""
        return self.digest or self.tag or "latest"


def _bad_ref(text: str, why: str) -> UserError:
    return UserError(f"invalid image reference {text!r}: {why}")


def _check_digest(text: str, digest: str) -> None:
    algorithm, sep, hexpart = digest.partition(":")
    if not sep or algorithm not in _DIGEST_HEX:
        raise _bad_ref(text, f"digest '{digest}' must be sha256:<64 hex> (or sha512:<128 hex>)")
    size = _DIGEST_HEX[algorithm]
    if not re.fullmatch(rf"[a-f0-9]{{{size}}}", hexpart):
        raise _bad_ref(text, f"{algorithm} digest must be {size} lowercase hex characters")


def _split_registry(text: str, name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain ([ref] normalize.go): the first component is a
    registry only if it has a '.' or ':' or is 'localhost'."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, name
    if registry == "index.docker.io":  # legacyDefaultDomain
        registry = DEFAULT_REGISTRY
    if not _DOMAIN.fullmatch(registry):
        raise _bad_ref(text, f"registry '{registry}' is not a host[:port]")
    if not repository:
        raise _bad_ref(text, "missing repository name after the registry")
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"  # officialRepoPrefix
    for component in repository.split("/"):
        if not component:
            raise _bad_ref(text, "empty path component ('//' or a trailing '/')")
        if component.lower() != component:
            raise _bad_ref(text, "repository names must be lowercase")
        if not _PATH_COMPONENT.fullmatch(component):
            raise _bad_ref(
                text,
                f"path component '{component}' must be lowercase letters and digits separated by '.', '_', '__' or '-'",
            )
    if len(registry) + 1 + len(repository) > _NAME_MAX:
        raise _bad_ref(text, f"name is longer than {_NAME_MAX} characters")
    return registry, repository


def parse_reference(text: str) -> Reference:
    """Parse `[registry/]repository[:tag][@digest]` the way `docker pull` does.

    Raises UserError with one line saying what is wrong.
    """
    raw = text.strip()
    if not raw:
        raise UserError(f"empty image reference: {_REF_HELP}")
    if "://" in raw:
        raise _bad_ref(raw, "drop the URL scheme: a reference starts with the registry host")
    if any(ch.isspace() for ch in raw):
        raise _bad_ref(raw, "contains whitespace")
    if _IMAGE_ID.fullmatch(raw):
        raise _bad_ref(raw, "that is an image ID; name the repository: repository@sha256:<id>")
    name, at, digest_text = raw.partition("@")
    digest: str | None = None
    if at:
        if "@" in digest_text:
            raise _bad_ref(raw, "more than one '@'")
        _check_digest(raw, digest_text)
        digest = digest_text
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise _bad_ref(raw, "empty tag after ':'")
        if not _TAG.fullmatch(tag):
            raise _bad_ref(raw, f"tag '{tag}' must be 1-128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'")
    if not name:
        raise _bad_ref(raw, f"missing repository name; {_REF_HELP}")
    registry, repository = _split_registry(raw, name)
    if tag is None and digest is None:
        tag = "latest"  # TagNameOnly: docker pulls :latest when nothing is named
    return Reference(registry, repository, tag, digest)


def api_host(registry: str) -> str:
    """Where a registry's v2 API answers: Docker Hub serves it on registry-1.docker.io, not docker.io."""
    return DOCKER_HUB_API if registry in ("docker.io", "index.docker.io") else registry


def _hostname(host: str) -> str:
    """host[:port] without the port and IPv6 brackets."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _is_loopback(host: str) -> bool:
    name = _hostname(host).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _strip_scheme(host: str) -> str:
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    return host.split("/", 1)[0]


def _digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def _require_digest(digest: str, what: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    size = _DIGEST_HEX.get(algorithm)
    if size is None or not re.fullmatch(rf"[a-f0-9]{{{size}}}", hexpart):
        raise UserError(f"{what}: '{digest}' is not a sha256:<64 hex> digest")
    return algorithm


def _require_repository(repository: str) -> None:
    if not repository or not all(_PATH_COMPONENT.fullmatch(c) for c in repository.split("/")):
        raise UserError(f"'{repository}' is not a repository name (lowercase path components separated by '/')")


# --- WWW-Authenticate (RFC 7235 section 4.1; [token] "How to authenticate") ---

_HTTP_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - RFC 7230 "token", not a secret
_AUTH_SCHEME = re.compile(rf"[\s,]*({_HTTP_TOKEN})(?=\s|,|$)")
_AUTH_PARAM = re.compile(rf'\s*({_HTTP_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_HTTP_TOKEN}))\s*(?:,|$)')


@dataclass(frozen=True)
class Challenge:
    """One challenge of a WWW-Authenticate header: scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse `Bearer realm="…",service="…",scope="…"` / `Basic realm="…"` (possibly several)."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(value):
        scheme = _AUTH_SCHEME.match(value, pos)
        if scheme is None:
            break
        pos = scheme.end()
        params: dict[str, str] = {}
        while (param := _AUTH_PARAM.match(value, pos)) is not None:
            quoted, plain = param.group(2), param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
            pos = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
    return challenges


# --- credentials (docker's config.json) --------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A login from docker's config; the secrets never appear in repr or messages."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)  # OAuth2 refresh token ([token] oauth.md)


def docker_config_path() -> Path:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json, as the docker CLI reads it."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _config_key_host(key: str) -> str:
    """config.json keys may be URLs (https://index.docker.io/v1/); compare by host."""
    return _strip_scheme(key)


def _aliases(registry: str) -> frozenset[str]:
    return _HUB_NAMES if registry in _HUB_NAMES else frozenset({registry})


def _lookup_credentials(registry: str) -> tuple[Credentials | None, str]:
    """(credentials or None, a note on why none were usable, for the denied message)."""
    try:
        path = docker_config_path()
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, RuntimeError):  # no config file, or no home directory
        return None, ""
    except OSError as exc:
        raise UserError(f"cannot read {exc.filename}: {exc.strerror}; fix it or point DOCKER_CONFIG elsewhere") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); fix it or run `docker login` again"
        ) from None
    if not isinstance(data, dict):
        return None, ""
    names = _aliases(registry)

    def pick(section: object) -> Any:
        if isinstance(section, dict):
            for key, value in section.items():
                if isinstance(key, str) and _config_key_host(key) in names:
                    return value
        return None

    note = ""
    helper = pick(data.get("credHelpers")) or data.get("credsStore")
    if isinstance(helper, str) and helper:
        creds, note = _from_helper(helper, _HUB_CONFIG_KEY if registry in _HUB_NAMES else registry, path)
        if creds is not None:
            return creds, ""
    entry = pick(data.get("auths"))
    if not isinstance(entry, dict):
        return None, note
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        username, sep, password = decoded.partition(":")
        if not sep:
            raise UserError(f"{path}: the saved login for {registry} is malformed; run `docker login {registry}` again")
    token = str(entry.get("identitytoken") or "")
    if token or (username and password):
        return Credentials(username, password, token), ""
    return None, note


def _from_helper(helper: str, server: str, path: Path) -> tuple[Credentials | None, str]:
    """Ask `docker-credential-<helper> get` (the credential-helper protocol: server URL on stdin, JSON out)."""
    exe = f"docker-credential-{helper}"
    if runner.which(exe) is None:
        return None, f"; {path} names credential helper {exe}, which is not installed"
    result = runner.run([exe, "get"], input_text=server, mutates=False, check=False)
    if result.returncode != 0:
        return None, ""  # "credentials not found": anonymous access may still work
    try:
        payload = json.loads(result.stdout)
    except json.JSONDecodeError:
        return None, f"; {exe} did not print JSON"
    if not isinstance(payload, dict):
        return None, f"; {exe} did not print a JSON object"
    username, secret = str(payload.get("Username") or ""), str(payload.get("Secret") or "")
    if not secret:
        return None, ""
    if username == "<token>":  # the helper protocol's marker for an identity token
        return Credentials("", "", secret), ""
    return Credentials(username, secret), ""


def docker_credentials(registry: str) -> Credentials | None:
    """The login docker would use for `registry`: credHelpers, then credsStore, then auths."""
    return _lookup_credentials(registry)[0]


# --- HTTP plumbing ----------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    status: int
    headers: dict[str, list[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""


class _NetworkError(Exception):
    """No HTTP answer at all; `reason` is short and free of credentials.

    `tls_failed`: the TCP connection was made but the TLS handshake broke for another reason than
    an untrusted certificate (e.g. WRONG_VERSION_NUMBER: the other side does not speak TLS).
    """

    def __init__(self, reason: str, tls_failed: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tls_failed = tls_failed


class SpeaksPlainHTTP(UserError):
    """The registry answers plain HTTP where HTTPS was required; callers name their own way to allow it."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"registry {host} speaks plain HTTP, not HTTPS; if that is expected, list it in "
            "[registry] insecure (images and credentials then travel unencrypted)"
        )
        self.host = host


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand so the registry's Authorization never reaches blob storage."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _header_dict(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in items:
        headers.setdefault(name.lower(), []).append(value)
    return headers


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_codes(body: bytes) -> set[str]:
    """The `code`s of a [dist] "Error Codes" body: {"errors": [{"code", "message", "detail"}]}."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    return {str(e.get("code")) for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()


def _error_message(body: bytes) -> str:
    """The registry's own words from an error body, on one line (no headers, so no credentials)."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _one_line(body.decode("utf-8", "replace"), 200)
    parts: list[str] = []
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list):
            for err in errors:
                if isinstance(err, dict):
                    code, message = err.get("code"), err.get("message")
                    parts.append(": ".join(str(p) for p in (code, message) if p))
        for key in ("error", "error_description", "details", "message"):  # token servers ([token] oauth.md)
            if isinstance(data.get(key), str):
                parts.append(str(data[key]))
    return _one_line("; ".join(p for p in parts if p))


def _describe_network_error(exc: BaseException, timeout: float) -> str:
    inner: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate not trusted ({inner.verify_message}); if expected, list the host in [registry] insecure"
        )
    if isinstance(inner, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return _one_line(str(inner) or type(inner).__name__, 200)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} is not valid JSON ({_one_line(str(exc), 120)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} is not a JSON object")
    return data


# --- manifests --------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as the registry holds it (raw) and parsed (data)."""

    media_type: str
    digest: str
    raw: bytes
    data: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return is_index(self.media_type)


def is_index(media_type: str) -> bool:
    """OCI image index or Docker manifest list: a list of per-platform manifests."""
    return media_type.split(";", 1)[0].strip() in INDEX_MEDIA_TYPES


def _manifest_media_type(content_type: str, data: Mapping[str, Any]) -> str:
    """The Content-Type when it names a manifest type, else the body's mediaType ([image] manifest.md)."""
    declared = content_type.split(";", 1)[0].strip()
    if declared in MANIFEST_MEDIA_TYPES:
        return declared
    inner = data.get("mediaType")
    if isinstance(inner, str) and inner:
        return inner
    if data.get("schemaVersion") == 1 or "schema1" in declared or "prettyjws" in declared:
        return declared or "application/vnd.docker.distribution.manifest.v1+json"
    # mediaType is optional in OCI manifests; the shape tells index from image.
    return OCI_INDEX if "manifests" in data else OCI_MANIFEST


class RegistryClient:
    """Talks to registries over HTTPS, or plain HTTP for loopback and `insecure` hosts.

    Tokens are cached per (registry, scope) for the client's lifetime (within their expiry).
    """

    def __init__(self, insecure: Iterable[str] = (), timeout: float = 30) -> None:
        self.insecure = frozenset(_strip_scheme(h) for h in insecure if h)
        self.timeout = timeout
        self._schemes: dict[str, str] = {}
        self._auth: dict[tuple[str, str], tuple[str, float]] = {}  # (registry, scope) -> (header, expiry)
        self._creds: dict[str, tuple[Credentials | None, str]] = {}
        self._openers: dict[tuple[bool, bool], urllib.request.OpenerDirector] = {}

    # -- transport --

    def is_insecure(self, host: str) -> bool:
        """Loopback hosts and [registry] insecure entries (with or without the port) skip TLS checks."""
        return _is_loopback(host) or host in self.insecure or _hostname(host) in self.insecure

    def _opener(self, verify_tls: bool, use_proxy: bool) -> urllib.request.OpenerDirector:
        key = (verify_tls, use_proxy)
        if key not in self._openers:
            context = ssl.create_default_context()
            if not verify_tls:  # self-signed certificates on hosts the user listed as insecure
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=context), _NoRedirect()]
            if not use_proxy:  # a loopback registry must not go through $http_proxy
                handlers.append(urllib.request.ProxyHandler({}))
            self._openers[key] = urllib.request.build_opener(*handlers)
        return self._openers[key]

    def _raw(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None = None) -> _Response:
        """One HTTP exchange; any status is returned, only 'no answer' raises _NetworkError."""
        host = urllib.parse.urlsplit(url).netloc
        # Only http(s) URLs get here: built from a registry host, a token realm or a redirect we checked.
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)  # noqa: S310
        opener = self._opener(not self.is_insecure(host), not _is_loopback(host))
        try:
            with opener.open(request, timeout=self.timeout) as resp:
                body = bytes(resp.read())
                return _Response(int(resp.status), _header_dict(resp.headers.items()), body)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            return _Response(exc.code, _header_dict(exc.headers.items() if exc.headers else []), body)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            inner = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            tls_failed = isinstance(inner, ssl.SSLError) and not isinstance(inner, ssl.SSLCertVerificationError)
            raise _NetworkError(_describe_network_error(exc, self.timeout), tls_failed) from exc

    def _unreachable(self, host: str, reason: str) -> UserError:
        if _is_loopback(host) and host.rsplit(":", 1)[-1] == "5000":
            hint = "start it with `make registry.up` or check the address"
        elif _is_loopback(host):
            hint = "start a registry there or check the address (REGISTRY_PREFIX)"
        else:
            hint = "check the address and your network or proxy settings"
        return UserError(f"registry {host} is not reachable: {reason}; {hint}")

    def probe(self, host: str) -> str:
        """'http' or 'https', whichever answers GET /v2/ ([dist] end-1: 200, or 401 when auth is needed).

        Loopback hosts try plain HTTP first, other insecure hosts HTTPS (unverified) first like
        dockerd; other hosts only HTTPS.
        """
        order: tuple[str, ...] = ("https",)
        if _is_loopback(host):
            order = ("http", "https")
        elif self.is_insecure(host):
            order = ("https", "http")
        reasons = []
        tls_failed = False
        for scheme in order:
            try:
                resp = self._raw("GET", f"{scheme}://{api_host(host)}/v2/", {})
            except _NetworkError as exc:
                reasons.append(f"{scheme}: {exc.reason}" if len(order) > 1 else exc.reason)
                tls_failed = tls_failed or (scheme == "https" and exc.tls_failed)
                continue
            if resp.status in (200, 401):
                self._schemes[host] = scheme
                return scheme
            reasons.append(f"{scheme}: GET /v2/ answered HTTP {resp.status}, not a registry")
        if tls_failed and "http" not in order and self._answers_plain_http(host):
            raise SpeaksPlainHTTP(host)
        raise self._unreachable(host, ", ".join(reasons))

    def _answers_plain_http(self, host: str) -> bool:
        """Whether GET /v2/ over plain HTTP gets a registry's answer: only to explain a broken TLS handshake
        (no credentials are sent, and the answer is not used for anything else)."""
        try:
            resp = self._raw("GET", f"http://{api_host(host)}/v2/", {})
        except _NetworkError:
            return False
        return resp.status in (200, 401)

    def _scheme(self, registry: str) -> str:
        if registry not in self._schemes:
            if not self.is_insecure(registry):
                return "https"
            self.probe(registry)
        return self._schemes[registry]

    def _follow(self, method: str, registry: str, url: str, headers: dict[str, str], data: bytes | None) -> _Response:
        """Send, following redirects ([dist] end-2: blobs may redirect to storage) without leaking auth."""
        headers = dict(headers)
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                resp = self._raw(method, url, headers, data)
            except _NetworkError as exc:
                host = urllib.parse.urlsplit(url).netloc
                if host == api_host(registry):
                    if exc.tls_failed and url.startswith("https://") and self._answers_plain_http(registry):
                        raise SpeaksPlainHTTP(registry) from exc
                    raise self._unreachable(registry, exc.reason) from exc
                raise UserError(
                    f"storage {host} that registry {registry} redirected to is not reachable: {exc.reason}"
                ) from exc
            location = resp.header("location")
            if resp.status not in _REDIRECT_CODES or not location:
                return resp
            target = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(target).scheme not in ("http", "https"):
                raise UserError(f"registry {registry} redirected {method} {url.partition('?')[0]} to a non-HTTP URL")
            if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                headers.pop("Authorization", None)  # signed storage URLs carry their own auth
            if resp.status == 303 and method != "HEAD":
                method, data = "GET", None
            url = target
        raise UserError(
            f"registry {registry}: more than {_MAX_REDIRECTS} redirects for {method} {url.partition('?')[0]}"
        )

    # -- auth ([token]) --

    def _credentials(self, registry: str) -> tuple[Credentials | None, str]:
        if registry not in self._creds:
            self._creds[registry] = _lookup_credentials(registry)
        return self._creds[registry]

    def _cached_auth(self, registry: str, scope: str) -> str | None:
        for key in ((registry, scope), (registry, "")):
            cached = self._auth.get(key)
            if cached is not None:
                if cached[1] > time.monotonic():
                    return cached[0]
                del self._auth[key]
        return None

    def _authorize(self, registry: str, scope: str, resp: _Response) -> str:
        """Answer a 401's challenge: fetch a bearer token, or use Basic auth, and cache the header."""
        challenges = parse_www_authenticate(", ".join(resp.headers.get("www-authenticate", [])))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        creds, note = self._credentials(registry)
        if bearer is not None:
            scopes = list(dict.fromkeys(s for s in (scope, bearer.params.get("scope", "")) if s))
            token, ttl = self._fetch_token(registry, bearer, scopes, creds, note)
            header, key = f"Bearer {token}", (registry, scope)
        elif basic is not None:
            if creds is None or not creds.password:
                raise UserError(f"registry {registry} requires a login: run `docker login {registry}`{note}")
            userpass = f"{creds.username}:{creds.password}".encode()
            header, key, ttl = f"Basic {base64.b64encode(userpass).decode()}", (registry, ""), float("inf")
        else:
            offered = ", ".join(c.scheme for c in challenges) or "nothing"
            raise UserError(f"registry {registry} asks for authentication crossbuild cannot do ({offered})")
        self._auth[key] = (header, time.monotonic() + ttl)
        return header

    def _fetch_token(
        self, registry: str, challenge: Challenge, scopes: list[str], creds: Credentials | None, note: str
    ) -> tuple[str, float]:
        """GET realm?service=&scope= (with Basic auth when logged in), or POST a refresh token ([token] oauth.md)."""
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"registry {registry} sent a bearer challenge without a usable realm URL")
        service = challenge.params.get("service", "")
        query: list[tuple[str, str]] = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        if creds is not None and creds.identity_token:
            form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.identity_token),
                ("client_id", "crossbuild"),
            ]
            body = urllib.parse.urlencode(form + query).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            method, url, data = "POST", realm, body
        else:
            headers = {}
            if creds is not None and creds.password:
                userpass = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = f"Basic {base64.b64encode(userpass).decode()}"
            sep = "&" if parts.query else "?"
            method, url, data = "GET", realm + (sep + urllib.parse.urlencode(query) if query else ""), None
        try:
            resp = self._raw(method, url, headers, data)
        except _NetworkError as exc:
            raise UserError(
                f"token service {parts.netloc} of registry {registry} is not reachable: {exc.reason}"
            ) from exc
        if resp.status in (401, 403):
            if creds is None:
                raise UserError(f"registry {registry} requires a login: run `docker login {registry}`{note}")
            raise UserError(
                f"registry {registry} refused the saved login (HTTP {resp.status} from {parts.netloc}); "
                f"run `docker login {registry}` again"
            )
        if resp.status != 200:
            message = _error_message(resp.body)
            raise UserError(
                f"token service {parts.netloc} of registry {registry} answered HTTP {resp.status}"
                + (f": {message}" if message else "")
            )
        payload = _json_object(resp.body, f"token from {parts.netloc}")
        token = payload.get("token") or payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise UserError(f"token service {parts.netloc} of registry {registry} returned no token")
        expires = payload.get("expires_in")
        # [token] "expires_in ... If omitted, 60 seconds"; renew a little early.
        lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else 60.0
        return token, lifetime * 0.9

    # -- requests --

    def _request(
        self,
        method: str,
        registry: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> _Response:
        """A v2 API call with auth: on 401 answer the challenge and retry once."""
        url = f"{self._scheme(registry)}://{api_host(registry)}{path}"
        send = dict(headers or {})
        cached = self._cached_auth(registry, scope)
        if cached:
            send["Authorization"] = cached
        resp = self._follow(method, registry, url, send, data)
        if resp.status == 401:
            send["Authorization"] = self._authorize(registry, scope, resp)
            resp = self._follow(method, registry, url, send, data)
        return resp

    def _fail(self, resp: _Response, registry: str, what: str, action: str = "pull") -> UserError:
        """A one-line error for an unexpected status: code, the registry's message and a fix."""
        message = _error_message(resp.body)
        detail = f"HTTP {resp.status}" + (f": {message}" if message else "")
        if resp.status in (401, 403):
            _, note = self._credentials(registry)
            return UserError(
                f"registry {registry} denied {action} access to {what} ({detail}); the repository may not exist, "
                f"or run `docker login {registry}` with an account that may {action} it{note}"
            )
        return UserError(f"registry {registry} answered {detail} for {what}")

    @staticmethod
    def _scope(repository: str, actions: str = "pull") -> str:
        return f"repository:{repository}:{actions}"  # [token] "Requesting a Token": resource scope

    def get_manifest(self, ref: Reference) -> Manifest:
        """GET a manifest or index ([dist] end-3), verifying its digest when the ref names one."""
        resp = self._request(
            "GET",
            ref.registry,
            f"/v2/{ref.repository}/manifests/{ref.reference}",
            scope=self._scope(ref.repository),
            headers={"Accept": _ACCEPT},
        )
        # [dist] end-3: 404, with MANIFEST_UNKNOWN or NAME_UNKNOWN ("Error Codes") in the body.
        if resp.status == 404 or (
            resp.status >= 400 and _error_codes(resp.body) & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
        ):
            raise UserError(f"image {ref} not found in {ref.registry}")
        if resp.status != 200:
            raise self._fail(resp, ref.registry, f"image {ref}")
        raw = resp.body
        if ref.digest:
            # [dist] "Pulling manifests": clients SHOULD verify the content against the digest asked for.
            actual = _digest_of(raw, ref.digest.split(":", 1)[0])
            if actual != ref.digest:
                raise UserError(f"registry {ref.registry} returned content hashing to {actual} for {ref}; refusing it")
            digest = ref.digest
        else:
            digest = resp.header("docker-content-digest") or _digest_of(raw)
        data = _json_object(raw, f"manifest of {ref}")
        media_type = _manifest_media_type(resp.header("content-type"), data)
        return Manifest(media_type, digest, raw, data)

    def manifest_exists(self, ref: Reference) -> str | None:
        """HEAD the manifest ([dist] "Checking if content exists"): its digest, or None when absent."""
        resp = self._request(
            "HEAD",
            ref.registry,
            f"/v2/{ref.repository}/manifests/{ref.reference}",
            scope=self._scope(ref.repository),
            headers={"Accept": _ACCEPT},
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._fail(resp, ref.registry, f"image {ref}")
        digest = resp.header("docker-content-digest")
        if ref.digest:
            return ref.digest
        return digest or self.get_manifest(ref).digest  # the header is only a SHOULD

    def get_blob(self, registry: str, repository: str, digest: str) -> bytes:
        """GET a blob ([dist] end-2), following redirects, and verify its digest."""
        _require_repository(repository)
        algorithm = _require_digest(digest, f"blob of {registry}/{repository}")
        resp = self._request("GET", registry, f"/v2/{repository}/blobs/{digest}", scope=self._scope(repository))
        if resp.status == 404:
            raise UserError(f"blob {digest} not found in {registry}/{repository}")
        if resp.status != 200:
            raise self._fail(resp, registry, f"blob {digest} of {registry}/{repository}")
        actual = _digest_of(resp.body, algorithm)
        if actual != digest:
            raise UserError(
                f"blob {digest} of {registry}/{repository} has the wrong content (it hashes to {actual}); "
                "the registry's storage may be corrupt: push the image again"
            )
        return resp.body

    def get_json_blob(self, registry: str, repository: str, digest: str) -> dict[str, Any]:
        """A JSON blob such as an image config ([image] config.md)."""
        return _json_object(self.get_blob(registry, repository, digest), f"blob {digest} of {registry}/{repository}")

    def put_manifest(self, registry: str, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """PUT `raw` under a tag or digest ([dist] end-7) and return its digest.

        The bytes are sent unchanged, so tagging an existing manifest keeps its digest.
        """
        _require_repository(repository)
        if ":" in reference:
            _require_digest(reference, f"manifest of {registry}/{repository}")
        elif not _TAG.fullmatch(reference):
            raise UserError(f"tag '{reference}' must be 1-128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'")
        resp = self._request(
            "PUT",
            registry,
            f"/v2/{repository}/manifests/{reference}",
            scope=self._scope(repository, "pull,push"),
            headers={"Content-Type": media_type},
            data=raw,
        )
        if resp.status not in (200, 201):
            raise self._fail(resp, registry, f"{registry}/{repository}:{reference}", action="push")
        computed = _digest_of(raw)
        stored = resp.header("docker-content-digest")
        if stored.startswith("sha256:") and stored != computed:
            raise UserError(
                f"registry {registry} stored {registry}/{repository}:{reference} as {stored}, "
                f"not the {computed} it was sent; it rewrites manifests, so tags cannot be moved byte-for-byte"
            )
        return stored or computed

    def probe_push(self, registry: str, repository: str) -> None:
        """Fail now, not after a build, when this login may not push to `repository`.

        Starts a blob upload ([dist] end-4a: POST, 202 Accepted with a Location) and
        cancels it at once ([dist] end-12: DELETE the upload), which writes nothing.
        """
        _require_repository(repository)
        scope = self._scope(repository, "pull,push")
        resp = self._request("POST", registry, f"/v2/{repository}/blobs/uploads/", scope=scope, data=b"")
        if resp.status in (401, 403):
            _, note = self._credentials(registry)
            reason = "Unauthorized" if resp.status == 401 else "Forbidden"
            raise UserError(
                f"{resp.status} {reason} for {registry}: this login may not push to {repository}; "
                f"run `docker login {registry}` with an account that may push there{note}"
            )
        if resp.status != 202:
            raise self._fail(resp, registry, f"an upload to {registry}/{repository}", action="push")
        location = resp.header("location")
        if location:
            target = urllib.parse.urljoin(f"{self._scheme(registry)}://{api_host(registry)}/", location)
            path = urllib.parse.urlsplit(target)
            self._request(
                "DELETE", registry, path.path + (f"?{path.query}" if path.query else ""), scope=scope
            )  # best effort: a registry may keep an abandoned upload until it purges it

    def list_tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of a repository ([dist] end-8a/8b, following Link rel="next" pages); [] if it does not exist."""
        _require_repository(repository)
        path = f"/v2/{repository}/tags/list"
        tags: list[str] = []
        for _ in range(_MAX_TAG_PAGES):
            resp = self._request("GET", registry, path, scope=self._scope(repository))
            if resp.status == 404:
                return tags
            if resp.status != 200:
                raise self._fail(resp, registry, f"tags of {registry}/{repository}")
            data = _json_object(resp.body, f"tag list of {registry}/{repository}")
            tags += [str(t) for t in data.get("tags") or []]
            match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', resp.header("link"))
            if match is None:
                return tags
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(path, match.group(1)))
            following = parts.path + (f"?{parts.query}" if parts.query else "")
            if following == path or not following.startswith("/v2/"):
                return tags
            path = following
        return tags

    def extract_file(
        self, registry: str, repository: str, image_manifest_data: Mapping[str, Any], path_in_image: str
    ) -> bytes | None:
        """Method form of `extract_file` (module level) for callers holding a client."""
        return extract_file(self, registry, repository, image_manifest_data, path_in_image)


# --- index and platform helpers ---------------------------------------------

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386"}


def normalise_platform(os_: str, arch: str, variant: str = "") -> Platform:
    """Spell an image platform the way crossbuild.platforms does ([image] image-index.md variants).

    arm64/v8 -> arm64, amd64/v1 -> amd64, arm without a variant -> arm/v7 (containerd's default).
    """
    os_, arch, variant = os_.lower(), arch.lower(), variant.lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm":
        variant = variant or "v7"
    elif (arch == "arm64" and variant in ("v8", "v8.0")) or (arch == "amd64" and variant == "v1"):
        variant = ""
    return Platform(os_, arch, variant)


def platform_of_config(config: Mapping[str, Any]) -> Platform:
    """The platform an image config declares in os / architecture / variant ([image] config.md)."""
    os_, arch = config.get("os"), config.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        raise UserError("image config has no os/architecture: it is not a container image")
    variant = config.get("variant")
    return normalise_platform(os_, arch, variant if isinstance(variant, str) else "")


@dataclass(frozen=True)
class PlatformEntry:
    """One manifest of an index; platform is None for attestations and entries without one."""

    platform: Platform | None
    digest: str
    media_type: str
    size: int
    is_attestation: bool


def index_entries(manifest_data: Mapping[str, Any]) -> list[PlatformEntry]:
    """The entries of an OCI index or Docker manifest list, in order, attestations flagged."""
    manifests = manifest_data.get("manifests")
    if not isinstance(manifests, list):
        raise UserError("not an image index: it has no 'manifests' list")
    entries = []
    for number, item in enumerate(manifests, 1):
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            raise UserError(f"image index entry {number} has no digest")
        plat = item.get("platform")
        plat = plat if isinstance(plat, dict) else {}
        annotations = item.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else {}
        os_, arch = str(plat.get("os") or ""), str(plat.get("architecture") or "")
        is_attestation = (os_, arch) == ("unknown", "unknown") or (
            annotations.get(ATTESTATION_ANNOTATION) == ATTESTATION_MANIFEST
        )
        platform = None
        if not is_attestation and os_ and arch and "unknown" not in (os_, arch):
            platform = normalise_platform(os_, arch, str(plat.get("variant") or ""))
        size = item.get("size")
        entries.append(
            PlatformEntry(
                platform=platform,
                digest=item["digest"],
                media_type=str(item.get("mediaType") or ""),
                size=size if isinstance(size, int) else 0,
                is_attestation=is_attestation,
            )
        )
    return entries


def _config_digest(manifest: Manifest, ref: Reference) -> str:
    config = manifest.data.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str):
        raise UserError(f"image {ref} ({manifest.media_type}) has no config: it is not a container image manifest")
    return digest


def platforms_of(client: RegistryClient, ref: Reference) -> list[Platform]:
    """The platforms a tag offers: an index's image entries, or a single image's config platform."""
    manifest = client.get_manifest(ref)
    if manifest.is_index:
        found = [e.platform for e in index_entries(manifest.data) if not e.is_attestation and e.platform is not None]
        return list(dict.fromkeys(found))  # Windows indexes repeat a platform per os.version
    config = client.get_json_blob(ref.registry, ref.repository, _config_digest(manifest, ref))
    return [platform_of_config(config)]


def image_for_platform(client: RegistryClient, ref: Reference, platform: Platform) -> tuple[Manifest, dict[str, Any]]:
    """The image manifest and config JSON that a pull of `ref` for `platform` gets."""
    want = normalise_platform(platform.os, platform.arch, platform.variant)
    manifest = client.get_manifest(ref)
    if manifest.is_index:
        entries = [e for e in index_entries(manifest.data) if not e.is_attestation and e.platform is not None]
        match = next((e for e in entries if e.platform == want), None)
        if match is None:
            offered = ", ".join(str(e.platform) for e in entries) or "no platforms"
            raise UserError(f"image {ref} has no {want} image; it has {offered}")
        manifest = client.get_manifest(Reference(ref.registry, ref.repository, None, match.digest))
        if manifest.is_index:
            raise UserError(f"image {ref}: the {want} entry is itself an index, which crossbuild does not nest")
        config = client.get_json_blob(ref.registry, ref.repository, _config_digest(manifest, ref))
        return manifest, config
    config = client.get_json_blob(ref.registry, ref.repository, _config_digest(manifest, ref))
    actual = platform_of_config(config)
    if actual != want:
        raise UserError(f"image {ref} is a single {actual} image, not {want}")
    return manifest, config


# --- reading a file out of the layers ([image] layer.md) ----------------------


class BlobReader(Protocol):
    """What extract_file needs from a client (tests pass a stub)."""

    def get_blob(self, registry: str, repository: str, digest: str) -> bytes: ...


@dataclass(frozen=True)
class _Found:
    data: bytes


@dataclass(frozen=True)
class _Redirect:
    path: str  # a symlink: look this path up instead, from the top layer


@dataclass(frozen=True)
class _Hidden:
    """A whiteout, opaque directory or non-file shadows the lower layers."""


_HIDDEN = _Hidden()


def _clean_path(path: str) -> str:
    """Image paths as layer tars name them: relative, no '.', '..' or '//'."""
    return posixpath.normpath("/" + path).lstrip("/")


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _scan_layer(blob: bytes, path: str) -> _Found | _Redirect | _Hidden | None:
    """What one layer says about `path`: the file, a symlink to follow, hidden, or nothing."""
    ancestors = _ancestors(path)
    # [image] layer.md "Whiteouts": `.wh.<name>` deletes name; `.wh..wh..opq` empties a directory below.
    whiteouts = {posixpath.join(posixpath.dirname(p), ".wh." + posixpath.basename(p)) for p in [*ancestors, path]}
    opaque = {posixpath.join(a, ".wh..wh..opq") for a in ancestors}
    target: tarfile.TarInfo | None = None
    parents: dict[str, tarfile.TarInfo] = {}
    hidden = False
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        for member in tar:
            name = _clean_path(member.name)
            if name == path:
                target = member  # a later entry for the same name wins, as on extraction
            elif name in whiteouts or name in opaque:
                hidden = True
            elif name in ancestors and not member.isdir():
                parents[name] = member
        if target is not None:
            if target.issym():
                base = "" if target.linkname.startswith("/") else posixpath.dirname(path)
                return _Redirect(_clean_path(posixpath.join(base, target.linkname)))
            if target.isfile() or target.islnk():
                handle = tar.extractfile(target)
                if handle is None:
                    return _HIDDEN
                with handle:
                    return _Found(handle.read())
            return _HIDDEN
    if hidden:
        return _HIDDEN
    if parents:
        top = min(parents, key=len)  # the outermost replaced directory decides
        member = parents[top]
        if member.issym():
            base = "" if member.linkname.startswith("/") else posixpath.dirname(top)
            return _Redirect(_clean_path(posixpath.join(base, member.linkname, path[len(top) + 1 :])))
        return _HIDDEN
    return None


def extract_file(
    client: BlobReader, registry: str, repository: str, image_manifest_data: Mapping[str, Any], path_in_image: str
) -> bytes | None:
    """Read one file of an image from its layers, top layer first, without a docker daemon.

    Honours whiteouts and follows symlinks (the file's or a parent directory's) within the
    image; returns None when the path is absent, deleted or not a regular file.
    """
    layers = image_manifest_data.get("layers")
    if not isinstance(layers, list):
        raise UserError(f"{registry}/{repository}: the manifest has no layers list (is it an index?)")
    descriptors: list[tuple[str, str]] = []
    for layer in reversed(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("digest"), str):
            raise UserError(f"{registry}/{repository}: a layer descriptor has no digest")
        descriptors.append((layer["digest"], str(layer.get("mediaType") or "")))
    blobs: dict[str, bytes] = {}
    path = _clean_path(path_in_image)
    for _ in range(_MAX_SYMLINKS + 1):
        result: _Found | _Redirect | _Hidden | None = None
        for digest, media_type in descriptors:
            if "zstd" in media_type:
                raise UserError(
                    f"layer {digest} of {registry}/{repository} is zstd-compressed ({media_type}); crossbuild "
                    "reads gzip and uncompressed layers only: push with compression=gzip"
                )
            if digest not in blobs:
                blobs[digest] = client.get_blob(registry, repository, digest)
            try:
                result = _scan_layer(blobs[digest], path)
            except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                raise UserError(
                    f"layer {digest} of {registry}/{repository} is not a readable tar ({_one_line(str(exc), 120)})"
                ) from exc
            if result is not None:
                break
        if isinstance(result, _Found):
            return result.data
        if not isinstance(result, _Redirect):
            return None
        path = result.path
    raise UserError(f"{path_in_image} in {registry}/{repository}: more than {_MAX_SYMLINKS} levels of symbolic links")
