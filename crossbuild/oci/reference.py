"""Image references as `docker pull` reads them: `[registry/]repository[:tag][@digest]`.

References in comments:
  [ref]   docker's reference grammar, https://github.com/distribution/reference (reference.go, normalize.go)
  [dist]  OCI distribution-spec spec.md ("end-N" are its endpoint ids)
  [image] OCI image-spec descriptor.md
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from crossbuild.errors import UserError
from crossbuild.hosts import DEFAULT_REGISTRY

# domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/, an IPv6 host in brackets, optional port
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
# path-component := alpha-numeric [separator alpha-numeric]*; separator := /[_.]|__|[-]+/
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# tag := /[\w][\w.-]{0,127}/ (ASCII word characters)
TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
TAG_HELP = "must be 1-128 of A-Z a-z 0-9 _ . - and not start with '.' or '-'"
# A bare 64-hex string is an image ID, which docker refuses as a name.
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")
_NAME_MAX = 255  # NameTotalLengthMax
# [image] descriptor.md "Registered algorithms": sha256 and sha512, lowercase hex.
DIGEST_HEX = {"sha256": 64, "sha512": 128}
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

    def at(self, digest: str) -> Reference:
        """The same repository, pinned to `digest` (an index entry, a child manifest)."""
        return Reference(self.registry, self.repository, None, digest)


class InvalidReference(UserError):
    """A reference that does not follow the grammar; `why` says which rule it breaks."""

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f"invalid image reference {text!r}: {why}")
        self.text = text
        self.why = why


def _bad_ref(text: str, why: str) -> InvalidReference:
    return InvalidReference(text, why)


def _check_digest(text: str, digest: str) -> None:
    algorithm, sep, hexpart = digest.partition(":")
    if not sep or algorithm not in DIGEST_HEX:
        raise _bad_ref(text, f"digest '{digest}' must be sha256:<64 hex> (or sha512:<128 hex>)")
    size = DIGEST_HEX[algorithm]
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
        if not TAG.fullmatch(tag):
            raise _bad_ref(raw, f"tag '{tag}' {TAG_HELP}")
    if not name:
        raise _bad_ref(raw, f"missing repository name; {_REF_HELP}")
    registry, repository = _split_registry(raw, name)
    if tag is None and digest is None:
        tag = "latest"  # TagNameOnly: docker pulls :latest when nothing is named
    return Reference(registry, repository, tag, digest)


def require_digest(digest: str, what: str) -> str:
    """The algorithm of a well-formed digest, else a UserError naming `what` (a digest we were handed)."""
    algorithm, _, hexpart = digest.partition(":")
    size = DIGEST_HEX.get(algorithm)
    if size is None or not re.fullmatch(rf"[a-f0-9]{{{size}}}", hexpart):
        raise UserError(f"{what}: '{digest}' is not a sha256:<64 hex> digest")
    return algorithm


def require_repository(repository: str) -> None:
    """A repository name as the API paths take it (checked before it goes into a URL)."""
    if not repository or not all(_PATH_COMPONENT.fullmatch(c) for c in repository.split("/")):
        raise UserError(f"'{repository}' is not a repository name (lowercase path components separated by '/')")
