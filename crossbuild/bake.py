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

from crossbuild import builder, buildx, runner
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.plan import ImageTarget
from crossbuild.platforms import Platform
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
    per_platform = bool(cfg.builder.nodes)
    for t in targets:
        # a cache export lets a second runner start warm
        cache_from: list[str] = []
        cache_to: list[str] = []
        if t.cache_name and per_platform:
            cache_from = [ref for p in t.platforms for ref in cache_options(cfg, _cache_tag(t, p), exports=False)[0]]
        elif t.cache_name:
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
    if per_platform:
        for t in (t for name, t in exporters.items() if name):
            _cache_targets(cfg, body, t, index)
    return body


def _cache_tag(t: ImageTarget, platform: Platform) -> str:
    return f"{t.cache_name}-{platform.slug}"


def _cache_targets(cfg: Config, body: dict[str, Any], t: ImageTarget, index: bool) -> None:
    """With several builder nodes, each node exports the cache of the platforms it builds under a
    tag of their own: one export per cache would let the nodes overwrite each other's (buildx hands
    every node the same --cache-to). So each platform gets a target that only exports cache
    (type=cacheonly): the same Dockerfile and arguments as the first image using that cache, one
    platform, which buildx sends to the node pinned for it, where BuildKit shares its steps with the
    image targets running beside it."""
    for p in t.platforms:
        cache_from, cache_to = cache_options(cfg, _cache_tag(t, p), exports=True)
        name = f"_cache-{_cache_tag(t, p)}"
        body["group"]["default"]["targets"].append(name)
        body["target"][name] = buildx.bake_target(
            context=str(t.context),
            dockerfile=str(t.dockerfile),
            platforms=[str(p)],
            args={**dict(t.args), **({MULTI_PLATFORM_ARG: "1"} if index else {})},
            labels=dict(t.labels),
            output=["type=cacheonly"],
            cache_from=cache_from,
            cache_to=cache_to,
        )


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
    try:
        return buildx.bake(
            run,
            file=file,
            builder=cfg.builder.name,
            metadata_file=metadata,
            provenance=cfg.image.provenance,
            cwd=cfg.root,
            no_cache=no_cache,
        )
    except buildx.RegistryRefused as exc:
        raise UserError(refused_message(cfg, exc)) from exc


def refused_message(cfg: Config, exc: buildx.RegistryRefused) -> str:
    """A node could not push: what it met and the buildkitd.toml stanza that fixes it (the same
    stanza `make doctor` prints after probing each node)."""
    host = exc.host or cfg.image.registry_prefix.partition("/")[0]
    met = "answers plain HTTP" if exc.plain_http else "has a certificate BuildKit does not trust"
    return (
        f"a node of builder '{cfg.builder.name}' cannot push to {host}: the registry {met}; "
        "add to that node's buildkitd.toml and restart it (`make doctor` probes each node):\n"
        + builder.registry_stanza(host, exc.plain_http)
    )


def digest_of(metadata: dict[str, dict[str, Any]], t: ImageTarget) -> str:
    entry = metadata.get(t.bake_name, {})
    digest = entry.get("containerimage.digest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise UserError(f"buildx reported no digest for {t.service.name}; see build/bake/*.metadata.json")
    return digest
