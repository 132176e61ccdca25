"""crossbuild.daemon against the real docker daemon: exit codes, kills, a binary that cannot start, cleanup.

Images are made here with `docker import` of a one-file root filesystem (a Go
program cross-compiled by the test), so no registry is involved; results are
checked with the docker CLI.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.commands import describe, run
from support.inputs import go_build

from crossbuild import runner, smoke
from crossbuild.daemon import Daemon
from crossbuild.platforms import Platform

pytestmark = [pytest.mark.integration, pytest.mark.docker]

AMD64 = Platform("linux", "amd64")

PROGRAM_GO = """\
// Command prog prints its usage and exits 2, or, given "sleep", never exits.
package main

import (
\t"fmt"
\t"os"
\t"time"
)

func main() {
\tif len(os.Args) > 1 && os.Args[1] == "sleep" {
\t\tfor {
\t\t\ttime.Sleep(time.Hour)
\t\t}
\t}
\tfmt.Fprintln(os.Stderr, "usage: prog [sleep]")
\tfmt.Println("second line")
\tos.Exit(2)
}
"""


def _import(binary: bytes, ref: str) -> None:
    """A local image holding /prog as its entrypoint, made with `docker import`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("prog")
        info.size, info.mode = len(binary), 0o755
        tar.addfile(info, io.BytesIO(binary))
    proc = subprocess.run(
        ["docker", "import", "--change", 'ENTRYPOINT ["/prog"]', "-", ref],
        input=raw.getvalue(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


def _images(ref: str) -> list[str]:
    proc = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", ref], timeout=60)
    assert proc.returncode == 0, describe(proc)
    return proc.stdout.split()


def _containers_of(ref: str) -> list[str]:
    proc = run(["docker", "ps", "-a", "-q", "--filter", f"ancestor={ref}"], timeout=60)
    assert proc.returncode == 0, describe(proc)
    return proc.stdout.split()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """name -> local image: "prog" (amd64), "mips" (a mips64le binary the host cannot run, labelled amd64)."""
    root = tmp_path_factory.mktemp("daemon")
    (root / "go.mod").write_text("module example.com/prog\n\ngo 1.22\n")
    (root / "main.go").write_text(PROGRAM_GO)
    name = f"crossbuild-test-daemon-{uuid.uuid4().hex[:8]}"
    refs = {"prog": f"{name}/prog:amd64", "mips": f"{name}/prog:mips"}
    _import(go_build(root, ".", "linux/amd64", root / "prog-amd64", {}).read_bytes(), refs["prog"])
    _import(go_build(root, ".", "linux/mips64le", root / "prog-mips", {}).read_bytes(), refs["mips"])
    yield refs
    for ref in refs.values():
        run(["docker", "rmi", ref], timeout=60)


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    d = Daemon.connect(parallel=4)
    yield d
    d.close()


def test_connect_learns_the_daemons_platform(daemon: Daemon) -> None:
    proc = run(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], timeout=60)
    assert proc.returncode == 0, describe(proc)
    assert f"{daemon.platform.os}/{daemon.platform.arch}" == proc.stdout.strip()


def test_run_reports_exit_code_and_output_and_removes_the_container(daemon: Daemon, images: dict[str, str]) -> None:
    result = daemon.run(images["prog"], ("--version",), AMD64, timeout=30)
    assert (result.exit_code, result.error, result.cancelled) == (2, "", False), result
    assert "usage: prog [sleep]" in result.output
    assert "second line" in result.output
    assert _containers_of(images["prog"]) == []


def test_run_kills_a_program_that_does_not_exit(daemon: Daemon, images: dict[str, str]) -> None:
    result = daemon.run(images["prog"], ("sleep",), AMD64, timeout=2)
    assert result.running, result
    assert (result.exit_code, result.error, result.cancelled) == (None, "", False), result
    assert _containers_of(images["prog"]) == []


def test_run_stops_early_when_asked(daemon: Daemon, images: dict[str, str]) -> None:
    stop = threading.Event()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    try:
        result = daemon.run(images["prog"], ("sleep",), AMD64, timeout=60, stop=stop)
    finally:
        timer.cancel()
    assert result.cancelled, result
    assert not result.running
    assert _containers_of(images["prog"]) == []
    # once stopped, nothing more starts
    assert daemon.run(images["prog"], ("--version",), AMD64, timeout=30, stop=stop) == smoke.Run(
        ("--version",), cancelled=True
    )


def test_a_binary_the_cpu_cannot_run_fails_at_once(daemon: Daemon, images: dict[str, str]) -> None:
    if Path("/proc/sys/fs/binfmt_misc/qemu-mips64el").exists():
        pytest.skip("a QEMU handler for mips64el is registered here: the binary would run")
    result = daemon.run(images["mips"], ("--version",), AMD64, timeout=30)
    # runc reports it as the container's own exit (1, "exec /prog: exec format error");
    # older runtimes refuse to start it: either way it ends at once and the judgement names why
    assert not result.running, result
    assert "exec format error" in result.output + result.error, result
    for plan in (smoke.Plan(("--version",), 0, native=True), smoke.Plan(("--version",), None, native=True)):
        verdict, detail = smoke.judge(plan, result, 30)
        assert verdict == "failed", (plan, detail)
        assert "exec format error" in detail, (plan, detail)
    assert _containers_of(images["mips"]) == []


def test_release_keeps_an_image_that_was_there_before(daemon: Daemon, images: dict[str, str]) -> None:
    daemon.ensure(images["prog"], AMD64)
    assert daemon.release() == []
    assert _images(images["prog"]) == [images["prog"]]


def test_every_call_is_echoed_as_a_docker_command_under_verbose(
    daemon: Daemon, images: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    runner.QUERIES.verbose = True  # V=1: Session.open gives the task's verbosity to QUERIES
    try:
        daemon.ensure(images["prog"], AMD64)
        daemon.run(images["prog"], ("--version",), AMD64, timeout=30)
        daemon.run(images["prog"], ("sleep",), AMD64, timeout=1)
    finally:
        runner.QUERIES.verbose = False
    lines = capsys.readouterr().err.splitlines()
    ref = images["prog"]
    assert lines[0] == f"+ docker image inspect --format '{{{{.Id}}}}' {ref}"
    assert lines[1] == f"+ docker run --rm --network none --platform linux/amd64 {ref} --version"
    assert lines[2] == f"+ docker run --rm --network none --platform linux/amd64 {ref} sleep"
    assert lines[3].startswith("+ docker kill "), lines
    assert len(lines) == 4, lines
