#!/usr/bin/env python3
"""crossbuild benchmark: cold and warm multi-arch builds of a synthetic Go monorepo,
against the naive emulated path, an OpenIM-style loop, ko, and the bare `go build` floor.

    .venv/bin/python bench/run.py --size tiny|small|full --out build/bench [--cases a,b,c,d,e,f,av]

Cases (all on this machine, one local registry, linux/amd64, linux/arm64, linux/arm/v7,
each under its own registry prefix localhost:5000/bench/<run-id>/<case>; one module
each in bench/cases/):

  f   floor: one `go build` per platform over all services, platforms in parallel
  a   crossbuild prebuilt:    invoke image.multiarch            (VERIFY=0)
  av  crossbuild prebuilt with VERIFY=1 (information only; not part of any target)
  b   crossbuild multistage:  MODE=multistage GO_IMAGE=localhost:5000/golang:local (VERIFY=0)
  c   naive emulated: a multistage Dockerfile whose builder stage is FROM the TARGET
      platform's Go image (arm64 under QEMU); linux/amd64 + linux/arm64 only
  d   OpenIM-style loop: sequential go build per service per platform, sequential
      `buildx build` per service per arch, `imagetools create` per service
  e   ko: `ko build --platform=... --base-import-paths` on a FROM-scratch base index
  v   crossbuild verify of every service x platform (images published untimed), against
      each of its smoke runs alone and the reads of every layer it checks

Each case runs COLD (fresh GOCACHE, `docker buildx prune --builder crossbuild -af`,
crossbuild's build/ removed) and then WARM with nothing changed; f, a, d and e then
time two one-line edits, (h) edit-main: one service's main.go, and (i) edit-shared:
a package every service imports (bench/cases/edits.py). Bytes pushed are read from
the registry's storage (see bench/README.md, "Bytes pushed").

Writes <out>/results.md, <out>/results.json, <out>/results.png (with the `bench`
extra's matplotlib) and prints the table and the pass/fail lines of the targets.
A case whose tool cannot be had here is reported as "unavailable: <reason>"; the
other cases still run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a script (bench/run.py): import the bench package from the project root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import cases, images, monorepo, report
from bench.context import PLATFORMS, open_run, say
from bench.driver import run_case
from bench.results import CaseResult


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(monorepo.SIZES), default="tiny")
    ap.add_argument("--out", default="build/bench", help="output directory (default build/bench)")
    keys = [c.key for c in cases.ALL]
    default = [c.key for c in cases.ALL if c.in_default]
    ap.add_argument(
        "--cases", default=",".join(default), help=f"comma list of {', '.join(keys)} (default {','.join(default)})"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-id", default="", help="registry prefix component (default: a timestamp)")
    ap.add_argument("--platforms", default=",".join(PLATFORMS))
    ap.add_argument(
        "--c-services", type=int, default=0, help="services measured in (c) (default: 1 for full, else all)"
    )
    ap.add_argument("--ko-version", default="", help="ko version (default: newest served that installs)")
    ap.add_argument("--invoke", default="", help="invoke command line (default: <project>/.venv/bin/invoke)")
    ap.add_argument(
        "--transfer-size",
        type=images.parse_size,
        default=images.parse_size("1GiB"),
        help="layers' bytes of the images case t moves, e.g. 1GiB or 64MiB (default 1GiB)",
    )
    ap.add_argument("--profile", action="store_true", help="profile crossbuild's warm rerun after case a")
    ap.add_argument("--rebuild-images", action="store_true", help="rebuild the emulated Go image and the ko base")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=300,
        help="before each timed phase wait up to this many s for the machine to be idle (0: never)",
    )
    ap.add_argument(
        "--retry-busy",
        type=int,
        default=1,
        help="run a case again (up to N times) when other processes took >10%% of the CPU in its cold phase",
    )
    args = ap.parse_args(argv)
    chosen = {k.strip() for k in args.cases.split(",") if k.strip()}
    unknown = sorted(chosen - set(keys))
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(keys)}")
    args.case_keys = [k for k in keys if k in chosen]  # in the case list's order
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    ctx = open_run(args, builds=any(cases.BY_KEY[k].builds for k in args.case_keys))
    ctx.generate()
    say(f"generated {ctx.workspace.repo}: {json.dumps(ctx.workspace.mono.summary())}")
    results: dict[str, CaseResult] = {}
    for key in args.case_keys:
        results[key] = run_case(ctx, cases.BY_KEY[key])
    ctx.workspace.restore()  # <out>/work/repo as committed, not the last case's edits hidden by skip-worktree
    targets = [t for case in cases.ALL for t in case.targets(results)]
    extra = [t for case in cases.ALL for t in case.tables(results)]
    (ctx.out / "results.md").write_text(report.markdown(ctx, results, targets, extra))
    drawn = report.chart(ctx, results, ctx.out / "results.png")
    data = report.json_data(ctx, results, targets, report.how_drawn(drawn), time.monotonic() - started)
    (ctx.out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(report.table(results))
    for extra_table in [*report.phase_tables(results), *extra]:
        print()
        print(extra_table)
    print()
    print("\n".join(report.target_lines(targets)))
    print("\n".join(report.closing_lines(ctx.out, "results", drawn, ctx.logs, time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
