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

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from crossbuild.compose import ComposeService
from crossbuild.errors import UserError
from crossbuild.oci import Client, parse_reference, platforms_of
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
    row.missing = [str(p) for p in required if not _covered(p, found)]
    if row.missing:
        row.suggestion = suggestion(entry.image, row.missing)
    return row


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
        out.append([r.service or "-", r.image or "-", ", ".join(r.platforms) or "-", ", ".join(r.ports) or "-", status])
    return out


def to_json(rows: Sequence[AuditRow]) -> str:
    return json.dumps([{**asdict(r), "ok": r.ok} for r in rows], indent=2) + "\n"
