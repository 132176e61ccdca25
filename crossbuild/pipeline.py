"""A task is an ordered list of stages run over one context (goreleaser's pipes, ko's publishers).

Each stage is a small object with a `name`, whether it `mutates` anything (pushes,
writes, builds), an optional `skip(ctx)` that says why it has nothing to do, and
`run(ctx)`. A mutating stage also says what it would do: `describe(ctx)` returns
the commands as shell lines. A dry run is the pipeline running every read-only
stage (so the plan knows what is unchanged) and printing, instead of running,
the mutating ones; nothing else in crossbuild asks whether this is a dry run.

Adding a step (an SBOM, a signature) is one class and one line in a stage list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from crossbuild import output, progress
from crossbuild.config import Config, Service
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

if TYPE_CHECKING:
    from crossbuild.gobuild import PlatformResult
    from crossbuild.images import Decision, Published, Staged
    from crossbuild.plan import ImagePlan, ImageTarget
    from crossbuild.publishers import Publisher
    from crossbuild.session import Session


@dataclass
class Context:
    """What flows from stage to stage during one task (goreleaser's ctx)."""

    session: Session
    platforms: tuple[Platform, ...]
    services: tuple[Service, ...]
    publisher: Publisher | None = None
    plan: ImagePlan | None = None  # the images, once planned
    base_image: str | None = None  # the static base, pinned by digest, once resolved
    decisions: list[Decision] = field(default_factory=list)
    pushed: dict[str, str] = field(default_factory=dict)  # service -> index digest pushed, not yet checked
    staged: list[Staged] = field(default_factory=list)  # pushed, checked, not yet tagged
    published: list[Published] = field(default_factory=list)
    action: str = "built"  # what the summary calls a new index: built, or merged (manifest)
    blockers: list[str] = field(default_factory=list)  # what would make the real run fail (dry run)
    builds: list[PlatformResult] = field(default_factory=list)  # the compile stage's results
    memo: dict[str, Any] = field(default_factory=dict)  # computed once per run (tree hash, base lookup)
    timings: dict[str, float] = field(default_factory=dict)
    # run when the pipeline ends, however it ends (a thread a stage started, to stop)
    closers: list[Callable[[], None]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def cfg(self) -> Config:
        return self.session.cfg

    @property
    def dry_run(self) -> bool:
        return self.session.dry_run

    def to_build(self) -> list[ImageTarget]:
        """The planned targets the decide stage left to build (all of them without one)."""
        if self.plan is None:
            return []
        if not self.decisions:
            return list(self.plan.targets)
        build = {d.target.service.name for d in self.decisions if d.action == "build"}
        return [t for t in self.plan.targets if t.service.name in build]


class Stage:
    """One step of a pipeline. Subclasses set `name`, `mutates`, and override `run`."""

    name: ClassVar[str] = "stage"
    mutates: ClassVar[bool] = False

    def skip(self, ctx: Context) -> str:
        """Why this stage has nothing to do ("" to run it)."""
        return ""

    def run(self, ctx: Context) -> None:
        raise NotImplementedError

    def describe(self, ctx: Context) -> list[str]:
        """The commands a mutating stage would run, as shell lines (printed by a dry run)."""
        return [f"({self.name})"]


def run(stages: Sequence[Stage], ctx: Context) -> Context:
    """Run every stage in order; a dry run prints the mutating ones instead and fails at the
    end if a read-only stage found something the real run would fail on."""
    try:
        for stage in stages:
            why = stage.skip(ctx)
            if why:
                ctx.session.runner.echo([f"# {stage.name}: skipped, {why}"])
                continue
            if ctx.dry_run and stage.mutates:
                for line in stage.describe(ctx):
                    ctx.session.runner.plan(line)
                continue
            started = time.monotonic()
            with progress.activity(stage.name):  # shown while it runs; a heartbeat when it says nothing
                stage.run(ctx)
            ctx.timings[stage.name] = time.monotonic() - started
            ctx.session.runner.echo([f"# {stage.name}: {ctx.timings[stage.name]:.2f}s"])
    finally:
        for close in reversed(ctx.closers):
            close()
    if ctx.dry_run and ctx.blockers:
        problems = "; ".join(dict.fromkeys(ctx.blockers))
        raise UserError(f"dry run: the real run would fail: {problems}")
    return ctx


def elapsed(ctx: Context, *names: str) -> float:
    return sum(ctx.timings.get(n, 0.0) for n in names)


def announce(message: str) -> None:
    output.step(message)
