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
thread pools and overlap: each platform's image is pulled while its registry
checks run, and smoke-runs as soon as both are done and its image's plan is
known, so a whole verify costs about the layer reads plus one smoke run (or
one smoke timeout when something hangs); results keep the order of the
services and of each index. Images pulled for smoke runs are removed
afterwards (crossbuild.daemon).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossbuild import attestations, binaries, builder, output, sbom, signatures, smoke
from crossbuild.errors import UserError
from crossbuild.oci import Client, PlatformEntry, image_entries, is_index, parse_reference
from crossbuild.oci.index import config_digest
from crossbuild.platforms import Platform, platform_of_config

if TYPE_CHECKING:
    from crossbuild.daemon import Daemon

OK, FAILED, HUNG, SKIPPED = "ok", "failed", "hung", "skipped"
REGISTRY_PARALLEL = 8  # concurrent registry reads (manifests, configs, layers)
SMOKE_PARALLEL = 16  # concurrent pulls and containers; each waiting container costs one thread
PULL_PARALLEL = 4  # concurrent pulls (of SMOKE_PARALLEL): a few more than the daemon downloads at once
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


# --- one run: registry checks and smoke runs, overlapped ----------------------------------------


def _emulation_skip(platform: Platform, native: Platform) -> str:
    if platform.arch == native.arch or (native.arch == "amd64" and platform.arch == "386"):
        return ""
    if not builder.binfmt_registered(platform.arch):
        name = builder.QEMU_ARCH.get(platform.arch, platform.arch)
        return f"no QEMU binfmt handler for {platform.arch} (/proc/sys/fs/binfmt_misc/qemu-{name}); run `make setup`"
    return ""


class _Loop:
    """Futures on bounded pools, each with a callback run on the calling thread, and timers.

    Callbacks may submit more work. A platform's report is written by its
    registry check in a worker, and by callbacks only once that check is done,
    so reports need no lock. A callback calls `future.result()`, so a bug in a
    worker surfaces here as its traceback. A timer only fires while some work
    is pending: with none left, nothing could be waiting for it.
    """

    def __init__(self) -> None:
        self.pending: dict[Future[Any], Callable[[Future[Any]], None]] = {}
        self.timers: list[tuple[float, int, Callable[[], None]]] = []  # a heap of (when, order, callback)
        self.order = itertools.count()

    def submit(
        self, pool: ThreadPoolExecutor, then: Callable[[Future[Any]], None], fn: Callable[..., Any], *args: Any
    ) -> None:
        self.pending[pool.submit(fn, *args)] = then

    def later(self, seconds: float, then: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self.order), then))

    def run(self) -> None:
        while self.pending:
            left = self.timers[0][0] - time.monotonic() if self.timers else None
            done, _ = wait(self.pending, timeout=None if left is None else max(0.0, left), return_when=FIRST_COMPLETED)
            for future in done:
                self.pending.pop(future)(future)
            while self.timers and self.timers[0][0] <= time.monotonic():
                heapq.heappop(self.timers)[2]()
        self.timers.clear()


def _raise(future: Future[Any]) -> None:
    future.result()


class _Pulls:
    """Pulls for the smoke runs, PULL_PARALLEL at a time, those a probe waits for first.

    The daemon downloads a few layers at a time whatever it is asked
    (dockerd's max-concurrent-downloads, 3 by default), in the order asked:
    queueing here instead lets the native images, which each image's probe
    and so every other platform's run wait for, overtake the rest, and keeps
    the smoke pool's threads free for the runs.
    """

    def __init__(self, loop: _Loop, pool: ThreadPoolExecutor, daemon: Daemon, limit: int = PULL_PARALLEL) -> None:
        self.loop, self.pool, self.daemon, self.limit = loop, pool, daemon, limit
        self.waiting: list[tuple[int, int, str, Platform, Callable[[Future[Any]], None]]] = []  # a heap
        self.running = 0
        self.order = itertools.count()  # first come, first served within a priority

    def add(self, first: bool, ref: str, platform: Platform, then: Callable[[Future[Any]], None]) -> None:
        heapq.heappush(self.waiting, (0 if first else 1, next(self.order), ref, platform, then))
        self._start()

    def _start(self) -> None:
        while self.running < self.limit and self.waiting:
            _, _, ref, platform, then = heapq.heappop(self.waiting)
            self.running += 1
            self.loop.submit(self.pool, partial(self._done, then=then), self.daemon.ensure, ref, platform)

    def _done(self, future: Future[Any], then: Callable[[Future[Any]], None]) -> None:
        self.running -= 1
        self._start()
        then(future)


@dataclass
class _Context:
    client: Client
    loop: _Loop
    registry_pool: ThreadPoolExecutor
    smoke_pool: ThreadPoolExecutor | None  # None: no smoke runs
    daemon: Daemon | None
    pulls: _Pulls | None
    timeout: float
    probe_timeout: float
    cache: smoke.ProbeCache | None


@dataclass(eq=False)
class _Slot:
    """One platform of one image on its way to a smoke run: checked at the registry, pulled, run."""

    pr: PlatformReport
    entry: PlatformEntry
    attestation: str | None
    skip: str = ""  # why it cannot run here (no QEMU handler); "" = it can
    wanted: bool = True  # one of the expected platforms (an unexpected one is reported, not run)
    checked: bool = False  # the registry checks are done (pr.result says how they went)
    pulled: bool | None = None  # None: the pull is not done (or not asked for); False: it failed
    pull_error: str = ""
    launched: bool = False

    @property
    def platform(self) -> Platform:
        assert self.entry.platform is not None
        return self.entry.platform

    @property
    def state(self) -> str:
        """smoke.PENDING until both the registry checks and the pull are done, then READY or OUT."""
        if (self.checked and self.pr.result != OK) or self.pulled is False:
            return smoke.OUT
        if self.checked and self.pulled:
            return smoke.READY
        return smoke.PENDING


class _ImageCheck:
    """One image: its registry checks and, platform by platform as each is checked and pulled, its smoke runs.

    A platform's pull starts with its registry checks, and its smoke run as soon
    as both are done and the plan is known; the plan comes from config.toml, the
    probe cache or a probe on the native platform, started as soon as that
    platform is ready. So one slow image or platform holds up no other.
    """

    def __init__(self, exp: Expectation, ctx: _Context) -> None:
        self.exp, self.ctx = exp, ctx
        self.report = ImageReport(exp.service, exp.ref)
        ref = parse_reference(exp.ref)
        self.repository = f"{ref.registry}/{ref.repository}"
        self.slots: list[_Slot] = []
        self.plan: smoke.Plan | None = None
        self.plan_failed = ""  # the probe found nothing to run: every ready platform fails with this
        self.probing: _Slot | None = None
        self.probe_runs: list[smoke.Run | None] = []
        self.probe_widened = False  # the candidates after the first are started
        self.stop = threading.Event()

    def start(self) -> None:
        self.ctx.loop.submit(self.ctx.registry_pool, self._indexed, _read_index, self.ctx.client, self.exp)

    def ref(self, slot: _Slot) -> str:
        return f"{self.repository}@{slot.entry.digest}"

    def _indexed(self, future: Future[Any]) -> None:
        report, entries, attested = future.result()
        self.report = report
        wanted = {str(p) for p in self.exp.platforms}
        ctx = self.ctx
        for entry, pr in zip(entries, report.platforms, strict=True):
            slot = _Slot(pr, entry, attested.get(entry.digest), wanted=pr.platform in wanted)
            self.slots.append(slot)
            ctx.loop.submit(
                ctx.registry_pool, partial(self._checked, slot=slot), _check_platform, ctx.client, self.exp, entry, pr,
                slot.attestation,
            )  # fmt: skip
            if ctx.smoke_pool is not None and ctx.daemon is not None and slot.wanted:
                slot.skip = _emulation_skip(slot.platform, ctx.daemon.platform)
                if not slot.skip and ctx.pulls is not None:
                    native = (slot.platform.os, slot.platform.arch) == (
                        ctx.daemon.platform.os,
                        ctx.daemon.platform.arch,
                    )
                    probe = native and self.exp.smoke_args is None
                    ctx.pulls.add(probe, self.ref(slot), slot.platform, partial(self._pulled, slot=slot))
        if self.exp.public_key and report.digest:
            digests = [report.digest, *(e.digest for e in entries)]
            ctx.loop.submit(ctx.registry_pool, _raise, _check_signature, ctx.client, self.exp, self.report, digests)

    def _runnable(self) -> list[_Slot]:
        """The platforms that will smoke-run once ready, in index order."""
        return [s for s in self.slots if s.wanted and not s.skip] if self.ctx.smoke_pool is not None else []

    def _checked(self, future: Future[Any], slot: _Slot) -> None:
        future.result()
        slot.checked = True
        if slot.pr.result == OK and slot.skip:
            slot.pr.skip(slot.skip)
        self._settled(slot)

    def _pulled(self, future: Future[Any], slot: _Slot) -> None:
        try:
            future.result()
        except UserError as exc:  # DaemonError: the daemon refused or failed the pull
            slot.pulled, slot.pull_error = False, str(exc)
        else:
            slot.pulled = True
        self._settled(slot)

    def _settled(self, slot: _Slot) -> None:
        """A platform's check or pull is done: report a failed pull, then move the smoke runs on."""
        if slot.checked and slot.pulled is False and slot.pr.result == OK:
            slot.pr.smoke = FAILED
            slot.pr.fail(f"smoke: {slot.pull_error}")
        if self.plan is None and self.probing is None and not self.plan_failed:
            self._plan()
        self._launch_ready()

    def _plan(self) -> None:
        runnable = self._runnable()
        if not runnable:
            return
        exp = self.exp
        if exp.smoke_args is not None:
            self._set_plan(smoke.Plan(exp.smoke_args, exp.smoke_exit or 0, exp.smoke_expect))
            return
        assert self.ctx.daemon is not None
        native = (self.ctx.daemon.platform.os, self.ctx.daemon.platform.arch)
        decided, n = smoke.probe_on([((s.platform.os, s.platform.arch) == native, s.state) for s in runnable])
        if not decided or n is None:
            return
        slot = runnable[n]
        cached = self.ctx.cache.get(exp.service, slot.entry.digest) if self.ctx.cache is not None else None
        if cached is not None:
            plan = smoke.plan_from_probe(
                cached[1], f"cached probe on {cached[0]}", want_exit=exp.smoke_exit, pattern=exp.smoke_expect
            )
            if plan is not None:
                self._set_plan(plan)
                return
        self.probing = slot
        self.probe_runs = [None] * len(smoke.CANDIDATES)
        self._submit_run(slot, smoke.CANDIDATES[0], self.ctx.probe_timeout, partial(self._probed, n=0), self.stop)
        self.ctx.loop.later(smoke.PROBE_GRACE, self._widen_probe)

    def _widen_probe(self) -> None:
        """Start every other candidate at once: the first one did not decide (see smoke.PROBE_GRACE)."""
        if self.probe_widened or self.plan is not None or self.plan_failed:
            return
        self.probe_widened = True
        slot = self.probing
        assert slot is not None
        for i, args in enumerate(smoke.CANDIDATES[1:], start=1):
            self._submit_run(slot, args, self.ctx.probe_timeout, partial(self._probed, n=i), self.stop)

    def _submit_run(
        self,
        slot: _Slot,
        args: Sequence[str],
        timeout: float,
        then: Callable[[Future[Any]], None],
        stop: threading.Event | None = None,
    ) -> None:
        ctx = self.ctx
        assert ctx.smoke_pool is not None and ctx.daemon is not None
        ctx.loop.submit(ctx.smoke_pool, then, ctx.daemon.run, self.ref(slot), tuple(args), slot.platform, timeout, stop)

    def _probed(self, future: Future[Any], n: int) -> None:
        self.probe_runs[n] = future.result()
        if self.plan is not None or self.plan_failed:
            return
        slot = self.probing
        assert slot is not None
        plan = smoke.plan_from_probe(
            self.probe_runs, f"probe on {slot.platform}", want_exit=self.exp.smoke_exit, pattern=self.exp.smoke_expect
        )
        if plan is not None:
            self.stop.set()
            if self.ctx.cache is not None:
                self.ctx.cache.put(self.exp.service, slot.entry.digest, str(slot.platform), self.probe_runs)
            self._set_plan(plan)
            # The probed platform's smoke run is the probe's run of the chosen arguments: the same image,
            # arguments and container, so running it again would only repeat it. It is judged like any other.
            chosen = next((r for r in self.probe_runs if r is not None and r.args == plan.args), None)
            if chosen is not None and not chosen.cancelled and not slot.launched:
                slot.launched = True
                slot.pr.smoke_args = list(plan.args)
                self._judge(slot.pr, plan, chosen)
        elif all(r is not None for r in self.probe_runs):
            errors = [r.error for r in self.probe_runs if r is not None and r.error]
            why = smoke.fold(errors[0]) if errors else "no candidate ran"
            self.plan_failed = f"smoke probe on {slot.platform}: no candidate started: {why}"
        else:
            self._widen_probe()
        self._launch_ready()

    def _set_plan(self, plan: smoke.Plan) -> None:
        self.plan = plan
        self.report.smoke_plan = plan.describe()

    def _launch_ready(self) -> None:
        """Start the smoke run of every platform that is ready, once the plan is known."""
        if self.plan is None and not self.plan_failed:
            return
        plan = self.plan
        timeout = self.ctx.probe_timeout if plan is None or plan.exit_code is None else self.ctx.timeout
        for slot in self._runnable():
            if slot.launched or slot.state != smoke.READY:
                continue
            slot.launched = True
            if plan is None:
                slot.pr.smoke = FAILED
                slot.pr.fail(self.plan_failed)
                continue
            slot.pr.smoke_args = list(plan.args)
            self._submit_run(slot, plan.args, timeout, partial(self._ran, pr=slot.pr, plan=plan))

    def _ran(self, future: Future[Any], pr: PlatformReport, plan: smoke.Plan) -> None:
        self._judge(pr, plan, future.result())

    def _judge(self, pr: PlatformReport, plan: smoke.Plan, run: smoke.Run) -> None:
        result, detail = smoke.judge(plan, run, self.ctx.timeout)
        pr.smoke, pr.smoke_exit, pr.smoke_seconds = result, run.exit_code, round(run.seconds, 2)
        pr.smoke_output = "\n".join(run.output.strip().splitlines()[-SMOKE_OUTPUT_LINES:])
        if result == OK:
            pr.note = detail
        elif result == HUNG:
            pr.hang(detail)
        else:
            pr.fail(detail)


def verify(
    client: Client,
    expectations: Sequence[Expectation],
    *,
    smoke_timeout: float = 30.0,
    run_smoke: bool = True,
    probe_cache: Path | None = None,
    parallel: int = SMOKE_PARALLEL,
) -> list[ImageReport]:
    """Check every image; never stops at the first failure. Reports follow `expectations`.

    Registry checks run REGISTRY_PARALLEL at a time, pulls PULL_PARALLEL and
    pulls and containers together `parallel`, all at once: each platform is
    pulled while its registry checks run and smoke-runs as soon as both are done.
    """
    daemon, no_daemon = None, ""
    if run_smoke:
        # the docker SDK loads only when a smoke run needs it (every other task starts sooner)
        from crossbuild.daemon import Daemon, DaemonUnavailable  # noqa: PLC0415

        try:
            daemon = Daemon.connect(parallel=parallel)
        except DaemonUnavailable as exc:
            no_daemon = str(exc)
    cache = smoke.ProbeCache(probe_cache) if probe_cache is not None and daemon is not None else None
    try:
        with contextlib.ExitStack() as stack:
            registry = stack.enter_context(ThreadPoolExecutor(REGISTRY_PARALLEL, thread_name_prefix="registry"))
            pool = None
            if daemon is not None:
                pool = stack.enter_context(ThreadPoolExecutor(parallel, thread_name_prefix="smoke"))
            loop = _Loop()
            pulls = _Pulls(loop, pool, daemon) if pool is not None and daemon is not None else None
            ctx = _Context(client, loop, registry, pool, daemon, pulls, smoke_timeout,
                           min(smoke.PROBE_TIMEOUT, smoke_timeout), cache)  # fmt: skip
            checks = [_ImageCheck(exp, ctx) for exp in expectations]
            for check in checks:
                check.start()
            ctx.loop.run()
    finally:
        if daemon is not None:
            for problem in daemon.release():
                output.warn(f"could not remove an image pulled for a smoke run: {problem}")
            daemon.close()
        if cache is not None:
            cache.save()
    reports = [check.report for check in checks]
    for report in reports:
        for pr in report.platforms:
            if pr.result == OK and not pr.smoke:
                if no_daemon:
                    pr.skip(no_daemon)
                elif not run_smoke:
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
