"""Audit the images a deployment uses for missing architectures.

Reads each image's index from its registry (anonymous bearer-token flow as
Docker Hub-style registries use it; plain HTTP for loopback) and prints the
table users otherwise make by hand: compose service, image, architectures,
published ports - flagging images that lack a required platform.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crossbuild.errors import UserError
from crossbuild.platforms import Platform
from crossbuild.registry import RegistryClient, parse_reference, platforms_of

# Well-known replacements that publish arm64 and arm/v7 where the original does not.
ALTERNATIVES = {
    "mysql": "mariadb (multi-arch) or mysql:8.0+ (amd64+arm64)",
    "mongo": "mongo:5.0+ for arm64 (no arm/v7 builds exist)",
    "wurstmeister/kafka": "bitnami/kafka or apache/kafka (multi-arch)",
    "wurstmeister/zookeeper": "zookeeper (official, multi-arch)",
}


@dataclass
class AuditRow:
    service: str
    image: str
    platforms: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str = ""
    suggestion: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.missing


def _ports(raw: Any) -> list[str]:
    ports = []
    for item in raw or []:
        if isinstance(item, dict):
            published, target = item.get("published", ""), item.get("target", "")
            proto = item.get("protocol", "")
            text = f"{published}:{target}" if published else str(target)
            ports.append(f"{text}/{proto}" if proto and proto != "tcp" else text)
        else:
            ports.append(str(item))
    return ports


class _ComposeLoader(yaml.SafeLoader):
    """YAML without implicit numbers: compose reads `2222:22` as text, YAML 1.1 as base 60."""


_ComposeLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_compose(path: Path) -> list[tuple[str, str, list[str]]]:
    """(compose service, image, published ports) for every service with an image."""
    try:
        data = yaml.load(path.read_text(), Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise UserError(f"{path}: cannot read compose file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc
    services = (data or {}).get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise UserError(f"{path}: no 'services:' mapping; is this a docker compose file?")
    rows = []
    for name, spec in services.items():
        if not isinstance(spec, dict) or not spec.get("image"):
            continue  # build-only services have no image to audit
        rows.append((str(name), str(spec["image"]), _ports(spec.get("ports"))))
    return rows


def suggestion(image: str, missing: Sequence[str]) -> str:
    repo = parse_reference(image).repository.removeprefix("library/")
    tips = [
        f"pin a tag that publishes {', '.join(missing)} (check the registry's other tags)",
        "rebuild it for all platforms with crossbuild (`crossbuild init` in its Go source)",
    ]
    if repo in ALTERNATIVES:
        tips.append(f"or use {ALTERNATIVES[repo]}")
    return "; ".join(tips)


def audit(
    client: RegistryClient,
    entries: Sequence[tuple[str, str, list[str]]],
    required: Sequence[Platform],
) -> list[AuditRow]:
    rows = []
    for service, image, ports in entries:
        row = AuditRow(service=service, image=image, ports=list(ports))
        try:
            found = platforms_of(client, parse_reference(image))
        except UserError as exc:
            row.error = str(exc)
            rows.append(row)
            continue
        row.platforms = [str(p) for p in found]
        row.missing = [str(p) for p in required if not _covered(p, found)]
        if row.missing:
            row.suggestion = suggestion(image, row.missing)
        rows.append(row)
    return rows


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
        elif r.missing:
            status = f"MISSING {', '.join(r.missing)}"
        else:
            status = "ok"
        out.append([r.service or "-", r.image, ", ".join(r.platforms) or "-", ", ".join(r.ports) or "-", status])
    return out


def to_json(rows: Sequence[AuditRow]) -> str:
    return json.dumps([{**asdict(r), "ok": r.ok} for r in rows], indent=2) + "\n"
