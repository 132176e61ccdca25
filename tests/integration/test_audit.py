"""`invoke audit` against a second registry seeded here with images of known platforms.

The registry (docker-registry on 127.0.0.1:5001) and its images are made by
the test with `docker buildx build` (FROM scratch + one file), and skopeo
confirms each seed is what the test thinks it is, so the truth the audit is
compared with is written out below, not read back from crossbuild.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clone import Clone
from support.commands import describe, plain
from support.inputs import buildx_push
from support.registries import docker_registry, port_is_closed
from support.witness import OCI_INDEX, index_platforms, skopeo_config, skopeo_raw

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

SECOND = "127.0.0.1:5001"
UNREACHABLE = "127.0.0.1:5999"
MULTI = f"{SECOND}/multi:1"
SINGLE = f"{SECOND}/single:1"
AMD64_ONLY = f"{SECOND}/amd64only:1"
NO_SUCH = f"{SECOND}/nosuch:1"
FARAWAY = f"{UNREACHABLE}/x:1"
REQUIRED = ("linux/amd64", "linux/arm64")

COMPOSE = f"""\
name: audit-test
services:
  web:
    image: {MULTI}
    ports:
      - "8080:80"
      - target: 443
        published: 8443
        protocol: tcp
  worker:
    image: {SINGLE}
    ports:
      - "9000:9000/udp"
  legacy:
    image: {AMD64_ONLY}
    ports:
      - target: 53
        published: 5353
        protocol: udp
  ghost:
    image: {NO_SUCH}
  faraway:
    image: {FARAWAY}
    ports:
      - "127.0.0.1:1234:1234"
  built-here:
    build: .
"""

# What the audit must report, service by service, in compose order.
TRUTH: list[dict[str, Any]] = [
    {
        "service": "web",
        "image": MULTI,
        "platforms": ["linux/amd64", "linux/arm64", "linux/arm/v7"],
        "ports": ["8080:80", "8443:443"],
        "missing": [],
        "built_here": "",
        "ok": True,
    },
    {
        "service": "worker",
        "image": SINGLE,
        "platforms": ["linux/arm64"],
        "ports": ["9000:9000/udp"],
        "missing": ["linux/amd64"],
        "built_here": "",
        "ok": False,
    },
    {
        "service": "legacy",
        "image": AMD64_ONLY,
        "platforms": ["linux/amd64"],
        "ports": ["5353:53/udp"],
        "missing": ["linux/arm64"],
        "built_here": "",
        "ok": False,
    },
    {"service": "ghost", "image": NO_SUCH, "platforms": [], "ports": [], "missing": [], "built_here": "", "ok": False},
    {
        "service": "faraway",
        "image": FARAWAY,
        "platforms": [],
        "ports": ["127.0.0.1:1234:1234"],
        "missing": [],
        "built_here": "",
        "ok": False,
    },
    # build-only: built on the deployment host, listed (issue 16: it used to vanish without a word)
    {
        "service": "built-here",
        "image": "",
        "platforms": [],
        "ports": [],
        "missing": [],
        "built_here": "build: .",
        "ok": True,
    },
]
ERRORS = {"ghost": "not found", "faraway": "not reachable"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """127.0.0.1:5001 holding multi:1, single:1 and amd64only:1; stopped after the module."""
    work = tmp_path_factory.mktemp("audit-registry")
    assert port_is_closed("127.0.0.1", 5999), f"something listens on {UNREACHABLE}; the audit needs nothing there"
    with docker_registry(work / "registry", SECOND) as registry:
        context = work / "context"
        context.mkdir()
        (context / "Dockerfile").write_text("FROM scratch\nARG TARGETPLATFORM\nCOPY seed.txt /seed.txt\n")
        (context / "seed.txt").write_text("audit seed\n")

        buildx_push(context, MULTI, ("linux/amd64", "linux/arm64", "linux/arm/v7"))
        _, index = skopeo_raw(MULTI)
        assert index["mediaType"] == OCI_INDEX
        assert list(index_platforms(index)) == ["linux/amd64", "linux/arm64", "linux/arm/v7"], index

        # one platform without attestations: buildx pushes a plain image manifest, no index
        buildx_push(context, SINGLE, ("linux/arm64",))
        _, manifest = skopeo_raw(SINGLE)
        assert "manifests" not in manifest and "config" in manifest, manifest
        config = skopeo_config(SINGLE)
        assert (config["os"], config["architecture"]) == ("linux", "arm64"), config

        # one platform with a provenance attestation: an index of linux/amd64 + an unknown/unknown entry
        buildx_push(context, AMD64_ONLY, ("linux/amd64",), provenance="mode=min")
        _, index = skopeo_raw(AMD64_ONLY)
        assert index["mediaType"] == OCI_INDEX, index
        assert list(index_platforms(index)) == ["linux/amd64"], index
        assert len(index["manifests"]) == 2, "expected an attestation entry beside linux/amd64"
        yield registry.address


def printed_json(stdout: str) -> list[dict[str, Any]]:
    """The JSON array `--json -` prints after the table."""
    text = plain(stdout)
    start = 0 if text.startswith("[") else text.rindex("\n[") + 1
    data: list[dict[str, Any]] = json.loads(text[start:])
    return data


def table(stdout: str) -> dict[str, list[str]]:
    """compose service -> [image, architectures, ports, status] from the printed table."""
    lines = plain(stdout).splitlines()
    header = next(n for n, line in enumerate(lines) if re.match(r"^service\s+image\s+architectures\s+ports", line))
    rows = {}
    for line in lines[header + 2 :]:
        if not line or line.startswith((" ", "[", "{", "=")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:4] + cells[5:]  # without the "signature, SBOM" column: see supply_cells
    return rows


def supply_cells(stdout: str) -> dict[str, str]:
    """compose service -> its "signature, SBOM" cell."""
    lines = plain(stdout).splitlines()
    header = next(n for n, line in enumerate(lines) if re.match(r"^service\s+image\s+architectures\s+ports", line))
    found = {}
    for line in lines[header + 2 :]:
        if not line or line.startswith((" ", "[", "{", "=")):
            break
        cells = re.split(r"\s{2,}", line.strip())
        found[cells[0]] = cells[4]
    return found


def test_compose_audit_reports_every_service(clone: Clone, seeded: str, tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    argv = ["audit", "--compose", str(compose), "--platform", REQUIRED[0], "--platform", REQUIRED[1], "--json", "-"]
    proc = clone.invoke(*argv)
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)

    rows = table(proc.stdout)
    assert list(rows) == [t["service"] for t in TRUTH], describe(proc)
    assert rows["web"] == [MULTI, "linux/amd64, linux/arm64, linux/arm/v7", "8080:80, 8443:443", "ok"]
    # the seeded images carry neither a cosign signature nor an SBOM; build-only rows are not read
    assert supply_cells(proc.stdout)["web"] == "unsigned, SBOM none", describe(proc)
    assert supply_cells(proc.stdout)["built-here"] == "-", describe(proc)
    assert rows["worker"] == [SINGLE, "linux/arm64", "9000:9000/udp", "MISSING linux/amd64"]
    assert rows["legacy"] == [AMD64_ONLY, "linux/amd64", "5353:53/udp", "MISSING linux/arm64"]
    assert rows["ghost"][:3] == [NO_SUCH, "-", "-"]
    assert rows["ghost"][3].startswith("error:") and "not found" in rows["ghost"][3], rows["ghost"]
    assert rows["faraway"][:3] == [FARAWAY, "-", "127.0.0.1:1234:1234"]
    assert rows["faraway"][3].startswith("error:") and "not reachable" in rows["faraway"][3], rows["faraway"]
    assert rows["built-here"] == ["-", "-", "-", "built here (build: .)"]

    data = printed_json(proc.stdout)
    assert (clone.build_dir / "reports" / "audit.json").read_text() == json.dumps(data, indent=2) + "\n"
    errors = {row["service"]: row.pop("error") for row in data}
    suggestions = {row["service"]: row.pop("suggestion") for row in data}
    supply = {row["service"]: (row.pop("signed"), row.pop("sbom")) for row in data}
    assert supply["web"] == (False, "") and supply["built-here"] == (None, ""), supply
    assert data == TRUTH, describe(proc)
    assert {s: e for s, e in errors.items() if e} == {s: errors[s] for s in ERRORS}, errors
    for service, words in ERRORS.items():
        assert words in errors[service], errors
    assert UNREACHABLE in errors["faraway"], errors
    # images lacking a platform get advice; complete or unreadable ones none
    assert {s for s, text in suggestions.items() if text} == {"worker", "legacy"}, suggestions
    assert "linux/amd64" in suggestions["worker"] and "linux/arm64" in suggestions["legacy"], suggestions


def test_image_with_the_required_platform_passes(clone: Clone, seeded: str) -> None:
    proc = clone.invoke("audit", "--image", MULTI, "--platform", "linux/arm64")
    assert proc.returncode == 0, describe(proc)
    rows = table(proc.stdout)
    assert rows == {"-": [MULTI, "linux/amd64, linux/arm64, linux/arm/v7", "-", "ok"]}, describe(proc)


def test_unquoted_compose_port_is_read_as_text(clone: Clone, seeded: str, tmp_path: Path) -> None:
    """`- 2222:22` unquoted is the port mapping "2222:22" for docker compose (YAML 1.2), not a base-60 number."""
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(f"services:\n  ssh:\n    image: {MULTI}\n    ports:\n      - 2222:22\n")
    proc = clone.invoke("audit", "--compose", str(compose), "--platform", "linux/arm64", "--json", "-")
    assert proc.returncode == 0, describe(proc)
    assert [row["ports"] for row in printed_json(proc.stdout)] == [["2222:22"]], describe(proc)


ENV_COMPOSE = """\
services:
  web:
    image: ${WEB_IMAGE}
    ports: ["${WEB_PORT:-8080}:80"]
  worker:
    image: ${REG}/single:${WORKER_TAG}
  legacy:
    image: ${LEGACY_IMAGE:-127.0.0.1:5001/nosuch:1}
  cache:
    image: ${CACHE_IMAGE:-127.0.0.1:5001/multi:1}
  app:
    build: ./app
  both-published:
    build: .
    image: ${REG}/multi:1
  both-new:
    build:
      context: ./new
    image: ${REG}/not-pushed-yet:1
  needs-var:
    image: ${QUEUE_IMAGE:?set QUEUE_IMAGE to the broker image}
  cost:
    image: $${REG}
"""
DOT_ENV = f"""\
# read by docker compose from the compose file's directory
REG={SECOND}
WEB_IMAGE=${{REG}}/multi:1
WORKER_TAG=not-this-one
LEGACY_IMAGE={AMD64_ONLY}
"""


def test_compose_variables_come_from_dot_env_and_the_environment(clone: Clone, seeded: str, tmp_path: Path) -> None:
    """issue 10: images written as ${VAR} (from .env, the environment winning) failed on every row."""
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "docker-compose.yml").write_text(ENV_COMPOSE)
    (deploy / ".env").write_text(DOT_ENV)
    argv = ["audit", "--compose", str(deploy / "docker-compose.yml"), "--platform", "linux/arm64", "--json", "-"]
    proc = clone.invoke(*argv, env={"WORKER_TAG": "1"})
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    rows = table(proc.stdout)
    assert list(rows) == [
        "web",
        "worker",
        "legacy",
        "cache",
        "app",
        "both-published",
        "both-new",
        "needs-var",
        "cost",
    ], describe(proc)
    assert rows["web"] == [MULTI, "linux/amd64, linux/arm64, linux/arm/v7", "8080:80", "ok"]
    assert rows["worker"] == [SINGLE, "linux/arm64", "-", "ok"]  # WORKER_TAG=1 from the environment
    assert rows["legacy"] == [AMD64_ONLY, "linux/amd64", "-", "MISSING linux/arm64"]
    assert rows["cache"] == [MULTI, "linux/amd64, linux/arm64, linux/arm/v7", "-", "ok"]
    assert rows["app"] == ["-", "-", "-", "built here (build: ./app)"]
    assert rows["both-published"] == [MULTI, "linux/amd64, linux/arm64, linux/arm/v7", "-", "ok"]
    assert rows["both-new"] == [
        f"{SECOND}/not-pushed-yet:1",
        "-",
        "-",
        f"built here (build: ./new, not in {SECOND} yet)",
    ]
    assert rows["needs-var"] == [
        "${QUEUE_IMAGE:?set QUEUE_IMAGE to the broker image}",
        "-",
        "-",
        "error: required variable QUEUE_IMAGE is missing a value: set QUEUE_IMAGE to the broker image",
    ]
    assert rows["cost"][0] == "${REG}" and rows["cost"][3].startswith("error:"), rows["cost"]  # $$ is a literal $

    data = {row["service"]: row for row in printed_json(proc.stdout)}
    assert [s for s, row in data.items() if not row["ok"]] == ["legacy", "needs-var", "cost"]
    assert {s for s, row in data.items() if row["built_here"]} == {"app", "both-new"}
