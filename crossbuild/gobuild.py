"""Cross-compile the services with `go build`, one invocation per platform.

All services of one platform go into ONE `go build -o dir/ pkg...` so shared
packages compile once; platforms run in parallel on a bounded pool. After the
build every binary is checked: its header must match the platform and every
`-X` value it should carry (crossbuild.stamping decided which, before the
build) must really be in it.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from crossbuild import binaries, incremental, progress, runner
from crossbuild.config import Config, Service
from crossbuild.errors import CommandError, UserError
from crossbuild.platforms import Platform
from crossbuild.runner import Runner


@dataclass(frozen=True)
class BinaryResult:
    service: str
    platform: Platform
    path: Path
    size: int
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PlatformResult:
    platform: Platform
    binaries: tuple[BinaryResult, ...]
    seconds: float
    error: str = ""
    failed: tuple[str, ...] = ()  # services the compiler output blames
    cached: bool = False  # inputs unchanged since the last build: go build was not run
    output: str = ""  # the tail of go's output when it failed, as `error` quotes it


# go's own words when it could not fetch a module (GOPROXY refused it, no network, a private repo)
_DOWNLOAD_FAILED = re.compile(
    r"\S+@\S+: (reading https?://\S+: \d{3}|Get \"?https?://)"  # the proxy refused it, or no network
    r"|module lookup disabled by GOPROXY"  # GOPROXY=off and a module not in the cache
    r"|: reading \S+ at revision \S+: git "  # a direct (GOPRIVATE) module git could not fetch
)
DOWNLOAD_HINT = (
    "go could not download a module (see above): make it reachable through GOPROXY or GOPRIVATE, "
    "or vendor the modules (`go mod vendor`), then run again"
)


def download_hint(text: str) -> str:
    """The one-line fix when go's output says a module could not be downloaded ("" otherwise)."""
    return DOWNLOAD_HINT if _DOWNLOAD_FAILED.search(text) else ""


def binary_path(bin_dir: Path, platform: Platform, service: Service) -> Path:
    """build/bin/<os>/<arch>[/<variant>]/<service>[.exe] - exactly $TARGETPLATFORM."""
    return bin_dir / str(platform) / f"{service.binary_name}{platform.exe_suffix}"


def digests_file(cfg: Config) -> Path:
    """Where the binaries' digests are kept between runs (crossbuild.incremental.save_digests)."""
    return cfg.output_dir / "state" / "digests.json"


def ldflags(cfg: Config, service: Service | None = None) -> str:
    """The -ldflags string: configured flags, then one -X per variable."""
    parts = list(cfg.go.ldflags)
    for var, value in cfg.x_values(service).items():
        parts.append(f"-X={var}={value}" if " " not in value else f"-X '{var}={value}'")
    return " ".join(parts)


def go_build_argv(cfg: Config, out: str, packages: Sequence[str], service: Service | None = None) -> list[str]:
    argv = ["go", "build", "-buildvcs=false"]
    runner.add_flag(argv, "-trimpath", cfg.go.trimpath)
    if cfg.go.tags:
        argv += ["-tags", ",".join(cfg.go.tags)]
    flags = ldflags(cfg, service)
    if flags:
        argv += ["-ldflags", flags]
    argv += ["-o", out, *packages]
    return argv


def shared_and_single(cfg: Config, services: Sequence[Service]) -> tuple[list[Service], list[Service]]:
    """Split services into those one `go build -o dir/ pkg...` can build together, and the rest.

    go build -o dir/ names each binary after its package directory, and takes one
    -ldflags: a service whose name differs from its directory, whose directory name
    repeats, or whose -X values depend on the service ({service}) is built on its own.
    """
    basenames = [Path(s.package).name for s in services]
    common = ldflags(cfg)
    shared = [
        s
        for s, b in zip(services, basenames, strict=True)
        if b == s.name and basenames.count(b) == 1 and ldflags(cfg, s) == common
    ]
    return shared, [s for s in services if s not in shared]


def go_env(cfg: Config, platform: Platform) -> dict[str, str]:
    env = dict(cfg.go.env)
    env["CGO_ENABLED"] = "1" if cfg.go.cgo else "0"
    env.update(platform.go_env())
    return env


def _compile_error(
    cfg: Config, platform: Platform, services: Sequence[Service], exc: CommandError
) -> tuple[str, tuple[str, ...], str]:
    """Name the services whose sources appear in the compiler output (else all of them): the message,
    the services blamed and the output's tail it quotes."""
    text = exc.stderr or exc.stdout
    named = []
    for s in services:
        rel = s.package.removeprefix("./")
        if re.search(rf"(^|[\s/]){re.escape(rel)}/[^/\s]+\.go:", text, re.MULTILINE) or f"# {rel}" in text:
            named.append(s.name)
    blamed = tuple(named or [s.name for s in services])
    tail = "\n".join(text.rstrip().splitlines()[-12:])
    return f"compile failed for {', '.join(blamed)} on {platform}:\n{tail}", blamed, tail


def compile_failures(results: Sequence[PlatformResult]) -> list[str]:
    """Each failed platform's error, the platforms whose go output was the same said once:
    "compile failed for api on linux/amd64, linux/arm64:" and that output; then the fix when
    the output says a module could not be downloaded."""
    groups: dict[tuple[tuple[str, ...], str], list[PlatformResult]] = {}
    messages: list[str] = []
    for pr in results:
        if not pr.error:
            continue
        if not pr.output:
            messages.append(pr.error)
            continue
        key = (pr.failed, pr.output)
        if key not in groups:
            messages.append("")  # its place, filled below
            groups[key] = []
        groups[key].append(pr)
    filled = iter(
        f"compile failed for {', '.join(failed)} on {', '.join(str(p.platform) for p in prs)}:\n{tail}"
        for (failed, tail), prs in groups.items()
    )
    messages = [m or next(filled) for m in messages]
    hint = next((h for pr in results if pr.output and (h := download_hint(pr.output))), "")
    return messages + ([hint] if hint else [])


def _unchanged(
    cfg: Config, platform: Platform, services: Sequence[Service], record: dict[str, object], key: str
) -> bool:
    if record.get("key") != key:
        return False
    digests = record.get("binaries")
    if not isinstance(digests, dict):
        return False
    for s in services:
        path = binary_path(cfg.bin_dir, platform, s)
        if not path.is_file() or digests.get(s.name) != incremental.file_digest(path):
            return False
    return True


def _passed(record: dict[str, object]) -> dict[str, str]:
    """service -> the verdict key (binary digest and expected -X values) its checks last passed with."""
    passed = record.get("passed")
    return {str(k): str(v) for k, v in passed.items()} if isinstance(passed, dict) else {}


def commands(cfg: Config, platform: Platform, services: Sequence[Service]) -> list[list[str]]:
    """The `go build` command lines of one platform: one for every service that can share
    it, one each for the rest."""
    out_dir = cfg.bin_dir / str(platform)
    grouped, single = shared_and_single(cfg, services)
    argvs = []
    if grouped:
        argvs.append(go_build_argv(cfg, str(out_dir) + os.sep, [s.package for s in grouped]))
    argvs += [go_build_argv(cfg, str(binary_path(cfg.bin_dir, platform, s)), [s.package], s) for s in single]
    return argvs


def describe(cfg: Config, platforms: Sequence[Platform], services: Sequence[Service]) -> list[str]:
    """Every go build as the shell line a dry run prints (cd DIR && GOOS=... go build ...)."""
    return [
        runner.display(argv, go_env(cfg, p), cfg.module_dir) for p in platforms for argv in commands(cfg, p, services)
    ]


def build_platform(
    run: Runner,
    cfg: Config,
    platform: Platform,
    services: Sequence[Service],
    inputs: str = "",
    state: incremental.State | None = None,
    report: progress.Reporter = progress.NULL,
    checks: Callable[[], Config] | None = None,
    cancel: threading.Event | None = None,
) -> PlatformResult:
    """Build one platform's services; `report` hears its row (the platform) move on, from this thread.

    `checks`: the Config with -X stamping settled, asked for after the compile (default `cfg`).
    `cancel`: set when the run has already failed; a go build still running is killed."""
    start = time.monotonic()
    row = str(platform)
    out_dir = cfg.bin_dir / str(platform)
    env = go_env(cfg, platform)
    argvs = commands(cfg, platform, services)
    key = incremental.key_of({"inputs": inputs, "commands": argvs, "env": env})
    cached = bool(inputs) and state is not None and _unchanged(cfg, platform, services, state.get(str(platform)), key)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for n, argv in enumerate([] if cached else argvs, 1):
            report.start(row, "compiling" + (f" {n}/{len(argvs)}" if len(argvs) > 1 else ""))
            run.run(argv, env=env, cwd=cfg.module_dir, cancel=cancel)
    except CommandError as exc:
        if cancel is not None and cancel.is_set():  # not this compile's failure: the run's
            report.finish(row, "stopped", failed=True)
            return PlatformResult(platform, (), time.monotonic() - start, "stopped: the run failed beside it")
        message, blamed, tail = _compile_error(cfg, platform, services, exc)
        report.finish(row, f"failed: {', '.join(blamed)}", failed=True)
        return PlatformResult(platform, (), time.monotonic() - start, message, blamed, output=tail)
    if not cached:
        report.update(row, "checking binaries")
    expected = checks() if checks is not None and not cached else cfg
    record = state.get(str(platform)) if state is not None else {}
    passed = _passed(record)
    results = []
    digests: dict[str, str] = {}
    verdicts: dict[str, str] = {}
    for s in services:
        path = binary_path(cfg.bin_dir, platform, s)
        digest = digests[s.name] = incremental.file_digest(path) if path.is_file() else ""
        verdict = verdicts[s.name] = incremental.key_of({"binary": digest, "x": expected.expected_x(s)})
        # a binary that passed these checks with these expectations (go build left it as it was,
        # or rebuilt it byte for byte) passes them again
        if cached or (digest and passed.get(s.name) == verdict):
            problems: tuple[str, ...] = ()
        else:
            problems = tuple(binaries.check_binary(path, platform, expected.expected_x(s)))
        results.append(BinaryResult(s.name, platform, path, path.stat().st_size, problems))
    if state is not None and inputs:
        if all(r.ok for r in results):
            state.put(str(platform), {"key": key, "binaries": digests, "passed": verdicts})
        else:
            state.drop(str(platform))
    bad = [r.service for r in results if not r.ok]
    if cached:
        report.finish(row, "unchanged, go build skipped")
    else:
        report.finish(row, f"failed checks: {', '.join(bad)}" if bad else "built", failed=bool(bad))
    return PlatformResult(platform, tuple(results), time.monotonic() - start, cached=cached)


def workers(cfg: Config, n_platforms: int) -> int:
    """Platforms compiled at once: go.jobs, else twice the cores.

    Each `go build` already runs up to one compile per core, but it leaves cores idle
    while it links and where the package graph narrows; a second build per core fills
    those gaps (3 platforms on 2 cores: 55 s all at once against 60 s two at a time,
    `bench/`'s full monorepo, cold cache).
    """
    limit = cfg.go.jobs or 2 * (os.cpu_count() or 1)
    return max(1, min(limit, n_platforms))


def build(
    run: Runner,
    cfg: Config,
    platforms: Sequence[Platform],
    services: Sequence[Service],
    state: incremental.State | None = None,
    tree: str = "",
    report: progress.Reporter = progress.NULL,
    checks: Callable[[], Config] | None = None,
    cancel: threading.Event | None = None,
    built: Callable[[PlatformResult], None] | None = None,
) -> list[PlatformResult]:
    """Build every service for every platform; never raises for a compile error.

    `tree`: the module's tree hash when the caller has it already (one walk per run).
    `report`: a progress board with one row per platform, reported to from the pool's threads.
    `checks`: the Config whose -X stamping the binaries are checked against, asked for only
    once a platform has compiled (the stamping check may still be running beside the compile);
    `cfg` itself by default. The command lines do not depend on it. `cancel`: once set (that
    check failed), the go builds still running are killed. `built`: told, from the pool's
    thread, of each platform whose binaries all passed their checks, as soon as they have (its
    images can be baked while the other platforms still compile).
    """
    if runner.which("go") is None:
        raise UserError("go: command not found; install Go >= 1.22 (https://go.dev/dl/) or run `make tools`")
    if state is None:
        state = incremental.State(cfg.output_dir / "state" / "gobuild.json")
    incremental.load_digests(digests_file(cfg))
    inputs = incremental.key_of(
        {
            "tree": tree or incremental.tree_hash(cfg.module_dir, exclude=[cfg.output_dir]),
            "go": runner.output(["go", "env", "GOVERSION", "GOFLAGS", "GOEXPERIMENT"]),
        }
    )
    # Which -X variables each binary carries (crossbuild.stamping) is a function of the tree and
    # the [go.x] settings, both in this key already (the tree, and -ldflags in the commands).
    expect = checks or (lambda: cfg)
    # each go build runs in a process group of its own, so that a failed check can kill it with its
    # compilers; Ctrl-C and SIGTERM no longer reach it from the terminal, so they stop it from here
    stop = cancel or threading.Event()

    def one(platform: Platform) -> PlatformResult:
        result = build_platform(run, cfg, platform, services, inputs, state, report, expect, stop)
        if built is not None and not result.error and all(b.ok for b in result.binaries) and not stop.is_set():
            built(result)
        return result

    with runner.terminate_as_exit(), ThreadPoolExecutor(max_workers=workers(cfg, len(platforms))) as pool:
        try:
            results = list(pool.map(one, platforms))
        except BaseException:
            stop.set()
            raise
    state.save()
    incremental.save_digests(digests_file(cfg), cfg.bin_dir)
    return results


def clean(cfg: Config) -> None:
    shutil.rmtree(cfg.bin_dir, ignore_errors=True)
