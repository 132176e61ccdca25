"""The stages before the images are built: check, settle, plan, compile, render.

preflight    the builder answers and offers the platforms (read-only)
registry     the registry answers and this login may push there (starts the embedded one)
plan         the image plan, in memory (read-only)
stamp        which -X variables each service carries (go list + govars; read-only; beside
             the compile, which a wrong variable stops at once)
static base  the default runtime base, built and pushed once per content
go image     multistage: the Go builder image is there (read-only)
binfmt       QEMU handlers when a Dockerfile runs target-arch code
compile      the host-built binaries prebuilt images copy (go build, incremental)
rootfs       their layer trees, every entry at SOURCE_DATE_EPOCH (crossbuild.rootfs)
render       the rendered Dockerfiles written to build/dockerfiles/
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from crossbuild import (
    base,
    builder,
    dockerfiles,
    doctor,
    earlybake,
    gobuild,
    incremental,
    output,
    progress,
    publishers,
    registry_server,
    rootfs,
    runner,
    stamping,
)
from crossbuild import plan as plan_mod
from crossbuild.config import Config, Service
from crossbuild.errors import UserError
from crossbuild.oci import parse_reference
from crossbuild.pipeline import Context, Stage


class Preflight(Stage):
    name = "preflight"

    def run(self, ctx: Context) -> None:
        # a platform no node offers still builds where no RUN step executes target code
        targets = plan_mod.plan(ctx.cfg, ctx.platforms, ctx.services).targets
        ctx.memo["routing"] = doctor.preflight(ctx.cfg, ctx.platforms, any(t.runs_target_code() for t in targets))


class Registry(Stage):
    """The target registry answers (the embedded one is started on demand) and, when pushing,
    this login may push: a wrong password fails in the first seconds, not after the build."""

    name = "registry"

    def __init__(self, push: bool = True) -> None:
        self.push = push

    def skip(self, ctx: Context) -> str:
        if self.push or static_base_needed(ctx):
            return ""
        return "nothing goes to a registry"

    def run(self, ctx: Context) -> None:
        registry_server.ensure(ctx.session.runner, ctx.cfg)
        if (
            ctx.dry_run
            and not registry_server.healthy(ctx.cfg.registry.address)
            and (registry_server.serves_image_registry(ctx.cfg))
        ):
            return  # it would be started: nothing to probe yet
        host = parse_reference(ctx.cfg.image.registry_prefix + "/x").registry
        client = ctx.session.client
        try:
            client.probe(host)
            if self.push and ctx.services:
                client.probe_push(host, parse_reference(ctx.cfg.image_ref(ctx.services[0])).repository)
        except UserError as exc:
            if not ctx.dry_run:
                raise
            output.warn(f"{exc}: the plan below cannot tell what is unchanged")
            ctx.blockers.append(str(exc))


class Stamp(Stage):
    """Which -X variables each service carries (go list + govars: 0.5 s on a 300-package module
    the first time, then only for what an edit changed: crossbuild.gosources).

    `beside_compile`: the check runs in a thread beside `go build` (whose command line does not
    depend on it), and the compile stage joins it before it checks the binaries. A wrong variable
    kills the go builds still running as soon as the check finds it, so it is reported within
    the check's time, as when it ran first, without making every run wait for it.
    """

    name = "stamp"

    def __init__(self, beside_compile: bool = False) -> None:
        self.beside_compile = beside_compile

    def run(self, ctx: Context) -> None:
        state = ctx.session.state(stamping.STATE_NAME)
        key = tree(ctx)
        if self.beside_compile and not ctx.dry_run and _compiles(ctx):
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stamp")
            pending = pool.submit(stamping.resolve, ctx.cfg, ctx.services, key, state)
            failed = ctx.memo[_FAILED] = threading.Event()
            pending.add_done_callback(lambda done: failed.set() if done.exception() is not None else None)
            ctx.memo[_PENDING] = pending
            pool.shutdown(wait=False)
            return
        _apply_stamping(ctx, stamping.resolve(ctx.cfg, ctx.services, key, state))


_PENDING = "stamping in progress"
_FAILED = "stamping failed"  # a threading.Event the compile's go builds are cancelled by


def _compiles(ctx: Context) -> bool:
    """Will the compile stage run (and so join a stamping check started beside it)?"""
    return bool(ctx.plan.prebuilt_services(ctx.cfg) if ctx.plan is not None else ctx.services)


def _apply_stamping(ctx: Context, resolved: tuple[Config, stamping.Stamping]) -> None:
    cfg, result = resolved
    if not ctx.dry_run:
        ctx.session.state(stamping.STATE_NAME).save()
    ctx.session = ctx.session.with_config(cfg)
    for note in result.notes:
        output.info(f"note: {note}")


def stamped_config(ctx: Context) -> Config:
    """The Config with -X stamping settled: waits for a check running beside `go build`."""
    pending: Future[tuple[Config, stamping.Stamping]] | None = ctx.memo.get(_PENDING)
    return pending.result()[0] if pending is not None else ctx.cfg


def join_stamping(ctx: Context) -> None:
    """Settle a stamping check started beside the compile (raises its error, once)."""
    pending: Future[tuple[Config, stamping.Stamping]] | None = ctx.memo.pop(_PENDING, None)
    if pending is not None:
        _apply_stamping(ctx, pending.result())


def tree(ctx: Context) -> str:
    """The module's tree hash, computed once per run."""
    if "tree" not in ctx.memo:
        ctx.memo["tree"] = incremental.tree_hash(ctx.cfg.module_dir, exclude=[ctx.cfg.output_dir])
    value: str = ctx.memo["tree"]
    return value


def static_base_needed(ctx: Context) -> bool:
    if not ctx.cfg.image.static_base:
        return False
    probe = ctx.plan or plan_mod.plan(ctx.cfg, ctx.platforms, ctx.services)
    return any(t.reads_base_image() for t in probe.targets)


class Plan(Stage):
    name = "plan"

    def run(self, ctx: Context) -> None:
        ctx.plan = plan_mod.plan(ctx.cfg, ctx.platforms, ctx.services, ctx.base_image)
        say_held_tags(ctx)


def say_held_tags(ctx: Context) -> None:
    """Release-only tags that will not move, and why, once per run."""
    held = sorted({tag for s in ctx.services for tag in ctx.cfg.held_tags(s)})
    if not held:
        return
    cfg = ctx.cfg
    if cfg.snapshot:
        output.warn(
            f"snapshot: {', '.join(held)} not moved; each platform's image is tagged "
            f"<tag>-<os>-<arch>[-<variant>] for local testing"
        )
    else:
        output.warn(
            f"{', '.join(held)} not moved: version {cfg.version.version} is from a dirty tree; commit first, "
            "or give --force-release-tags (FORCE_RELEASE_TAGS=1) to move them anyway"
        )


class StaticBase(Stage):
    """The default runtime base, pinned by digest into the plan (built and pushed when absent)."""

    name = "static base"
    mutates = True

    def skip(self, ctx: Context) -> str:
        if not static_base_needed(ctx):
            return "no image is built on the static base"
        if ctx.blockers:
            return "the registry is not reachable"
        return ""

    def _found(self, ctx: Context) -> base.Found:
        if "base" not in ctx.memo:
            ctx.memo["base"] = base.find(ctx.cfg, ctx.session.client, ctx.platforms)
        found: base.Found = ctx.memo["base"]
        return found

    def run(self, ctx: Context) -> None:
        found = self._found(ctx)
        if found.pinned is not None:
            output.ok(f"static base {found.pinned}: already in the registry ({found.tag.tag})")
            ctx.base_image = found.pinned
        else:
            ctx.base_image = base.build(ctx.session.runner, ctx.cfg, ctx.session.client, found)
        ctx.plan = plan_mod.plan(ctx.cfg, ctx.platforms, ctx.services, ctx.base_image)

    def describe(self, ctx: Context) -> list[str]:
        found = self._found(ctx)
        if found.pinned is not None:
            output.ok(f"static base {found.pinned}: already in the registry ({found.tag.tag})")
            ctx.base_image = found.pinned
            ctx.plan = plan_mod.plan(ctx.cfg, ctx.platforms, ctx.services, ctx.base_image)
            return []
        output.info(f"static base: would build and push {found.tag}; the images below would use it by digest")
        return [runner.display(base.build_argv(ctx.cfg, found))]


class GoImage(Stage):
    name = "go image"

    def skip(self, ctx: Context) -> str:
        assert ctx.plan is not None
        return "" if ctx.plan.multistage(ctx.cfg) else "no multistage image"

    def run(self, ctx: Context) -> None:
        if ctx.dry_run and ctx.blockers:
            return
        if ctx.session.client.manifest_exists(parse_reference(ctx.cfg.image.go_image)) is None:
            problem = (
                f"Go builder image {ctx.cfg.image.go_image} not found: build it offline with "
                "`make go-image`, or set GO_IMAGE to one your builder can pull"
            )
            if not ctx.dry_run:
                raise UserError(problem)
            ctx.blockers.append(problem)


class BinFmt(Stage):
    """QEMU handlers, only when some Dockerfile RUNs target-arch code."""

    name = "binfmt"
    mutates = True

    def skip(self, ctx: Context) -> str:
        assert ctx.plan is not None
        return "" if any(t.runs_target_code() for t in ctx.plan.targets) else "no RUN step executes target-arch code"

    def run(self, ctx: Context) -> None:
        builder.register_binfmt(ctx.session.runner, ctx.platforms)

    def describe(self, ctx: Context) -> list[str]:
        return [f"register QEMU binfmt handlers for {', '.join(map(str, builder.foreign(ctx.platforms)))}"]


class Compile(Stage):
    """`go build` per platform for the images that copy host-built binaries (or for `build`)."""

    name = "compile"
    mutates = True

    def __init__(self, every_service: bool = False, bake_early: bool = False) -> None:
        self.every_service = every_service  # `invoke build`: every selected service, not only prebuilt images
        self.bake_early = bake_early  # each platform's images baked once its binaries exist (earlybake)

    def services(self, ctx: Context) -> list[Service]:
        if self.every_service:
            return list(ctx.services)
        assert ctx.plan is not None
        return ctx.plan.prebuilt_services(ctx.cfg)

    def skip(self, ctx: Context) -> str:
        return "" if self.services(ctx) else "no image copies a host-built binary"

    def _baker(self, ctx: Context, board: progress.Reporter) -> earlybake.Baker | None:
        """The early baker of image.multiarch, when some image can be baked a platform at a time."""
        if not self.bake_early or type(ctx.publisher) is not publishers.Registry or ctx.plan is None:
            return None
        if not earlybake.wanted(ctx.cfg):
            return None
        if not any(earlybake.takes(t) for t in ctx.plan.targets):
            return None
        records = {t.service.name: ctx.session.state("images").get(t.service.name) for t in ctx.plan.targets}
        baker = earlybake.Baker(
            ctx.session.runner, ctx.cfg, ctx.session.client, ctx.plan.targets, records, ctx.platforms, board
        )
        ctx.memo[earlybake.MEMO] = baker
        ctx.closers.append(baker.stop)  # however the run ends, no bake outlives it
        return baker

    def run(self, ctx: Context) -> None:
        services = self.services(ctx)
        announce_build(ctx, services)
        with progress.activity("go build", tuple(str(p) for p in ctx.platforms)) as board:
            baker = self._baker(ctx, board)
            try:
                ctx.builds = gobuild.build(
                    ctx.session.runner,
                    ctx.cfg,
                    ctx.platforms,
                    services,
                    ctx.session.state("gobuild"),
                    tree(ctx),
                    board,
                    checks=lambda: stamped_config(ctx),
                    cancel=ctx.memo.get(_FAILED),
                    built=baker.built if baker is not None else None,
                )
            finally:
                join_stamping(ctx)
        report_builds(ctx, services)

    def describe(self, ctx: Context) -> list[str]:
        services = self.services(ctx)
        announce_build(ctx, services)
        return gobuild.describe(ctx.cfg, ctx.platforms, services)


def announce_build(ctx: Context, services: Sequence[Service]) -> None:
    output.step(
        f"go build {len(services)} service(s) x {len(ctx.platforms)} platform(s): "
        f"{', '.join(str(p) for p in ctx.platforms)} (version {ctx.cfg.version.version})"
    )


def report_builds(ctx: Context, services: Sequence[Service]) -> None:
    """The build table; every failure at once, after it."""
    rows = []
    failures = gobuild.compile_failures(ctx.builds)
    for pr in ctx.builds:
        if pr.error:
            rows += [
                [s.name, str(pr.platform), "-", output.status_word("failed" if s.name in pr.failed else "skipped")]
                for s in services
            ]
            continue
        for br in pr.binaries:
            size = output.human_size(br.size) if br.size else "-"
            rows.append([br.service, str(pr.platform), size, output.status_word("ok" if br.ok else "failed")])
            failures += [f"{br.service} {pr.platform}: {p}" for p in br.problems]
        output.ok(f"{pr.platform}: unchanged, go build skipped" if pr.cached else f"{pr.platform} in {pr.seconds:.1f}s")
    output.table(["service", "platform", "size", "result"], rows)
    if failures:
        raise UserError("build failed:\n" + "\n".join(failures))


class Rootfs(Stage):
    """Each prebuilt image's layer tree, its entries at SOURCE_DATE_EPOCH (crossbuild.rootfs)."""

    name = "rootfs"
    mutates = True

    def _targets(self, ctx: Context) -> list[plan_mod.ImageTarget]:
        assert ctx.plan is not None
        return [t for t in ctx.plan.targets if t.fixed_times]

    def skip(self, ctx: Context) -> str:
        if earlybake.MEMO in ctx.memo:
            return "each platform's layer trees are written as its images are baked"
        return "" if self._targets(ctx) else "no image copies a layer tree"

    def run(self, ctx: Context) -> None:
        assert ctx.plan is not None
        context = rootfs.write(ctx.cfg, ctx.platforms, [t.service for t in self._targets(ctx)])
        targets = tuple(replace(t, context=context) if t.fixed_times else t for t in ctx.plan.targets)
        ctx.plan = replace(ctx.plan, targets=targets)  # the trees' directory is named after the binaries

    def describe(self, ctx: Context) -> list[str]:
        return []  # files only; the bake line below reads them


class Render(Stage):
    """Write the Dockerfiles crossbuild renders (build/dockerfiles/); the user's own stay as they are."""

    name = "render"
    mutates = True

    def run(self, ctx: Context) -> None:
        assert ctx.plan is not None
        for t in ctx.plan.targets:
            if t.rendered:
                dockerfiles.write(t.dockerfile, t.dockerfile_text)

    def describe(self, ctx: Context) -> list[str]:
        return []  # the bake line below names them; nothing to run
