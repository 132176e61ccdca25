"""Integration tests of cross-compilation: `make` / `invoke` against the real Go toolchain.

Every command runs in the session's throwaway clone of the repository (see conftest.py,
``clone`` and ``fresh``), never in the working tree. Results are checked with
independent tools: `file` for the executable format and CPU, QEMU user-mode
emulators (`qemu-*-static`) to run foreign binaries, and git for the version
the binaries must report.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from support.clone import Clone, clone_project
from support.commands import plain
from support.example import MODULE, SERVICES, VERSION_PKG
from support.witness import version_fields

pytestmark = pytest.mark.integration

# What `file -b` prints for each platform's binaries (libmagic's wording).
FILE_SAYS = {
    "linux/amd64": ("ELF 64-bit LSB executable", "x86-64"),
    "linux/arm64": ("ELF 64-bit LSB executable", "ARM aarch64"),
    "linux/arm/v7": ("ELF 32-bit LSB executable", "ARM, EABI5"),
    "linux/s390x": ("ELF 64-bit MSB executable", "IBM S/390"),
    "windows/amd64": ("PE32+ executable", "x86-64", "MS Windows"),
    "darwin/arm64": ("Mach-O 64-bit arm64 executable",),
}
# The QEMU user-mode emulator that runs each foreign platform's binaries,
# and the platform line `<binary> --version` must print there.
QEMU = {
    "linux/arm64": ("qemu-aarch64-static", "linux/arm64"),
    "linux/arm/v7": ("qemu-arm-static", "linux/arm GOARM=7"),
    "linux/s390x": ("qemu-s390x-static", "linux/s390x"),
}


# --- helpers --------------------------------------------------------------------


def file_type(path: Path) -> str:
    proc = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout.strip()


def assert_file_says(path: Path, platform: str) -> None:
    assert path.is_file(), f"missing binary {path}"
    described = file_type(path)
    for fragment in FILE_SAYS[platform]:
        assert fragment in described, f"{path}: `file` says {described!r}, expected {fragment!r} for {platform}"


def run_version(path: Path, emulator: str | None = None) -> dict[str, str]:
    """Run `<binary> --version` (under an emulator if given); return its fields."""
    argv = [emulator, str(path), "--version"] if emulator else [str(path), "--version"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return version_fields(proc.stdout)


def expected_binaries(platforms: tuple[str, ...], services: tuple[str, ...] = SERVICES) -> set[str]:
    """Paths relative to build/: bin/$TARGETPLATFORM/<service>[.exe]."""
    return {f"bin/{p}/{s}{'.exe' if p.startswith('windows/') else ''}" for p in platforms for s in services}


def git_version(repo: Path) -> tuple[str, str]:
    """(git describe --tags --always --dirty, git rev-parse HEAD) of a checkout."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=60, check=True)
        return proc.stdout.strip()

    return git("describe", "--tags", "--always", "--dirty"), git("rev-parse", "HEAD")


def output_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return (proc.stdout + "\n" + proc.stderr).splitlines()


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def x_assignments(ldflags: str) -> dict[str, str]:
    """The -X variable=value pairs of an -ldflags string, in any of its spellings."""
    tokens = shlex.split(ldflags)
    pairs = []
    for n, tok in enumerate(tokens):
        if tok.startswith("-X="):
            pairs.append(tok.removeprefix("-X="))
        elif tok == "-X" and n + 1 < len(tokens):
            pairs.append(tokens[n + 1])
    return dict(pair.split("=", 1) for pair in pairs)


# --- tests ----------------------------------------------------------------------


def test_example_services_are_the_four_cmd_packages(clone: Clone) -> None:
    """Guards the other tests' SERVICES constant against the example changing under them."""
    found = {p.parent.name for p in (clone.module_dir / "cmd").glob("*/main.go")}
    assert found == set(SERVICES)


def test_make_build_multiarch_builds_every_service_for_every_platform(
    fresh: Clone,
) -> None:
    clone = fresh
    describe, head = git_version(clone.root)
    # The fixture tagged HEAD and the clone is clean: the version is the bare tag.
    assert describe == clone.tag

    platforms = ("linux/amd64", "linux/arm64", "linux/arm/v7")
    proc = clone.make("build.multiarch", "PLATFORMS=" + ",".join(platforms))
    assert proc.returncode == 0, clone.describe(proc)
    assert clone.built_files() == expected_binaries(platforms)

    for platform in platforms:
        for service in SERVICES:
            binary = clone.build_dir / "bin" / platform / service
            assert_file_says(binary, platform)
            if platform == "linux/amd64":
                fields = run_version(binary)
                want_platform = "linux/amd64"
            else:
                emulator, want_platform = QEMU[platform]
                fields = run_version(binary, emulator)
            assert fields["name"] == service
            assert fields["platform"] == want_platform, f"{binary}: {fields}"
            assert fields["version"] == describe, f"{binary}: {fields}"
            assert fields["commit"] == head, f"{binary}: {fields}"
            assert fields["tree state"] == "clean", f"{binary}: {fields}"


def test_make_build_multiarch_openim_platform_spelling_and_bins_filter(
    fresh: Clone,
) -> None:
    clone = fresh
    proc = clone.make("build.multiarch", "PLATFORMS=linux_arm64", "BINS=api")
    assert proc.returncode == 0, clone.describe(proc)
    # Only api, only arm64: nothing else under build/.
    assert clone.built_files() == {"bin/linux/arm64/api"}
    assert_file_says(clone.build_dir / "bin/linux/arm64/api", "linux/arm64")


def test_make_parallel_build_multiarch_with_big_endian_s390x(fresh: Clone) -> None:
    clone = fresh
    describe, _ = git_version(clone.root)
    proc = clone.make("-j4", "build.multiarch", "PLATFORMS=linux/amd64 linux/s390x")
    assert proc.returncode == 0, clone.describe(proc)
    assert clone.built_files() == expected_binaries(("linux/amd64", "linux/s390x"))

    for service in SERVICES:
        assert_file_says(clone.build_dir / "bin/linux/amd64" / service, "linux/amd64")
        assert_file_says(clone.build_dir / "bin/linux/s390x" / service, "linux/s390x")
    emulator, want_platform = QEMU["linux/s390x"]
    fields = run_version(clone.build_dir / "bin/linux/s390x/push", emulator)
    assert fields["platform"] == want_platform
    assert fields["version"] == describe


def test_invoke_build_unknown_platform_is_one_line_with_a_suggestion(
    fresh: Clone,
) -> None:
    clone = fresh
    proc = clone.invoke("build", "--platform", "linux/arm65")
    assert proc.returncode != 0, clone.describe(proc)
    assert_no_traceback(proc)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, clone.describe(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, clone.describe(proc)
    assert "linux/arm65" in lines[0]
    assert "linux/arm64" in lines[0]
    assert not clone.built_files()


def test_invoke_build_windows_and_darwin_binaries(fresh: Clone) -> None:
    clone = fresh
    proc = clone.invoke("build", "--platform", "windows/amd64", "--platform", "darwin/arm64")
    assert proc.returncode == 0, clone.describe(proc)
    built = clone.built_files()
    assert built == expected_binaries(("windows/amd64", "darwin/arm64"))
    assert all(p.endswith(".exe") for p in built if p.startswith("bin/windows/"))
    assert not any(p.endswith(".exe") for p in built if p.startswith("bin/darwin/"))
    for service in SERVICES:
        assert_file_says(clone.build_dir / "bin/windows/amd64" / f"{service}.exe", "windows/amd64")
        assert_file_says(clone.build_dir / "bin/darwin/arm64" / service, "darwin/arm64")


def test_invoke_build_rejects_an_x_variable_in_a_package_that_does_not_exist(
    fresh: Clone,
) -> None:
    clone = fresh
    good = f'"{VERSION_PKG}.Version"'
    wrong_var = f"{MODULE}/pkg/versoin.Version"
    text = (clone.root / "config.toml").read_text()
    assert good in text, "config.toml no longer sets pkg/version.Version; update this test"
    wrong_config = clone.root / "wrong-x-path.toml"
    wrong_config.write_text(text.replace(good, f'"{wrong_var}"'))
    try:
        proc = clone.invoke("build", "--config", wrong_config.name, "--platform", "linux/arm64")
    finally:
        wrong_config.unlink()
    assert proc.returncode != 0, clone.describe(proc)
    assert_no_traceback(proc)
    assert wrong_var in proc.stderr, clone.describe(proc)
    # Refused before anything is linked: no binary with a silently dropped -X.
    assert not clone.built_files()


@pytest.fixture(scope="module")
def broken_push_build(clone: Clone, tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """`invoke build --platform linux/arm64` in a second clone whose cmd/push does not compile."""
    copy = clone_project(tmp_path_factory.mktemp("broken-push") / "repo", source=clone.root).root
    main_go = copy / "examples/imdemo/cmd/push/main.go"
    main_go.write_text(main_go.read_text() + '\nvar _ int = "x"\n')
    return clone.invoke("build", "--platform", "linux/arm64", cwd=copy)


def test_compile_error_names_the_service_platform_and_compiler_message(
    clone: Clone, broken_push_build: subprocess.CompletedProcess[str]
) -> None:
    proc = broken_push_build
    report = clone.describe(proc)
    assert proc.returncode != 0, report
    assert_no_traceback(proc)
    assert any(re.search(r"\bpush\b", line) and "linux/arm64" in line for line in proc.stderr.splitlines()), report
    assert "cmd/push/main.go" in proc.stderr, report
    assert "cannot use" in proc.stderr, report  # the compiler's own message
    assert not re.search(r"\bapi\b", proc.stderr), f"the error report blames api:\n{report}"


def test_compile_error_summary_table_does_not_blame_services_that_compiled(
    clone: Clone, broken_push_build: subprocess.CompletedProcess[str]
) -> None:
    proc = broken_push_build
    rows = {
        line.split()[0]: line
        for line in proc.stdout.splitlines()
        if len(line.split()) >= 2 and line.split()[1] == "linux/arm64"
    }
    assert "failed" in rows.get("push", ""), clone.describe(proc)
    assert "failed" not in rows.get("api", ""), f"summary row: {rows.get('api')!r}"


def test_invoke_build_dry_run_prints_the_exact_go_command_and_builds_nothing(
    fresh: Clone,
) -> None:
    clone = fresh
    describe, head = git_version(clone.root)
    proc = clone.invoke("build", "--dry-run", "--platform", "linux/arm64")
    assert proc.returncode == 0, clone.describe(proc)
    assert not clone.built_files()
    assert not (clone.build_dir / "bin/linux/arm64").exists()

    planned = [line for line in proc.stdout.splitlines() if line.startswith("[dry-run] ") and " go build " in line]
    assert len(planned) == 1, clone.describe(proc)
    command = planned[0].removeprefix("[dry-run] ")
    words = shlex.split(command)
    # it runs in the Go module's directory: the line starts with `cd DIR &&` unless invoke already runs there
    if clone.module_dir.resolve() == clone.root.resolve():
        assert words[0] != "cd", command
    else:
        assert words[0] == "cd" and words[2] == "&&", command
        assert Path(words[1]).resolve() == clone.module_dir.resolve()
        del words[:3]
    env = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert env == {"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0"}
    assert words[:2] == ["go", "build"]
    assert "-trimpath" in words
    ldflags = words[words.index("-ldflags") + 1]
    assert "-X" in ldflags
    xs = x_assignments(ldflags)
    assert xs[f"{VERSION_PKG}.Version"] == describe
    assert xs[f"{VERSION_PKG}.GitCommit"] == head
    assert xs[f"{VERSION_PKG}.GitTreeState"] == "clean"
    out = words[words.index("-o") + 1]
    assert Path(out) == clone.build_dir / "bin/linux/arm64"
    assert set(words[words.index("-o") + 2 :]) == {f"./cmd/{s}" for s in SERVICES}

    # The printed line is the real command: run it as printed (from the Go
    # module, where the package paths are relative to) and check the results.
    ran = clone.run(["bash", "-c", command], cwd=clone.module_dir)
    assert ran.returncode == 0, clone.describe(ran)
    assert clone.built_files() == expected_binaries(("linux/arm64",))
    fields = run_version(clone.build_dir / "bin/linux/arm64/api", QEMU["linux/arm64"][0])
    assert fields["version"] == describe
    assert fields["platform"] == "linux/arm64"


def test_make_build_with_v_1_echoes_the_go_command(fresh: Clone) -> None:
    clone = fresh
    host = clone.run(["go", "env", "GOHOSTOS", "GOHOSTARCH"], timeout=60)
    goos, goarch = host.stdout.split()

    proc = clone.make("build", "BINS=api", env={"V": "1"})
    assert proc.returncode == 0, clone.describe(proc)
    echoed = [line for line in output_lines(proc) if line.startswith("+ ") and " go build " in line]
    assert len(echoed) == 1, clone.describe(proc)
    words = shlex.split(echoed[0].removeprefix("+ "))
    assert f"GOOS={goos}" in words
    assert f"GOARCH={goarch}" in words
    assert "./cmd/api" in words
    assert not any(w.startswith("./cmd/") and w != "./cmd/api" for w in words)
    assert clone.built_files() == {f"bin/{goos}/{goarch}/api"}

    quiet = clone.make("build", "BINS=api")
    assert quiet.returncode == 0, clone.describe(quiet)
    assert not [line for line in output_lines(quiet) if line.startswith("+ ")], clone.describe(quiet)


def test_make_help_lists_the_multiarch_targets(clone: Clone) -> None:
    proc = clone.make("help")
    assert proc.returncode == 0, clone.describe(proc)
    targets = {line.split()[0] for line in plain(proc.stdout).splitlines() if line.startswith("  ")}
    assert {"build.multiarch", "image.multiarch"} <= targets, proc.stdout
