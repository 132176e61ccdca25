"""What each task does: a Session and, for the image tasks, a pipeline of stages.

tasks.py turns invoke flags into a Session (crossbuild.session) and plain
arguments; nothing here takes an invoke Context. The image tasks are lists of
stages (crossbuild.stages) run by crossbuild.pipeline over one context, so each
task reads as what it does, in order, and a dry run prints the plan the same way
for every task.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from crossbuild import (
    buildx,
    dockerfiles,
    doctor,
    expect,
    lock,
    manifest,
    output,
    pipeline,
    publishers,
    registry_server,
    runner,
)
from crossbuild import config as config_mod
from crossbuild import plan as plan_mod
from crossbuild import resolve as resolve_mod
from crossbuild import verify as verify_mod
from crossbuild.config import Config, Overrides
from crossbuild.errors import UserError
from crossbuild.images import Published
from crossbuild.pipeline import Context, Stage
from crossbuild.platforms import Platform, host_platform, require_image_platforms
from crossbuild.runner import Runner
from crossbuild.session import Session, make_runner, open_session
from crossbuild.stages import merge as merge_stages
from crossbuild.stages import prepare, publish, route, supply

if TYPE_CHECKING:
    from crossbuild import adopt
    from crossbuild import audit as audit_mod

# init (crossbuild.adopt), audit, compose and the bundles are imported by the tasks that use them:
# every other task starts 0.3 s sooner without them (python -X importtime).


def open(  # the task's session
    config_path: str | None, overrides: Overrides | None = None, *, dry_run: bool = False, verbose: bool = False
) -> Session:
    return open_session(config_path, overrides, dry_run=dry_run, verbose=verbose)


@contextlib.contextmanager
def exclusive(session: Session, task: str) -> Iterator[None]:
    """One run per output directory (crossbuild.lock); a dry run writes nothing and takes no lock."""
    if session.dry_run:
        yield
        return
    with lock.held(session.cfg.output_dir, task):
        yield


def _image_platforms(cfg: Config, platforms: Sequence[Platform] | None) -> tuple[Platform, ...]:
    chosen = tuple(platforms) if platforms else cfg.image_platforms
    require_image_platforms(chosen)
    return chosen


# --- the pipelines --------------------------------------------------------------------------


def _prepare(push: bool, bake_early: bool = False) -> list[Stage]:
    """Everything before the bake: the same for every output (`bake_early`: image.multiarch bakes
    each platform's images while the others compile, crossbuild.earlybake)."""
    return [
        prepare.Preflight(),
        route.Route(),  # which node builds which platform; refuses an output several nodes cannot make
        prepare.Registry(push=push),
        prepare.Plan(),
        prepare.Stamp(beside_compile=True),  # beside go build; a wrong -X variable stops it at once
        prepare.StaticBase(),
        prepare.GoImage(),
        prepare.BinFmt(),
        prepare.Render(),
        prepare.Compile(bake_early=bake_early),
        prepare.Rootfs(),  # the binaries' layer trees, reproducible as BuildKit exports them
    ]


def publish_stages() -> list[Stage]:
    """image.multiarch: build what changed, push by digest, prove every index, then move the tags."""
    return [
        *_prepare(push=True, bake_early=True),  # a platform's images start as soon as its binaries exist
        publish.Decide(),  # what is unchanged since the last publish
        publish.Bake(),  # what the early bakes left, pushed by digest; each index composed
        publish.CheckIndexes(),  # exactly the planned platforms
        supply.Sbom(),  # an SBOM per platform from the binary's Go build info, attached to the index
        publish.Verify(),  # binaries, configs, SBOMs, smoke runs: before any tag moves
        supply.Sign(),  # cosign signs each index and image; checked before any tag moves
        publish.Record(),  # so a rerun with the same inputs does nothing
        publish.Tag(),  # the tags move, only now
        publish.Summary(),
    ]


def _context(session: Session, platforms: Sequence[Platform], publisher: publishers.Publisher | None) -> Context:
    return Context(
        session=session,
        platforms=tuple(platforms),
        services=session.cfg.selected_images(),
        publisher=publisher,
    )


def image_multiarch(
    session: Session, platforms: Sequence[Platform] | None = None, oci: bool = False, check_reproducible: bool = False
) -> list[Published]:
    cfg = session.cfg
    plats = _image_platforms(cfg, platforms)
    output.step(
        f"images for {len(cfg.selected_images())} service(s) x {', '.join(map(str, plats))} "
        f"-> {'build/oci/' if oci else cfg.image.registry_prefix} (version {cfg.version.version})"
    )
    if oci:
        ctx = _context(session, plats, publishers.Tarball(cfg))
        pipeline.run([*_prepare(push=False), publish.Bake()], ctx)
        return []
    if check_reproducible:
        output.step("reproducibility: two builds, the second with --no-cache")
        ctx = _context(session, plats, publishers.Registry(cfg))
        stages = [*_prepare(push=True), publish.Bake(label="repro-1"), publish.Bake(no_cache=True, label="repro-2")]
        pipeline.run([*stages, publish.Reproducible()], ctx)
        return []
    ctx = pipeline.run(publish_stages(), _context(session, plats, publishers.Registry(cfg)))
    return ctx.published


def image(
    session: Session,
    platforms: Sequence[Platform] | None = None,
    load: bool = False,
    push_by_digest: bool = False,
    oci: bool = False,
) -> None:
    """`make image` / `invoke image`: one platform into docker, by digest for CI, or OCI."""
    cfg = session.cfg
    if platforms:
        plats = tuple(platforms)
    elif cfg.platforms_overridden:
        plats = cfg.image_platforms
    else:
        plats = (host_platform(),)
    require_image_platforms(plats)
    if push_by_digest:
        output.step(f"push by digest: {', '.join(map(str, plats))}")
        ctx = _context(session, plats, publishers.DigestLegs(cfg))
        pipeline.run([*_prepare(push=True), publish.Bake()], ctx)
        return
    if oci:
        image_multiarch(session, plats, oci=True)
        return
    if not load:
        raise UserError(
            "invoke image needs --load, --push-by-digest or --output oci; use `make image.multiarch` to push"
        )
    from crossbuild.images import require_one_platform  # noqa: PLC0415 - only --load needs it

    require_one_platform(plats)
    output.step(f"image for {plats[0]} -> docker daemon")
    ctx = _context(session, plats, publishers.Daemon(cfg))
    pipeline.run([*_prepare(push=False), publish.Bake()], ctx)


def merge_manifests(session: Session, legacy: bool = False) -> list[Published]:
    cfg = session.cfg
    services = cfg.selected_images() if (legacy or cfg.images) else manifest.services_with_digests(cfg)
    if not services:
        raise UserError(
            f"no digests under {cfg.output_dir / 'digests'}: run `invoke image --platform P --push-by-digest` "
            "for each platform first (or use --legacy for svc-<arch>:tag images)"
        )
    output.step(f"merge {len(services)} index(es) with buildx imagetools create, verify them, then move the tags")
    ctx = Context(session=session, platforms=cfg.image_platforms, services=tuple(services), action="merged")
    stages: list[Stage] = [
        prepare.Registry(push=True),
        prepare.Stamp(),
        merge_stages.PlanMerge(legacy),
        merge_stages.PushIndexes(),
        publish.CheckIndexes(),
        supply.Sbom(),
        # legacy per-arch images were built by another tool: their -X stamps are not crossbuild's to expect
        publish.Verify(stamped=not legacy),
        supply.Sign(),
        publish.Tag(),
        publish.Summary(),
    ]
    return pipeline.run(stages, ctx).published


def build(session: Session, platforms: Sequence[Platform] | None = None, multiarch: bool = False) -> Context:
    """`invoke build`: cross-compile the selected services (host platform unless asked)."""
    cfg = session.cfg
    if platforms is None:
        platforms = cfg.binary_platforms if (multiarch or cfg.platforms_overridden) else (host_platform(),)
    ctx = Context(session=session, platforms=tuple(platforms), services=cfg.selected_bins())
    return pipeline.run([prepare.Stamp(beside_compile=True), prepare.Compile(every_service=True)], ctx)


# --- the other tasks ------------------------------------------------------------------------------


def setup(session: Session, platforms: Sequence[Platform] | None = None, prune: bool = False) -> None:
    cfg = session.cfg
    plats = _image_platforms(cfg, platforms)
    output.step("builder setup")
    from crossbuild import builder  # noqa: PLC0415

    output.ok(f"docker client {builder.check_docker_version()}")
    output.ok(buildx.version())
    plan = plan_mod.plan(cfg, plats, cfg.selected_images())
    target_code = any(t.runs_target_code() for t in plan.targets)
    if target_code:
        registered = builder.register_binfmt(session.runner, plats)
        output.ok("QEMU binfmt: " + (", ".join(registered) if registered else "already registered"))
    else:
        output.ok("QEMU binfmt: not needed (no RUN step executes target-arch code)")
    info = builder.ensure_builder(session.runner, cfg, plats, prune=prune, runs_target_code=target_code)
    output.ok(f"builder '{info.name}' ({info.driver}, {info.status}): {', '.join(info.platforms)}")


def registry_up(session: Session) -> None:
    output.ok(registry_server.up(session.runner, session.cfg))


def registry_down(session: Session) -> None:
    output.ok(registry_server.down(session.cfg))


def go_image(session: Session, ref: str | None = None) -> str:
    """Build the offline Go builder image (busybox + the host GOROOT) and push it."""
    cfg, run = session.cfg, session.runner
    target = ref or cfg.image.go_image
    busybox = runner.which("busybox")
    if busybox is None:
        raise UserError("busybox not found: apt-get install busybox-static (or run `make tools`)")
    goroot = Path(runner.output(["go", "env", "GOROOT"]))
    context = cfg.output_dir / "go-image"

    def stage_context() -> None:
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        shutil.copy2(busybox, context / "busybox")
        shutil.copytree(goroot, context / "go", symlinks=True, ignore=shutil.ignore_patterns("test", "*_test.go"))

    run.act(f"copy {busybox} and {goroot} into {context}", stage_context)
    registry_server.ensure(run, cfg)
    doctor.preflight(cfg, [host_platform()])
    output.step(f"Go builder image {target} from {goroot}")
    argv = buildx.build_argv(
        context=context,
        file=dockerfiles.template_path("go-builder", cfg.root),
        builder=cfg.builder.name,
        platform=[str(host_platform())],
        tag=[target],
        output=["type=image,push=true"],
        provenance=False,
    )
    buildx.build(run, argv)
    output.ok(f"pushed {target}")
    return target


# --- verify -------------------------------------------------------------------


def verify(
    session: Session, refs: Sequence[str] = (), smoke: bool = True, timeout: float = 30.0
) -> list[verify_mod.ImageReport]:
    if timeout <= 0:
        raise UserError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    cfg = session.cfg
    platforms = _image_platforms(cfg, None)
    ctx = pipeline.run([prepare.Stamp()], Context(session=session, platforms=platforms, services=cfg.selected_images()))
    cfg = ctx.cfg
    exps = expect.for_refs(cfg, refs, platforms)
    output.step(f"verify {len(exps)} image(s) x {', '.join(map(str, platforms))}")
    registry_server.ensure(session.runner, cfg)
    reports = verify_mod.verify(
        session.client, exps, smoke_timeout=timeout, run_smoke=smoke, probe_cache=expect.probe_cache(cfg)
    )
    expect.check_keyless(cfg, session.runner, reports)
    expect.report(cfg, reports, "verify")
    bad = [r for r in reports if not r.ok]
    if bad:
        raise UserError(f"verify failed for {', '.join(r.service for r in bad)}: see the table above")
    return reports


def run_doctor(session: Session) -> list[doctor.Check]:
    cfg = session.cfg
    platforms = _image_platforms(cfg, None)
    plan = plan_mod.plan(cfg, platforms, cfg.selected_images())  # in memory: doctor writes nothing
    needs = any(t.runs_target_code() for t in plan.targets)
    output.step(f"doctor: {cfg.path} for {', '.join(map(str, platforms))}")
    checks = doctor.run_all(cfg, platforms, session.client, needs)
    for c in checks:
        line = f"{c.name}: {c.detail}"
        if c.ok:
            output.ok(line)
        else:
            (output.fail if c.blocking else output.warn)(line)
            output.info(f"fix: {c.fix}")
        if c.rows:
            output.table(doctor.ROUTE_HEADERS, c.rows)
    blocking = [c for c in checks if not c.ok and c.blocking]
    if blocking:
        raise UserError(f"{len(blocking)} problem(s) block the job: {', '.join(c.name for c in blocking)}")
    return checks


def run_audit(
    session: Session,
    compose: str | None,
    refs: Sequence[str],
    platforms: Sequence[Platform] | None,
    json_path: str | None = None,
    env_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[audit_mod.AuditRow]:
    """`invoke audit`: a compose file's services (${VAR}s from the environment and .env, as docker
    compose substitutes them) and/or images, against the required platforms."""
    from crossbuild import audit as audit_mod  # noqa: PLC0415 - see the imports above
    from crossbuild import compose as compose_mod  # noqa: PLC0415

    cfg = session.cfg
    if env_file and not compose:
        raise UserError("--env-file applies to --compose FILE only")
    entries: list[compose_mod.ComposeService] = []
    if compose:
        env = dict(os.environ if environ is None else environ)
        entries += compose_mod.read_compose(Path(compose), env, Path(env_file) if env_file else None)
    entries += [compose_mod.ComposeService("", image=ref) for ref in refs]
    if not entries:
        raise UserError("nothing to audit: give --compose docker-compose.yml and/or --image REF")
    required = _image_platforms(cfg, platforms)
    built = sum(1 for e in entries if not e.image and not e.error)
    output.step(
        f"audit {len(entries) - built} image(s) for {', '.join(map(str, required))}"
        + (f" ({built} service(s) built here)" if built else "")
    )
    rows = audit_mod.audit(session.client, entries, required)
    cells = audit_mod.table_rows(rows)
    output.table(["service", "image", "architectures", "ports", "signature, SBOM", "status"], cells)
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


def ci_github(session: Session, matrix: bool = False, path: str | None = None, force: bool = False) -> Path | None:
    """`invoke ci.github`: write a GitHub Actions workflow for this config ('-' prints it)."""
    cfg = session.cfg
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


# --- resolve -------------------------------------------------------------------


def resolve(
    session: Session,
    files: Sequence[str],
    third_party: bool = False,
    out_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[resolve_mod.Resolved]:
    """`invoke resolve FILE...`: deployment files with this project's images pinned to digests.

    The rewritten files go to stdout (Kubernetes documents joined by `---`) or, with --output DIR,
    into DIR under their own names; what was pinned is reported on stderr.
    """
    if not files:
        raise UserError("nothing to resolve: give the Kubernetes or compose files, e.g. invoke resolve deploy/app.yaml")
    paths = [Path(f) for f in files]
    pinner = resolve_mod.Pinner(
        session.client, resolve_mod.published(session.cfg, session.state("images")), third_party
    )
    resolved = resolve_mod.resolve_files(paths, pinner, environ)
    names = [r.path.name for r in resolved]
    if out_dir is None and len(resolved) > 1 and any(r.kind == resolve_mod.COMPOSE for r in resolved):
        raise UserError("several files and a compose file among them: give --output DIR to write each one there")
    if out_dir is not None and len(set(names)) != len(names):
        raise UserError(f"two files are named {next(n for n in names if names.count(n) > 1)}: resolve them apart")
    for r in resolved:
        for c in r.changes:
            print(f"  ok {r.path}: {c.image} -> {c.pinned}", file=sys.stderr, flush=True)
        if not r.changes:
            print(f"     {r.path}: no image of this project" + (" or other" if third_party else ""), file=sys.stderr)
    if out_dir is None:
        sys.stdout.write("---\n".join(r.text if r.text.endswith("\n") else r.text + "\n" for r in resolved))
        sys.stdout.flush()
        return resolved
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    for r in resolved:
        (target / r.path.name).write_text(r.text, encoding="utf-8")
        print(f"  ok wrote {target / r.path.name}", file=sys.stderr, flush=True)
    return resolved


# --- init ---------------------------------------------------------------------


def init(directory: str, force: bool = False, verbose: bool = False) -> adopt.InitResult:
    """`crossbuild init DIR`: adopt crossbuild in an existing Go repository (there is no Config yet)."""
    from crossbuild import adopt  # noqa: PLC0415 - see the imports above

    make_runner(verbose=verbose)
    return adopt.init(Path(directory), force=force)


# --- offline bundles ------------------------------------------------------------


def bundle_create(
    session: Session, platforms: Sequence[Platform] | None = None, extra_images: Sequence[str] = ()
) -> list[Path]:
    """`make bundle`: one offline archive per image platform (PLATFORMS=) under build/bundles/.

    bundle_mod.create prints the step line and one "wrote" line per archive; nothing is repeated here.
    """
    from crossbuild import bundle as bundle_mod  # noqa: PLC0415 - see the imports above

    cfg = session.cfg
    plats = _image_platforms(cfg, platforms)
    registry_server.ensure(session.runner, cfg)
    return bundle_mod.create(session.runner, cfg, session.client, plats, [*cfg.bundle_images, *extra_images])


BUNDLE_MAX_SIZE_ENV = "BUNDLE_MAX_SIZE"


def bundle_load(
    run: Runner,
    archive: str,
    registry: str | None = None,
    *,
    insecure: bool = False,
    plain_http: bool = False,
    max_size: str | None = None,
    environ: Mapping[str, str] | None = None,
    deploy_dir: str | None = None,
    key: str | None = None,
    allow_unsigned: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """`invoke bundle.load`: verify a bundle, then push it to `registry` or load it into docker.

    Reads no config.toml: it runs on the air-gapped server, where only the archive is. The size
    limit comes from --max-size, else $BUNDLE_MAX_SIZE, else the default sized to the archive.
    bundle_mod.load prints one "ok" line per imported image.
    """
    from crossbuild import bundle as bundle_mod  # noqa: PLC0415 - see the imports above

    env = os.environ if environ is None else environ
    limit_text, where = max_size, "--max-size"
    if max_size is None:
        limit_text, where = env.get(BUNDLE_MAX_SIZE_ENV), BUNDLE_MAX_SIZE_ENV
    limit = bundle_mod.parse_size(limit_text, where) if limit_text else None
    return bundle_mod.load(
        run,
        Path(archive),
        registry,
        plain_http=plain_http,
        insecure=insecure,
        max_size=limit,
        deploy_dir=Path(deploy_dir) if deploy_dir else None,
        key=Path(key) if key else None,
        allow_unsigned=allow_unsigned,
    )


# --- clean ---------------------------------------------------------------------------


def clean(session: Session) -> list[Path]:
    """Remove what crossbuild wrote into the output directory, and nothing else.

    Only crossbuild's own entries (config.OUTPUT_ENTRIES) go; the directory itself
    goes only when nothing else is left in it. Under --dry-run, print what would go.
    """
    cfg, dry_run = session.cfg, session.dry_run
    out = cfg.output_dir
    doomed = [out / name for name in config_mod.OUTPUT_ENTRIES if (out / name).exists() or (out / name).is_symlink()]
    verb = "would remove" if dry_run else "removed"
    for path in doomed:
        if not dry_run:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        output.ok(f"{verb} {path}")
    others = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if dry_run:
        others = [n for n in others if n not in config_mod.OUTPUT_ENTRIES]
    if out.is_dir() and not others:
        if not dry_run:
            out.rmdir()
        output.ok(f"{verb} {out}")
    elif others:
        output.info(
            f"kept {out}: it also holds {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}, not crossbuild's"
        )
    if not doomed and not out.exists():
        output.ok(f"nothing to remove: {out} does not exist")
    return doomed
