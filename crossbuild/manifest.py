"""Merge per-arch images into one index per service, then move the tags.

Two sources: the digests CI matrix legs wrote under build/digests/
(`--push-by-digest`), and the legacy per-arch repositories OpenIM's make rules
push (svc-amd64:tag, svc-arm64:tag). Every service is checked complete before
any tag moves; a missing arch is an error and nothing is tagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crossbuild import buildx, images, runner
from crossbuild.config import Config, Service
from crossbuild.errors import UserError
from crossbuild.registry import RegistryClient, parse_reference


@dataclass(frozen=True)
class MergePlan:
    target: images.ImageTarget
    sources: tuple[str, ...]


def plan_from_digests(cfg: Config, targets: Sequence[images.ImageTarget]) -> list[MergePlan]:
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
        plans.append(MergePlan(t, tuple(sources)))
    return plans


def plan_from_legacy(targets: Sequence[images.ImageTarget], client: RegistryClient) -> list[MergePlan]:
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
        plans.append(MergePlan(t, tuple(sources)))
    return plans


def merge(cfg: Config, plans: Sequence[MergePlan], client: RegistryClient) -> list[images.Published]:
    """Create each index with `buildx imagetools create`, tagged with every tag at once."""
    published = []
    for plan in plans:
        buildx.imagetools_create(builder=cfg.builder.name, tags=plan.target.refs(), sources=plan.sources)
        if runner.OPTIONS.dry_run:
            continue
        ref = parse_reference(plan.target.refs()[0])
        plats, size, _mt, _raw, digest = images.describe(client, ref)
        images.check_platforms(plan.target, plats)
        published.append(images.Published(plan.target, digest, plats, size))
    return published


def services_with_digests(cfg: Config) -> list[Service]:
    return [s for s in cfg.selected_images() if (cfg.output_dir / "digests" / s.name).is_dir()]
