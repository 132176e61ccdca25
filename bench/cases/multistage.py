"""(b) crossbuild multistage: the Go build runs inside BuildKit from the offline Go image.

The Go builder image (`invoke go-image`: busybox plus the host GOROOT) is made
once per run before anything is timed; (c) builds on it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from bench.cases.prebuilt import ImageMultiarch
from bench.context import Context, say
from bench.regstats import image_exists
from bench.results import CaseResult
from bench.workspace import GO_IMAGE


def ensure_go_image(ctx: Context) -> None:
    """`invoke go-image` once per run (it reflects the host's Go), not again while the image is there."""
    if "go-image" in ctx.done and image_exists(GO_IMAGE):
        return
    say(f"building {GO_IMAGE} with `invoke go-image` (not timed)")
    ctx.shell.run(ctx.crossbuild("go-image"), env=ctx.env(), cwd=ctx.workspace.repo, log="setup")
    ctx.done.add("go-image")


class Multistage(ImageMultiarch):
    key = "b"
    slug = "b-multistage"
    title = "crossbuild multistage"
    settings: ClassVar[Mapping[str, str]] = {"VERIFY": "0", "MODE": "multistage", "GO_IMAGE": GO_IMAGE}

    def prepare(self, ctx: Context, res: CaseResult) -> None:
        ensure_go_image(ctx)
