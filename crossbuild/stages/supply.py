"""The supply-chain stages: an SBOM per image, then a signature per index and image.

sbom   after check: per staged index and platform, the service binary is read out of the image
       (through the registry), its Go build info becomes an SPDX 2.3 (or CycloneDX 1.5) document,
       and that document is attached as a BuildKit-style attestation manifest, merged with the
       provenance BuildKit attached for the same platform; the rewritten index is pushed by
       digest and replaces the staged one, so verify, record and tag all see the final index
       (crossbuild.sbom, crossbuild.attestations)
sign   after verify, before record and tag: one `cosign sign` for every index digest and every
       platform image digest, then each signature checked against the public key; any failure
       raises before a tag moves (crossbuild.cosign, crossbuild.signatures)
"""

from __future__ import annotations

import json
import tempfile
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crossbuild import __version__, attestations, binaries, cosign, output, sbom, signatures
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.images import Staged
from crossbuild.oci import OCI_MANIFEST, BlobUploader, Client, Reference, image_entries, parse_reference, push_all
from crossbuild.oci.index import config_digest
from crossbuild.pipeline import Context, Stage
from crossbuild.verify import binary_path

REGISTRY_PARALLEL = 8
TOOL = f"crossbuild-{__version__}"


@dataclass(frozen=True)
class _Job:
    """One platform image of one staged index."""

    staged: Staged
    entry: dict[str, Any]  # its index descriptor (mediaType, digest, size, platform)
    platform: str


def _jobs(staged: Sequence[Staged]) -> list[_Job]:
    jobs = []
    for s in staged:
        index = json.loads(s.raw)
        raw_entries = {e["digest"]: e for e in index.get("manifests", []) if isinstance(e, dict)}
        for e in image_entries(index):
            jobs.append(_Job(s, raw_entries[e.digest], str(e.platform)))
    return jobs


def _statement(cfg: Config, client: Client, job: _Job) -> attestations.Blob:
    """The SBOM statement of one platform image, from the binary inside it."""
    repo = parse_reference(job.staged.target.repository)
    ref = Reference(repo.registry, repo.repository, None, job.entry["digest"])
    image = client.get_manifest(ref)
    config = client.get_json_blob(ref.registry, ref.repository, config_digest(image, ref))
    service = job.staged.target.service
    path = binary_path(config, f"/usr/local/bin/{service.binary_name}")
    data = client.extract_file(ref.registry, ref.repository, image.data, path)
    where = f"{service.name} {job.platform}"
    if data is None:
        raise UserError(f"{where}: {path} is not in the image, so it has no SBOM; no tag was moved")
    info = binaries.read_build_info(data)
    if info is None:
        raise UserError(
            f"{where}: {path} carries no Go build info (not Go, or Go older than 1.18), so crossbuild cannot write "
            "its SBOM; set [image] sbom = false for it. No tag was moved"
        )
    fmt = cfg.image.sbom_format
    document = sbom.document(fmt, info, sbom.subject_of(service.name, job.platform, path, data), cfg.version.date, TOOL)
    name = f"pkg:docker/{service.name}?platform={urllib.parse.quote(job.platform, safe='')}"
    return attestations.statement(sbom.PREDICATE_TYPES[fmt], document, name, job.entry["digest"])


def _carried(client: Client, staged: Staged, index: dict[str, Any], image_digest: str) -> list[dict[str, Any]]:
    """The layers of the attestation manifest BuildKit attached for this image (its provenance), less any
    SBOM: the new SBOM replaces it."""
    existing = attestations.by_subject(index).get(image_digest)
    if existing is None:
        return []
    repo = parse_reference(staged.target.repository)
    manifest = client.get_manifest(Reference(repo.registry, repo.repository, None, existing.digest))
    sbom_types = set(sbom.PREDICATE_TYPES.values())
    return [
        layer
        for layer in manifest.data.get("layers") or []
        if isinstance(layer, dict)
        and (layer.get("annotations") or {}).get(attestations.PREDICATE_ANNOTATION) not in sbom_types
    ]


def _push(client: Client, staged: Staged, manifests: Sequence[attestations.AttestationManifest]) -> Staged:
    """Push the attestation manifests (blobs first) and the rewritten index, by digest; the new Staged."""
    repo = parse_reference(staged.target.repository)
    with tempfile.TemporaryDirectory(prefix="crossbuild-sbom-") as scratch:
        blobs = []
        for att in manifests:
            for blob in (att.config, *att.layers):
                path = Path(scratch) / blob.digest.replace(":", "-")
                path.write_bytes(blob.data)
                blobs.append((repo.repository, blob.digest, path))
        push_all(BlobUploader(client, repo.registry), blobs)
    for att in manifests:
        client.put_manifest(repo.registry, repo.repository, att.digest, att.raw, OCI_MANIFEST)
    raw = attestations.rewrite_index(json.loads(staged.raw), manifests)
    digest = client.put_manifest(repo.registry, repo.repository, attestations.sha256(raw), raw, staged.media_type)
    return replace(staged, digest=digest, raw=raw)


def attach_sboms(cfg: Config, client: Client, staged: Sequence[Staged]) -> list[Staged]:
    """Every staged index with an SBOM attestation per platform: the new indexes, pushed by digest."""
    jobs = _jobs(staged)
    with ThreadPoolExecutor(REGISTRY_PARALLEL, thread_name_prefix="sbom") as pool:
        statements = list(pool.map(lambda job: _statement(cfg, client, job), jobs))

        def attach(s: Staged) -> Staged:
            index = json.loads(s.raw)
            manifests = [
                attestations.attestation_manifest(job.entry, [stmt], _carried(client, s, index, job.entry["digest"]))
                for job, stmt in zip(jobs, statements, strict=True)
                if job.staged is s
            ]
            return _push(client, s, manifests)

        return list(pool.map(attach, staged))  # each index on its own: they share nothing


class Sbom(Stage):
    """An SBOM per platform image, from its binary's Go build info, attached to each staged index."""

    name = "sbom"
    mutates = True

    def skip(self, ctx: Context) -> str:
        if not ctx.cfg.image.sbom:
            return "[image] sbom is off"
        if ctx.dry_run:
            return "" if ctx.to_build() else "every image is unchanged"
        return "" if ctx.staged else "nothing new to attach an SBOM to"

    def run(self, ctx: Context) -> None:
        fmt = "SPDX 2.3" if ctx.cfg.image.sbom_format == sbom.SPDX else "CycloneDX 1.5"
        ctx.staged = attach_sboms(ctx.cfg, ctx.session.client, ctx.staged)
        for s in ctx.staged:
            output.info(f"{s.target.service.name}: {fmt} SBOM per platform attached -> {s.digest}")

    def describe(self, ctx: Context) -> list[str]:
        fmt = ctx.cfg.image.sbom_format
        return [
            f"attach a {fmt} SBOM per platform (from each binary's Go build info) to {t.repository}, "
            "push the index again by digest"
            for t in ctx.to_build()
        ]


def signed_refs(staged: Sequence[Staged]) -> list[tuple[str, str]]:
    """(repository, digest) of every index and every platform image in it, in that order."""
    refs = []
    for s in staged:
        refs.append((s.target.repository, s.digest))
        refs += [(s.target.repository, e.digest) for e in image_entries(json.loads(s.raw))]
    return refs


def check_signatures(cfg: Config, client: Client, refs: Sequence[tuple[str, str]]) -> list[str]:
    """Each (repository, digest) must carry a signature that verifies against [sign] public_key."""
    assert cfg.sign.public_key is not None
    key = signatures.read_public_key(cfg.sign.public_key)

    def one(item: tuple[str, str]) -> str:
        repository, digest = item
        ref = parse_reference(repository)
        found = signatures.fetch(client, ref.registry, ref.repository, digest)
        problem = signatures.check(key, found, digest)
        return f"{repository}@{digest[:19]}: {problem}" if problem else ""

    with ThreadPoolExecutor(REGISTRY_PARALLEL, thread_name_prefix="signatures") as pool:
        return [p for p in pool.map(one, refs) if p]


class Sign(Stage):
    """cosign signs every new index and its platform images; each signature is checked; only then tags move."""

    name = "sign"
    mutates = True

    def skip(self, ctx: Context) -> str:
        if not ctx.cfg.sign.signs:
            return "no [sign] key (or SIGN=keyless)"
        if ctx.dry_run:
            return "" if ctx.to_build() or ctx.memo.get("merges") else "every image is unchanged"
        return "" if ctx.staged else "nothing new to sign"

    def run(self, ctx: Context) -> None:
        cfg = ctx.cfg
        refs = signed_refs(ctx.staged)
        texts = [f"{repo}@{digest}" for repo, digest in refs]
        output.step(f"sign {len(ctx.staged)} index(es) and their {len(refs) - len(ctx.staged)} image(s) with cosign")
        cosign.sign(ctx.session.runner, cfg.sign, texts, cfg.registry.insecure)
        if cfg.sign.keyless:
            problems = [
                f"{s.target.repository}@{s.digest[:19]}: {why}"
                for s in ctx.staged
                if (why := cosign.verify_keyless(ctx.session.runner, cfg.sign, f"{s.target.repository}@{s.digest}"))
            ]
            signer = f"keyless ({cfg.sign.identity or 'any identity'})"
        else:
            problems = check_signatures(cfg, ctx.session.client, refs)
            signer = str(cfg.sign.key)
        if problems:
            raise UserError(f"signature check failed after signing: {'; '.join(problems)}; no tag was moved")
        output.ok(f"signed and checked {len(refs)} digest(s) with {signer}")

    def describe(self, ctx: Context) -> list[str]:
        return [cosign.describe(ctx.cfg.sign, "<each new index and platform image, by digest>")]
