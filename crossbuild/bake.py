"""ONE `docker buildx bake` over every image of a plan.

Every service is a bake target and all of them build in a single buildx
invocation, so shared base layers are resolved once and the shared multistage
builder stage runs once per platform. The publisher decides the outputs (push
by digest, the docker daemon, an OCI tarball); the BuildKit cache of a
multistage build is exported once per cache name and imported by all.

While it runs, buildx's machine-readable progress (`--progress=rawjson`) is
condensed into one row per service and platform (its build steps) and one per
service (its export and push), reported to a progress board (`Condenser`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crossbuild import builder, buildx, output, progress, runner
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
    build still makes an index, and the index carries the annotations too)."""
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
            annotations=[
                f"{level}:{key}={value}"
                for level in (("index", "manifest") if index else ("manifest",))
                for key, value in t.annotations
            ],
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
    report: progress.Reporter | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, dict[str, Any]]:
    """Write build/bake/<name>.json and build it; the metadata buildx reports per target.

    `report`: a progress board that hears, condensed, what buildx reports as it goes.
    `cancel`: once set, the bake is killed.
    """
    file, metadata_file = paths(cfg, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    body = definition(cfg, targets, outputs, with_tags=with_tags, index=index)
    file.write_text(json.dumps(body, indent=2) + "\n")
    condenser = Condenser(targets, report) if report is not None else None
    try:
        metadata = buildx.bake(
            run,
            file=file,
            builder=cfg.builder.name,
            metadata_file=metadata_file,
            provenance=cfg.image.provenance,
            cwd=cfg.root,
            no_cache=no_cache,
            on_event=condenser.event if condenser is not None else None,
            cancel=cancel,
        )
    except buildx.RegistryRefused as exc:
        raise UserError(refused_message(cfg, exc)) from exc
    if condenser is not None:
        condenser.finish(rows_of(targets), "done")
    return metadata


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


# --- progress -------------------------------------------------------------------------------------

# A vertex name as buildx prints it for bake: "[api linux/arm64 2/3] COPY ...", "[api internal] load
# build context", "[api] exporting to image"; with one target the target is left out.
_VERTEX = re.compile(r"^\[(?P<inside>[^\]]*)\]\s*(?P<rest>.*)$")
_STEP = re.compile(r"^\d+/\d+$")
_TRAILER = re.compile(r"\s+(sha256:[0-9a-f]+|for \S+|with source-date-epoch.*)$")


def rows_of(targets: Sequence[ImageTarget]) -> tuple[str, ...]:
    """The board's rows: each service (export, push), then each of its platforms (build steps)."""
    return tuple(r for t in targets for r in (t.service.name, *(f"{t.service.name} {p}" for p in t.platforms)))


class Condenser:
    """buildx's SolveStatus events -> one row per service and platform, and one per service.

    A platform row shows the build step running ("2/3 COPY ..."), and is done when none of its steps
    is; a service row says preparing (definition, context), exporting, pushing (bytes as detail),
    and is done when the bake ends (`finish`).
    """

    def __init__(self, targets: Sequence[ImageTarget], report: progress.Reporter) -> None:
        self.report = report
        self.targets = {t.bake_name: t.service.name for t in targets}
        # a target of one platform (a part, crossbuild.earlybake): buildx leaves the platform out of its steps' names
        self.pinned = {t.bake_name: str(t.platforms[0]) for t in targets if t.part and len(t.platforms) == 1}
        self.platforms = {str(p) for t in targets for p in t.platforms}
        self.only = next(iter(self.targets.values())) if len(self.targets) == 1 else None
        self.only_platform = next(iter(self.pinned.values())) if self.only and self.pinned else ""
        self.rows: dict[str, tuple[str, bool] | None] = {}  # vertex digest -> (row, is a platform row)
        self.running: dict[str, set[str]] = {}  # platform row -> its vertexes started, not completed
        self.done: set[str] = set()

    def _row(self, name: str) -> tuple[tuple[str, bool] | None, str]:
        """((row, is a platform row) or None when not shown, status) of a vertex name."""
        match = _VERTEX.match(name)
        inside, rest = (match.group("inside").split(), match.group("rest")) if match else ([], name)
        service, platform, step, other, internal = self.only, self.only_platform, "", [], False
        for word in inside:
            if word in self.targets:
                service = self.targets[word]
                platform = self.pinned.get(word, platform)
            elif word in self.platforms:
                platform = word
            elif _STEP.match(word):
                step = word
            elif word == "internal":
                internal = True
            else:
                other.append(word)  # a named stage: "builder"
        if service is None or "provenance" in rest or rest.startswith("load local bake"):
            return None, ""
        if platform and not internal:
            return (f"{service} {platform}", True), " ".join([*other, step, rest]).strip()
        return (service, False), "preparing" if internal else "exporting"

    def event(self, event: dict[str, Any]) -> None:
        for vertex in event.get("vertexes") or []:
            digest = str(vertex.get("digest", ""))
            found, status = self._row(str(vertex.get("name", "")))
            self.rows.setdefault(digest, found)
            if found is None:
                continue
            row, per_platform = found
            running = self.running.setdefault(row, set())
            if vertex.get("error"):
                self.done.add(row)
                self.report.finish(row, f"failed: {status}", failed=True)
            elif vertex.get("completed"):
                running.discard(digest)
                if per_platform and not running and row not in self.done:
                    self.done.add(row)
                    self.report.finish(row, "cached" if vertex.get("cached") else "built")
            elif vertex.get("started") and row not in self.done:
                running.add(digest)
                self.report.update(row, status + (" (cached)" if vertex.get("cached") else ""))
        for status in event.get("statuses") or []:
            found = self.rows.get(str(status.get("vertex", "")))
            if found is None or found[1] or found[0] in self.done or status.get("completed"):
                continue
            what = _TRAILER.sub("", str(status.get("id", ""))).strip().rstrip(":")
            if what.startswith("pushing"):
                what = "pushing"
            elif what.startswith(("exporting", "rewriting", "sending", "naming", "writing")):
                what = "exporting"
            else:
                what = "preparing"
            current, total = status.get("current"), status.get("total")
            detail = ""
            if isinstance(current, int) and current > 0:
                detail = output.human_size(current) + (f"/{output.human_size(total)}" if total else "")
            self.report.update(found[0], what, detail)

    def finish(self, rows: Sequence[str], status: str) -> None:
        """The bake ended well: every row not yet done is."""
        for row in rows:
            if row not in self.done:
                self.done.add(row)
                self.report.finish(row, status)
