"""Per-arch images and one index per service, built by ONE `buildx bake`.

Every service becomes a bake target; all of them build in a single buildx
invocation so shared base layers are resolved and pushed once. Images are
pushed by digest (no tag), checked, and only then tagged by putting the very
same index bytes under each tag, so a failed build or check never moves a tag.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossbuild import buildx, dockerfiles, gobuild, incremental, runner
from crossbuild.config import Config, Service
from crossbuild.errors import CrossbuildError, UserError
from crossbuild.oci import Client as RegistryClient
from crossbuild.oci import Reference, index_entries, is_index, parse_reference
from crossbuild.platforms import Platform


def bake_name(service: Service) -> str:
    """The service's bake target name (letters, digits, _ and -)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", service.name)


@dataclass(frozen=True)
class ImageTarget:
    service: Service
    repository: str  # registry/prefix/name, no tag
    tags: tuple[str, ...]
    platforms: tuple[Platform, ...]
    dockerfile: Path
    context: Path
    args: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    # BuildKit cache of a multistage build: "shared" for the shared builder stage, else
    # the service's own; "" = none (prebuilt images are two COPY steps, cheaper than
    # the cache round trip)
    cache_name: str = ""

    @property
    def bake_name(self) -> str:
        return bake_name(self.service)

    def refs(self) -> list[str]:
        return [f"{self.repository}:{t}" for t in self.tags]


@dataclass(frozen=True)
class Published:
    target: ImageTarget
    digest: str  # index digest
    platforms: tuple[str, ...]
    size: int  # compressed bytes of all platforms' layers and configs
    action: str = "built"  # built | unchanged | retag


def labels(cfg: Config, service: Service) -> dict[str, str]:
    """OCI annotation keys as labels (image-spec annotations.md)."""
    values = {
        "org.opencontainers.image.title": service.name,
        "org.opencontainers.image.version": cfg.version.version,
        "org.opencontainers.image.revision": cfg.version.commit,
        "org.opencontainers.image.created": cfg.version.date,
    }
    if cfg.source:
        values["org.opencontainers.image.source"] = cfg.source
    values.update(dict(cfg.image.labels))
    return values


def build_args(cfg: Config, service: Service, base_image: str | None = None) -> dict[str, str]:
    """The --build-arg values of one service's image.

    `base_image` is the runtime base the build really uses: the static base that
    base.ensure built, pinned by digest (so the digest is in the content key).
    Without it BASE_IMAGE is [image] base_image as configured, which is all that
    callers that only read repositories and tags (setup, doctor, manifest) need.
    """
    # SOURCE_DATE_EPOCH fixes the image config's timestamps (BuildKit docs, "build reproducibility");
    # with rewrite-timestamp=true on the exporter it also clamps file mtimes in the layers.
    args = {"BASE_IMAGE": base_image or cfg.image.base_image, "SOURCE_DATE_EPOCH": str(cfg.version.epoch)}
    if cfg.mode_of(service) == "multistage":
        args.update(
            GO_IMAGE=cfg.image.go_image,
            LDFLAGS=gobuild.ldflags(cfg, service),
            GO_TAGS=",".join(cfg.go.tags),
            CGO_ENABLED="1" if cfg.go.cgo else "0",
            TRIMPATH="-trimpath" if cfg.go.trimpath else "",
        )
    return args


def _prebuilt_context(cfg: Config, dockerfile: Path, own: bool) -> tuple[Path, dict[str, str]]:
    """(context, extra build args) of a prebuilt image.

    crossbuild's templates build from the binary directory itself, so nothing in the
    repository (a deny-all .dockerignore) can hide the binaries and the image does not
    depend on where output_dir is. A service's own Dockerfile, or an older template that
    copies ${BIN_DIR}/..., keeps the repository root and gets BIN_DIR.
    """
    if not own and dockerfiles.uses_bin_context(dockerfile.read_text()):
        return cfg.bin_dir, {}
    return cfg.root, {"BIN_DIR": os.path.relpath(cfg.bin_dir.resolve(), cfg.root.resolve())}


def plan(
    cfg: Config, platforms: Sequence[Platform], services: Sequence[Service], base_image: str | None = None
) -> list[ImageTarget]:
    """One target per service; `base_image` as in build_args (required to build with the static base)."""
    targets = []
    shared = dockerfiles.shared_builder(cfg, services)
    for s in services:
        mode = cfg.mode_of(s)
        dockerfile = dockerfiles.dockerfile_for(cfg, s, shared)
        args = build_args(cfg, s, base_image)
        if mode == "multistage":
            context = cfg.module_dir
        else:
            context, extra = _prebuilt_context(cfg, dockerfile, bool(s.dockerfile or cfg.image.dockerfile))
            args.update(extra)
        targets.append(
            ImageTarget(
                service=s,
                repository=cfg.image_ref(s),
                tags=cfg.image_tags(s),
                platforms=tuple(platforms),
                dockerfile=dockerfile,
                context=context,
                args=tuple(args.items()),
                labels=tuple(labels(cfg, s).items()),
                cache_name=("shared" if s in shared else bake_name(s)) if mode == "multistage" else "",
            )
        )
    return targets


def prebuilt_services(cfg: Config, targets: Sequence[ImageTarget]) -> list[Service]:
    return [t.service for t in targets if cfg.mode_of(t.service) == "prebuilt" and not t.service.dockerfile]


def cache_options(cfg: Config, group: str, exports: bool) -> tuple[list[str], list[str]]:
    """(cache-from, cache-to) for one cache: [image] cache_ref's registry, else build/cache/buildkit/."""
    if cfg.image.cache_ref:
        ref = f"{cfg.image.cache_ref}:{group}"
        return [f"type=registry,ref={ref}"], [f"type=registry,ref={ref},mode=max"] if exports else []
    local = cfg.output_dir / "cache" / "buildkit" / group
    cache_from = [f"type=local,src={local}"] if (local / "index.json").is_file() else []
    return cache_from, [f"type=local,dest={local},mode=max"] if exports else []


# BuildKit's frontend option that makes a build of ONE platform an index of one, as a build
# of several is: users of multi-arch tags expect an index whatever the platform count
# (moby/buildkit docs, "Build arguments": BUILDKIT_MULTI_PLATFORM).
MULTI_PLATFORM_ARG = "BUILDKIT_MULTI_PLATFORM"
# The bakes whose result is published as an index; a CI leg's by-digest push and a
# docker load stay single images.
INDEX_BAKES = ("multiarch", "oci", "repro-1", "repro-2")


def write_bake(
    cfg: Config, targets: Sequence[ImageTarget], outputs: Callable[[ImageTarget], list[str]], with_tags: bool, name: str
) -> Path:
    """Write build/bake/<name>.json: one target per service, one group over all."""
    definition: dict[str, Any] = {"group": {"default": {"targets": [t.bake_name for t in targets]}}, "target": {}}
    exporters: dict[str, ImageTarget] = {}  # cache name -> the first target using it, the only one that exports it
    for t in targets:
        exporters.setdefault(t.cache_name, t)
    for t in targets:
        # a cache export lets a second runner start warm
        cache_from: list[str] = []
        cache_to: list[str] = []
        if t.cache_name:
            cache_from, cache_to = cache_options(cfg, t.cache_name, exports=exporters[t.cache_name] is t)
        definition["target"][t.bake_name] = buildx.bake_target(
            context=str(t.context),
            dockerfile=str(t.dockerfile),
            platforms=[str(p) for p in t.platforms],
            args={**dict(t.args), **({MULTI_PLATFORM_ARG: "1"} if name in INDEX_BAKES else {})},
            labels=dict(t.labels),
            tags=t.refs() if with_tags else (),
            output=outputs(t),
            cache_from=cache_from,
            cache_to=cache_to,
        )
    path = cfg.output_dir / "bake" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(definition, indent=2) + "\n")
    return path


def bake(
    cfg: Config,
    targets: Sequence[ImageTarget],
    outputs: Callable[[ImageTarget], list[str]],
    with_tags: bool,
    name: str,
    no_cache: bool = False,
) -> dict[str, dict[str, Any]]:
    file = write_bake(cfg, targets, outputs, with_tags, name)
    metadata_file = cfg.output_dir / "bake" / f"{name}.metadata.json"
    return buildx.bake(
        file=file,
        builder=cfg.builder.name,
        metadata_file=metadata_file,
        provenance=cfg.image.provenance,
        cwd=cfg.root,
        no_cache=no_cache,
    )


def push_by_digest_output(cfg: Config) -> Callable[[ImageTarget], list[str]]:
    """Outputs that push each image by digest only; layers gzip'd at [image] compression_level."""

    def outputs(t: ImageTarget) -> list[str]:
        return [
            f"type=image,name={t.repository},push-by-digest=true,name-canonical=true,push=true,"
            f"rewrite-timestamp=true,compression=gzip,compression-level={cfg.image.compression_level}"
        ]

    return outputs


def digest_of(metadata: dict[str, dict[str, Any]], t: ImageTarget) -> str:
    entry = metadata.get(t.bake_name, {})
    digest = entry.get("containerimage.digest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise UserError(f"buildx reported no digest for {t.service.name}; see build/bake/*.metadata.json")
    return digest


def describe(client: RegistryClient, ref: Reference) -> tuple[tuple[str, ...], int, str, bytes, str]:
    """(platforms, total size, media type, raw bytes, digest) of a pushed image."""
    manifest = client.get_manifest(ref)
    if not is_index(manifest.media_type):
        size = sum(int(layer.get("size", 0)) for layer in manifest.data.get("layers", []))
        return (), size, manifest.media_type, manifest.raw, manifest.digest
    plats = []
    size = 0
    for entry in index_entries(manifest.data):
        if entry.is_attestation or entry.platform is None:
            continue
        plats.append(str(entry.platform))
        child = client.get_manifest(Reference(ref.registry, ref.repository, None, entry.digest))
        size += int(child.data.get("config", {}).get("size", 0))
        size += sum(int(layer.get("size", 0)) for layer in child.data.get("layers", []))
    return tuple(plats), size, manifest.media_type, manifest.raw, manifest.digest


def check_platforms(target: ImageTarget, found: Sequence[str]) -> None:
    expected = {str(p) for p in target.platforms}
    missing = sorted(expected - set(found))
    extra = sorted(set(found) - expected)
    if missing or extra:
        raise UserError(
            f"{target.service.name}: pushed index has platforms {', '.join(found) or 'none'}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
            + "; no tag was moved"
        )


def move_tags(client: RegistryClient, target: ImageTarget, raw: bytes, media_type: str) -> None:
    ref = parse_reference(target.repository)
    for tag in target.tags:
        client.put_manifest(ref.registry, ref.repository, tag, raw, media_type)


def move_all_tags(client: RegistryClient, moves: Sequence[tuple[ImageTarget, bytes, str]]) -> None:
    """Move every tag of every target, service by service, after everything was verified.

    When a PUT fails part way, the error says exactly which tags moved and which did
    not, and that a rerun finishes the job: every index is pushed, verified and
    recorded, so the rerun only puts the remaining tags back (nothing is rebuilt).
    """
    moved: list[str] = []
    for n, (target, raw, media_type) in enumerate(moves):
        ref = parse_reference(target.repository)
        for tag in target.tags:
            try:
                client.put_manifest(ref.registry, ref.repository, tag, raw, media_type)
            except CrossbuildError as exc:
                pending = [f"{target.repository}:{t}" for t in target.tags[target.tags.index(tag) :]]
                pending += [r for later, _raw, _mt in moves[n + 1 :] for r in later.refs()]
                raise UserError(
                    f"moving tags stopped at {target.repository}:{tag} ({exc}); "
                    f"moved: {', '.join(moved) or 'none'}; not moved: {', '.join(pending)}. Every index is "
                    "pushed and verified: rerun the same command to move the rest (nothing is rebuilt)"
                ) from exc
            moved.append(f"{target.repository}:{tag}")


def sha256_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def leg_config(cfg: Config, service: Service) -> str:
    """A digest of everything but the platform and the version that decides a service's image.

    CI matrix legs record it with their digest; `manifest` merges only legs that agree.
    The static base is compared as configured, not as resolved: native runners build
    it from their own host packages.
    """
    go = cfg.go_for(service)
    return incremental.key_of(
        {
            "repository": cfg.image_ref(service),
            "package": service.package,
            "cmd": list(service.cmd),
            "dockerfile": service.dockerfile or cfg.image.dockerfile,
            "mode": cfg.mode_of(service),
            "image": [cfg.image.base_image, cfg.image.user, list(cfg.image.labels), list(cfg.image.expose)],
            "compression": cfg.image.compression_level,
            "provenance": cfg.image.provenance,
            "go": [list(go.ldflags), list(go.x), list(go.tags), go.cgo, go.trimpath, list(go.env)],
        }
    )[:16]


def content_key(cfg: Config, t: ImageTarget) -> str:
    """Everything that decides the pushed index's content, hashed."""
    if cfg.mode_of(t.service) == "multistage":
        inputs = {"tree": incremental.tree_hash(cfg.module_dir, exclude=[cfg.output_dir])}
    else:
        inputs = {}
        for p in t.platforms:
            path = gobuild.binary_path(cfg.bin_dir, p, t.service)
            inputs[str(p)] = incremental.file_digest(path) if path.is_file() else "missing"
    return incremental.key_of(
        {
            "repository": t.repository,
            "platforms": [str(p) for p in t.platforms],
            "dockerfile": t.dockerfile.read_text(),
            "args": dict(t.args),
            "labels": dict(t.labels),
            "provenance": cfg.image.provenance,
            "output": push_by_digest_output(cfg)(t),  # compression level
            "inputs": inputs,
        }
    )


@dataclass(frozen=True)
class Decision:
    target: ImageTarget
    action: str  # build | unchanged | retag
    reason: str
    record: dict[str, Any]


def decide(
    cfg: Config, targets: Sequence[ImageTarget], client: RegistryClient, state: incremental.State
) -> list[Decision]:
    """Which targets need a build, which only need their tags put back, which nothing."""
    decisions = []
    for t in targets:
        key = content_key(cfg, t)
        record = (
            {**state.get(t.service.name), "key": key} if state.get(t.service.name).get("key") == key else {"key": key}
        )
        digest = record.get("digest")
        if not isinstance(digest, str):
            why = "first build" if not state.get(t.service.name) else "inputs changed"
            decisions.append(Decision(t, "build", why, record))
            continue
        ref = parse_reference(t.repository)
        if client.manifest_exists(Reference(ref.registry, ref.repository, None, digest)) is None:
            decisions.append(Decision(t, "build", "recorded index is gone from the registry", record))
            continue
        drifted = [
            tag
            for tag in t.tags
            if client.manifest_exists(Reference(ref.registry, ref.repository, tag, None)) != digest
        ]
        if drifted:
            decisions.append(Decision(t, "retag", f"inputs unchanged; tag(s) {', '.join(drifted)} moved back", record))
        else:
            decisions.append(Decision(t, "unchanged", "inputs unchanged and every tag points at the index", record))
    return decisions


def publish(
    cfg: Config,
    targets: Sequence[ImageTarget],
    client: RegistryClient,
    check: Callable[[Sequence[tuple[ImageTarget, str]]], None] | None = None,
    decisions: Sequence[Decision] = (),
) -> list[Published]:
    """Build and push every target by digest, check each, then move the tags.

    Targets decided "unchanged" are left alone, "retag" ones only get their
    tags put back on the recorded index.
    """
    by_service = {d.target.service.name: d for d in decisions}
    state = incremental.State(cfg.output_dir / "state" / "images.json")
    done: list[Published] = []
    retags: list[tuple[ImageTarget, bytes, str]] = []
    for d in decisions:
        if d.action == "build":
            continue
        if d.action == "retag" and not runner.OPTIONS.dry_run:
            ref = parse_reference(d.target.repository)
            manifest = client.get_manifest(Reference(ref.registry, ref.repository, None, d.record["digest"]))
            retags.append((d.target, manifest.raw, manifest.media_type))
        done.append(
            Published(
                d.target,
                d.record["digest"],
                tuple(d.record.get("platforms", ())),
                int(d.record.get("size", 0)),
                d.action,
            )
        )
    targets = [t for t in targets if by_service.get(t.service.name, Decision(t, "build", "", {})).action == "build"]
    if not targets:
        move_all_tags(client, retags)
        return done
    metadata = bake(cfg, targets, push_by_digest_output(cfg), with_tags=False, name="multiarch")
    if runner.OPTIONS.dry_run:
        return done
    staged = []
    for t in targets:
        digest = digest_of(metadata, t)
        ref = parse_reference(f"{t.repository}@{digest}")
        plats, size, media_type, raw, _ = describe(client, ref)
        check_platforms(t, plats)
        staged.append((t, digest, plats, size, media_type, raw))
    if check is not None:
        check([(t, digest) for t, digest, *_ in staged])
    published = []
    for t, digest, plats, size, _media_type, _raw in staged:
        published.append(Published(t, digest, plats, size))
        key = by_service[t.service.name].record["key"] if t.service.name in by_service else content_key(cfg, t)
        state.put(t.service.name, {"key": key, "digest": digest, "platforms": list(plats), "size": size})
    # recorded before any tag moves: should a tag PUT fail, the rerun finds the verified
    # index and only puts the missing tags back
    state.save()
    move_all_tags(client, [*retags, *((t, raw, media_type) for t, _d, _p, _s, media_type, raw in staged)])
    return done + published


def require_one_platform(platforms: Sequence[Platform]) -> None:
    if len(platforms) != 1:
        raise UserError(
            f"--load takes exactly one platform, got {len(platforms)}: the docker daemon's "
            "classic image store holds one platform per tag. Use `make image.multiarch` to push "
            "all platforms to a registry, `--output oci` for an OCI layout tarball, or "
            "`--platform linux/arm64 --load` for one of them"
        )


def load(cfg: Config, targets: Sequence[ImageTarget]) -> None:
    """Build one platform and load it into the local docker daemon."""
    for t in targets:
        require_one_platform(t.platforms)
    bake(cfg, targets, lambda t: ["type=docker"], with_tags=True, name="load")


def export_oci(cfg: Config, targets: Sequence[ImageTarget]) -> list[Path]:
    """Write each service's multi-arch image as an OCI layout tarball under build/oci/."""
    oci_dir = cfg.output_dir / "oci"
    oci_dir.mkdir(parents=True, exist_ok=True)
    paths = {t.bake_name: oci_dir / f"{t.service.name}.tar" for t in targets}
    bake(
        cfg,
        targets,
        lambda t: [f"type=oci,dest={paths[t.bake_name]},rewrite-timestamp=true"],
        with_tags=True,
        name="oci",
    )
    return list(paths.values())


def push_by_digest(cfg: Config, targets: Sequence[ImageTarget]) -> list[Path]:
    """One platform per run (a CI matrix leg); record each digest under build/digests/."""
    metadata = bake(cfg, targets, push_by_digest_output(cfg), with_tags=False, name="by-digest")
    written = []
    for t in targets:
        if runner.OPTIONS.dry_run:
            continue
        digest = digest_of(metadata, t)
        for p in t.platforms:
            path = cfg.output_dir / "digests" / t.service.name / f"{p.slug}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "service": t.service.name,
                "repository": t.repository,
                "platform": str(p),
                "digest": digest,
                # what `manifest` compares before merging legs (and with its own run)
                "version": cfg.version.version,
                "commit": cfg.version.commit,
                "tree_state": cfg.version.tree_state,
                "config": leg_config(cfg, t.service),
            }
            path.write_text(json.dumps(record, indent=2) + "\n")
            written.append(path)
    return written


def read_digests(cfg: Config, service: Service) -> dict[str, dict[str, str]]:
    """platform -> record, from build/digests/<service>/*.json."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted((cfg.output_dir / "digests" / service.name).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not a digest record ({exc}); delete it and rebuild that platform") from exc
        found[record["platform"]] = record
    return found


def legacy_repository(repository: str, platform: Platform) -> str:
    """OpenIM's per-arch repositories: svc-amd64, svc-arm64, svc-armv7."""
    return f"{repository}-{platform.arch}{platform.variant}"
