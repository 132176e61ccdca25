"""The parts of one `invoke verify`, each measured alone: every smoke run, one at a time, and the layer reads.

Case (v) (bench/cases/verify.py) times `invoke verify` of every service and platform,
then runs this module twice, as a command of its own so results.md shows how to
replay it:

    python -m bench.verifyparts smoke  --report <repo>/build/reports/verify.json --out smoke.json
    python -m bench.verifyparts layers --report <repo>/build/reports/verify.json --out layers.json
    python -m bench.verifyparts docker --report <repo>/build/reports/verify.json --out docker.json

`smoke`: each platform's smoke run exactly as verify made it (crossbuild.daemon.Daemon.run:
create, start, wait, logs, remove, with no network, through the docker daemon, under QEMU for
a foreign arch), with the arguments verify's report says it used, one after the other with
nothing else running. The images are pulled first and removed afterwards, neither timed: the
registry side of verify is what `layers` measures. Each figure is the wall time of one
Daemon.run call. Then, for information, all of them at once, SMOKE_PARALLEL at a time as
verify allows: what this daemon and these cores make of running them side by side.

`layers`: every layer of every platform image verify checked, fetched once each from the
registry through crossbuild's registry client (the same code, digest check included, that
verify reads the binary with), into a scratch directory: once with verify's REGISTRY_PARALLEL
readers at a time, then once one by one. The manifests that name the layers are read first,
untimed. This is a superset of what verify itself reads (it stops at the layer holding the
binary) and what `docker pull` of the same images fetches.

`docker`: the docker CLI alone does the daemon's side of the same smoke runs, the way a
script would with no registry checks and nothing of crossbuild's: `docker pull --platform`
of every platform image, PULL_PARALLEL at a time, then `docker run --rm --network none`
of each with verify's arguments, SMOKE_PARALLEL at a time, then `docker rmi` of them all.
The case records the machine's busy CPU seconds of this phase beside verify's: on a
machine whose cores are busy throughout, busy CPU / cores is a floor for any tool that
pulls and runs these images in this docker daemon.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crossbuild.daemon import Daemon
from crossbuild.oci import Client, image_entries, parse_reference
from crossbuild.platforms import parse_platform
from crossbuild.smoke import PROBE_TIMEOUT
from crossbuild.verify import PULL_PARALLEL, REGISTRY_PARALLEL, SMOKE_PARALLEL

COMMAND_TIMEOUT = 30.0  # invoke verify's default --timeout


@dataclass(frozen=True)
class SmokeItem:
    """One platform's smoke run as verify's report recorded it."""

    service: str
    platform: str
    ref: str  # repository@digest of the platform image
    args: tuple[str, ...]
    server: bool  # the plan is "keeps running": verify gives it the probe's timeout


@dataclass(frozen=True)
class SmokeTime:
    service: str
    platform: str
    args: list[str]
    seconds: float  # wall time of the Daemon.run call
    exit_code: int | None  # not kept (None): verify's report has it
    verify_seconds: float  # what verify's own run measured (start to exit, under verify's load)


def smoke_items(report: Sequence[dict[str, Any]]) -> list[SmokeItem]:
    """Every platform verify smoke-ran (it has smoke_args), in report order."""
    items = []
    for image in report:
        ref = parse_reference(str(image["ref"]))
        repository = f"{ref.registry}/{ref.repository}"
        for row in image.get("platforms", []):
            if row.get("smoke_args") is None or not row.get("digest"):
                continue
            server = row.get("smoke_exit") is None and row.get("smoke") == "ok"
            items.append(
                SmokeItem(
                    str(image["service"]),
                    str(row["platform"]),
                    f"{repository}@{row['digest']}",
                    tuple(row["smoke_args"]),
                    server,
                )
            )
    return items


def slowest(times: Sequence[SmokeTime]) -> SmokeTime | None:
    return max(times, key=lambda t: t.seconds, default=None)


def measure_smoke(items: Sequence[SmokeItem]) -> tuple[list[SmokeTime], float]:
    """Each run alone, one after the other; then, for information, the seconds of all of them at once."""
    daemon = Daemon.connect(parallel=SMOKE_PARALLEL)

    def run(item: SmokeItem) -> float:
        timeout = PROBE_TIMEOUT if item.server else COMMAND_TIMEOUT
        t0 = time.monotonic()
        result = daemon.run(item.ref, item.args, parse_platform(item.platform), timeout)
        seconds = time.monotonic() - t0
        if result.error:
            raise SystemExit(f"{item.service} {item.platform}: the smoke run did not start: {result.error}")
        return seconds

    try:
        for item in items:  # untimed: the image present, as when verify starts its run
            daemon.ensure(item.ref, parse_platform(item.platform))
        out = [SmokeTime(i.service, i.platform, list(i.args), round(run(i), 3), None, 0.0) for i in items]
        t0 = time.monotonic()
        with ThreadPoolExecutor(SMOKE_PARALLEL) as pool:
            list(pool.map(run, items))
        return out, time.monotonic() - t0
    finally:
        daemon.release()
        daemon.close()


DOCKER_RUN_FAILED = (125, 126, 127)  # `docker run`'s own errors; any other code is the program's


def _docker(*argv: str, timeout: float, failed: Sequence[int] | None = None) -> None:
    """One docker CLI command; SystemExit with its error when it fails (the phase fails, not the bench).

    `failed`: the exit codes that mean failure (None: any but 0)."""
    done = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode in failed if failed is not None else done.returncode != 0:
        raise SystemExit(f"docker {' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")


def docker_alone(items: Sequence[SmokeItem]) -> dict[str, float]:
    """Seconds of the docker CLI's pulls, runs and removals of the smoke runs' images, each step in turn.

    Only runs that exit on their own: a server, which verify stops at the probe's timeout, has no
    plain `docker run` that does the same (main leaves them out and counts them)."""
    steps: dict[str, float] = {}
    t0 = time.monotonic()
    with ThreadPoolExecutor(PULL_PARALLEL) as pool:
        list(pool.map(lambda i: _docker("pull", "--quiet", "--platform", i.platform, i.ref, timeout=300), items))
    steps["pull_s"] = time.monotonic() - t0

    def run(item: SmokeItem) -> None:
        _docker("run", "--rm", "--network", "none", "--platform", item.platform, item.ref, *item.args,
                timeout=COMMAND_TIMEOUT, failed=DOCKER_RUN_FAILED)  # fmt: skip

    t1 = time.monotonic()
    with ThreadPoolExecutor(SMOKE_PARALLEL) as pool:
        list(pool.map(run, items))
    steps["run_s"] = time.monotonic() - t1
    t2 = time.monotonic()
    _docker("rmi", *sorted({i.ref for i in items}), timeout=300)
    steps["rmi_s"] = time.monotonic() - t2
    return {k: round(v, 3) for k, v in steps.items()}


def layer_blobs(client: Client, report: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(registry, repository, digest) of every distinct layer of every platform image in the report."""
    blobs: dict[tuple[str, str, str], None] = {}
    for image in report:
        ref = parse_reference(str(image["ref"]))
        index = client.get_manifest(ref)
        for entry in image_entries(index.data):
            manifest = client.get_manifest(ref.at(entry.digest))
            for layer in manifest.data.get("layers", []):
                blobs[(ref.registry, ref.repository, str(layer["digest"]))] = None
    return list(blobs)


def fetch_all(client: Client, blobs: Sequence[tuple[str, str, str]], parallel: int) -> tuple[float, int]:
    """(seconds, bytes) to download every blob once, `parallel` at a time."""
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as scratch:

        def fetch(n: int) -> int:
            registry, repository, digest = blobs[n]
            return client.download_blob(registry, repository, digest, Path(scratch) / f"layer-{n}")

        t0 = time.monotonic()
        with ThreadPoolExecutor(parallel) as pool:
            sizes = list(pool.map(fetch, range(len(blobs))))
        return time.monotonic() - t0, sum(sizes)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=("smoke", "layers", "docker"))
    ap.add_argument("--report", type=Path, required=True, help="verify's JSON report (build/reports/verify.json)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    report = json.loads(args.report.read_text())
    result: dict[str, Any]
    if args.part == "smoke":
        verified = {(r["service"], p["platform"]): p.get("smoke_seconds", 0.0) for r in report for p in r["platforms"]}
        alone, together = measure_smoke(smoke_items(report))
        times = [
            SmokeTime(**{**asdict(t), "verify_seconds": verified.get((t.service, t.platform), 0.0)}) for t in alone
        ]
        worst = slowest(times)
        result = {
            "runs": [asdict(t) for t in times],
            "slowest": asdict(worst) if worst else None,
            "all_at_once_s": round(together, 3),
            "parallel": SMOKE_PARALLEL,
        }
    elif args.part == "docker":
        every = smoke_items(report)
        items = [i for i in every if not i.server]
        result = {
            "runs": len(items),
            "servers_left_out": len(every) - len(items),
            "pull_parallel": PULL_PARALLEL,
            "parallel": SMOKE_PARALLEL,
            **docker_alone(items),
        }
    else:
        client = Client(insecure=[parse_reference(str(r["ref"])).registry for r in report])
        blobs = layer_blobs(client, report)
        parallel_s, size = fetch_all(client, blobs, REGISTRY_PARALLEL)
        sequential_s, _ = fetch_all(client, blobs, 1)
        result = {
            "layers": len(blobs),
            "bytes": size,
            "parallel": REGISTRY_PARALLEL,
            "parallel_s": round(parallel_s, 3),
            "sequential_s": round(sequential_s, 3),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
