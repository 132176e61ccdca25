"""What each task does, as plain functions of plain arguments.

tasks.py turns invoke flags into these arguments; nothing here takes an
invoke Context. Each function loads the Config once and hands it down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from crossbuild import (
    adopt,
    base,
    builder,
    buildx,
    dockerfiles,
    doctor,
    gobuild,
    images,
    incremental,
    lock,
    manifest,
    output,
    registry_server,
    runner,
    stamping,
)
from crossbuild import audit as audit_mod
from crossbuild import bundle as bundle_mod
from crossbuild import config as config_mod
from crossbuild import verify as verify_mod
from crossbuild.config import Config, Overrides, Service
from crossbuild.errors import UserError
from crossbuild.oci import Client as RegistryClient
from crossbuild.oci import parse_reference
from crossbuild.platforms import Platform, host_platform, require_image_platforms


def load(config_path: str | None, overrides: Overrides) -> Config:
    return config_mod.load(config_path, overrides)


@contextlib.contextmanager
def exclusive(cfg: Config, task: str) -> Iterator[None]:
    """One run per output directory (crossbuild.lock); a dry run writes nothing and takes no lock."""
    if runner.OPTIONS.dry_run:
        yield
        return
    with lock.held(cfg.output_dir, task):
        yield


def setup_runner(dry_run: bool, verbose: bool) -> None:
    verbose = verbose or os.environ.get("V", "") not in ("", "0")
    runner.configure(dry_run=dry_run, verbose=verbose)


def build(
    cfg: Config,
    platforms: Sequence[Platform] | None = None,
    multiarch: bool = False,
    services: Sequence[Service] | None = None,
    stamped: bool = False,
) -> list[gobuild.PlatformResult]:
    """Cross-compile the selected services; raise UserError on any failure after the summary."""
    if platforms is None:
        platforms = cfg.binary_platforms if (multiarch or cfg.platforms_overridden) else (host_platform(),)
    if services is None:
        services = cfg.selected_bins()
    if not stamped:
        cfg = stamp(cfg, services)
    output.step(
        f"go build {len(services)} service(s) x {len(platforms)} platform(s): "
        f"{', '.join(str(p) for p in platforms)} (version {cfg.version.version})"
    )
    results = gobuild.build(cfg, platforms, services)
    rows = []
    failures = []
    for pr in results:
        if pr.error:
            failures.append(pr.error)
            rows += [
                [s.name, str(pr.platform), "-", output.status_word("failed" if s.name in pr.failed else "skipped")]
                for s in services
            ]
            continue
        for br in pr.binaries:
            word = "ok" if br.ok else "failed"
            size = output.human_size(br.size) if br.size else "-"
            rows.append([br.service, str(pr.platform), size, output.status_word(word)])
            failures += [f"{br.service} {pr.platform}: {p}" for p in br.problems]
        if not pr.error:
            output.ok(
                f"{pr.platform}: unchanged, go build skipped" if pr.cached else f"{pr.platform} in {pr.seconds:.1f}s"
            )
    if not runner.OPTIONS.dry_run:
        output.table(["service", "platform", "size", "result"], rows)
    if failures:
        raise UserError("build failed:\n" + "\n".join(failures))
    return results


def clean(config_path: str | None) -> list[Path]:
    """Remove what crossbuild wrote into the output directory, and nothing else.

    Only crossbuild's own entries (config.OUTPUT_ENTRIES) go; the directory itself
    goes only when nothing else is left in it. Under --dry-run, print what would go.
    """
    cfg = load(config_path, Overrides())
    out = cfg.output_dir
    doomed = [out / name for name in config_mod.OUTPUT_ENTRIES if (out / name).exists() or (out / name).is_symlink()]
    verb = "would remove" if runner.OPTIONS.dry_run else "removed"
    for path in doomed:
        if not runner.OPTIONS.dry_run:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        output.ok(f"{verb} {path}")
    others = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if runner.OPTIONS.dry_run:
        others = [n for n in others if n not in config_mod.OUTPUT_ENTRIES]
    if out.is_dir() and not others:
        if not runner.OPTIONS.dry_run:
            out.rmdir()
        output.ok(f"{verb} {out}")
    elif others:
        output.info(
            f"kept {out}: it also holds {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}, not crossbuild's"
        )
    if not doomed and not out.exists():
        output.ok(f"nothing to remove: {out} does not exist")
    return doomed


# --- images -------------------------------------------------------------------


def _image_platforms(cfg: Config, platforms: Sequence[Platform] | None) -> tuple[Platform, ...]:
    chosen = tuple(platforms) if platforms else cfg.image_platforms
    require_image_platforms(chosen)
    return chosen


def _client(cfg: Config) -> RegistryClient:
    return RegistryClient(insecure=cfg.registry.insecure)


# What would make the real run fail, found while a dry run planned it (exit non-zero at the end).
_DRY_RUN_BLOCKERS: list[str] = []


def end_of_dry_run() -> None:
    """A dry run exits non-zero when the real run would fail (a registry it cannot reach, a login it lacks)."""
    if runner.OPTIONS.dry_run and _DRY_RUN_BLOCKERS:
        problems = "; ".join(dict.fromkeys(_DRY_RUN_BLOCKERS))
        _DRY_RUN_BLOCKERS.clear()
        raise UserError(f"dry run: the real run would fail: {problems}")


def stamp(cfg: Config, services: Sequence[Service]) -> Config:
    """cfg with the -X variables each service carries settled (go list + govars), notes printed."""
    cfg, stamping_ = stamping.resolve(cfg, services)
    for note in stamping_.notes:
        output.info(f"note: {note}")
    return cfg


def _prepare_images(
    cfg: Config, platforms: Sequence[Platform], *, registry: bool
) -> tuple[Config, list[images.ImageTarget]]:
    """Preflight, settle -X stamping, resolve the static base, cross-compile what prebuilt
    images copy, render Dockerfiles, plan.

    The static base lives in the target registry (BuildKit pulls it from there), so
    --load and --output oci need the registry too when an image is built on it; it is
    made only when a Dockerfile reads BASE_IMAGE (a service's own may start elsewhere).
    """
    services = cfg.selected_images()
    doctor.preflight(cfg, platforms)
    cfg = stamp(cfg, services)
    client = _client(cfg)
    targets = images.plan(cfg, platforms, services)
    static = cfg.image.static_base and any("BASE_IMAGE" in t.dockerfile.read_text() for t in targets)
    blocked = False
    if registry or static:
        registry_server.ensure(cfg)
        host = parse_reference(cfg.image.registry_prefix + "/x").registry
        try:
            client.probe(host)
            if registry:  # a wrong login fails now, not after the build
                client.probe_push(host, parse_reference(cfg.image_ref(services[0])).repository)
        except UserError as exc:
            if not runner.OPTIONS.dry_run:
                raise
            output.warn(f"{exc}: the plan below cannot tell what is unchanged")
            _DRY_RUN_BLOCKERS.append(str(exc))
            blocked = True
    if static and not blocked:
        targets = images.plan(cfg, platforms, services, base.ensure(cfg, client, platforms))
    multistage = [t for t in targets if cfg.mode_of(t.service) == "multistage"]
    if multistage:
        go_ref = parse_reference(cfg.image.go_image)
        if not runner.OPTIONS.dry_run and client.manifest_exists(go_ref) is None:
            raise UserError(
                f"Go builder image {cfg.image.go_image} not found: build it offline with "
                "`make go-image`, or set GO_IMAGE to one your builder can pull"
            )
    foreign_run = [t for t in targets if dockerfiles.runs_target_code(t.dockerfile.read_text())]
    if foreign_run:
        builder.register_binfmt(platforms)
    prebuilt = images.prebuilt_services(cfg, targets)
    if prebuilt:
        build(cfg, platforms=platforms, services=prebuilt, stamped=True)
    return cfg, targets


def _published_table(published: Sequence[images.Published]) -> None:
    rows = []
    for p in published:
        for tag in p.target.tags:
            rows.append(
                [
                    p.target.service.name,
                    f"{p.target.repository}:{tag}",
                    p.digest[:19],
                    ",".join(p.platforms),
                    output.human_size(p.size),
                    p.action,
                ]
            )
    output.table(["service", "tag", "index digest", "platforms", "size", "action"], rows)


def _decide(cfg: Config, targets: Sequence[images.ImageTarget], client: RegistryClient) -> list[images.Decision]:
    state = incremental.State(cfg.output_dir / "state" / "images.json")
    try:
        decisions = images.decide(cfg, targets, client, state)
    except UserError:
        if not runner.OPTIONS.dry_run:
            raise
        decisions = [images.Decision(t, "build", "registry not reachable to compare", {}) for t in targets]
    if runner.OPTIONS.dry_run:
        output.step("plan")
        rows = [
            [
                d.target.service.name,
                ", ".join(d.target.refs()),
                ",".join(map(str, d.target.platforms)),
                d.action,
                d.reason,
            ]
            for d in decisions
        ]
        output.table(["service", "tags", "platforms", "action", "why"], rows)
    else:
        for d in decisions:
            if d.action != "build":
                output.info(f"{d.target.service.name}: {d.action} ({d.reason})")
    return decisions


def image_multiarch(
    cfg: Config, platforms: Sequence[Platform] | None = None, oci: bool = False, check_reproducible: bool = False
) -> list[images.Published]:
    plats = _image_platforms(cfg, platforms)
    output.step(
        f"images for {len(cfg.selected_images())} service(s) x {', '.join(map(str, plats))} "
        f"-> {'build/oci/' if oci else cfg.image.registry_prefix} (version {cfg.version.version})"
    )
    started = time.monotonic()
    cfg, targets = _prepare_images(cfg, plats, registry=not oci)
    prepared = time.monotonic()
    if oci:
        for path in images.export_oci(cfg, targets):
            output.ok(f"wrote {path}")
        return []
    client = _client(cfg)
    if check_reproducible:
        return _check_reproducible(cfg, targets)
    decisions = _decide(cfg, targets, client)
    published = images.publish(cfg, targets, client, check=_verify_before_tagging(cfg), decisions=decisions)
    if published:
        _published_table(published)
    end_of_dry_run()
    if not runner.OPTIONS.dry_run:
        done = time.monotonic()
        output.ok(
            f"done in {done - started:.1f}s: preflight + go build {prepared - started:.1f}s, "
            f"images (bake, push, checks, tags) {done - prepared:.1f}s"
        )
    return published


def image(
    cfg: Config,
    platforms: Sequence[Platform] | None = None,
    load: bool = False,
    push_by_digest: bool = False,
    oci: bool = False,
) -> None:
    """`make image` / `invoke image`: one platform into docker, by digest for CI, or OCI."""
    if platforms:
        plats = tuple(platforms)
    elif cfg.platforms_overridden:
        plats = cfg.image_platforms
    else:
        plats = (host_platform(),)
    require_image_platforms(plats)
    if push_by_digest:
        output.step(f"push by digest: {', '.join(map(str, plats))}")
        cfg, targets = _prepare_images(cfg, plats, registry=True)
        for path in images.push_by_digest(cfg, targets):
            output.ok(f"wrote {path}")
        return
    if oci:
        image_multiarch(cfg, plats, oci=True)
        return
    if not load:
        raise UserError(
            "invoke image needs --load, --push-by-digest or --output oci; use `make image.multiarch` to push"
        )
    images.require_one_platform(plats)
    output.step(f"image for {plats[0]} -> docker daemon")
    cfg, targets = _prepare_images(cfg, plats, registry=False)
    images.load(cfg, targets)
    for t in targets:
        output.ok(f"loaded {', '.join(t.refs())}")


def merge_manifests(cfg: Config, legacy: bool = False) -> list[images.Published]:
    services = cfg.selected_images() if (legacy or cfg.images) else manifest.services_with_digests(cfg)
    if not services:
        raise UserError(
            f"no digests under {cfg.output_dir / 'digests'}: run `invoke image --platform P --push-by-digest` "
            "for each platform first (or use --legacy for svc-<arch>:tag images)"
        )
    client = _client(cfg)
    registry_server.ensure(cfg)
    client.probe(parse_reference(cfg.image.registry_prefix + "/x").registry)
    cfg = stamp(cfg, services)
    targets = images.plan(cfg, cfg.image_platforms, services)
    plans = manifest.plan_from_legacy(targets, client) if legacy else manifest.plan_from_digests(cfg, targets)
    output.step(f"merge {len(plans)} index(es) with buildx imagetools create, verify them, then move the tags")
    # legacy per-arch images were built by another tool: their -X stamps are not crossbuild's to expect
    published = manifest.merge(cfg, plans, client, check=_verify_before_tagging(cfg, stamped=not legacy))
    if published:
        _published_table(published)
    return published


def setup(cfg: Config, platforms: Sequence[Platform] | None = None) -> None:
    plats = _image_platforms(cfg, platforms)
    output.step("builder setup")
    output.ok(f"docker client {builder.check_docker_version()}")
    output.ok(buildx.version())
    targets = images.plan(cfg, plats, cfg.selected_images())
    if any(dockerfiles.runs_target_code(t.dockerfile.read_text()) for t in targets):
        registered = builder.register_binfmt(plats)
        output.ok("QEMU binfmt: " + (", ".join(registered) if registered else "already registered"))
    else:
        output.ok("QEMU binfmt: not needed (no RUN step executes target-arch code)")
    info = builder.ensure_builder(cfg, plats)
    output.ok(f"builder '{info.name}' ({info.driver}, {info.status}): {', '.join(info.platforms)}")


def registry_up(cfg: Config) -> None:
    output.ok(registry_server.up(cfg))


def registry_down(cfg: Config) -> None:
    output.ok(registry_server.down(cfg))


def go_image(cfg: Config, ref: str | None = None) -> str:
    """Build the offline Go builder image (busybox + the host GOROOT) and push it."""
    target = ref or cfg.image.go_image
    busybox = runner.which("busybox")
    if busybox is None:
        raise UserError("busybox not found: apt-get install busybox-static (or run `make tools`)")
    goroot = Path(runner.output(["go", "env", "GOROOT"]))
    context = cfg.output_dir / "go-image"
    if not runner.OPTIONS.dry_run:
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        shutil.copy2(busybox, context / "busybox")
        shutil.copytree(goroot, context / "go", symlinks=True, ignore=shutil.ignore_patterns("test", "*_test.go"))
    registry_server.ensure(cfg)
    doctor.preflight(cfg, [host_platform()])
    output.step(f"Go builder image {target} from {goroot}")
    dockerfile = dockerfiles.template_path("go-builder", cfg.root)
    buildx.build(
        context=context,
        file=dockerfile,
        builder=cfg.builder.name,
        platform=[str(host_platform())],
        tag=[target],
        output=["type=image,push=true"],
        provenance=False,
    )
    output.ok(f"pushed {target}")
    return target


# --- verify -------------------------------------------------------------------


def expectation(
    cfg: Config, service: Service, ref: str, platforms: Sequence[Platform], stamped: bool = True
) -> verify_mod.Expectation:
    """What `service`'s image must be; `stamped=False` for images another tool built (no -X values to expect)."""
    return verify_mod.Expectation(
        service=service.name,
        ref=ref,
        platforms=tuple(platforms),
        binary=f"/usr/local/bin/{service.binary_name}",
        values=tuple(cfg.expected_x(service).items()) if stamped else (),
        smoke_args=service.smoke_args,
        smoke_exit=service.smoke_exit,
        smoke_expect=service.smoke_expect,
    )


def _expectations_for(cfg: Config, refs: Sequence[str], platforms: Sequence[Platform]) -> list[verify_mod.Expectation]:
    if not refs:
        return [
            expectation(cfg, s, f"{cfg.image_ref(s)}:{cfg.image_tags(s)[0]}", platforms) for s in cfg.selected_images()
        ]
    by_repo = {parse_reference(cfg.image_ref(s)).repository: s for s in cfg.services}
    result = []
    for text in refs:
        ref = parse_reference(text)
        svc = by_repo.get(ref.repository)
        if svc is not None:
            result.append(expectation(cfg, svc, str(ref), platforms))
        else:
            name = ref.repository.rsplit("/", 1)[-1]
            result.append(verify_mod.Expectation(name, str(ref), tuple(platforms), f"/usr/local/bin/{name}", ()))
    return result


def _probe_cache(cfg: Config) -> Path:
    return cfg.output_dir / "state" / "smoke.json"


def report_verify(cfg: Config, reports: Sequence[verify_mod.ImageReport], name: str) -> Path:
    """Print the table (every platform of every image, one row each) and write reports/<name>.json."""
    rows = [[svc, plat, output.status_word(res), detail] for svc, plat, res, detail in verify_mod.table_rows(reports)]
    output.table(["service", "platform", "result", "detail"], rows)
    for r in reports:
        if r.smoke_plan:
            output.info(f"{r.service}: smoke {r.smoke_plan}")
    path = cfg.output_dir / "reports" / f"{name}.json"
    verify_mod.write_json(reports, path)
    verify_mod.append_step_summary(reports)
    output.info(f"report: {path}")
    return path


def verify(
    cfg: Config, refs: Sequence[str] = (), smoke: bool = True, timeout: float = 30.0
) -> list[verify_mod.ImageReport]:
    if timeout <= 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    platforms = _image_platforms(cfg, None)
    cfg = stamp(cfg, cfg.selected_images())
    exps = _expectations_for(cfg, refs, platforms)
    output.step(f"verify {len(exps)} image(s) x {', '.join(map(str, platforms))}")
    registry_server.ensure(cfg)
    reports = verify_mod.verify(
        _client(cfg), exps, smoke_timeout=timeout, run_smoke=smoke, probe_cache=_probe_cache(cfg)
    )
    report_verify(cfg, reports, "verify")
    bad = [r for r in reports if not r.ok]
    if bad:
        raise UserError(f"verify failed for {', '.join(r.service for r in bad)}: see the table above")
    return reports


def _verify_before_tagging(
    cfg: Config, stamped: bool = True
) -> Callable[[Sequence[tuple[images.ImageTarget, str]]], None] | None:
    """The check images.publish runs on every staged index before any tag moves.

    All targets are verified together (concurrently, every failure listed);
    it raises once, naming every failing service, and then no tag moves.
    """
    if not cfg.image.verify:
        return None
    client = _client(cfg)

    def check(staged: Sequence[tuple[images.ImageTarget, str]]) -> None:
        exps = [expectation(cfg, t.service, f"{t.repository}@{d}", t.platforms, stamped) for t, d in staged]
        output.step(f"verify {len(exps)} pushed index(es) before moving tags")
        reports = verify_mod.verify(client, exps, probe_cache=_probe_cache(cfg))
        for report in reports:
            verify_mod.write_json([report], cfg.output_dir / "reports" / f"verify-{report.service}.json")
        report_verify(cfg, reports, "verify-publish")
        bad = [r.service for r in reports if not r.ok]
        if bad:
            raise UserError(f"verification failed for {', '.join(bad)} (table above); no tag was moved")
        output.ok(f"verified {', '.join(r.service for r in reports)}")

    return check


def run_doctor(cfg: Config) -> list[doctor.Check]:
    platforms = _image_platforms(cfg, None)
    targets = images.plan(cfg, platforms, cfg.selected_images())
    needs = any(dockerfiles.runs_target_code(t.dockerfile.read_text()) for t in targets)
    output.step(f"doctor: {cfg.path} for {', '.join(map(str, platforms))}")
    checks = doctor.run_all(cfg, platforms, _client(cfg), needs)
    for c in checks:
        line = f"{c.name}: {c.detail}"
        if c.ok:
            output.ok(line)
        else:
            (output.fail if c.blocking else output.warn)(line)
            output.info(f"fix: {c.fix}")
    blocking = [c for c in checks if not c.ok and c.blocking]
    if blocking:
        raise UserError(f"{len(blocking)} problem(s) block the job: {', '.join(c.name for c in blocking)}")
    return checks


def run_audit(
    cfg: Config,
    compose: str | None,
    refs: Sequence[str],
    platforms: Sequence[Platform] | None,
    json_path: str | None = None,
    env_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[audit_mod.AuditRow]:
    """`invoke audit`: a compose file's services (${VAR}s from the environment and .env, as docker
    compose substitutes them) and/or images, against the required platforms."""
    if env_file and not compose:
        raise UserError("--env-file applies to --compose FILE only")
    entries: list[audit_mod.ComposeService] = []
    if compose:
        env = dict(os.environ if environ is None else environ)
        entries += audit_mod.read_compose(Path(compose), env, Path(env_file) if env_file else None)
    entries += [audit_mod.ComposeService("", image=ref) for ref in refs]
    if not entries:
        raise UserError("nothing to audit: give --compose docker-compose.yml and/or --image REF")
    required = _image_platforms(cfg, platforms)
    built = sum(1 for e in entries if not e.image and not e.error)
    output.step(
        f"audit {len(entries) - built} image(s) for {', '.join(map(str, required))}"
        + (f" ({built} service(s) built here)" if built else "")
    )
    rows = audit_mod.audit(_client(cfg), entries, required)
    cells = audit_mod.table_rows(rows)
    output.table(["service", "image", "architectures", "ports", "status"], cells)
    for r in rows:
        if r.suggestion:
            output.info(f"{r.image}: {r.suggestion}")
    text = audit_mod.to_json(rows)
    if json_path == "-":
        print(text, end="")
    elif json_path:
        Path(json_path).write_text(text)
    report = cfg.output_dir / "reports" / "audit.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
    bad = [r for r in rows if not r.ok]
    if bad:
        raise UserError(f"{len(bad)} of {len(rows)} row(s) lack a required platform or could not be read")
    return rows


def _check_reproducible(cfg: Config, targets: Sequence[images.ImageTarget]) -> list[images.Published]:
    """Build every index twice (the second time without BuildKit's cache) and compare digests."""
    output.step("reproducibility: two builds, the second with --no-cache")
    outputs = images.push_by_digest_output(cfg)
    first = images.bake(cfg, targets, outputs, with_tags=False, name="repro-1")
    second = images.bake(cfg, targets, outputs, with_tags=False, name="repro-2", no_cache=True)
    if runner.OPTIONS.dry_run:
        return []
    rows, differ = [], []
    for t in targets:
        a, b = images.digest_of(first, t), images.digest_of(second, t)
        rows.append([t.service.name, a[:19], b[:19], output.status_word("ok" if a == b else "failed")])
        if a != b:
            differ.append(t.service.name)
    output.table(["service", "first build", "second build", "same"], rows)
    if differ:
        raise UserError(f"not reproducible: {', '.join(differ)} gave different digests; see build/bake/repro-*.json")
    output.ok("every image is bit-for-bit reproducible")
    return []


def ci_github(cfg: Config, matrix: bool = False, path: str | None = None, force: bool = False) -> Path | None:
    """`invoke ci.github`: write a GitHub Actions workflow for this config ('-' prints it)."""
    from crossbuild import ci  # noqa: PLC0415 - PyYAML is only needed here

    if path == "-":
        print(ci.github_workflow(cfg, matrix), end="")
        return None
    target = Path(path) if path else ci.default_path(cfg, matrix)
    written = ci.write_workflow(cfg, target, matrix=matrix, force=force)
    output.ok(f"wrote {written}")
    output.info(
        f"set the repository secrets {' and '.join(ci.SECRETS)} and the variables {' and '.join(ci.VARIABLES)} "
        "(Settings > Secrets and variables > Actions)"
    )
    return written


# --- init ---------------------------------------------------------------------


def init(directory: str, force: bool = False) -> adopt.InitResult:
    """`crossbuild init DIR`: adopt crossbuild in an existing Go repository (there is no Config yet)."""
    return adopt.init(Path(directory), force=force)


# --- offline bundles ------------------------------------------------------------


def bundle_create(
    cfg: Config, platforms: Sequence[Platform] | None = None, extra_images: Sequence[str] = ()
) -> list[Path]:
    """`make bundle`: one offline archive per image platform (PLATFORMS=) under build/bundles/.

    bundle_mod.create prints the step line and one "wrote" line per archive; nothing is repeated here.
    """
    plats = _image_platforms(cfg, platforms)
    registry_server.ensure(cfg)
    return bundle_mod.create(cfg, _client(cfg), plats, [*cfg.bundle_images, *extra_images])


BUNDLE_MAX_SIZE_ENV = "BUNDLE_MAX_SIZE"


def bundle_load(
    archive: str,
    registry: str | None = None,
    *,
    insecure: bool = False,
    plain_http: bool = False,
    max_size: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """`invoke bundle.load`: verify a bundle, then push it to `registry` or load it into docker.

    Reads no config.toml: it runs on the air-gapped server, where only the archive is. The size
    limit comes from --max-size, else $BUNDLE_MAX_SIZE, else the default sized to the archive.
    bundle_mod.load prints one "ok" line per imported image.
    """
    env = os.environ if environ is None else environ
    limit_text, where = max_size, "--max-size"
    if max_size is None:
        limit_text, where = env.get(BUNDLE_MAX_SIZE_ENV), BUNDLE_MAX_SIZE_ENV
    limit = bundle_mod.parse_size(limit_text, where) if limit_text else None
    return bundle_mod.load(Path(archive), registry, plain_http=plain_http, insecure=insecure, max_size=limit)
