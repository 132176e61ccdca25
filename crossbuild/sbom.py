"""An SBOM per image from the Go build info of its binary: SPDX 2.3 JSON, or CycloneDX 1.5 JSON.

No scanner is needed, or could be pulled on an air-gapped build host: the Go linker records in
every binary exactly which modules went in (`go version -m` prints it), with the go.sum hash of
each. The document lists the main module, every dependency with its version and checksum, each
`replace` and what replaced it, the Go toolchain (as the `stdlib` package, as syft does) and the
build settings (GOOS, GOARCH, GOARM, -tags, CGO_ENABLED, -ldflags...).

The bytes are a pure function of the binary and the build date (SOURCE_DATE_EPOCH): no clock,
no random UUID, keys sorted, so two cold builds of the same source give byte-identical SBOMs and
the SBOM is part of a reproducible image index.

[spdx] SPDX 2.3 specification, https://spdx.github.io/spdx-spec/v2.3/
[cdx] CycloneDX 1.5 JSON schema, https://cyclonedx.org/docs/1.5/json/
[purl] package-url spec, "golang" type
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossbuild.binaries import BuildInfo, Module

SPDX = "spdx"
CYCLONEDX = "cyclonedx"
FORMATS = (SPDX, CYCLONEDX)
PREDICATE_TYPES = {SPDX: "https://spdx.dev/Document", CYCLONEDX: "https://cyclonedx.org/bom"}
MEDIA_TYPES = {SPDX: "application/spdx+json", CYCLONEDX: "application/vnd.cyclonedx+json"}
STDLIB = "stdlib"  # the Go toolchain as a package, named as syft and govulncheck name it
_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122 NAMESPACE_URL
_SPDX_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class Subject:
    """What one SBOM describes: a service binary inside one platform's image."""

    service: str
    platform: str  # os/arch[/variant]
    path: str  # the binary's path inside the image
    sha256: str  # hex of the binary
    sha1: str  # hex of the binary (SPDX 2.3 requires SHA1 for files)


def subject_of(service: str, platform: str, path: str, binary: bytes) -> Subject:
    sha1 = hashlib.sha1(binary, usedforsecurity=False).hexdigest()  # SPDX's mandatory file checksum, not security
    return Subject(service, platform, path, hashlib.sha256(binary).hexdigest(), sha1)


# --- the modules a binary holds -----------------------------------------------------


@dataclass(frozen=True, order=True)
class Row:
    """One module as an SBOM must list it: what `go version -m` prints on a mod, dep or => line."""

    path: str
    version: str
    sum: str  # "h1:..." or ""


def expected_rows(info: BuildInfo) -> set[Row]:
    """Every module of the build info, replacements included, plus the toolchain as `stdlib`."""
    rows = {Row(STDLIB, info.go_version, "")}
    for mod in _modules(info):
        rows.add(Row(mod.path, mod.version, mod.sum))
        if mod.replace is not None:
            rows.add(Row(mod.replace.path, mod.replace.version, mod.replace.sum))
    return rows


def _modules(info: BuildInfo) -> list[Module]:
    return ([info.main] if info.main is not None else []) + list(info.deps)


def h1_to_hex(text: str) -> str | None:
    """The SHA-256 inside a go.sum `h1:` hash, as hex; None for anything else."""
    if not text.startswith("h1:"):
        return None
    try:
        raw = base64.b64decode(text[3:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == hashlib.sha256().digest_size else None


def hex_to_h1(hexdigest: str) -> str:
    return "h1:" + base64.b64encode(bytes.fromhex(hexdigest)).decode()


def purl(path: str, version: str) -> str:
    """pkg:golang/<path>@<version> ([purl]: segments percent-encoded, the version too)."""
    name = "/".join(urllib.parse.quote(part, safe="") for part in path.split("/"))
    return f"pkg:golang/{name}" + (f"@{urllib.parse.quote(version, safe='')}" if version else "")


def _stable_uuid(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "\0".join(parts))


# --- SPDX 2.3 ------------------------------------------------------------------------


def _spdx_id(kind: str, path: str, version: str) -> str:
    """SPDXRef-<kind>-<readable>-<hash>: [spdx] 3.2 allows letters, digits, '.' and '-' only."""
    readable = _SPDX_ID_UNSAFE.sub("-", f"{path}-{version}").strip("-")[:80]
    short = hashlib.sha256(f"{path}\0{version}".encode()).hexdigest()[:8]
    return f"SPDXRef-{kind}-{readable}-{short}"


def _spdx_package(mod: Module, purpose: str, comment: str = "") -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": _spdx_id("Package", mod.path, mod.version),
        "name": mod.path,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "supplier": "NOASSERTION",
        "primaryPackagePurpose": purpose,
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(mod.path, mod.version),
            }
        ],
    }
    if mod.version:
        package["versionInfo"] = mod.version
    if (hexdigest := h1_to_hex(mod.sum)) is not None:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": hexdigest}]
    if comment:
        package["comment"] = comment
    return package


def spdx_document(info: BuildInfo, subject: Subject, created: str, tool: str) -> dict[str, Any]:
    """The SPDX 2.3 document of one binary ([spdx] clauses 6-11)."""
    main = info.main or Module(info.path, "(devel)")
    main_pkg = _spdx_package(main, "APPLICATION", f"main package {info.path}")
    stdlib = _spdx_package(Module(STDLIB, info.go_version), "LIBRARY", "the Go standard library and runtime")
    annotations = [("go", info.go_version), *((f"build {k}", v) for k, v in info.settings)]
    main_pkg["annotations"] = [
        {"annotationDate": created, "annotationType": "OTHER", "annotator": f"Tool: {tool}", "comment": f"{k}={v}"}
        for k, v in annotations
    ]
    packages = [main_pkg, stdlib]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": main_pkg["SPDXID"],
        },
        {"spdxElementId": main_pkg["SPDXID"], "relationshipType": "DEPENDS_ON", "relatedSpdxElement": stdlib["SPDXID"]},
        {
            "spdxElementId": main_pkg["SPDXID"],
            "relationshipType": "GENERATES",
            "relatedSpdxElement": "SPDXRef-File-binary",
        },
    ]
    for dep in info.deps:
        dep_pkg = _spdx_package(dep, "LIBRARY", "replaced (go.mod replace directive)" if dep.replace else "")
        packages.append(dep_pkg)
        used = dep_pkg
        if dep.replace is not None:
            used = _spdx_package(dep.replace, "LIBRARY", f"replaces {dep.path} {dep.version}".rstrip())
            packages.append(used)
            relationships.append(
                {
                    "spdxElementId": used["SPDXID"],
                    "relationshipType": "OTHER",
                    "relatedSpdxElement": dep_pkg["SPDXID"],
                    "comment": "replaces (go.mod replace directive)",
                }
            )
        relationships.append(
            {
                "spdxElementId": main_pkg["SPDXID"],
                "relationshipType": "DEPENDS_ON",
                "relatedSpdxElement": used["SPDXID"],
            }
        )
    name = f"{subject.service}-{subject.platform.replace('/', '-')}"
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        # [spdx] 6.5: unique per document; derived from the binary, so the same binary gives the same bytes
        "documentNamespace": f"https://spdx.org/spdxdocs/crossbuild/{name}-{_stable_uuid(name, subject.sha256)}",
        "creationInfo": {"created": created, "creators": [f"Tool: {tool}"]},
        "packages": sorted(packages, key=lambda p: (p["name"], p.get("versionInfo", ""), p["SPDXID"])),
        "files": [
            {
                "SPDXID": "SPDXRef-File-binary",
                "fileName": "." + subject.path if subject.path.startswith("/") else subject.path,
                "fileTypes": ["BINARY"],
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": subject.sha1},
                    {"algorithm": "SHA256", "checksumValue": subject.sha256},
                ],
                "licenseConcluded": "NOASSERTION",
                "copyrightText": "NOASSERTION",
            }
        ],
        "relationships": relationships,
    }


# --- CycloneDX 1.5 ---------------------------------------------------------------------


def _cdx_component(mod: Module, kind: str, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": kind,
        "bom-ref": purl(mod.path, mod.version),
        "name": mod.path,
        "purl": purl(mod.path, mod.version),
    }
    if mod.version:
        component["version"] = mod.version
    if (hexdigest := h1_to_hex(mod.sum)) is not None:
        component["hashes"] = [{"alg": "SHA-256", "content": hexdigest}]
    if extra:
        component["properties"] = [{"name": k, "value": v} for k, v in extra.items()]
    return component


def cyclonedx_document(info: BuildInfo, subject: Subject, created: str, tool: str) -> dict[str, Any]:
    """The CycloneDX 1.5 BOM of one binary ([cdx]); build settings as `go:build:KEY` properties."""
    main = info.main or Module(info.path, "(devel)")
    settings = {"go:version": info.go_version, "go:package": info.path}
    settings.update({f"go:build:{k}": v for k, v in info.settings})
    main_cdx = _cdx_component(main, "application", settings)
    main_cdx["hashes"] = [{"alg": "SHA-256", "content": subject.sha256}]
    components = [_cdx_component(Module(STDLIB, info.go_version), "library")]
    depends = [components[0]["bom-ref"]]
    for dep in info.deps:
        if dep.replace is None:
            components.append(_cdx_component(dep, "library"))
            depends.append(components[-1]["bom-ref"])
            continue
        original = _cdx_component(dep, "library", {"go:replaced-by": purl(dep.replace.path, dep.replace.version)})
        used = _cdx_component(dep.replace, "library", {"go:replaces": purl(dep.path, dep.version)})
        components += [original, used]
        depends.append(used["bom-ref"])
    name = f"{subject.service}-{subject.platform.replace('/', '-')}"
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{_stable_uuid(name, subject.sha256)}",
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": tool.split("-", 1)[0], "version": tool}]},
            "component": main_cdx,
            "properties": [{"name": "crossbuild:platform", "value": subject.platform}],
        },
        "components": sorted(components, key=lambda c: (c["name"], c.get("version", ""))),
        "dependencies": [{"ref": main_cdx["bom-ref"], "dependsOn": sorted(set(depends))}],
    }


def document(fmt: str, info: BuildInfo, subject: Subject, created: str, tool: str) -> dict[str, Any]:
    if fmt == CYCLONEDX:
        return cyclonedx_document(info, subject, created, tool)
    return spdx_document(info, subject, created, tool)


def dumps(data: object) -> bytes:
    """Canonical JSON bytes: keys sorted, fixed separators, UTF-8, one trailing newline."""
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


# --- reading an SBOM back ------------------------------------------------------------------


def format_of(predicate_type: str) -> str | None:
    return next((fmt for fmt, ptype in PREDICATE_TYPES.items() if ptype == predicate_type), None)


def listed_rows(fmt: str, doc: Mapping[str, Any]) -> set[Row]:
    """The modules an SBOM lists, as Rows (the SHA256 checksum turned back into go.sum's h1:)."""
    rows: set[Row] = set()
    if fmt == SPDX:
        for pkg in doc.get("packages") or []:
            if not isinstance(pkg, dict):
                continue
            sums = [c.get("checksumValue", "") for c in pkg.get("checksums") or [] if c.get("algorithm") == "SHA256"]
            rows.add(Row(str(pkg.get("name", "")), str(pkg.get("versionInfo", "")), hex_to_h1(sums[0]) if sums else ""))
        return rows
    component = (doc.get("metadata") or {}).get("component")
    for comp in [component, *(doc.get("components") or [])]:
        if not isinstance(comp, dict):
            continue
        hashes = [h.get("content", "") for h in comp.get("hashes") or [] if h.get("alg") == "SHA-256"]
        go_sum = hex_to_h1(hashes[0]) if hashes and comp is not component else ""
        rows.add(Row(str(comp.get("name", "")), str(comp.get("version", "")), go_sum))
    return rows


def compare(fmt: str, doc: Mapping[str, Any], info: BuildInfo) -> list[str]:
    """How the SBOM's modules differ from the binary's build info; [] when they are the same."""
    want, have = expected_rows(info), listed_rows(fmt, doc)
    problems = [
        f"SBOM lacks {r.path} {r.version}".rstrip() + (f" {r.sum}" if r.sum else "") for r in sorted(want - have)
    ]
    problems += [
        f"SBOM lists {r.path} {r.version}".rstrip() + " which the binary does not hold" for r in sorted(have - want)
    ]
    return problems
