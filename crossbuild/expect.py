"""What each image must be, from the Config, and the report of checking it.

verify.py proves images against Expectations and knows nothing of config.toml;
this module makes those Expectations (platforms, the binary's path, the -X values
its service carries, the smoke run) and prints and files what verify found: a
table with one row per platform, reports/<name>.json, and GitHub's step summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossbuild import cosign, output
from crossbuild import verify as verify_mod
from crossbuild.config import Config, Service
from crossbuild.errors import UserError
from crossbuild.images import Staged
from crossbuild.oci import Client as RegistryClient
from crossbuild.oci import parse_reference
from crossbuild.platforms import Platform
from crossbuild.runner import Runner


def expectation(
    cfg: Config, service: Service, ref: str, platforms: Sequence[Platform], stamped: bool = True, signed: bool = True
) -> verify_mod.Expectation:
    """What `service`'s image must be; `stamped=False` for images another tool built (no -X values to expect);
    `signed=False` before the sign stage (the publish pipeline checks signatures right after signing)."""
    return verify_mod.Expectation(
        service=service.name,
        ref=ref,
        platforms=tuple(platforms),
        binary=f"/usr/local/bin/{service.binary_name}",
        values=tuple(cfg.expected_x(service).items()) if stamped else (),
        smoke_args=service.smoke_args,
        smoke_exit=service.smoke_exit,
        smoke_expect=service.smoke_expect,
        sbom=cfg.image.sbom_format if cfg.image.sbom else "",
        public_key=str(cfg.sign.public_key) if signed and cfg.sign.public_key is not None else "",
        provenance=cfg.image.provenance,
    )


def for_refs(cfg: Config, refs: Sequence[str], platforms: Sequence[Platform]) -> list[verify_mod.Expectation]:
    """The images `verify` checks: every selected service's first tag, or the given refs."""
    if not refs:
        return [
            expectation(cfg, s, f"{cfg.image_ref(s)}:{cfg.image_tags(s)[0]}", platforms) for s in cfg.selected_images()
        ]
    by_repo = {parse_reference(cfg.image_ref(s)).repository: s for s in cfg.services}
    result = []
    for text in refs:
        ref = parse_reference(text)
        svc = by_repo.get(ref.repository)
        if svc is not None:
            result.append(expectation(cfg, svc, str(ref), platforms))
        else:
            name = ref.repository.rsplit("/", 1)[-1]
            result.append(verify_mod.Expectation(name, str(ref), tuple(platforms), f"/usr/local/bin/{name}", ()))
    return result


def check_keyless(cfg: Config, run: Runner, reports: Sequence[verify_mod.ImageReport]) -> None:
    """Keyless signatures need Fulcio's roots and Rekor: `cosign verify` checks each index ([sign] keyless)."""
    if not cfg.sign.keyless:
        return
    for r in reports:
        ref = parse_reference(r.ref)
        target = f"{ref.registry}/{ref.repository}@{r.digest}" if r.digest else r.ref
        problem = cosign.verify_keyless(run, cfg.sign, target, cfg.registry.insecure)
        if problem:
            r.problems.append(f"signature: {problem}")
        else:
            r.signature = f"keyless, identity {cfg.sign.identity or 'any'}, issuer {cfg.sign.issuer}"


def probe_cache(cfg: Config) -> Path:
    return cfg.output_dir / "state" / "smoke.json"


def report(cfg: Config, reports: Sequence[verify_mod.ImageReport], name: str) -> Path:
    """Print the table (every platform of every image, one row each) and write reports/<name>.json."""
    rows = [[svc, plat, output.status_word(res), detail] for svc, plat, res, detail in verify_mod.table_rows(reports)]
    output.table(["service", "platform", "result", "detail"], rows)
    for r in reports:
        if r.smoke_plan:
            output.info(f"{r.service}: smoke {r.smoke_plan}")
        if r.signature:
            output.info(f"{r.service}: signed ({r.signature})")
        prov = next((p.provenance for p in r.platforms if p.provenance), None)
        if prov:
            output.info(
                f"{r.service}: provenance {prov['predicate_type']}: builder {prov['builder_id'] or '-'}, "
                f"build type {prov['build_type'] or '-'}, {prov['materials']} material(s)"
            )
    path = cfg.output_dir / "reports" / f"{name}.json"
    verify_mod.write_json(reports, path)
    verify_mod.append_step_summary(reports)
    output.info(f"report: {path}")
    return path


def verify_staged(
    cfg: Config, client: RegistryClient, staged: Sequence[Staged], stamped: bool = True
) -> list[verify_mod.ImageReport]:
    """Verify every pushed index before any tag moves: all together, every failure listed, one error."""
    exps = [
        expectation(cfg, s.target.service, f"{s.target.repository}@{s.digest}", s.target.platforms, stamped, False)
        for s in staged
    ]
    output.step(f"verify {len(exps)} pushed index(es) before moving tags")
    reports = verify_mod.verify(client, exps, probe_cache=probe_cache(cfg))
    for r in reports:
        verify_mod.write_json([r], cfg.output_dir / "reports" / f"verify-{r.service}.json")
    report(cfg, reports, "verify-publish")
    bad = [r.service for r in reports if not r.ok]
    if bad:
        raise UserError(f"verification failed for {', '.join(bad)} (table above); no tag was moved")
    output.ok(f"verified {', '.join(r.service for r in reports)}")
    return reports
