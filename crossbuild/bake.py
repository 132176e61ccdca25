"""ONE `docker buildx bake` over every image of a plan.

Every service is a bake target and all of them build in a single buildx
invocation, so shared base layers are resolved once and the shared multistage
builder stage runs once per platform. The publisher decides the outputs (push
by digest, the docker daemon, an OCI tarball); the BuildKit cache of a
multistage build is exported once per cache name and imported by all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crossbuild import buildx, runner
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.plan import ImageTarget
from crossbuild.runner import Runner

# BuildKit's frontend option that makes a build of ONE platform an index of one, as a build
# of several is: users of multi-arch tags expect an index whatever the platform count
# (moby/buildkit docs, "Build arguments": BUILDKIT_MULTI_PLATFORM).
MULTI_PLATFORM_ARG = "BUILDKIT_MULTI_PLATFORM"

Outputs = Callable[[ImageTarget], list[str]]


def cache_options(cfg: Config, group: str, exports: bool) -> tuple[list[str], list[str]]:
    """(cache-from, cache-to) for one cache: [image] cache_ref's registry, else build/cache/buildkit/."""
    if cfg.image.cache_ref:
        ref = f"{cfg.image.cache_ref}:{group}"
        return [f"type=registry,ref={ref}"], [f"type=registry,ref={ref},mode=max"] if exports else []
    local = cfg.output_dir / "cache" / "buildkit" / group
    cache_from = [f"type=local,src={local}"] if (local / "index.json").is_file() else []
    return cache_from, [f"type=local,dest={local},mode=max"] if exports else []


def definition(
    cfg: Config, targets: Sequence[ImageTarget], outputs: Outputs, *, with_tags: bool, index: bool
) -> dict[str, Any]:
    """The bake JSON: one target per service, one group over all (`index`: a one-platform
    build still makes an index)."""
    body: dict[str, Any] = {"group": {"default": {"targets": [t.bake_name for t in targets]}}, "target": {}}
    exporters: dict[str, ImageTarget] = {}  # cache name -> the first target using it, the only one that exports it
    for t in targets:
        exporters.setdefault(t.cache_name, t)
    for t in targets:
        # a cache export lets a second runner start warm
        cache_from: list[str] = []
        cache_to: list[str] = []
        if t.cache_name:
            cache_from, cache_to = cache_options(cfg, t.cache_name, exports=exporters[t.cache_name] is t)
        body["target"][t.bake_name] = buildx.bake_target(
            context=str(t.context),
            dockerfile=str(t.dockerfile),
            platforms=[str(p) for p in t.platforms],
            args={**dict(t.args), **({MULTI_PLATFORM_ARG: "1"} if index else {})},
            labels=dict(t.labels),
            tags=t.refs() if with_tags else (),
            output=outputs(t),
            cache_from=cache_from,
            cache_to=cache_to,
        )
    return body


def paths(cfg: Config, name: str) -> tuple[Path, Path]:
    """(bake file, metadata file) of one bake run: build/bake/<name>.json and .metadata.json."""
    directory = cfg.output_dir / "bake"
    return directory / f"{name}.json", directory / f"{name}.metadata.json"


def command(cfg: Config, name: str, no_cache: bool = False) -> str:
    """The bake command line, as a dry run prints it."""
    file, metadata = paths(cfg, name)
    argv = buildx.bake_argv(
        file=file, builder=cfg.builder.name, metadata_file=metadata, provenance=cfg.image.provenance, no_cache=no_cache
    )
    return runner.display(argv, buildx.BAKE_ENV, cfg.root)


def bake(
    run: Runner,
    cfg: Config,
    targets: Sequence[ImageTarget],
    outputs: Outputs,
    *,
    name: str,
    with_tags: bool,
    index: bool,
    no_cache: bool = False,
) -> dict[str, dict[str, Any]]:
    """Write build/bake/<name>.json and build it; the metadata buildx reports per target."""
    file, metadata = paths(cfg, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    body = definition(cfg, targets, outputs, with_tags=with_tags, index=index)
    file.write_text(json.dumps(body, indent=2) + "\n")
    return buildx.bake(
        run,
        file=file,
        builder=cfg.builder.name,
        metadata_file=metadata,
        provenance=cfg.image.provenance,
        cwd=cfg.root,
        no_cache=no_cache,
    )


def digest_of(metadata: dict[str, dict[str, Any]], t: ImageTarget) -> str:
    entry = metadata.get(t.bake_name, {})
    digest = entry.get("containerimage.digest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise UserError(f"buildx reported no digest for {t.service.name}; see build/bake/*.metadata.json")
    return digest
