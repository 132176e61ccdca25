"""Logging in to registries as docker does: WWW-Authenticate challenges, docker's config.json and
credential helpers, bearer tokens (cached per registry and scope) and Basic auth.

References:
  [token] https://distribution.github.io/distribution/spec/auth/token/ (and its oauth.md)
  RFC 7235 section 4.1 (WWW-Authenticate)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossbuild import hosts, runner
from crossbuild.errors import UserError
from crossbuild.oci.errors import Denied, RegistryError, Unreachable, error_message, one_line
from crossbuild.oci.transport import NoAnswer, Response, Transport

# The key `docker login` writes for Docker Hub in config.json and asks credential helpers for.
HUB_CONFIG_KEY = "https://index.docker.io/v1/"

# --- WWW-Authenticate --------------------------------------------------------------------

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


# --- docker's config.json and credential helpers ----------------------------------------


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


def _aliases(registry: str) -> frozenset[str]:
    return hosts.HUB_NAMES if registry in hosts.HUB_NAMES else frozenset({registry})


def lookup_credentials(registry: str) -> tuple[Credentials | None, str]:
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
                # config.json keys may be URLs (https://index.docker.io/v1/); compare by host
                if isinstance(key, str) and hosts.strip_scheme(key) in names:
                    return value
        return None

    note = ""
    helper = pick(data.get("credHelpers")) or data.get("credsStore")
    if isinstance(helper, str) and helper:
        creds, note = _from_helper(helper, HUB_CONFIG_KEY if registry in hosts.HUB_NAMES else registry, path)
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
    return lookup_credentials(registry)[0]


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


# --- answering challenges -----------------------------------------------------------------


class Authorizer:
    """The Authorization header for (registry, scope): cached, or earned by answering a 401's challenge.

    Credentials are read once per registry; tokens live until shortly before their expiry.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._auth: dict[tuple[str, str], tuple[str, float]] = {}  # (registry, scope) -> (header, expiry)
        self._creds: dict[str, tuple[Credentials | None, str]] = {}
        self._lock = threading.Lock()

    def credentials(self, registry: str) -> tuple[Credentials | None, str]:
        """(the login docker would use, a note on why there is none) for `registry`."""
        with self._lock:
            if registry not in self._creds:
                self._creds[registry] = lookup_credentials(registry)
            return self._creds[registry]

    def login_note(self, registry: str) -> str:
        """Why no saved login was usable ("" when there is one or nothing is known), for Denied messages."""
        return self.credentials(registry)[1]

    def cached(self, registry: str, scope: str) -> str | None:
        """A still-valid header for this scope, or a registry-wide one (Basic)."""
        with self._lock:
            for key in ((registry, scope), (registry, "")):
                cached = self._auth.get(key)
                if cached is not None:
                    if cached[1] > time.monotonic():
                        return cached[0]
                    del self._auth[key]
        return None

    def answer(self, registry: str, scope: str, resp: Response, reference: str = "") -> str:
        """Answer a 401's challenge: fetch a bearer token, or use Basic auth, and cache the header."""
        challenges = parse_www_authenticate(", ".join(resp.headers.get("www-authenticate", [])))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        creds, note = self.credentials(registry)
        if bearer is not None:
            scopes = list(dict.fromkeys(s for s in (scope, bearer.params.get("scope", "")) if s))
            token, ttl = self._fetch_token(registry, bearer, scopes, creds, note)
            header, key = f"Bearer {token}", (registry, scope)
        elif basic is not None:
            if creds is None or not creds.password:
                raise _needs_login(registry, note)
            header, key, ttl = _basic(creds), (registry, ""), float("inf")
        else:
            offered = ", ".join(c.scheme for c in challenges) or "nothing"
            raise Denied(
                f"registry {registry} asks for authentication crossbuild cannot do ({offered})",
                host=registry,
                reason=f"unsupported authentication ({offered})",
            )
        with self._lock:
            self._auth[key] = (header, time.monotonic() + ttl)
        return header

    def _fetch_token(
        self, registry: str, challenge: Challenge, scopes: list[str], creds: Credentials | None, note: str
    ) -> tuple[str, float]:
        """GET realm?service=&scope= (with Basic auth when logged in), or POST a refresh token ([token] oauth.md)."""
        realm = challenge.params.get("realm", "")
        parts = urllib.parse.urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(
                f"registry {registry} sent a bearer challenge without a usable realm URL",
                host=registry,
                reason="bearer challenge without a realm",
            )
        service = challenge.params.get("service", "")
        query: list[tuple[str, str]] = [("service", service)] if service else []
        query += [("scope", s) for s in scopes]
        headers: dict[str, str] = {}
        data: bytes | None = None
        if creds is not None and creds.identity_token:
            form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.identity_token),
                ("client_id", "crossbuild"),
            ]
            data = urllib.parse.urlencode(form + query).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            method, url = "POST", realm
        else:
            if creds is not None and creds.password:
                headers["Authorization"] = _basic(creds)
            sep = "&" if parts.query else "?"
            method, url = "GET", realm + (sep + urllib.parse.urlencode(query) if query else "")
        try:
            resp = self.transport.exchange(method, url, headers, data)
        except NoAnswer as exc:
            raise Unreachable(
                f"token service {parts.netloc} of registry {registry} is not reachable: {exc.reason}",
                host=registry,
                reason=exc.reason,
            ) from exc
        if resp.status in (401, 403):
            if creds is None:
                raise _needs_login(registry, note)
            raise Denied(
                f"registry {registry} refused the saved login (HTTP {resp.status} from {parts.netloc}); "
                f"run `docker login {registry}` again",
                host=registry,
                reason=f"login refused (HTTP {resp.status})",
            )
        if resp.status != 200:
            message = error_message(resp.body)
            raise RegistryError(
                f"token service {parts.netloc} of registry {registry} answered HTTP {resp.status}"
                + (f": {message}" if message else ""),
                host=registry,
                reason=f"token service answered HTTP {resp.status}",
            )
        payload = _token_payload(resp.body, parts.netloc, registry)
        token = payload.get("token") or payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"token service {parts.netloc} of registry {registry} returned no token",
                host=registry,
                reason="no token",
            )
        expires = payload.get("expires_in")
        # [token] "expires_in ... If omitted, 60 seconds"; renew a little early.
        lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else 60.0
        return token, lifetime * 0.9


def _needs_login(registry: str, note: str) -> Denied:
    return Denied(
        f"registry {registry} requires a login: run `docker login {registry}`{note}",
        host=registry,
        reason="login required",
    )


def _token_payload(raw: bytes, netloc: str, registry: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(
            f"token from {netloc} is not valid JSON ({one_line(str(exc), 120)})", host=registry, reason="bad token"
        ) from None
    if not isinstance(data, dict):
        raise RegistryError(f"token from {netloc} is not a JSON object", host=registry, reason="bad token")
    return data
