"""Repositories of real-world shapes adopt crossbuild unedited: `crossbuild init`, then
`make image.multiarch PLATFORMS="linux/amd64 linux/arm64"`, nothing edited in between.

Each fixture (tests/integration/adopt_fixtures.py) is a committed, tagged git repository
in a temporary directory. Results are checked with independent tools only: skopeo for the
pushed index and for copying the arm64 image out of the registry, Python's tarfile for its
layers, and QEMU user mode (qemu-aarch64-static) to run the arm64 binary found there.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from adopt_fixtures import FIXTURES, TAG, Fixture

pytestmark = [pytest.mark.integration, pytest.mark.docker]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CROSSBUILD_BIN = PROJECT_ROOT / ".venv" / "bin"
PLATFORMS = ("linux/amd64", "linux/arm64")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST", "GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY")


def env_for(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: crossbuild on PATH, git isolated, none of the caller's crossbuild variables."""
    env = {k: v for k, v in os.environ.items() if k in _KEEP or k.startswith(("GO", "XDG_"))}
    env = {k: v for k, v in env.items() if k not in ("GOOS", "GOARCH", "GOARM", "GOFLAGS", "GOWORK")}
    env.update(
        {
            "PATH": f"{CROSSBUILD_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CEILING_DIRECTORIES": str(root.parent),
            "GIT_AUTHOR_NAME": "Adopt Test",
            "GIT_AUTHOR_EMAIL": "adopt@example.invalid",
            "GIT_COMMITTER_NAME": "Adopt Test",
            "GIT_COMMITTER_EMAIL": "adopt@example.invalid",
            "GIT_AUTHOR_DATE": "@1700000000 +0000",
            "GIT_COMMITTER_DATE": "@1700000000 +0000",
        }
    )
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str | os.PathLike[str]], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env_for(cwd, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return ANSI.sub("", proc.stdout)


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


def skopeo_index(ref: str) -> dict[str, str]:
    """platform -> manifest digest of the index at `ref` (attestations left out), read by skopeo."""
    proc = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"skopeo inspect {ref}: {proc.stderr}"
    index = json.loads(proc.stdout)
    assert index.get("mediaType") == "application/vnd.oci.image.index.v1+json", f"{ref}: {index.get('mediaType')}"
    found = {}
    for entry in index["manifests"]:
        p = entry.get("platform") or {}
        if p.get("architecture") == "unknown":
            continue
        found["/".join(filter(None, (p.get("os"), p.get("architecture"), p.get("variant"))))] = entry["digest"]
    return found


def image_files(ref: str, arch: str, dest: Path, wanted: Sequence[str]) -> dict[str, bytes]:
    """The files at `wanted` paths in one platform of `ref`: skopeo copies it to a dir, tarfile reads the layers."""
    shutil.rmtree(dest, ignore_errors=True)
    proc = subprocess.run(
        ["skopeo", f"--override-arch={arch}", "copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"skopeo copy {ref} ({arch}): {proc.stderr}"
    manifest = json.loads((dest / "manifest.json").read_text())
    found: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        blob = dest / layer["digest"].split(":", 1)[1]
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        tar_path = dest / "layer.tar"
        tar_path.write_bytes(data)
        with tarfile.open(tar_path) as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    found[name] = fh.read()
    return found


@pytest.fixture(scope="module")
def tools() -> None:
    for tool in ("git", "go", "make", "skopeo", "qemu-aarch64-static"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (make tools installs it)")
    if not (CROSSBUILD_BIN / "crossbuild").is_file():
        pytest.fail(f"{CROSSBUILD_BIN / 'crossbuild'} missing: run `make build` once to create .venv")


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_init_then_make_image_multiarch_unedited(tools: None, tmp_path: Path, fixture: Fixture) -> None:
    repo = tmp_path / fixture.name
    commit = make_repo(repo, fixture)

    said = ok(run(["crossbuild", "init", "."], repo, timeout=600))
    assert f"{len(fixture.services)} service(s): {', '.join(fixture.services)}" in said, said
    for text in fixture.init_says:
        assert text in said, said
    data = tomllib.loads((repo / "config.toml").read_text())
    for key, value in fixture.config_has.items():
        assert dotted(data, key) == value, f"{key} in config.toml:\n{(repo / 'config.toml').read_text()}"

    prefix = f"localhost:5000/adopt-{uuid.uuid4().hex[:8]}"
    out = ok(run(["make", "image.multiarch", f"PLATFORMS={' '.join(PLATFORMS)}", f"REGISTRY_PREFIX={prefix}"], repo))
    assert "verified" in out, out

    for service in fixture.services:
        assert set(skopeo_index(f"{prefix}/{service}:{TAG}")) == set(PLATFORMS), service

    binary = f"usr/local/bin/{fixture.run}"
    trust = "etc/ssl/certs/ca-certificates.crt"
    files = image_files(f"{prefix}/{fixture.run}:{TAG}", "arm64", tmp_path / "image", [binary, trust, "etc/passwd"])
    assert binary in files, f"{binary} not in the arm64 image"
    assert files.get(trust, b"").count(b"BEGIN CERTIFICATE") > 10, "no TLS trust store in the default base"
    assert b":65532:65532:" in files.get("etc/passwd", b""), "no nonroot user in the default base"
    program = tmp_path / fixture.run
    program.write_bytes(files[binary])
    program.chmod(0o755)
    expected = fixture.prints.replace("{commit}", commit)
    if fixture.runs_forever:
        with subprocess.Popen(
            ["qemu-aarch64-static", str(program), *fixture.args], stdout=subprocess.PIPE, text=True, env=env_for(repo)
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
