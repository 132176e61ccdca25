"""Audit the images a deployment uses for missing architectures.

Reads each image's index from its registry (anonymous bearer-token flow as
Docker Hub-style registries use it; plain HTTP for loopback) and prints the
table users otherwise make by hand: compose service, image, architectures,
published ports - flagging images that lack a required platform.

Compose files are read the way `docker compose` reads them ([interp] the compose
spec's interpolation.md, [env] its env-file rules): `$VAR`, `${VAR}`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$`
are substituted from the environment and the `.env` file next to the compose file
(the environment wins). A service with only `build:` is built on the deployment host:
it is listed as "built here", not audited, not an error.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from crossbuild import attestations, sbom, signatures
from crossbuild.errors import UserError
from crossbuild.oci import Client, Reference, parse_reference, platforms_of
from crossbuild.platforms import Platform

# Well-known replacements that publish arm64 and arm/v7 where the original does not.
ALTERNATIVES = {
    "mysql": "mariadb (multi-arch) or mysql:8.0+ (amd64+arm64)",
    "mongo": "mongo:5.0+ for arm64 (no arm/v7 builds exist)",
    "wurstmeister/kafka": "bitnami/kafka or apache/kafka (multi-arch)",
    "wurstmeister/zookeeper": "zookeeper (official, multi-arch)",
}
ENV_FILE = ".env"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED_OPS = (":-", ":?", ":+", "-", "?", "+")  # longest first
_ENV_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=(.*))?")
_DOUBLE_QUOTED_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


# --- variable substitution ([interp]) ------------------------------------------------


class RequiredVariable(UserError):
    """`${NAME:?message}` or `${NAME?message}` met an unset (or empty) variable."""

    def __init__(self, name: str, message: str) -> None:
        message = " ".join(message.split())
        super().__init__(f"required variable {name} is missing a value" + (f": {message}" if message else ""))
        self.name = name


@dataclass
class Substituted:
    """The text after substitution, and the variables it used that were not set (they became "")."""

    text: str
    unset: list[str] = field(default_factory=list)


def _invalid(text: str, why: str) -> UserError:
    return UserError(f"invalid interpolation in {text!r}: {why} (write $$ for a literal $)")


def _word_end(text: str, start: int, whole: str) -> int:
    """Index of the `}` that closes a `${NAME<op>word}` begun before `start` (nested `${...}` allowed)."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
        elif text.startswith("${", i):
            depth, i = depth + 1, i + 2
        elif text[i] == "}":
            if depth == 0:
                return i
            depth, i = depth - 1, i + 1
        else:
            i += 1
    raise _invalid(whole, "a '${' is never closed")


def interpolate(text: str, variables: Mapping[str, str]) -> Substituted:
    """Substitute variables as docker compose does; RequiredVariable or UserError for what it refuses."""
    out: list[str] = []
    unset: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        i = dollar + 1
        if text.startswith("$", i):
            out.append("$")
            i += 1
            continue
        if not text.startswith("{", i):
            match = _NAME.match(text, i)
            if match is None:
                raise _invalid(text, f"'$' at position {dollar} is followed by neither a name nor '{{'")
            out.append(_lookup(match.group(), variables, unset))
            i = match.end()
            continue
        match = _NAME.match(text, i + 1)
        if match is None:
            raise _invalid(text, f"'${{' at position {dollar} is not followed by a variable name")
        name, i = match.group(), match.end()
        if i >= len(text):
            raise _invalid(text, "a '${' is never closed")
        if text.startswith("}", i):
            out.append(_lookup(name, variables, unset))
            i += 1
            continue
        op = next((op for op in _BRACED_OPS if text.startswith(op, i)), None)
        if op is None:
            raise _invalid(text, f"unexpected {text[i]!r} after ${{{name}")
        end = _word_end(text, i + len(op), text)
        word = text[i + len(op) : end]
        out.append(_apply(name, op, word, variables, unset))
        i = end + 1
    return Substituted("".join(out), unset)


def _lookup(name: str, variables: Mapping[str, str], unset: list[str]) -> str:
    if name in variables:
        return variables[name]
    unset.append(name)
    return ""


def _apply(name: str, op: str, word: str, variables: Mapping[str, str], unset: list[str]) -> str:
    value = variables.get(name)
    present = value is not None and (value != "" or not op.startswith(":"))
    if op.endswith("-"):
        if present:
            return str(value)
        sub = interpolate(word, variables)
        unset += sub.unset
        return sub.text
    if op.endswith("?"):
        if not present:
            raise RequiredVariable(name, word)
        return str(value)
    if present:  # "+": the word replaces a set variable
        sub = interpolate(word, variables)
        unset += sub.unset
        return sub.text
    return ""


# --- .env ([env]) ------------------------------------------------------------------------


def _env_value(raw: str, known: Mapping[str, str], where: str) -> str:
    """One value of a .env line: 'single' is literal, "double" has escapes and substitution, bare is
    trimmed, cut at ' #', and substituted."""
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end < 0:
            raise UserError(f"{where}: a single quote is never closed")
        return raw[1:end]
    if raw.startswith('"'):
        chars: list[str] = []
        i = 1
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw):
                chars.append(_DOUBLE_QUOTED_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
                i += 2
            else:
                chars.append(raw[i])
                i += 1
        if i >= len(raw):
            raise UserError(f"{where}: a double quote is never closed (values span one line here)")
        return interpolate("".join(chars), known).text
    comment = re.search(r"\s#", raw)
    if comment:
        raw = raw[: comment.start()]
    return interpolate(raw.rstrip(), known).text


def read_env_file(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file; a value may use the environment and earlier keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.fullmatch(line)
        if match is None:
            raise UserError(f"{path} line {number}: not KEY=VALUE")
        key, raw = match.group(1), match.group(2)
        if raw is None:  # a bare KEY takes the environment's value, if any
            if key in environ:
                values[key] = environ[key]
            continue
        try:
            values[key] = _env_value(raw, {**values, **environ}, f"{path} line {number}")
        except UserError as exc:
            raise UserError(f"{path} line {number}: {exc}") from None
    return values


def compose_variables(compose: Path, environ: Mapping[str, str], env_file: Path | None = None) -> dict[str, str]:
    """What a compose file's ${VAR}s see: `env_file` (default: .env next to the file), then the environment."""
    path = env_file if env_file is not None else compose.parent / ENV_FILE
    if env_file is None and not path.is_file():
        return dict(environ)
    return {**read_env_file(path, environ), **environ}


# --- compose files ---------------------------------------------------------------------


@dataclass
class ComposeService:
    """A service of a compose file (or an image given on the command line, service "")."""

    service: str
    image: str = ""  # after substitution; "" when the service only builds
    ports: list[str] = field(default_factory=list)
    build: str | None = None  # the build context when the service has `build:`
    error: str = ""  # substitution or shape problems, reported on the service's row


def _ports(raw: Any) -> list[str]:
    ports = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            published, target = item.get("published", ""), item.get("target", "")
            proto = item.get("protocol", "")
            text = f"{published}:{target}" if published else str(target)
            ports.append(f"{text}/{proto}" if proto and proto != "tcp" else text)
        else:
            ports.append(str(item))
    return ports


def _substitute_all(value: Any, variables: Mapping[str, str]) -> Any:
    """Every string inside lists and mappings substituted (ports may be strings, ints or mappings)."""
    if isinstance(value, str):
        return interpolate(value, variables).text
    if isinstance(value, list):
        return [_substitute_all(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _substitute_all(v, variables) for k, v in value.items()}
    return value


def _build_context(build: Any) -> str:
    if isinstance(build, dict):
        return str(build.get("context") or ".")
    return str(build) if build not in (None, "") else "."


def _image(raw: Any, variables: Mapping[str, str], env_name: str) -> tuple[str, str]:
    """(image, error) of a service's `image:` after substitution."""
    text = str(raw)
    try:
        sub = interpolate(text, variables)
    except UserError as exc:
        return text, str(exc)
    if sub.unset:
        names = ", ".join(dict.fromkeys(sub.unset))
        return sub.text, f"{names} not set in the environment or {env_name}, so image {text!r} is {sub.text!r}"
    if not sub.text.strip():
        return text, f"image {text!r} is empty after substitution"
    return sub.text, ""


def _service(name: str, spec: Any, variables: Mapping[str, str], env_name: str) -> ComposeService:
    if not isinstance(spec, dict):
        return ComposeService(name, error="not a mapping of service settings")
    row = ComposeService(name)
    if "build" in spec:
        row.build = _build_context(spec["build"])
    try:
        row.ports = _ports(_substitute_all(spec.get("ports"), variables))
    except UserError as exc:
        row.error = f"ports: {exc}"
    if spec.get("image") not in (None, ""):
        row.image, error = _image(spec["image"], variables, env_name)
        row.error = row.error or error
    elif row.build is None:
        row.error = row.error or "has neither image: nor build:"
    return row


class _ComposeLoader(yaml.SafeLoader):
    """YAML without implicit numbers: compose reads `2222:22` as text, YAML 1.1 as base 60."""


_ComposeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_compose(path: Path, environ: Mapping[str, str], env_file: Path | None = None) -> list[ComposeService]:
    """Every service of a compose file, in file order, with ${VAR}s substituted as docker compose does."""
    try:
        data = yaml.load(path.read_text(), Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise UserError(f"{path}: cannot read compose file: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; is this a docker compose file?") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc
    services = (data or {}).get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise UserError(f"{path}: no 'services:' mapping; is this a docker compose file?")
    variables = compose_variables(path, environ, env_file)
    env_name = str(env_file) if env_file is not None else str(path.parent / ENV_FILE)
    return [_service(str(name), spec, variables, env_name) for name, spec in services.items()]


# --- the audit ---------------------------------------------------------------------------


@dataclass
class AuditRow:
    service: str
    image: str
    platforms: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str = ""
    suggestion: str = ""
    built_here: str = ""  # why the service's image is built on the host ("" when it is pulled)
    signed: bool | None = None  # a cosign signature (`sha256-<digest>.sig`) is attached; None: not read
    sbom: str = ""  # the SBOM format attached (spdx, cyclonedx), "" when none

    @property
    def ok(self) -> bool:
        return not self.error and not self.missing


def suggestion(image: str, missing: Sequence[str]) -> str:
    repo = parse_reference(image).repository.removeprefix("library/")
    tips = [
        f"pin a tag that publishes {', '.join(missing)} (check the registry's other tags)",
        "rebuild it for all platforms with crossbuild (`crossbuild init` in its Go source)",
    ]
    if repo in ALTERNATIVES:
        tips.append(f"or use {ALTERNATIVES[repo]}")
    return "; ".join(tips)


def _audit_one(client: Client, entry: ComposeService, required: Sequence[Platform]) -> AuditRow:
    row = AuditRow(service=entry.service, image=entry.image, ports=list(entry.ports))
    if entry.error:
        row.error = entry.error
        return row
    if not entry.image:
        row.built_here = f"build: {entry.build}"
        return row
    try:
        ref = parse_reference(entry.image)
    except UserError as exc:  # the compose file names no valid image
        row.error = str(exc)
        return row
    try:
        if entry.build is not None and client.manifest_exists(ref) is None:
            # build: and image: together: compose builds and tags it here when the registry has none yet
            row.built_here = f"build: {entry.build}, not in {ref.registry} yet"
            return row
        found = platforms_of(client, ref)
    except UserError as exc:  # a RegistryError (unreachable, not found, denied, corrupt) or not an image: this row only
        row.error = str(exc)
        return row
    row.platforms = [str(p) for p in found]
    with contextlib.suppress(UserError):  # the column is information: a registry refusing it spoils no row
        row.signed, row.sbom = supply_of(client, ref)
    row.missing = [str(p) for p in required if not _covered(p, found)]
    if row.missing:
        row.suggestion = suggestion(entry.image, row.missing)
    return row


def _sbom_formats(client: Client, ref: Reference, manifest_digests: Sequence[str]) -> set[str]:
    """The SBOM formats the in-toto layers of these attestation (or referrer) manifests carry."""
    found = set()
    for digest in manifest_digests:
        data = client.get_manifest(ref.at(digest)).data
        for _, ptype in attestations.statement_layers(data):
            fmt = sbom.format_of(ptype)
            if fmt is not None:
                found.add(fmt)
    return found


def supply_of(client: Client, ref: Reference) -> tuple[bool, str]:
    """(signed with cosign, SBOM format) of a published image: a `.sig` tag for its digest, and an SBOM in
    BuildKit's attestation manifests or under the referrers tag schema (`sha256-<digest>`)."""
    manifest = client.get_manifest(ref)
    at = Reference(ref.registry, ref.repository, None, None)
    signed = client.manifest_exists(replace(at, tag=signatures.signature_tag(manifest.digest))) is not None
    candidates = (
        [e.digest for e in attestations.entries(manifest.data) if e.is_attestation] if manifest.is_index else []
    )
    referrers = replace(at, tag=attestations.referrers_tag(manifest.digest))
    if client.manifest_exists(referrers) is not None:
        candidates += [e.digest for e in attestations.entries(client.get_manifest(referrers).data)]
    formats = _sbom_formats(client, ref, candidates)
    return signed, ",".join(sorted(formats))


def audit(client: Client, entries: Sequence[ComposeService], required: Sequence[Platform]) -> list[AuditRow]:
    return [_audit_one(client, entry, required) for entry in entries]


def _covered(required: Platform, found: Sequence[Platform]) -> bool:
    """arm/v6 images also run on arm/v7 hosts; amd64 covers amd64/v2+ CPUs."""
    if required in found:
        return True
    if required.arch == "arm" and required.variant == "v7":
        return Platform(required.os, "arm", "v6") in found
    if required.arch == "amd64" and required.variant:
        return Platform(required.os, "amd64") in found
    return False


def table_rows(rows: Sequence[AuditRow]) -> list[list[str]]:
    out = []
    for r in rows:
        if r.error:
            status = f"error: {r.error}"
        elif r.built_here:
            status = f"built here ({r.built_here})"
        elif r.missing:
            status = f"MISSING {', '.join(r.missing)}"
        else:
            status = "ok"
        supply = "-" if r.signed is None else ("signed" if r.signed else "unsigned") + f", SBOM {r.sbom or 'none'}"
        out.append(
            [r.service or "-", r.image or "-", ", ".join(r.platforms) or "-", ", ".join(r.ports) or "-", supply, status]
        )
    return out


def to_json(rows: Sequence[AuditRow]) -> str:
    return json.dumps([{**asdict(r), "ok": r.ok} for r in rows], indent=2) + "\n"
