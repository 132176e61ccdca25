"""Audit the images a deployment uses for missing architectures.

Reads each image's index from its registry (anonymous bearer-token flow as
Docker Hub-style registries use it; plain HTTP for loopback) and prints the
table users otherwise make by hand: compose service, image, architectures,
published ports - flagging images that lack a required platform.

Compose files are read by crossbuild.compose, the way `docker compose` reads them. A
service with only `build:` is built on the deployment host: it is listed as "built
here", not audited, not an error.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from crossbuild import attestations, sbom, signatures
from crossbuild.compose import ComposeService
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
