"""Where a bake's images go: one object per kind of output (ko's publish.Interface).

* Registry: every image pushed by digest, no tag; the stages after it check,
  verify and tag the indexes.
* DigestLegs: a CI matrix leg: pushed by digest, each digest recorded under
  build/digests/ with what `manifest` needs to merge the legs safely.
* Daemon: one platform loaded into the local docker daemon, tagged.
* Tarball: an OCI layout tarball per service under build/oci/.

All push or write the same layers (plan.layer_options: gzip at [image]
compression_level, file times at SOURCE_DATE_EPOCH), so one build gives one set of
digests whatever the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from crossbuild import images, output
from crossbuild.bake import digest_of
from crossbuild.config import Config
from crossbuild.plan import ImageTarget, layer_options, push_output

if TYPE_CHECKING:
    from typing import Any

    from crossbuild.pipeline import Context


class Publisher:
    """What the bake stage builds into; `after` takes the bake's metadata."""

    name: ClassVar[str] = "publisher"
    bake_name: ClassVar[str] = "images"
    with_tags: ClassVar[bool] = False
    index: ClassVar[bool] = True  # one platform still makes an index
    # why a build split across builder nodes cannot go to this output ("": it can); the route stage refuses it
    single_node: ClassVar[str] = ""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def outputs(self, target: ImageTarget) -> list[str]:
        raise NotImplementedError

    def after(self, ctx: Context, metadata: dict[str, dict[str, Any]]) -> None:
        """What to do with the bake's result (record digests, report files...)."""


class Registry(Publisher):
    name = "registry"
    bake_name = "multiarch"

    def outputs(self, target: ImageTarget) -> list[str]:
        return [push_output(self.cfg, target)]

    def after(self, ctx: Context, metadata: dict[str, dict[str, Any]]) -> None:
        # the indexes composed from early bakes are in already (crossbuild.earlybake)
        ctx.pushed.update(
            {t.service.name: digest_of(metadata, t) for t in ctx.to_build() if t.service.name not in ctx.pushed}
        )


class DigestLegs(Registry):
    """One platform per run; each digest recorded under build/digests/<service>/<platform>.json."""

    name = "registry by digest"
    bake_name = "by-digest"
    index = False  # the legs are single images; `manifest` makes the index

    def after(self, ctx: Context, metadata: dict[str, dict[str, Any]]) -> None:
        assert ctx.plan is not None
        for t in ctx.plan.targets:
            digest = digest_of(metadata, t)
            for p in t.platforms:
                path = images.write_digest_record(self.cfg, images.digest_record(self.cfg, t, p, digest))
                output.ok(f"wrote {path}")


class Daemon(Publisher):
    name = "docker daemon"
    bake_name = "load"
    with_tags = True
    index = False

    def outputs(self, target: ImageTarget) -> list[str]:
        return ["type=docker"]

    def after(self, ctx: Context, metadata: dict[str, dict[str, Any]]) -> None:
        assert ctx.plan is not None
        for t in ctx.plan.targets:
            output.ok(f"loaded {', '.join(t.refs())}")


class Tarball(Publisher):
    name = "OCI tarball"
    bake_name = "oci"
    with_tags = True
    # buildx exports an OCI layout from one node only (build/build.go: "oci for multi-node builds
    # currently not supported"); each node holds only its own platforms' layers
    single_node = "buildx writes an OCI layout from one node only"

    def path(self, target: ImageTarget) -> Path:
        return self.cfg.output_dir / "oci" / f"{target.service.name}.tar"

    def outputs(self, target: ImageTarget) -> list[str]:
        self.path(target).parent.mkdir(parents=True, exist_ok=True)
        return [f"type=oci,dest={self.path(target)},{layer_options(self.cfg, target)}"]

    def after(self, ctx: Context, metadata: dict[str, dict[str, Any]]) -> None:
        assert ctx.plan is not None
        for t in ctx.plan.targets:
            output.ok(f"wrote {self.path(t)}")
