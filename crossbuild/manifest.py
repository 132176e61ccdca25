"""Merge per-arch images into one index per service, verify it, then move the tags.

Two sources: the digests CI matrix legs wrote under build/digests/
(`--push-by-digest`), and the legacy per-arch repositories OpenIM's make rules
push (svc-amd64:tag, svc-arm64:tag). Every service is checked complete before
anything is pushed, and every merged index is verified exactly as
`image.multiarch` verifies its own before any tag moves; a missing arch or a
failed check moves no tag.

Digest legs must agree: each record carries the version, commit, tree state
and a digest of the effective config it was built with, and legs that differ
from each other, or from this merge's own version, are refused by name, so a
merge can never tag images of another commit with this version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from crossbuild import buildx, images, runner
from crossbuild.config import Config, Service
from crossbuild.errors import UserError
from crossbuild.oci import OCI_INDEX, parse_reference
from crossbuild.oci import Client as RegistryClient
from crossbuild.plan import ImageTarget, bake_name, leg_config, oci_annotations
from crossbuild.runner import Runner

# The tag a legacy merge stages its index under (buildx copies the per-arch images across
# repositories only while pushing to a tag); the real tags move after verification.
STAGING_TAG = "crossbuild-merge"
_AGREE = ("version", "commit", "tree_state", "config")


@dataclass(frozen=True)
class MergePlan:
    target: ImageTarget
    sources: tuple[str, ...]
    legacy: bool = False


def _leg(record: Mapping[str, str]) -> str:
    return f"{record.get('version', '?')} ({str(record.get('commit', '?'))[:7]}, {record.get('tree_state', '?')})"


def check_legs(cfg: Config, t: ImageTarget, records: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse legs that disagree with each other or with this run: name them, move no tag."""
    platforms = [str(p) for p in t.platforms]
    old = [p for p in platforms if any(k not in records[p] for k in _AGREE)]
    if old:
        raise UserError(
            f"{t.service.name}: the digest record of {', '.join(old)} does not say which version and config it "
            "was built with (an older crossbuild made it); rebuild that leg. No tag was moved"
        )
    for key in _AGREE:
        values = {p: str(records[p][key]) for p in platforms}
        if len(set(values.values())) > 1:
            legs = "; ".join(f"{p}: {_leg(records[p])}" for p in platforms)
            what = "config" if key == "config" else "version"
            raise UserError(
                f"{t.service.name}: the legs were built with different {what}s ({legs}"
                + ("; config " + ", ".join(f"{p}={v}" for p, v in values.items()) if key == "config" else "")
                + "); rebuild them from one commit and config. No tag was moved"
            )
    first = records[platforms[0]]
    mine = {
        "version": cfg.version.version,
        "commit": cfg.version.commit,
        "tree_state": cfg.version.tree_state,
        "config": leg_config(cfg, t.service),
    }
    for key in _AGREE:
        if str(first[key]) != mine[key]:
            if key == "config":
                raise UserError(
                    f"{t.service.name}: the legs were built with another config ({first[key]}) than this merge "
                    f"reads ({mine[key]}); merge with the legs' config.toml and variables. No tag was moved"
                )
            raise UserError(
                f"{t.service.name}: the legs were built at {_leg(first)}, this merge runs at "
                f"{mine['version']} ({mine['commit'][:7]}, {mine['tree_state']}); run `make manifest` at the legs' "
                "commit and VERSION, or rebuild the legs. No tag was moved"
            )


def plan_from_digests(cfg: Config, targets: Sequence[ImageTarget]) -> list[MergePlan]:
    plans = []
    for t in targets:
        records = images.read_digests(cfg, t.service)
        missing = [str(p) for p in t.platforms if str(p) not in records]
        if missing:
            have = ", ".join(sorted(records)) or "none"
            raise UserError(
                f"{t.service.name}: no digest for {', '.join(missing)} in "
                f"{cfg.output_dir / 'digests' / t.service.name} (have: {have}); run "
                f"`invoke image --platform {missing[0]} --push-by-digest` for it. No tag was moved"
            )
        sources = []
        for p in t.platforms:
            record = records[str(p)]
            if record.get("repository") != t.repository:
                raise UserError(
                    f"{t.service.name} {p}: digest was pushed to {record.get('repository')}, "
                    f"not {t.repository}; rebuild it with the same REGISTRY_PREFIX. No tag was moved"
                )
            sources.append(f"{t.repository}@{record['digest']}")
        check_legs(cfg, t, records)
        plans.append(MergePlan(t, tuple(sources)))
    return plans


def plan_from_legacy(targets: Sequence[ImageTarget], client: RegistryClient) -> list[MergePlan]:
    plans = []
    for t in targets:
        sources = []
        missing = []
        for p in t.platforms:
            ref_text = f"{images.legacy_repository(t.repository, p)}:{t.tags[0]}"
            if client.manifest_exists(parse_reference(ref_text)) is None:
                missing.append(ref_text)
            sources.append(ref_text)
        if missing:
            raise UserError(f"{t.service.name}: missing per-arch image(s) {', '.join(missing)}. No tag was moved")
        plans.append(MergePlan(t, tuple(sources), legacy=True))
    return plans


def describe_stage(cfg: Config, plan: MergePlan) -> str:
    """The command a dry run prints for one merge."""
    t = plan.target
    tags = [f"{t.repository}:{STAGING_TAG}"] if plan.legacy else t.refs()[:1]
    argv = ["docker", "buildx", "imagetools", "create", "--builder", cfg.builder.name]
    for tag in tags:
        argv += ["--tag", tag]
    for key, value in sorted(oci_annotations(cfg, t.service).items()):
        argv += ["--annotation", f"index:{key}={value}"]
    if not plan.legacy:
        argv.append("--dry-run")
    return runner.display([*argv, *plan.sources])


def stage_index(run: Runner, cfg: Config, plan: MergePlan, client: RegistryClient) -> str:
    """Push the merged index without moving a real tag; return its digest."""
    t = plan.target
    ref = parse_reference(t.repository)
    if plan.legacy:
        meta = cfg.output_dir / "bake" / f"merge-{bake_name(t.service)}.json"
        meta.parent.mkdir(parents=True, exist_ok=True)
        buildx.imagetools_create(
            run,
            builder=cfg.builder.name,
            tags=[f"{t.repository}:{STAGING_TAG}"],
            sources=plan.sources,
            metadata_file=meta,
            annotations=oci_annotations(cfg, t.service),
        )
        data = json.loads(meta.read_text())
        # imagetools create writes the pushed descriptor; a build writes containerimage.digest
        digest = (data.get("containerimage.descriptor") or {}).get("digest") or data.get("containerimage.digest", "")
        if not str(digest).startswith("sha256:"):
            raise UserError(f"buildx reported no digest for the merged {t.service.name}; see {meta}")
        return str(digest)
    # The legs are in this repository already: compute the index, then PUT it by digest.
    text = buildx.imagetools_create(
        run,
        builder=cfg.builder.name,
        tags=t.refs()[:1],
        sources=plan.sources,
        dry_run=True,
        annotations=oci_annotations(cfg, t.service),
    )
    raw = text.strip().encode()
    try:
        media_type = json.loads(raw).get("mediaType") or OCI_INDEX
    except json.JSONDecodeError as exc:
        raise UserError(f"buildx imagetools create --dry-run printed no index for {t.service.name}: {exc}") from exc
    return client.put_manifest(ref.registry, ref.repository, images.sha256_of(raw), raw, str(media_type))


def services_with_digests(cfg: Config) -> list[Service]:
    return [s for s in cfg.selected_images() if (cfg.output_dir / "digests" / s.name).is_dir()]
