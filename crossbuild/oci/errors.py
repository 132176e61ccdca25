"""What can go wrong talking to a registry, as types a caller can react to.

Every registry failure is a `RegistryError` (a `UserError`, so front ends still print its one
line and exit non-zero) carrying `host`, `reference` (the image, manifest or blob asked for,
"" when the failure is not about one) and `reason` (a short phrase: "Connection refused",
"HTTP 404", "hashes to sha256:..."). Callers decide with `isinstance` and these attributes,
never by reading the message.

  Unreachable     no usable answer from the registry (refused, timed out, TLS failure, not a registry)
  SpeaksPlainHTTP an Unreachable whose cause is known: HTTP where HTTPS was required
  NotFound        the registry answered that the manifest, blob or repository does not exist
  Denied          the registry (or its token service) refused this login, or asked for one
  CorruptContent  bytes that do not hash to the digest they were asked for, or are not what they claim
"""

from __future__ import annotations

import json
from typing import ClassVar

from crossbuild.errors import UserError


class RegistryError(UserError):
    """A registry failure; the message is the one line users see, the attributes are for code."""

    # Whether the message names `reference` itself (callers listing many images then need no prefix).
    names_reference: ClassVar[bool] = True

    def __init__(self, message: str, *, host: str, reference: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.host = host
        self.reference = reference
        self.reason = reason


class Unreachable(RegistryError):
    """No usable answer from the registry at all; the message is about the host, not the image."""

    names_reference = False


class SpeaksPlainHTTP(Unreachable):
    """The registry answers plain HTTP where HTTPS was required; callers name their own way to allow it."""

    def __init__(self, host: str, reference: str = "") -> None:
        super().__init__(
            f"registry {host} speaks plain HTTP, not HTTPS; if that is expected, list it in "
            "[registry] insecure (images and credentials then travel unencrypted)",
            host=host,
            reference=reference,
            reason="speaks plain HTTP, not HTTPS",
        )


class NotFound(RegistryError):
    """The manifest, blob or repository does not exist (or is not visible to this login)."""


class Denied(RegistryError):
    """This login may not do what was asked, or the registry wants a login it does not have."""


class CorruptContent(RegistryError):
    """Content that does not match its digest, or that is not the JSON / media type it must be."""


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace folded, cut to `limit` characters: registry and token-server words inside our one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_codes(body: bytes) -> set[str]:
    """The `code`s of a [dist] "Error Codes" body: {"errors": [{"code", "message", "detail"}]}."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    return {str(e.get("code")) for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()


def error_message(body: bytes) -> str:
    """The registry's own words from an error body, on one line (no headers, so no credentials)."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return one_line(body.decode("utf-8", "replace"), 200)
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
    return one_line("; ".join(p for p in parts if p))
