"""Prove every image before a tag moves.

For each service index: the platforms are exactly the expected ones
(attestations aside); each platform's image config agrees with its index
entry; the service binary, read straight out of the layers through the
registry API, has the right ELF machine/class/endianness and the -X values of
this build; and a smoke run under the docker daemon (QEMU for foreign arches)
ends ok within a hard timeout, its output naming the expected arch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crossbuild import binaries, builder, output
from crossbuild.errors import UserError
from crossbuild.platforms import Platform
from crossbuild.registry import Reference, RegistryClient, index_entries, is_index, parse_reference

OK, FAILED, HUNG, SKIPPED = "ok", "failed", "hung", "skipped"


@dataclass
class PlatformReport:
    platform: str
    result: str = OK
    problems: list[str] = field(default_factory=list)
    smoke: str = ""
    smoke_output: str = ""

    def fail(self, problem: str) -> None:
        self.problems.append(problem)
        if self.result != HUNG:
            self.result = FAILED


@dataclass
class ImageReport:
    service: str
    ref: str
    digest: str = ""
    problems: list[str] = field(default_factory=list)
    platforms: list[PlatformReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(p.result in (OK, SKIPPED) for p in self.platforms)


@dataclass(frozen=True)
class Expectation:
    """What one image must be; built from the Config by the caller."""

    service: str
    ref: str
    platforms: tuple[Platform, ...]
    binary: str  # path inside the image, e.g. /usr/local/bin/api
    values: tuple[tuple[str, str], ...]  # -X variable -> value
    smoke_args: tuple[str, ...] = ("--version",)


def _platform_of_config(config: dict[str, Any]) -> Platform:
    arch = str(config.get("architecture", ""))
    variant = str(config.get("variant", ""))
    if arch == "arm64" and variant in ("v8", "v8.0"):
        variant = ""
    if arch == "amd64" and variant == "v1":
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    return Platform(str(config.get("os", "")), arch, variant)


def binary_path(config: dict[str, Any], fallback: str) -> str:
    entry = (config.get("config") or {}).get("Entrypoint") or []
    return str(entry[0]) if entry else fallback


def check_static(client: RegistryClient, exp: Expectation) -> ImageReport:
    """Everything that needs only the registry: index, configs, binaries."""
    report = ImageReport(exp.service, exp.ref)
    ref = parse_reference(exp.ref)
    manifest = client.get_manifest(ref)
    report.digest = manifest.digest
    if not is_index(manifest.media_type):
        report.problems.append(f"{exp.ref} is a single-platform manifest, not an index ({manifest.media_type})")
        return report
    entries = [e for e in index_entries(manifest.data) if not e.is_attestation and e.platform is not None]
    found = [str(e.platform) for e in entries]
    expected = [str(p) for p in exp.platforms]
    missing = [p for p in expected if p not in found]
    extra = [p for p in found if p not in expected]
    if missing:
        report.problems.append(f"index lacks {', '.join(missing)}")
    if extra:
        report.problems.append(f"index has unexpected {', '.join(extra)}")
    values = dict(exp.values)
    for entry in entries:
        assert entry.platform is not None
        pr = PlatformReport(str(entry.platform))
        report.platforms.append(pr)
        child_ref = Reference(ref.registry, ref.repository, None, entry.digest)
        image = client.get_manifest(child_ref)
        config = client.get_json_blob(ref.registry, ref.repository, image.data["config"]["digest"])
        actual = _platform_of_config(config)
        if actual != entry.platform:
            pr.fail(f"image config says {actual}, index entry says {entry.platform}")
        path = binary_path(config, exp.binary)
        data = client.extract_file(ref.registry, ref.repository, image.data, path)
        if data is None:
            pr.fail(f"{path} not found in the image layers")
            continue
        for problem in binaries.check_header(data, entry.platform) + binaries.check_variant(data, entry.platform):
            pr.fail(f"{path}: {problem}")
        for key in binaries.missing_values(data, values):
            pr.fail(f"{path}: -X {key}={values[key]} not in the binary")
    return report


def _emulation_skip(platform: Platform) -> str:
    if platform.arch in ("amd64", "386"):
        return ""
    if builder.foreign([platform]) and not builder.binfmt_registered(platform.arch):
        name = builder.QEMU_ARCH.get(platform.arch, platform.arch)
        return f"no QEMU binfmt handler for {platform.arch} (/proc/sys/fs/binfmt_misc/qemu-{name}); run `make setup`"
    return ""


def smoke(
    exp: Expectation, report: ImageReport, timeout: float, registry_ref: Reference, digests: dict[str, str]
) -> None:
    """Run each platform's image with its smoke arguments; kill it after `timeout` seconds."""
    import docker  # noqa: PLC0415 - the daemon is only needed for smoke runs
    import docker.errors  # noqa: PLC0415

    try:
        client = docker.from_env(timeout=max(60, int(timeout) + 30))
        client.ping()
    except docker.errors.DockerException as exc:
        for pr in report.platforms:
            if pr.result == OK:
                pr.result, pr.smoke = SKIPPED, f"no docker daemon ({exc.__class__.__name__})"
        return
    try:
        for pr in report.platforms:
            platform = (
                next(p for p in exp.platforms if str(p) == pr.platform)
                if pr.platform in {str(p) for p in exp.platforms}
                else None
            )
            if platform is None or pr.result != OK:
                continue
            reason = _emulation_skip(platform)
            if reason:
                pr.result, pr.smoke = SKIPPED, reason
                continue
            _smoke_one(
                client,
                exp,
                pr,
                platform,
                timeout,
                f"{registry_ref.registry}/{registry_ref.repository}",
                digests[pr.platform],
            )
    finally:
        client.close()


def _smoke_one(
    client: Any, exp: Expectation, pr: PlatformReport, platform: Platform, timeout: float, repository: str, digest: str
) -> None:
    import docker.errors  # noqa: PLC0415

    try:
        image = client.images.pull(repository, tag=digest, platform=str(platform))
        container = client.containers.create(image.id, command=list(exp.smoke_args), platform=str(platform))
    except docker.errors.DockerException as exc:
        pr.fail(f"smoke: cannot start container: {exc}")
        pr.smoke = "failed"
        return
    try:
        container.start()
        done = threading.Event()
        status: dict[str, Any] = {}

        def wait() -> None:
            try:
                status.update(container.wait())
            except docker.errors.DockerException as exc:  # killed or removed under us
                status["error"] = str(exc)
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        finished = done.wait(timeout)
        if not finished:
            container.kill()
            done.wait(10)
        logs = container.logs().decode(errors="replace")
        pr.smoke_output = "\n".join(logs.strip().splitlines()[-8:])
        if not finished:
            pr.result = HUNG
            pr.problems.append(f"smoke: no exit within {timeout:g}s, container killed")
            pr.smoke = HUNG
        elif status.get("StatusCode", 1) != 0:
            pr.smoke = FAILED
            pr.fail(f"smoke: exit {status.get('StatusCode')}: {pr.smoke_output[-300:]}")
        elif platform.arch not in logs:
            pr.smoke = FAILED
            pr.fail(f"smoke: output does not name {platform.arch}: {pr.smoke_output[-200:]}")
        else:
            pr.smoke = OK
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            output.warn(f"could not remove smoke container {container.id[:12]}")


def verify(
    client: RegistryClient,
    expectations: Sequence[Expectation],
    *,
    smoke_timeout: float = 30.0,
    run_smoke: bool = True,
    on_report: Callable[[ImageReport], None] | None = None,
) -> list[ImageReport]:
    reports = []
    for exp in expectations:
        try:
            report = check_static(client, exp)
        except UserError as exc:
            report = ImageReport(exp.service, exp.ref, problems=[str(exc)])
        if run_smoke and report.platforms:
            ref = parse_reference(exp.ref)
            manifest = client.get_manifest(ref)
            digests = {str(e.platform): e.digest for e in index_entries(manifest.data) if e.platform is not None}
            smoke(exp, report, smoke_timeout, ref, digests)
        if on_report is not None:
            on_report(report)
        reports.append(report)
    return reports


def table_rows(reports: Sequence[ImageReport]) -> list[list[str]]:
    rows = []
    for r in reports:
        for problem in r.problems:
            rows.append([r.service, "-", FAILED, problem])
        for p in r.platforms:
            detail = "; ".join(p.problems) or p.smoke or ""
            rows.append([r.service, p.platform, p.result, detail])
    return rows


def write_json(reports: Sequence[ImageReport], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = [{**asdict(r), "ok": r.ok} for r in reports]
    path.write_text(json.dumps(data, indent=2) + "\n")


def markdown(reports: Sequence[ImageReport]) -> str:
    lines = ["| service | platform | result | detail |", "|---|---|---|---|"]
    for row in table_rows(reports):
        lines.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |")
    return "\n".join(lines) + "\n"


def append_step_summary(reports: Sequence[ImageReport]) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("### crossbuild verify\n\n" + markdown(reports) + "\n")
