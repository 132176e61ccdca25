"""The GitHub Actions workflows pass the real actionlint: the two shipped in
.github/workflows/ and freshly generated ones (single job and matrix, for this
repository's config.toml and for a config that pushes to a remote registry).

actionlint is the version pinned in scripts/actionlint.sh, which `make tools`
runs; without it these tests fail (they never skip). A deliberately broken
workflow must be reported, so a linter that checks nothing cannot pass them.
shellcheck and pyflakes are switched off: their findings would depend on
whether and which version happens to be installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from crossbuild import ci, config
from crossbuild.config import Overrides

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "actionlint.sh"
SHIPPED = [ROOT / ".github" / "workflows" / name for name in ("multiarch.yml", "multiarch-matrix.yml")]
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


def _pinned_version() -> str:
    found = re.search(r"ACTIONLINT_VERSION:-(v[0-9.]+)", SCRIPT.read_text())
    assert found, f"{SCRIPT} has no ACTIONLINT_VERSION default"
    return found.group(1)


def _candidates() -> list[Path]:
    paths = []
    if shutil.which("go"):
        gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True, check=False).stdout.strip()
        if gopath:
            paths.append(Path(gopath.split(":")[0]) / "bin" / "actionlint")
    on_path = shutil.which("actionlint")
    if on_path:
        paths.append(Path(on_path))
    return [p for p in paths if p.is_file()]


@pytest.fixture(scope="module")
def actionlint() -> Path:
    """The pinned actionlint binary; fails (not skips) with the way to install it."""
    want = _pinned_version()
    fix = f"run `bash scripts/actionlint.sh` (installs actionlint {want}; `make tools` runs it in CI)"
    found = _candidates()
    if not found:
        pytest.fail(f"actionlint not found in $(go env GOPATH)/bin or on PATH: {fix}")
    versions = []
    for path in found:
        proc = subprocess.run([path, "-version"], capture_output=True, text=True, check=False, timeout=30)
        version = proc.stdout.splitlines()[0].strip() if proc.stdout else f"exit {proc.returncode}"
        if version == want:
            return path
        versions.append(f"{path} is {version}")
    pytest.fail(f"actionlint {want} is needed, found {'; '.join(versions)}: {fix}")


def lint(actionlint: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint, "-no-color", "-shellcheck=", "-pyflakes=", *files],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=files[0].parent,
    )


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), (
        f"actionlint exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_workflow_passes_actionlint(actionlint: Path, path: Path) -> None:
    assert path.is_file(), f"{path} is missing"
    assert_clean(lint(actionlint, path))


@pytest.mark.parametrize("matrix", [False, True], ids=["single", "matrix"])
@pytest.mark.parametrize("prefix", [None, "ghcr.io/acme/imdemo"], ids=["repo-config", "remote-prefix"])
def test_generated_workflow_passes_actionlint(
    actionlint: Path, tmp_path: Path, matrix: bool, prefix: str | None
) -> None:
    cfg = config.load(ROOT / "config.toml", Overrides(registry_prefix=prefix), ENV)
    # not under a .github/workflows/: paths stay relative to the config's directory, the repository root
    written = ci.write_workflow(cfg, tmp_path / f"generated-{int(matrix)}.yml", matrix=matrix)
    assert "examples/imdemo/go.mod" in written.read_text()
    assert_clean(lint(actionlint, written))


def test_generated_matrix_for_many_platforms_passes_actionlint(actionlint: Path, tmp_path: Path) -> None:
    platforms = ("linux/amd64", "linux/386", "linux/arm64", "linux/arm/v6", "linux/arm/v7", "linux/s390x")
    cfg = config.load(ROOT / "config.toml", Overrides(platforms=platforms), ENV)
    written = ci.write_workflow(cfg, tmp_path / "many.yml", matrix=True)
    assert "digests-linux-arm-v6" in written.read_text()
    assert_clean(lint(actionlint, written))


BROKEN = """\
name: broken
on:
  push:
    tags: ["v*"]
jobs:
  build:
    runs-on: ${{ matrix.runnr }}
    strategy:
      matrix:
        include:
          - platform: linux/arm64
            runner: ubuntu-24.04-arm
    steps:
      - uses: actions/checkout@v6
      - run: echo "${{ github.evnt_name }"
"""


def test_broken_workflow_is_reported(actionlint: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(BROKEN)
    proc = lint(actionlint, path)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    out = proc.stdout
    assert 'property "runnr" is not defined' in out, out
    assert re.search(r"broken\.yml:15:\d+: .*lexing end marker \}\}.*\[expression\]", out), out  # unclosed ${{ }}
