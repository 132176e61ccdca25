"""Repositories of real-world shapes adopt crossbuild unedited: `crossbuild init`, then
`make image.multiarch PLATFORMS="linux/amd64 linux/arm64"`, nothing edited in between.

Each fixture (tests/integration/adopt_fixtures.py) is a committed, tagged git repository
in a temporary directory. Results are checked with independent tools only: skopeo for the
pushed index and for copying the arm64 image out of the registry, Python's tarfile for its
layers, and QEMU user mode (qemu-aarch64-static) to run the arm64 binary found there.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from adopt_fixtures import FIXTURES, TAG, Fixture
from support.clone import PROJECT_VENV_BIN, repo_env
from support.clone import run_in_repo as run
from support.commands import ok, require_tools
from support.env import clean_env
from support.witness import image_files, skopeo_index

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

PLATFORMS = ("linux/amd64", "linux/arm64")


def make_repo(root: Path, fixture: Fixture) -> str:
    """Write, commit and tag the fixture; return the commit."""
    for rel, text in fixture.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "--no-verify", "-m", f"{fixture.name}: a repository that never saw crossbuild"],
        ["git", "tag", TAG],
    ):
        ok(run(argv, root))
    return ok(run(["git", "rev-parse", "HEAD"], root)).strip()


def dotted(data: Mapping[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        value = value[part]
    return value


def layer_files(ref: str, arch: str, dest: Path, wanted: Sequence[str]) -> dict[str, bytes]:
    """The regular files at `wanted` paths in one platform of `ref`: skopeo copies it, tarfile reads the layers."""
    _, merged = image_files(ref, dest, arch=arch)
    return {name: data for name, (member, data) in merged.items() if name in wanted and member.isfile()}


@pytest.fixture(scope="module")
def tools() -> None:
    require_tools("git", "go", "make", "skopeo", "qemu-aarch64-static")
    if not (PROJECT_VENV_BIN / "crossbuild").is_file():
        pytest.fail(f"{PROJECT_VENV_BIN / 'crossbuild'} missing: run `make build` once to create .venv")


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_init_then_make_image_multiarch_unedited(tools: None, tmp_path: Path, fixture: Fixture, prefix: str) -> None:
    repo = tmp_path / fixture.name
    commit = make_repo(repo, fixture)

    said = ok(run(["crossbuild", "init", "."], repo, timeout=600))
    assert f"{len(fixture.services)} service(s): {', '.join(fixture.services)}" in said, said
    for text in fixture.init_says:
        assert text in said, said
    data = tomllib.loads((repo / "config.toml").read_text())
    for key, value in fixture.config_has.items():
        assert dotted(data, key) == value, f"{key} in config.toml:\n{(repo / 'config.toml').read_text()}"

    out = ok(run(["make", "image.multiarch", f"PLATFORMS={' '.join(PLATFORMS)}", f"REGISTRY_PREFIX={prefix}"], repo))
    assert "verified" in out, out

    for service in fixture.services:
        assert set(skopeo_index(f"{prefix}/{service}:{TAG}")) == set(PLATFORMS), service

    binary = f"usr/local/bin/{fixture.run}"
    trust = "etc/ssl/certs/ca-certificates.crt"
    files = layer_files(f"{prefix}/{fixture.run}:{TAG}", "arm64", tmp_path / "image", [binary, trust, "etc/passwd"])
    assert binary in files, f"{binary} not in the arm64 image"
    assert files.get(trust, b"").count(b"BEGIN CERTIFICATE") > 10, "no TLS trust store in the default base"
    assert b":65532:65532:" in files.get("etc/passwd", b""), "no nonroot user in the default base"
    program = tmp_path / fixture.run
    program.write_bytes(files[binary])
    program.chmod(0o755)
    expected = fixture.prints.replace("{commit}", commit)
    if fixture.runs_forever:
        with subprocess.Popen(
            ["qemu-aarch64-static", str(program), *fixture.args],
            stdout=subprocess.PIPE,
            text=True,
            env=clean_env(repo_env(repo)),
        ) as proc:
            try:
                assert proc.stdout is not None
                first = proc.stdout.readline()
            finally:
                proc.kill()
        assert expected in first, first
    else:
        ran = run(["qemu-aarch64-static", program, *fixture.args], repo, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert expected in ran.stdout, ran.stdout

    if fixture.name == "compose-vars":
        (repo / ".env").write_text(f"STACK_PREFIX={prefix}\nSTACK_TAG={TAG}\n")
        audited = ok(run(["crossbuild", "audit", "--compose", "docker-compose.yml", "--platform", "linux/arm64"], repo))
        assert re.search(rf"^web\s+{re.escape(prefix)}/web:{TAG}\s+.*linux/arm64", audited, re.MULTILINE), audited
        assert re.search(r"^worker\s+.*built here", audited, re.MULTILINE), audited
