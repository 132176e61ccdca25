"""What users see and what they deploy (issue 16), against the real go, buildx, BuildKit and registry.

Every command runs in the session's throwaway clone (committed files only, tagged support.example.TAG).
Output is read as it arrives (each line's arrival time recorded here, not taken from crossbuild's
timestamps) or through a pseudo-terminal; results are checked with skopeo, the registry's HTTP API
and tarfile.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.clone import PROJECT_ROOT, Clone, unique_prefix
from support.commands import describe, require_tools, run
from support.env import clean_env
from support.example import TAG
from support.witness import index_platforms, sha256_digest, skopeo_raw, tags

pytestmark = [pytest.mark.integration, pytest.mark.docker]

TWO = "linux/amd64,linux/arm64"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n
CLOCK_LINE = re.compile(r"^\d\d:\d\d:\d\d (?P<what>\S+(?: \S+)?) ")
ANNOTATION = "org.opencontainers.image."
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module", autouse=True)
def _tools_and_registry(local_registry: str) -> None:
    """The tools these tests drive or read with, and the registry on 127.0.0.1:5000."""
    require_tools("docker", "skopeo", "go", "git", "make", "script")


@dataclass
class Timed:
    returncode: int
    lines: list[tuple[float, str]]  # (seconds since start when the line arrived, the line)

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first(self, pattern: str) -> float:
        for at, line in self.lines:
            if re.search(pattern, line):
                return at
        raise AssertionError(f"no line matches {pattern!r}:\n{self.text}")


def timed(clone: Clone, *args: str, env: dict[str, str]) -> Timed:
    """Run invoke with stdout and stderr on one pipe, recording when each line arrives."""
    proc = subprocess.Popen(
        [str(clone.root / ".venv" / "bin" / "invoke"), *args],
        cwd=clone.root,
        env=clean_env({**clone.env, **env}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    started = time.monotonic()
    lines = []
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip("\n")))
    return Timed(proc.wait(timeout=600), lines)


def under_pty(clone: Clone, command: str, env: dict[str, str]) -> tuple[int, str]:
    """`command` run by script(1) on a pseudo-terminal: (exit code, everything the terminal received)."""
    proc = subprocess.run(
        ["script", "-qfec", command, "/dev/null"],
        cwd=clone.root,
        env=clean_env({**clone.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **env}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=600,
        check=False,
    )
    return proc.returncode, proc.stdout.decode(errors="replace")


_TERMINAL = re.compile(r"\x1b\[(\??)(\d*)([A-Za-z])|(\r)|(\n)|([^\x1b\r\n]+)")


def replay(received: str, columns: int) -> tuple[list[str], bool]:
    """The rows a terminal `columns` wide shows once it has received `received`, and whether the
    cursor is visible. It knows what the live region uses (CR, LF, cursor up, erase below, colours,
    cursor visibility) and wraps long lines as xterm does, so a region line that wrapped leaves a
    piece behind when the region is erased; it fails on text written over text and on any other
    sequence."""
    lines, row, col, visible = [""], 0, 0, True
    for token in _TERMINAL.finditer(received):
        private, number, final, cr, lf, text = token.groups()
        if text:
            for char in text:
                if col == columns:  # the deferred wrap of a full row
                    row, col = row + 1, 0
                    lines += [""] * (row + 1 - len(lines))
                assert len(lines[row]) == col, f"text written over {lines[row]!r}"
                lines[row] += char
                col += 1
        elif cr:
            col = 0
        elif lf:
            row += 1
            lines += [""] * (row + 1 - len(lines))
        elif (private, final) == ("", "A"):
            row = max(row - int(number or 1), 0)
        elif (private, number, final) == ("", "", "J"):
            lines[row] = lines[row][:col]
            del lines[row + 1 :]
        elif (private, number, final) in (("?", "25", "l"), ("?", "25", "h")):
            visible = final == "h"
        else:
            assert (private, final) == ("", "m"), f"unexpected sequence {token.group(0)!r}"
    return lines, visible


def index_digest(ref: str) -> str:
    return sha256_digest(skopeo_raw(ref)[0])


# --- progress ------------------------------------------------------------------------------------


def test_ci_form_is_timestamped_lines_while_the_bake_runs_and_a_step_summary(
    fresh: Clone, prefix: str, tmp_path: Path
) -> None:
    summary = tmp_path / "summary.md"
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "REGISTRY_PREFIX": prefix,
        "IMAGES": "api,push",
        "PLATFORMS": TWO,
    }
    result = timed(fresh, "image.multiarch", env=env)
    assert result.returncode == 0, result.text
    assert not CONTROL.search(result.text), "the CI form has control characters"

    # progress events arrived while the bake ran, not after it
    bake_started, verify_started = result.first(r"^==> bake "), result.first(r"^==> verify ")
    events = [(at, line) for at, line in result.lines if re.match(r"^\d\d:\d\d:\d\d bake ", line)]
    assert len(events) >= 4, result.text
    assert all(bake_started <= at <= verify_started for at, _ in events), result.text
    assert {line.split(" ")[2].rstrip(":") for _, line in events} >= {"api", "push"}
    assert any(re.search(r" bake api linux/arm64: ", line) for _, line in events), result.text
    assert any(at < verify_started - 0.2 for at, _ in events), "no bake event before the bake ended"
    compile_events = [line for _, line in result.lines if re.match(r"^\d\d:\d\d:\d\d go build linux/arm64: ", line)]
    assert compile_events, result.text
    # no step silent for more than 5 seconds (arrival times measured here)
    times = [0.0] + [at for at, _ in result.lines]
    gaps = [(b - a, n) for n, (a, b) in enumerate(itertools.pairwise(times))]
    worst = max(gaps)
    assert worst[0] <= 5.5, f"{worst[0]:.1f}s of silence before line {worst[1]}:\n{result.text}"

    text = summary.read_text()
    assert "### crossbuild verify" in text
    assert f"### crossbuild image.multiarch: imdemo {TAG}" in text
    for service in ("api", "push"):
        digest = index_digest(f"{prefix}/{service}:{TAG}")
        row = next(line for line in text.splitlines() if line.startswith(f"| {service} | `sha256:"))
        assert f"`{digest}`" in row and "linux/amd64, linux/arm64" in row and "| verified |" in row, row
        assert f"`{prefix}/{service}:{TAG}`" in row and f"`{prefix}/{service}:latest`" in row, row


def test_terminal_form_draws_rows_in_place(fresh: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": TWO}
    code, screen = under_pty(fresh, ".venv/bin/invoke image.multiarch", env)
    assert code == 0, screen
    # redrawn in place: the cursor goes up over the rows drawn before and clears them (any count of lines)
    assert re.search(r"\x1b\[\d*A", screen) and re.search(r"\x1b\[[012]?[JK]", screen), "nothing was redrawn in place"
    # once it is over, the rows are gone and the cursor is back: the step lines and tables stay, in order
    shown, cursor_visible = replay(screen, columns=120)
    assert cursor_visible, "the cursor was left hidden"
    left = [line for line in shown if re.search("[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓✗·]", line)]
    assert not left, f"live rows left on the screen: {left}"
    steps = [line.removeprefix("==> ").split()[0] for line in ANSI.sub("", "\n".join(shown)).splitlines()]
    assert [s for s in steps if s in ("images", "go", "bake", "verify")] == ["images", "go", "bake", "verify"]
    assert shown[-1] == "" and ANSI.sub("", shown[-2]).startswith("  ok done in"), shown[-3:]
    screen = ANSI.sub("", screen)
    assert re.search(r"api linux/arm64 +[\d.]+s +\S", screen), "no bake row for api linux/arm64"
    assert re.search(r"linux/arm64 +[\d.]+s +compiling", screen), "no go build row for linux/arm64"
    assert not re.search(r"^\d\d:\d\d:\d\d bake ", screen, re.MULTILINE), "plain lines on a terminal"
    assert f"{prefix}/api:{TAG}" in screen  # the summary table, printed after the live rows
    assert index_digest(f"{prefix}/api:{TAG}")


def test_failures_are_github_error_annotations(fresh: Clone, prefix: str) -> None:
    env = {"GITHUB_ACTIONS": "true", "REGISTRY_PREFIX": prefix, "IMAGES": "nope"}
    proc = fresh.invoke("image.multiarch", env=env)
    assert proc.returncode != 0
    notes = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert len(notes) == 1, describe(proc)
    assert notes[0].startswith("::error title=crossbuild image.multiarch::IMAGES%3A unknown service 'nope'") or (
        "unknown service 'nope'" in notes[0]
    ), notes


def test_manifest_says_merged_and_writes_its_step_summary(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api"}
    for platform in ("linux/amd64", "linux/arm64"):
        proc = fresh.invoke("image", "--platform", platform, "--push-by-digest", env=env)
        assert proc.returncode == 0, describe(proc)
    summary = tmp_path / "summary.md"
    proc = fresh.invoke("manifest", env={**env, "PLATFORMS": TWO, "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 0, describe(proc)
    digest = index_digest(f"{prefix}/api:{TAG}")
    rows = [row for row in (line.split() for line in proc.stdout.splitlines()) if row[1:2] == [f"{prefix}/api:{TAG}"]]
    assert rows and all(row[-1] == "merged" for row in rows), describe(proc)
    text = summary.read_text()
    assert f"### crossbuild manifest: imdemo {TAG}" in text, text
    row = next(line for line in text.splitlines() if line.startswith("| api | `sha256:"))
    assert f"`{digest}`" in row and "| merged | verified |" in row, row


# --- item 6 defects -------------------------------------------------------------------------------


def test_dry_run_prints_one_command_a_line_and_no_timings(fresh: Clone) -> None:
    proc = fresh.invoke("build.multiarch", "--dry-run", env={"PLATFORMS": "linux/amd64,linux/arm64,linux/arm/v7"})
    assert proc.returncode == 0, describe(proc)
    planned = [line for line in proc.stdout.splitlines() if line.startswith("[dry-run] ")]
    assert len(planned) == 3, describe(proc)
    assert all(line.count(" go build ") == 1 for line in planned), describe(proc)
    assert not re.search(r"ok linux/\S+ in [\d.]+s", proc.stdout), "a step that did not run reports a time"
    assert not (fresh.build_dir / "bin").exists()


def test_a_first_push_to_a_new_namespace_says_so(fresh: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": "linux/amd64"}
    proc = fresh.invoke("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    other = unique_prefix()
    proc = fresh.invoke("image.multiarch", "--dry-run", env={**env, "REGISTRY_PREFIX": other})
    assert proc.returncode == 0, describe(proc)
    row = next(line for line in proc.stdout.splitlines() if line.startswith("api "))
    assert f"first push to {other}/api" in row and "inputs changed" not in row, row


def test_oci_tarball_holds_the_per_arch_manifests_the_push_made(fresh: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": TWO}
    proc = fresh.invoke("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    pushed = index_platforms(skopeo_raw(f"{prefix}/api:{TAG}")[1])
    proc = fresh.invoke("image.multiarch", "--output", "oci", env=env)
    assert proc.returncode == 0, describe(proc)
    with tarfile.open(fresh.build_dir / "oci" / "api.tar") as tar:
        files = {m.name.removeprefix("./"): m for m in tar if m.isfile()}

        def blob(digest: str) -> bytes:
            handle = tar.extractfile(files["blobs/sha256/" + digest.removeprefix("sha256:")])
            assert handle is not None
            return handle.read()

        handle = tar.extractfile(files["index.json"])
        assert handle is not None
        top = json.loads(handle.read())
        for entry in top["manifests"]:
            written = index_platforms(json.loads(blob(entry["digest"])))
            assert written == pushed, f"OCI tarball {written} != pushed {pushed}"


def test_check_reproducible_moves_no_tag(fresh: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": "linux/amd64"}
    proc = fresh.invoke("image.multiarch", "--check-reproducible", env=env)
    assert proc.returncode == 0, describe(proc)
    assert "no tag was moved" in proc.stdout
    assert tags(f"{prefix.split('/', 1)[1]}/api") == []


def test_make_help_on_a_fresh_clone_is_instant_and_says_what_comes(tmp_path: Path) -> None:
    dest = tmp_path / "fresh"
    assert run(["git", "clone", "--quiet", PROJECT_ROOT, dest]).returncode == 0
    started = time.monotonic()
    proc = run(["make", "--no-print-directory", "help"], cwd=dest)
    assert proc.returncode == 0, describe(proc)
    assert time.monotonic() - started < 5
    assert "image.multiarch" in proc.stdout
    assert ".venv is not set up yet" in proc.stdout and "pip-installs crossbuild" in proc.stdout
    assert ".venv/bin/invoke --list" in proc.stdout
    assert not (dest / ".venv").exists()


# --- release tags, snapshots, annotations -----------------------------------------------------------


def test_a_dirty_tree_does_not_move_latest_unless_forced_and_a_snapshot_tags_each_arch(
    clone: Clone, prefix: str
) -> None:
    clone.reset_build()
    source = clone.module_dir / "cmd" / "api" / "main.go"
    original = source.read_text()
    source.write_text(original + "\n// a local change\n")
    try:
        env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": TWO}
        ns = prefix.split("/", 1)[1]
        proc = clone.invoke("image.multiarch", env=env)
        assert proc.returncode == 0, describe(proc)
        assert f"latest not moved: version {TAG}-dirty is from a dirty tree" in proc.stderr, describe(proc)
        assert tags(f"{ns}/api") == [f"{TAG}-dirty"]

        proc = clone.invoke("image.multiarch", "--force-release-tags", env=env)
        assert proc.returncode == 0, describe(proc)
        assert tags(f"{ns}/api") == sorted([f"{TAG}-dirty", "latest"])
        assert index_digest(f"{prefix}/api:latest") == index_digest(f"{prefix}/api:{TAG}-dirty")

        other = unique_prefix()
        proc = clone.invoke("image.multiarch", "--snapshot", env={**env, "REGISTRY_PREFIX": other})
        assert proc.returncode == 0, describe(proc)
        found = tags(f"{other.split('/', 1)[1]}/api")
        assert found == sorted([f"{TAG}-dirty", f"{TAG}-dirty-linux-amd64", f"{TAG}-dirty-linux-arm64"])
        per_arch = index_platforms(skopeo_raw(f"{other}/api:{TAG}-dirty")[1])
        for platform, digest in per_arch.items():
            assert index_digest(f"{other}/api:{TAG}-dirty-{platform.replace('/', '-')}") == digest
    finally:
        source.write_text(original)


def test_index_and_manifests_carry_the_oci_annotations(fresh: Clone, prefix: str) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api", "PLATFORMS": TWO}
    proc = fresh.invoke("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    _, index = skopeo_raw(f"{prefix}/api:{TAG}")
    created = dt.datetime.fromtimestamp(int(fresh.git("log", "-1", "--format=%ct")), tz=dt.UTC)
    for where, notes in [("index", index.get("annotations") or {})] + [
        (p, skopeo_raw(f"{prefix}/api@{d}")[1].get("annotations") or {}) for p, d in index_platforms(index).items()
    ]:
        assert notes.get(ANNOTATION + "version") == TAG, (where, notes)
        assert notes.get(ANNOTATION + "revision") == fresh.git("rev-parse", "HEAD"), (where, notes)
        assert notes.get(ANNOTATION + "source") == "https://github.com/crossbuild-example/imdemo", (where, notes)
        assert dt.datetime.fromisoformat(notes[ANNOTATION + "created"]) == created, (where, notes)


# --- resolve -------------------------------------------------------------------------------------


K8S = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: imdemo   # the services
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: "{prefix}/push:{tag}"
      containers:
        - name: api
          image: {prefix}/api
        - name: cache
          image: {third}
"""
COMPOSE = """\
services:
  api:
    image: ${{PREFIX}}/api:latest
    ports: ["8080:8080"]
  push:
    image: {prefix}/push
  cache:
    image: {third}
"""


def test_resolve_pins_project_images_to_the_published_index(fresh: Clone, prefix: str, tmp_path: Path) -> None:
    env = {"REGISTRY_PREFIX": prefix, "IMAGES": "api,push", "PLATFORMS": "linux/amd64"}
    proc = fresh.invoke("image.multiarch", env=env)
    assert proc.returncode == 0, describe(proc)
    third = f"{prefix}/thirdparty:1"
    copy = run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{prefix}/push:{TAG}",
            f"docker://{third}",
        ]
    )
    assert copy.returncode == 0, describe(copy)
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "app.yaml").write_text(K8S.format(prefix=prefix, tag=TAG, third=third))
    (deploy / "docker-compose.yml").write_text(COMPOSE.format(prefix=prefix, third=third))
    published = {s: index_digest(f"{prefix}/{s}:{TAG}") for s in ("api", "push")}

    proc = fresh.invoke("resolve", str(deploy / "app.yaml"), env={"REGISTRY_PREFIX": prefix})
    assert proc.returncode == 0, describe(proc)
    pinned = re.findall(r"image: \"?(\S+?)\"?$", proc.stdout, re.MULTILINE)
    assert pinned == [f"{prefix}/push@{published['push']}", f"{prefix}/api@{published['api']}", third], proc.stdout
    for ref in pinned[:2]:
        assert index_digest(ref) == ref.rpartition("@")[2]  # skopeo resolves the pin to the published index
    assert "  name: imdemo   # the services\n" in proc.stdout

    out = tmp_path / "out"
    proc = fresh.invoke(
        "resolve",
        f"{deploy / 'docker-compose.yml'},{deploy / 'app.yaml'}",
        "--third-party",
        "--output",
        str(out),
        env={"REGISTRY_PREFIX": prefix, "PREFIX": prefix},
    )
    assert proc.returncode == 0, describe(proc)
    compose = (out / "docker-compose.yml").read_text()
    assert f"image: {prefix}/api@{published['api']}" in compose
    assert f"image: {prefix}/push@{published['push']}" in compose
    assert f"image: {third}@{index_digest(third)}" in compose
    assert f"{third}@{index_digest(third)}" in (out / "app.yaml").read_text()
