"""SBOMs from Go build info: SPDX 2.3 valid per spdx-tools, CycloneDX 1.5, deterministic bytes, compared back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from crossbuild import sbom
from crossbuild.binaries import BuildInfo, Module, parse_modinfo

TEXT = "\n".join(
    [
        "path\texample.com/svc/cmd/api",
        "mod\texample.com/svc\t(devel)\t",
        "dep\tgithub.com/google/uuid\tv1.6.0\th1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=",
        "dep\tgolang.org/x/text\tv0.14.0",
        "=>\tgolang.org/x/text\tv0.15.0\th1:h1V/4gjBv8v9cjcR6+AR5+/cIYK5N/WAgiv4xlsEtAk=",
        "dep\texample.com/local\tv1.0.0",
        "=>\t../local\t",
        "build\t-buildmode=exe",
        "build\t-compiler=gc",
        'build\t-ldflags="-s -w"',
        "build\tCGO_ENABLED=0",
        "build\tGOARCH=arm",
        "build\tGOOS=linux",
        "build\tGOARM=7",
    ]
)
SUBJECT = sbom.Subject("api", "linux/arm/v7", "/usr/local/bin/api", "ab" * 32, "cd" * 20)
CREATED = "2024-01-02T03:04:05Z"


def info() -> BuildInfo:
    parsed = parse_modinfo(TEXT)
    return BuildInfo("go1.26.0", parsed.path, parsed.settings, parsed.main, parsed.deps)


def test_parse_modinfo_reads_main_deps_and_replacements() -> None:
    parsed = info()
    assert parsed.main == Module("example.com/svc", "(devel)", "")
    assert [d.path for d in parsed.deps] == ["github.com/google/uuid", "golang.org/x/text", "example.com/local"]
    assert parsed.deps[1].replace == Module(
        "golang.org/x/text", "v0.15.0", "h1:h1V/4gjBv8v9cjcR6+AR5+/cIYK5N/WAgiv4xlsEtAk="
    )
    assert parsed.deps[2].replace == Module("../local", "", "")
    assert parsed.setting("GOARM") == "7" and parsed.setting("-ldflags") == "-s -w"


def test_h1_round_trip() -> None:
    h1 = "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0="
    hexdigest = sbom.h1_to_hex(h1)
    assert hexdigest is not None and len(hexdigest) == 64
    assert sbom.hex_to_h1(hexdigest) == h1
    assert sbom.h1_to_hex("h2:abc") is None and sbom.h1_to_hex("h1:not base64!") is None


@pytest.mark.parametrize(
    ("path", "version", "want"),
    [
        ("golang.org/x/text", "v0.14.0", "pkg:golang/golang.org/x/text@v0.14.0"),
        ("example.com/svc", "(devel)", "pkg:golang/example.com/svc@%28devel%29"),
        ("../local", "", "pkg:golang/../local"),
    ],
    ids=["plain", "devel", "local-replacement"],
)
def test_purl(path: str, version: str, want: str) -> None:
    assert sbom.purl(path, version) == want


def test_spdx_document_is_valid_spdx_2_3(tmp_path: Path) -> None:
    path = tmp_path / "api.spdx.json"
    path.write_bytes(sbom.dumps(sbom.spdx_document(info(), SUBJECT, CREATED, "crossbuild-test")))
    document = parse_file(str(path))
    assert validate_full_spdx_document(document, "SPDX-2.3") == []
    names = {(p.name, p.version) for p in document.packages}
    assert ("github.com/google/uuid", "v1.6.0") in names and ("stdlib", "go1.26.0") in names
    assert ("golang.org/x/text", "v0.15.0") in names and ("golang.org/x/text", "v0.14.0") in names


def test_spdx_lists_exactly_the_build_info_and_the_settings() -> None:
    doc = sbom.spdx_document(info(), SUBJECT, CREATED, "crossbuild-test")
    assert sbom.compare(sbom.SPDX, doc, info()) == []
    main = next(p for p in doc["packages"] if p["name"] == "example.com/svc")
    comments = [a["comment"] for a in main["annotations"]]
    assert comments[0] == "go=go1.26.0"
    assert "build GOARM=7" in comments and "build CGO_ENABLED=0" in comments
    uuid_pkg = next(p for p in doc["packages"] if p["name"] == "github.com/google/uuid")
    assert uuid_pkg["checksums"] == [{"algorithm": "SHA256", "checksumValue": sbom.h1_to_hex(info().deps[0].sum)}]


def test_compare_names_what_differs() -> None:
    doc = sbom.spdx_document(info(), SUBJECT, CREATED, "crossbuild-test")
    doc["packages"] = [p for p in doc["packages"] if p["name"] != "github.com/google/uuid"]
    doc["packages"].append({"name": "evil.example/backdoor", "versionInfo": "v1.0.0"})
    problems = sbom.compare(sbom.SPDX, doc, info())
    assert any(p.startswith("SBOM lacks github.com/google/uuid v1.6.0 h1:") for p in problems), problems
    assert "SBOM lists evil.example/backdoor v1.0.0 which the binary does not hold" in problems


def test_same_binary_same_bytes_other_binary_other_namespace() -> None:
    one = sbom.dumps(sbom.document(sbom.SPDX, info(), SUBJECT, CREATED, "crossbuild-test"))
    two = sbom.dumps(sbom.document(sbom.SPDX, info(), SUBJECT, CREATED, "crossbuild-test"))
    assert one == two
    other = sbom.Subject("api", "linux/arm/v7", "/usr/local/bin/api", "ef" * 32, "cd" * 20)
    third = json.loads(sbom.dumps(sbom.document(sbom.SPDX, info(), other, CREATED, "crossbuild-test")))
    assert third["documentNamespace"] != json.loads(one)["documentNamespace"]


def test_cyclonedx_document_lists_the_same_modules() -> None:
    doc = sbom.cyclonedx_document(info(), SUBJECT, CREATED, "crossbuild-test")
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert sbom.compare(sbom.CYCLONEDX, doc, info()) == []
    props = {p["name"]: p["value"] for p in doc["metadata"]["component"]["properties"]}
    assert props["go:build:GOARCH"] == "arm" and props["go:version"] == "go1.26.0"


def test_format_of_predicate_types() -> None:
    assert sbom.format_of("https://spdx.dev/Document") == sbom.SPDX
    assert sbom.format_of("https://cyclonedx.org/bom") == sbom.CYCLONEDX
    assert sbom.format_of("https://slsa.dev/provenance/v0.2") is None
