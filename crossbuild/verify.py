"""Prove every image before a tag moves.

For each service index: the platforms are exactly the expected ones
(attestations aside); each platform's image config agrees with its index
entry; the service binary, read straight out of the layers through the
registry API, is for that platform by two witnesses (its ELF machine, class
and endianness, and the GOOS / GOARCH / GOARM / GOAMD64 Go recorded in its
build info) and holds the -X values of this build. Then each platform is
smoke-run under the docker daemon (QEMU for foreign arches) and must behave
as on the native platform: the same exit code, or, for a server, still
running when its short time is up (see crossbuild.smoke for the plan and the
probe that chooses the arguments).

Every service and every platform is checked in one run and every failure is
reported, one row each. Registry reads and smoke runs go through bounded
thread pools, so a whole verify costs about one smoke timeout; results keep
the order of the services and of each index. Images pulled for smoke runs
are removed afterwards (crossbuild.daemon).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from crossbuild import attestations, binaries, builder, output, sbom, signatures, smoke
from crossbuild.daemon import Daemon, DaemonError, DaemonUnavailable
from crossbuild.errors import UserError
from crossbuild.oci import Client, PlatformEntry, image_entries, is_index, parse_reference
from crossbuild.oci.index import config_digest
from crossbuild.platforms import Platform, platform_of_config

OK, FAILED, HUNG, SKIPPED = "ok", "failed", "hung", "skipped"
REGISTRY_PARALLEL = 8  # concurrent registry reads (manifests, configs, layers)
SMOKE_PARALLEL = 16  # concurrent pulls and containers; each waiting container costs one thread
SMOKE_OUTPUT_LINES = 20  # last lines of a smoke run kept in the JSON report


@dataclass
class PlatformReport:
    platform: str
    digest: str = ""
    result: str = OK
    problems: list[str] = field(default_factory=list)
    smoke: str = ""  # the smoke run's own result word; "" when it did not run
    smoke_output: str = ""
    smoke_args: list[str] | None = None
    smoke_exit: int | None = None
    smoke_seconds: float = 0.0
    note: str = ""  # what a row without problems shows: what passed, or why it was skipped
    sbom: str = ""  # the attached SBOM: format and module count ("" when not checked)
    provenance: dict[str, Any] = field(default_factory=dict)  # builder_id, build_type, materials (SLSA)

    def fail(self, problem: str) -> None:
        self.problems.append(problem)
        if self.result != HUNG:
            self.result = FAILED

    def hang(self, problem: str) -> None:
        self.problems.append(problem)
        self.result = HUNG

    def skip(self, reason: str) -> None:
        self.result, self.smoke, self.note = SKIPPED, SKIPPED, reason


@dataclass
class ImageReport:
    service: str
    ref: str
    digest: str = ""
    problems: list[str] = field(default_factory=list)
    platforms: list[PlatformReport] = field(default_factory=list)
    smoke_plan: str = ""  # what every platform's smoke run had to do, and where that came from
    signature: str = ""  # whose signature the index carries ("" when not checked)

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
    smoke_args: tuple[str, ...] | None = None  # None: probe (crossbuild.smoke.CANDIDATES)
    smoke_exit: int | None = None  # None: 0 with smoke_args, else what the probe saw
    smoke_expect: str = ""  # regular expression the output must match
    sbom: str = ""  # the SBOM format every platform must carry (crossbuild.sbom.FORMATS); "" = not checked
    public_key: str = ""  # a cosign public key file the index and every image must be signed with
    provenance: bool = False  # every platform must carry SLSA provenance


def binary_path(config: dict[str, Any], fallback: str) -> str:
    entry = (config.get("config") or {}).get("Entrypoint") or []
    return str(entry[0]) if entry else fallback


# --- registry checks --------------------------------------------------------------------------


def _read_index(client: Client, exp: Expectation) -> tuple[ImageReport, list[PlatformEntry], dict[str, str]]:
    """The report skeleton with one PlatformReport per image entry, those entries, and the attestation
    manifest of each image digest (crossbuild.attestations)."""
    report = ImageReport(exp.service, exp.ref)
    try:
        manifest = client.get_manifest(parse_reference(exp.ref))
        report.digest = manifest.digest
        if not is_index(manifest.media_type):
            report.problems.append(f"{exp.ref} is a single-platform manifest, not an index ({manifest.media_type})")
            return report, [], {}
        entries = image_entries(manifest.data)
        attested = {digest: e.digest for digest, e in attestations.by_subject(manifest.data).items()}
    except UserError as exc:
        report.problems.append(str(exc))
        return report, [], {}
    found = [str(e.platform) for e in entries]
    expected = [str(p) for p in exp.platforms]
    missing = [p for p in expected if p not in found]
    extra = [p for p in found if p not in expected]
    if missing:
        report.problems.append(f"index lacks {', '.join(missing)}")
    if extra:
        report.problems.append(f"index has unexpected {', '.join(extra)}")
    report.platforms = [PlatformReport(str(e.platform), e.digest) for e in entries]
    return report, entries, attested


def _check_platform(
    client: Client, exp: Expectation, entry: PlatformEntry, pr: PlatformReport, attestation: str | None
) -> None:
    """Config against index entry, then the binary from the layers: header, build info, -X values."""
    assert entry.platform is not None
    ref = parse_reference(exp.ref)
    try:
        image = client.get_manifest(ref.at(entry.digest))
        config = client.get_json_blob(ref.registry, ref.repository, config_digest(image, ref.at(entry.digest)))
        try:
            actual = platform_of_config(config)
        except UserError as exc:
            pr.fail(str(exc))
        else:
            if actual != entry.platform:
                pr.fail(f"image config says {actual}, index entry says {entry.platform}")
        path = binary_path(config, exp.binary)
        data = client.extract_file(ref.registry, ref.repository, image.data, path)
    except UserError as exc:
        pr.fail(str(exc))
        return
    if data is None:
        pr.fail(f"{path} not found in the image layers")
        return
    for problem in binaries.check_header(data, entry.platform) + binaries.check_build_info(data, entry.platform):
        pr.fail(f"{path}: {problem}")
    values = dict(exp.values)
    for key in binaries.missing_values(data, values):
        pr.fail(f"{path}: -X {key}={values[key]} not in the binary")
    if exp.sbom or exp.provenance or attestation is not None:
        try:
            _check_attestations(client, exp, entry, pr, attestation, data)
        except (UserError, ValueError) as exc:
            pr.fail(f"attestations: {exc}")


def _check_attestations(
    client: Client, exp: Expectation, entry: PlatformEntry, pr: PlatformReport, attestation: str | None, data: bytes
) -> None:
    """The SBOM attached for this image lists exactly the modules of the binary's build info; the SLSA
    provenance, if any, is summarised in the report."""
    if attestation is None:
        if exp.sbom:
            pr.fail(
                "no SBOM attached (no attestation manifest for this image in the index): "
                "publish it again with this crossbuild, or check without one: SBOM=0"
            )
        if exp.provenance:
            pr.fail("no provenance attached (no attestation manifest for this image in the index)")
        return
    statements = attestations.read_statements(client, parse_reference(exp.ref), attestation)
    boms = [(fmt, st) for st in statements if (fmt := sbom.format_of(st.predicate_type)) is not None]
    provenance = [st for st in statements if st.predicate_type.startswith(attestations.PROVENANCE_PREFIX)]
    if provenance:
        pr.provenance = attestations.provenance_summary(provenance[0])
    elif exp.provenance:
        pr.fail("no SLSA provenance in the attestation manifest")
    if not boms:
        if exp.sbom:
            pr.fail("no SBOM in the attestation manifest")
        return
    fmt, st = boms[0]
    if entry.digest not in st.subject_digests():
        pr.fail(f"the SBOM is about {', '.join(st.subject_digests()) or 'nothing'}, not this image {entry.digest}")
    if exp.sbom and fmt != exp.sbom:
        pr.fail(f"the SBOM is {fmt}, expected {exp.sbom}")
    info = binaries.read_build_info(data)
    if info is None:
        pr.fail("the binary carries no Go build info to compare the SBOM with")
        return
    problems = sbom.compare(fmt, st.predicate, info)
    for problem in problems[:5]:
        pr.fail(problem)
    if len(problems) > 5:
        pr.fail(f"and {len(problems) - 5} more SBOM differences")
    if not problems:
        pr.sbom = f"{fmt}: {len(sbom.expected_rows(info))} modules, as in the binary"


def _check_signature(client: Client, exp: Expectation, report: ImageReport, digests: Sequence[str]) -> None:
    """The index and every platform image carry a cosign signature by `exp.public_key` (crossbuild.signatures)."""
    try:
        key = signatures.read_public_key(Path(exp.public_key))
        ref = parse_reference(exp.ref)
        problems = [
            problem
            for digest in digests
            if (
                problem := signatures.check(key, signatures.fetch(client, ref.registry, ref.repository, digest), digest)
            )
        ]
    except UserError as exc:
        problems = [str(exc)]
    if problems:
        report.problems += [f"signature: {p}" for p in problems]
    else:
        report.signature = f"cosign, {key.name} ({key.fingerprint[:19]}): index and {len(digests) - 1} image(s)"


def check_static(
    client: Client, expectations: Sequence[Expectation], parallel: int = REGISTRY_PARALLEL
) -> list[tuple[ImageReport, dict[str, Platform]]]:
    """Everything that needs only the registry, for every image at once.

    Each report comes with its platforms by name (as the index spells them),
    which the smoke runs need.
    """
    with ThreadPoolExecutor(parallel, thread_name_prefix="registry") as pool:
        heads = list(pool.map(lambda exp: _read_index(client, exp), expectations))
        checks = [
            pool.submit(_check_platform, client, exp, entry, pr, attested.get(entry.digest))
            for exp, (report, entries, attested) in zip(expectations, heads, strict=True)
            for entry, pr in zip(entries, report.platforms, strict=True)
        ]
        checks += [
            pool.submit(_check_signature, client, exp, report, [report.digest, *(e.digest for e in entries)])
            for exp, (report, entries, _) in zip(expectations, heads, strict=True)
            if exp.public_key and report.digest
        ]
        for future in checks:
            future.result()
    result = []
    for report, entries, _ in heads:
        result.append((report, {str(e.platform): e.platform for e in entries if e.platform is not None}))
    return result


# --- smoke runs ---------------------------------------------------------------------------------


def _emulation_skip(platform: Platform, native: Platform) -> str:
    if platform.arch == native.arch or (native.arch == "amd64" and platform.arch == "386"):
        return ""
    if not builder.binfmt_registered(platform.arch):
        name = builder.QEMU_ARCH.get(platform.arch, platform.arch)
        return f"no QEMU binfmt handler for {platform.arch} (/proc/sys/fs/binfmt_misc/qemu-{name}); run `make setup`"
    return ""


class _Loop:
    """Futures on one bounded pool, each with a callback run on the calling thread.

    Callbacks may submit more work; reports are only touched by callbacks, so
    they need no lock.
    """

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.pending: dict[Future[Any], Callable[[Future[Any]], None]] = {}

    def submit(self, then: Callable[[Future[Any]], None], fn: Callable[..., Any], *args: Any) -> None:
        self.pending[self.pool.submit(fn, *args)] = then

    def run(self) -> None:
        while self.pending:
            done, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            for future in done:
                self.pending.pop(future)(future)


@dataclass
class _SmokeContext:
    daemon: Daemon
    loop: _Loop
    timeout: float
    probe_timeout: float
    cache: smoke.ProbeCache | None


class _ServiceSmoke:
    """One image's smoke runs: pull every runnable platform, find the plan (config, cache or probe), run."""

    def __init__(
        self,
        exp: Expectation,
        report: ImageReport,
        platforms: dict[str, Platform],
        ctx: _SmokeContext,
    ) -> None:
        self.exp, self.report, self.ctx = exp, report, ctx
        ref = parse_reference(exp.ref)
        self.repository = f"{ref.registry}/{ref.repository}"
        wanted = {str(p) for p in exp.platforms}
        self.runnable: list[tuple[PlatformReport, Platform]] = []
        for pr in report.platforms:
            if pr.result != OK or pr.platform not in wanted:
                continue
            platform = platforms[pr.platform]
            reason = _emulation_skip(platform, ctx.daemon.platform)
            if reason:
                pr.skip(reason)
            else:
                self.runnable.append((pr, platform))
        self.pulled: set[int] = set()  # id() of the PlatformReports whose image is present
        self.ready: list[tuple[PlatformReport, Platform]] = []
        self.waiting_pulls = len(self.runnable)
        self.probe_runs: list[smoke.Run | None] = []
        self.probe_on: tuple[PlatformReport, Platform] | None = None
        self.stop = threading.Event()
        self.plan: smoke.Plan | None = None

    def ref(self, pr: PlatformReport) -> str:
        return f"{self.repository}@{pr.digest}"

    def start(self) -> None:
        for pr, platform in self.runnable:
            self.ctx.loop.submit(
                partial(self._pulled, pr=pr, platform=platform),
                self.ctx.daemon.ensure,
                self.ref(pr),
                platform,
            )

    def _pulled(self, future: Future[Any], pr: PlatformReport, platform: Platform) -> None:
        self.waiting_pulls -= 1
        try:
            future.result()
        except DaemonError as exc:
            pr.smoke = FAILED
            pr.fail(f"smoke: {exc}")
        else:
            self.pulled.add(id(pr))
        if self.waiting_pulls == 0:
            self.ready = [(pr, p) for pr, p in self.runnable if id(pr) in self.pulled]  # index order
            self._plan()

    def _plan(self) -> None:
        if not self.ready:
            return
        exp = self.exp
        if exp.smoke_args is not None:
            self._launch(smoke.Plan(exp.smoke_args, exp.smoke_exit or 0, exp.smoke_expect))
            return
        native = self.ctx.daemon.platform
        pr, platform = next(
            ((pr, p) for pr, p in self.ready if (p.os, p.arch) == (native.os, native.arch)), self.ready[0]
        )
        self.probe_on = (pr, platform)
        cached = self.ctx.cache.get(exp.service, pr.digest) if self.ctx.cache is not None else None
        if cached is not None:
            plan = smoke.plan_from_probe(
                cached[1], f"cached probe on {cached[0]}", want_exit=exp.smoke_exit, pattern=exp.smoke_expect
            )
            if plan is not None:
                self._launch(plan)
                return
        self.probe_runs = [None] * len(smoke.CANDIDATES)
        for n, args in enumerate(smoke.CANDIDATES):
            self.ctx.loop.submit(
                partial(self._probed, n=n),
                self.ctx.daemon.run,
                self.ref(pr),
                args,
                platform,
                self.ctx.probe_timeout,
                self.stop,
            )

    def _probed(self, future: Future[Any], n: int) -> None:
        self.probe_runs[n] = future.result()
        if self.plan is not None:
            return
        assert self.probe_on is not None
        pr, platform = self.probe_on
        plan = smoke.plan_from_probe(
            self.probe_runs, f"probe on {platform}", want_exit=self.exp.smoke_exit, pattern=self.exp.smoke_expect
        )
        if plan is not None:
            self.stop.set()
            if self.ctx.cache is not None:
                self.ctx.cache.put(self.exp.service, pr.digest, str(platform), self.probe_runs)
            self._launch(plan)
        elif all(r is not None for r in self.probe_runs):
            errors = [r.error for r in self.probe_runs if r is not None and r.error]
            why = smoke.fold(errors[0]) if errors else "no candidate ran"
            for pr_, _ in self.ready:
                pr_.smoke = FAILED
                pr_.fail(f"smoke probe on {platform}: no candidate started: {why}")

    def _launch(self, plan: smoke.Plan) -> None:
        self.plan = plan
        self.report.smoke_plan = plan.describe()
        timeout = self.ctx.probe_timeout if plan.exit_code is None else self.ctx.timeout
        for pr, platform in self.ready:
            pr.smoke_args = list(plan.args)
            self.ctx.loop.submit(
                partial(self._ran, pr=pr, plan=plan),
                self.ctx.daemon.run,
                self.ref(pr),
                plan.args,
                platform,
                timeout,
            )

    def _ran(self, future: Future[Any], pr: PlatformReport, plan: smoke.Plan) -> None:
        run: smoke.Run = future.result()
        result, detail = smoke.judge(plan, run, self.ctx.timeout)
        pr.smoke, pr.smoke_exit, pr.smoke_seconds = result, run.exit_code, round(run.seconds, 2)
        pr.smoke_output = "\n".join(run.output.strip().splitlines()[-SMOKE_OUTPUT_LINES:])
        if result == OK:
            pr.note = detail
        elif result == HUNG:
            pr.hang(detail)
        else:
            pr.fail(detail)


def smoke_all(
    checked: Sequence[tuple[Expectation, ImageReport, dict[str, Platform]]],
    *,
    timeout: float,
    cache: smoke.ProbeCache | None,
    parallel: int = SMOKE_PARALLEL,
) -> None:
    """Smoke-run every platform that passed the registry checks, all at once, then remove what was pulled."""
    try:
        daemon = Daemon.connect(parallel=parallel)
    except DaemonUnavailable as exc:
        for _, report, _ in checked:
            for pr in report.platforms:
                if pr.result == OK:
                    pr.skip(str(exc))
        return
    try:
        with ThreadPoolExecutor(parallel, thread_name_prefix="smoke") as pool:
            ctx = _SmokeContext(daemon, _Loop(pool), timeout, min(smoke.PROBE_TIMEOUT, timeout), cache)
            for exp, report, platforms in checked:
                _ServiceSmoke(exp, report, platforms, ctx).start()
            ctx.loop.run()
    finally:
        for problem in daemon.release():
            output.warn(f"could not remove an image pulled for a smoke run: {problem}")
        daemon.close()
        if cache is not None:
            cache.save()


def verify(
    client: Client,
    expectations: Sequence[Expectation],
    *,
    smoke_timeout: float = 30.0,
    run_smoke: bool = True,
    probe_cache: Path | None = None,
    parallel: int = SMOKE_PARALLEL,
) -> list[ImageReport]:
    """Check every image; never stops at the first failure. Reports follow `expectations`."""
    static = check_static(client, expectations)
    reports = [report for report, _ in static]
    if run_smoke:
        cache = smoke.ProbeCache(probe_cache) if probe_cache is not None else None
        checked = [(exp, report, platforms) for exp, (report, platforms) in zip(expectations, static, strict=True)]
        smoke_all(checked, timeout=smoke_timeout, cache=cache, parallel=parallel)
    else:
        for report in reports:
            for pr in report.platforms:
                if pr.result == OK:
                    pr.note = "registry checks only (smoke run not requested)"
    return reports


# --- reporting -------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ⏎ ".join(part.strip() for part in text.splitlines() if part.strip())


def table_rows(reports: Sequence[ImageReport]) -> list[list[str]]:
    """service, platform, result, detail: one row per image problem and per platform."""
    rows = []
    for r in reports:
        for problem in r.problems:
            rows.append([r.service, "-", FAILED, _one_line(problem)])
        for p in r.platforms:
            detail = "; ".join(_one_line(problem) for problem in p.problems) or p.note
            if not p.problems and p.sbom:
                detail = f"{detail}; SBOM {p.sbom}" if detail else f"SBOM {p.sbom}"
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
