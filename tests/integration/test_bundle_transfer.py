"""Bundles of large, incompressible layers in bounded memory (issue 15, item 4), end to end.

Three images of one 32 MiB random layer each (bench/images.py: tar+gzip layers, seeded) are pushed with
skopeo to the local registry under a unique prefix, two as the services of a generated monorepo at its
version tag and one as a third-party image. `invoke bundle` writes the linux/amd64 archive and
`invoke bundle.load` pushes it into an empty registry of the test's own; the peak RSS of crossbuild's
process (VmHWM, sampled while it runs) must stay below its idle peak plus less than one layer, and
skopeo (the witness) must find every image there under its tag with the source digest. The archive
must be about the layers' size: compressed layers are stored, not deflated again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.clone import namespace
from support.commands import check, run
from support.env import clean_env
from support.registries import docker_registry
from support.witness import skopeo_digest

from bench import images, workspace
from bench.shell import PeakWatch

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_registry")]

MIB = 1 << 20
LAYER = 32 * MIB
SLACK = 28 * MIB  # what crossbuild's peak may grow by while moving 96 MiB: less than one layer


def peak_of(argv: Sequence[str | Path], cwd: Path, env: dict[str, str]) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of crossbuild's own process."""
    proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=clean_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    watch = PeakWatch(proc.pid, interval=0.005)
    out, _ = proc.communicate(timeout=600)
    peak = watch.stop()
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    return proc.returncode, peak


def test_bundle_and_load_of_large_random_layers_stay_in_bounded_memory(tmp_path: Path, prefix: str) -> None:
    ws = workspace.create(
        tmp_path / "repo", "tiny", seed=1, platforms=("linux/amd64",), run_id="transfer", storage=None
    )
    version = ws.version["version"]
    names = [*ws.services, "thirdparty"]
    made = images.write_layout(tmp_path / "layout", names, [[LAYER]] * len(names), seed=3)
    refs = {n: f"{prefix}/{n}:{version if n in ws.services else '1.0'}" for n in names}
    for image in made:
        check(run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:{image.name}",
                   f"docker://{refs[image.name]}"], timeout=300))  # fmt: skip
    invoke = [sys.executable, "-m", "invoke", "--search-root", ws.repo]
    env = {"REGISTRY_PREFIX": prefix}
    _, idle = peak_of([*invoke, "--list"], ws.repo, env)

    _, created = peak_of([*invoke, "bundle", "--platform", "linux/amd64", "--image", refs["thirdparty"]], ws.repo, env)
    (archive,) = (ws.repo / "build" / "bundles").glob("*.tar.gz")
    layers = sum(i.layer_bytes for i in made)
    assert layers <= archive.stat().st_size < layers + MIB, "compressed layers are stored in the archive as they are"

    with docker_registry(tmp_path / "second") as second:
        _, loaded = peak_of([*invoke, "bundle.load", archive, "--registry", second.address], ws.repo, env)
        for image in made:
            moved = f"{second.address}/{namespace(refs[image.name])}"
            assert skopeo_digest(moved) == image.manifest.digest == skopeo_digest(refs[image.name])

    for what, peak in (("bundle", created), ("bundle.load", loaded)):
        assert peak < idle + SLACK, (
            f"{what} peaked at {peak / MIB:.0f} MiB moving {layers / MIB:.0f} MiB of layers "
            f"(idle {idle / MIB:.0f} MiB, allowed {(idle + SLACK) / MIB:.0f} MiB)"
        )
    print(f"peak RSS: idle {idle / MIB:.0f} MiB, bundle {created / MIB:.0f} MiB, bundle.load {loaded / MIB:.0f} MiB")
