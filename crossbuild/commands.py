"""What each task does, as plain functions of plain arguments.

tasks.py turns invoke flags into these arguments; nothing here takes an
invoke Context. Each function loads the Config once and hands it down.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from crossbuild import config as config_mod
from crossbuild import gobuild, output, runner
from crossbuild.config import Config, Overrides
from crossbuild.errors import UserError
from crossbuild.platforms import Platform, host_platform


def load(config_path: str | None, overrides: Overrides) -> Config:
    return config_mod.load(config_path, overrides)


def setup_runner(dry_run: bool, verbose: bool) -> None:
    verbose = verbose or os.environ.get("V", "") not in ("", "0")
    runner.configure(dry_run=dry_run, verbose=verbose)


def build(
    cfg: Config,
    platforms: Sequence[Platform] | None = None,
    multiarch: bool = False,
) -> list[gobuild.PlatformResult]:
    """Cross-compile the selected services; raise UserError on any failure after the summary."""
    if platforms is None:
        platforms = cfg.binary_platforms if (multiarch or cfg.platforms_overridden) else (host_platform(),)
    services = cfg.selected_bins()
    output.step(
        f"go build {len(services)} service(s) x {len(platforms)} platform(s): "
        f"{', '.join(str(p) for p in platforms)} (version {cfg.version.version})"
    )
    results = gobuild.build(cfg, platforms, services)
    rows = []
    failures = []
    for pr in results:
        if pr.error:
            failures.append(pr.error)
            rows += [[s.name, str(pr.platform), "-", output.status_word("failed")] for s in services]
            continue
        for br in pr.binaries:
            word = "ok" if br.ok else "failed"
            size = output.human_size(br.size) if br.size else "-"
            rows.append([br.service, str(pr.platform), size, output.status_word(word)])
            failures += [f"{br.service} {pr.platform}: {p}" for p in br.problems]
        if not pr.error:
            output.ok(f"{pr.platform} in {pr.seconds:.1f}s")
    if not runner.OPTIONS.dry_run:
        output.table(["service", "platform", "size", "result"], rows)
    if failures:
        raise UserError("build failed:\n" + "\n".join(failures))
    return results


def clean(config_path: str | None) -> None:
    import shutil  # noqa: PLC0415

    cfg = load(config_path, Overrides())
    shutil.rmtree(cfg.output_dir, ignore_errors=True)
    output.ok(f"removed {cfg.output_dir}")
