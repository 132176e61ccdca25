"""The stages that build, prove and publish the images.

decide        what is unchanged (content keys vs the last publish; read-only)
bake          ONE buildx bake into the publisher (push by digest, daemon, OCI tarball)
check         each pushed index holds exactly the planned platforms (read-only)
verify        every pushed index proven before any tag moves (read-only)
record        the published digests written to build/state/images.json
tag           every tag moved, service by service, only now
reproducible  the bake again without cache: the same digests, or an error
summary       the published table and where the time went
"""

from __future__ import annotations

import time

from crossbuild import bake, earlybake, expect, images, output, progress
from crossbuild import plan as plan_mod
from crossbuild.errors import UserError
from crossbuild.oci import Reference, parse_reference
from crossbuild.pipeline import Context, Stage
from crossbuild.publishers import Registry as RegistryPublisher
from crossbuild.stages.prepare import tree


class Decide(Stage):
    name = "decide"

    def skip(self, ctx: Context) -> str:
        return "" if isinstance(ctx.publisher, RegistryPublisher) else "only a registry publish is incremental"

    def run(self, ctx: Context) -> None:
        assert ctx.plan is not None
        targets = ctx.plan.targets
        multistage = bool(ctx.plan.multistage(ctx.cfg))
        try:
            if ctx.blockers:
                raise UserError(ctx.blockers[0])
            ctx.decisions = images.decide(
                ctx.cfg, targets, ctx.session.client, ctx.session.state("images"), tree(ctx) if multistage else ""
            )
        except UserError:
            if not ctx.dry_run:
                raise
            ctx.decisions = [images.Decision(t, "build", "registry not reachable to compare", {}) for t in targets]
        if ctx.dry_run:
            output.step("plan")
            rows = [
                [
                    d.target.service.name,
                    ", ".join(d.target.refs()),
                    ",".join(map(str, d.target.platforms)),
                    d.action,
                    d.reason,
                ]
                for d in ctx.decisions
            ]
            output.table(["service", "tags", "platforms", "action", "why"], rows)
            return
        for d in ctx.decisions:
            if d.action != "build":
                output.info(f"{d.target.service.name}: {d.action} ({d.reason})")


class Bake(Stage):
    name = "bake"
    mutates = True

    def __init__(self, no_cache: bool = False, label: str = "") -> None:
        self.no_cache = no_cache
        self.label = label  # the bake file's name when one run bakes twice (reproducibility)

    def skip(self, ctx: Context) -> str:
        return "" if ctx.to_build() else "every image is unchanged"

    def _name(self, ctx: Context) -> str:
        assert ctx.publisher is not None
        return self.label or ctx.publisher.bake_name

    def run(self, ctx: Context) -> None:
        assert ctx.publisher is not None
        publisher = ctx.publisher
        targets = ctx.to_build()
        output.step(
            f"bake {len(targets)} image(s) x {len(ctx.platforms)} platform(s) -> {publisher.name}"
            + (" (no cache)" if self.no_cache else "")
        )
        baker: earlybake.Baker | None = ctx.memo.pop(earlybake.MEMO, None)
        if baker is not None:
            targets = self._finish_early(ctx, baker, targets)
            if not targets:
                return
        with progress.activity("bake", bake.rows_of(targets)) as board:
            metadata = bake.bake(
                ctx.session.runner,
                ctx.cfg,
                targets,
                publisher.outputs,
                name=self._name(ctx),
                with_tags=publisher.with_tags,
                index=publisher.index,
                no_cache=self.no_cache,
                report=board,
            )
        output.ok(f"baked {len(targets)} image(s) x {len(ctx.platforms)} platform(s) in {board.elapsed():.1f}s")
        ctx.memo[f"bake:{self._name(ctx)}"] = metadata
        publisher.after(ctx, metadata)

    @staticmethod
    def _finish_early(
        ctx: Context, baker: earlybake.Baker, targets: list[plan_mod.ImageTarget]
    ) -> list[plan_mod.ImageTarget]:
        """The images the compile's early bakes left, baked; every index composed and pushed by
        digest. Returns the targets a platform-at-a-time bake does not take (one bake, as before)."""
        mine = [t for t in targets if earlybake.takes(t)]
        with progress.activity("bake", bake.rows_of(mine)) as board:
            ctx.pushed.update(baker.finish(mine, board))
        if mine:
            output.ok(
                f"{len(mine)} index(es) pushed by digest ({baker.composed} composed from parts): "
                f"{baker.early()} image(s) baked beside the compile, {baker.late} after it in {board.elapsed():.1f}s"
            )
        return [t for t in targets if not earlybake.takes(t)]

    def describe(self, ctx: Context) -> list[str]:
        return [bake.command(ctx.cfg, self._name(ctx), self.no_cache)]


class CheckIndexes(Stage):
    """Each index pushed by digest lists exactly the planned platforms (attestations aside)."""

    name = "check"

    def skip(self, ctx: Context) -> str:
        return "" if ctx.pushed else "nothing was pushed"

    def run(self, ctx: Context) -> None:
        client = ctx.session.client
        for t in ctx.to_build():
            digest = ctx.pushed[t.service.name]
            plats, size, media_type, raw, _digest = images.describe(client, parse_reference(f"{t.repository}@{digest}"))
            images.check_platforms(t, plats)
            ctx.staged.append(images.Staged(t, digest, plats, size, media_type, raw))


class Verify(Stage):
    """Prove every staged index (platforms, configs, binaries, smoke runs) before any tag moves."""

    name = "verify"

    def __init__(self, stamped: bool = True) -> None:
        self.stamped = stamped  # False: images another tool built carry no -X values of ours

    def skip(self, ctx: Context) -> str:
        if not ctx.cfg.image.verify:
            return "[image] verify is off"
        return "" if ctx.staged else "nothing new to verify"

    def run(self, ctx: Context) -> None:
        reports = expect.verify_staged(ctx.cfg, ctx.session.client, ctx.staged, self.stamped)
        ctx.memo["verified"] = {r.service for r in reports if r.ok}


class Record(Stage):
    """What was published, so a rerun with the same inputs builds and pushes nothing.

    Written before any tag moves: should a tag PUT fail, the rerun finds the verified
    index and only puts the missing tags back.
    """

    name = "record"
    mutates = True

    def skip(self, ctx: Context) -> str:
        return "" if ctx.staged else "nothing new to record"

    def run(self, ctx: Context) -> None:
        state = ctx.session.state("images")
        keys = {d.target.service.name: d.record.get("key") for d in ctx.decisions}
        tree_key = tree(ctx) if ctx.plan is not None and ctx.plan.multistage(ctx.cfg) else ""
        for s in ctx.staged:
            key = keys.get(s.target.service.name) or plan_mod.content_key(ctx.cfg, s.target, tree_key)
            state.put(
                s.target.service.name,
                {
                    "key": key,
                    "digest": s.digest,
                    "platforms": list(s.platforms),
                    "size": s.size,
                    "repository": s.target.repository,
                    # the key's parts, so that the next run can start a platform's images early (earlybake)
                    "frame": plan_mod.frame_key(ctx.cfg, s.target),
                    "inputs": plan_mod.key_inputs(ctx.cfg, s.target, tree_key),
                },
            )
        state.save()

    def describe(self, ctx: Context) -> list[str]:
        return []


class Tag(Stage):
    """Every tag of every service, moved only after everything was verified."""

    name = "tag"
    mutates = True

    def _retags(self, ctx: Context) -> list[images.Decision]:
        return [d for d in ctx.decisions if d.action == "retag"]

    def skip(self, ctx: Context) -> str:
        return "" if ctx.staged or self._retags(ctx) else "every tag already points at its index"

    def run(self, ctx: Context) -> None:
        client = ctx.session.client
        moves = []
        for d in self._retags(ctx):
            ref = parse_reference(d.target.repository)
            manifest = client.get_manifest(Reference(ref.registry, ref.repository, None, d.record["digest"]))
            moves.append((d.target, manifest.raw, manifest.media_type))
        moves += [(s.target, s.raw, s.media_type) for s in ctx.staged]
        images.move_all_tags(client, moves)
        if ctx.cfg.snapshot:
            for target, raw, _media_type in moves:
                for tagged in images.tag_platforms(client, target, raw):
                    output.ok(f"snapshot {tagged}")
        ctx.published += [images.Published(s.target, s.digest, s.platforms, s.size, ctx.action) for s in ctx.staged]

    def describe(self, ctx: Context) -> list[str]:
        lines = [f"tag {ref} -> {d.record['digest']}" for d in self._retags(ctx) for ref in d.target.refs()]
        if ctx.cfg.snapshot:
            lines += [
                f"tag {t.repository}:{images.platform_tag(t.tags[0], p)} -> its {p} image"
                for t in ctx.to_build()
                for p in t.platforms
            ]
        return lines


class Reproducible(Stage):
    """The same bake again without BuildKit's cache must give the same digests (nothing is tagged)."""

    name = "reproducible"
    mutates = True

    def run(self, ctx: Context) -> None:
        first = ctx.memo["bake:repro-1"]
        second = ctx.memo["bake:repro-2"]
        rows, differ = [], []
        for t in ctx.to_build():
            a, b = bake.digest_of(first, t), bake.digest_of(second, t)
            rows.append([t.service.name, a[:19], b[:19], output.status_word("ok" if a == b else "failed")])
            if a != b:
                differ.append(t.service.name)
        output.table(["service", "first build", "second build", "same"], rows)
        if differ:
            raise UserError(
                f"not reproducible: {', '.join(differ)} gave different digests; see build/bake/repro-*.json"
            )
        output.ok("every image is bit-for-bit reproducible (both builds pushed by digest; no tag was moved)")

    def describe(self, ctx: Context) -> list[str]:
        return []


class Summary(Stage):
    name = "summary"

    def run(self, ctx: Context) -> None:
        published = [
            images.Published(
                d.target,
                d.record["digest"],
                tuple(d.record.get("platforms", ())),
                int(d.record.get("size", 0)),
                d.action,
            )
            for d in ctx.decisions
            if d.action in ("unchanged", "retag")
        ] + ctx.published
        ctx.published = published
        if published:
            table(published)
        if ctx.dry_run:
            return
        if published:
            output.step_summary(step_summary(ctx, published))
        done = time.monotonic() - ctx.started
        image_s = sum(ctx.timings.get(n, 0.0) for n in _IMAGE_STAGES)
        output.ok(
            f"done in {done:.1f}s: preflight + go build {done - image_s:.1f}s, "
            f"images (bake, push, checks, tags) {image_s:.1f}s"
        )


_IMAGE_STAGES = ("decide", "bake", "check", "sbom", "verify", "sign", "record", "tag")


def verify_result(ctx: Context, p: images.Published) -> str:
    """What the summary says about a published index's proof."""
    if p.action in ("unchanged", "retag"):
        return "verified before (unchanged)"
    if not ctx.cfg.image.verify:
        return "not verified ([image] verify is off)"
    return "verified" if p.target.service.name in ctx.memo.get("verified", set()) else "not verified"


def step_summary(ctx: Context, published: list[images.Published]) -> str:
    """The Markdown GitHub shows on the run's page: one row per service."""
    task = "manifest" if ctx.action == "merged" else "image.multiarch"
    rows = [
        [
            p.target.service.name,
            f"`{p.digest}`",
            ", ".join(p.platforms),
            ", ".join(f"`{ref}`" for ref in p.target.refs()),
            p.action,
            verify_result(ctx, p),
        ]
        for p in published
    ]
    head = f"### crossbuild {task}: {ctx.cfg.name} {ctx.cfg.version.version}\n\n"
    return head + output.markdown_table(["service", "index digest", "platforms", "tags", "action", "verify"], rows)


def table(published: list[images.Published]) -> None:
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
