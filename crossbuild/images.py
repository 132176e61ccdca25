"""The pushed indexes: what is unchanged, what a pushed index holds, and moving tags.

Images are pushed by digest (no tag), checked, and only then tagged by putting the
very same index bytes under each tag, so a failed build or check never moves a tag.
The decide step compares each target's content key with the record of the last
publish, so an unchanged service is neither built nor pushed again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossbuild import incremental
from crossbuild.config import Config, Service
from crossbuild.errors import CrossbuildError, UserError
from crossbuild.oci import Client as RegistryClient
from crossbuild.oci import Reference, index_entries, is_index, parse_reference
from crossbuild.plan import ImageTarget, content_key, leg_config
from crossbuild.platforms import Platform


@dataclass(frozen=True)
class Published:
    target: ImageTarget
    digest: str  # index digest
    platforms: tuple[str, ...]
    size: int  # compressed bytes of all platforms' layers and configs
    action: str = "built"  # built | unchanged | retag


@dataclass(frozen=True)
class Staged:
    """An index pushed by digest and checked, not yet tagged."""

    target: ImageTarget
    digest: str
    platforms: tuple[str, ...]
    size: int
    media_type: str
    raw: bytes


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


def platform_tag(tag: str, platform: Platform | str) -> str:
    """A snapshot's per-arch tag: v1.2-dirty + linux/arm/v7 -> v1.2-dirty-linux-arm-v7."""
    return f"{tag}-{str(platform).replace('/', '-')}"


def tag_platforms(client: RegistryClient, target: ImageTarget, raw: bytes) -> list[str]:
    """Snapshot mode: each platform's image of an index also tagged <first tag>-<platform>, so one arch
    can be pulled (`docker run` of an exact arch) without --platform."""
    ref = parse_reference(target.repository)
    done = []
    for entry in index_entries(json.loads(raw)):
        if entry.is_attestation or entry.platform is None:
            continue
        child = client.get_manifest(Reference(ref.registry, ref.repository, None, entry.digest))
        tag = platform_tag(target.tags[0], entry.platform)
        client.put_manifest(ref.registry, ref.repository, tag, child.raw, child.media_type)
        done.append(f"{target.repository}:{tag}")
    return done


def sha256_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Decision:
    target: ImageTarget
    action: str  # build | unchanged | retag
    reason: str
    record: dict[str, Any]


def decide(
    cfg: Config,
    targets: Sequence[ImageTarget],
    client: RegistryClient,
    state: incremental.State,
    tree: str = "",
) -> list[Decision]:
    """Which targets need a build, which only need their tags put back, which nothing.

    A target the state has never recorded is a first build; one recorded under another
    repository (a new REGISTRY_PREFIX) is a first push there, not a change of inputs.
    """
    decisions = []
    for t in targets:
        key = content_key(cfg, t, tree)
        record = (
            {**state.get(t.service.name), "key": key} if state.get(t.service.name).get("key") == key else {"key": key}
        )
        digest = record.get("digest")
        if not isinstance(digest, str):
            previous = state.get(t.service.name)
            if not previous:
                why = "first build"
            elif previous.get("repository", t.repository) != t.repository:
                why = f"first push to {t.repository}"
            else:
                why = "inputs changed"
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


def require_one_platform(platforms: Sequence[Platform]) -> None:
    if len(platforms) != 1:
        raise UserError(
            f"--load takes exactly one platform, got {len(platforms)}: the docker daemon's "
            "classic image store holds one platform per tag. Use `make image.multiarch` to push "
            "all platforms to a registry, `--output oci` for an OCI layout tarball, or "
            "`--platform linux/arm64 --load` for one of them"
        )


def digest_record(cfg: Config, t: ImageTarget, platform: Platform, digest: str) -> dict[str, str]:
    """What a CI matrix leg records with its digest; `manifest` compares it before merging."""
    return {
        "service": t.service.name,
        "repository": t.repository,
        "platform": str(platform),
        "digest": digest,
        "version": cfg.version.version,
        "commit": cfg.version.commit,
        "tree_state": cfg.version.tree_state,
        "config": leg_config(cfg, t.service),
    }


def write_digest_record(cfg: Config, record: dict[str, str]) -> Path:
    path = cfg.output_dir / "digests" / record["service"] / f"{record['platform'].replace('/', '-')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


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
