"""Where crossbuild's warm no-change rerun spends its time (--profile, after case a).

The rerun is the number users feel most, and it is mostly Python start-up,
imports and a few registry round trips; three more untimed reruns show which:
every external command with its start offset (V=1), a cProfile, and the
import times. Files go to <out>/profile/, a summary to results.json.
"""

from __future__ import annotations

import json
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.context import Context, say
from bench.workspace import PROJECT


def profile_warm_rerun(ctx: Context, prefix: str, gocache: Path) -> dict[str, Any]:
    pdir = ctx.out / "profile"
    pdir.mkdir(parents=True, exist_ok=True)
    repo = ctx.workspace.repo
    env = {**ctx.env(gocache), "REGISTRY_PREFIX": prefix, "VERIFY": "0"}
    argv = [*ctx.invoke, "--search-root", str(repo), "image.multiarch"]
    script = ctx.invoke[0] if len(ctx.invoke) == 1 else None
    venv_python = PROJECT / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.is_file() else sys.executable
    report: dict[str, Any] = {}
    # 1. interpreter + imports only
    t0 = time.monotonic()
    subprocess.run([*ctx.invoke, "--search-root", str(repo), "--list"], env=env, cwd=repo,
                   capture_output=True, check=False)  # fmt: skip
    report["invoke_list_s"] = round(time.monotonic() - t0, 3)
    t0 = time.monotonic()
    subprocess.run([python, "-c", "pass"], env=env, capture_output=True, check=False)
    report["python_startup_s"] = round(time.monotonic() - t0, 3)
    # 2. V=1: every external command, with its start offset
    lines = []
    t0 = time.monotonic()
    with subprocess.Popen(argv, env={**env, "V": "1"}, cwd=repo, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(f"{time.monotonic() - t0:7.3f}s  {line.rstrip()}")
    report["v1_total_s"] = round(time.monotonic() - t0, 3)
    (pdir / "warm-prebuilt-V1.txt").write_text("\n".join(lines) + "\n")
    # 3. cProfile and -X importtime
    if script:
        report.update(_cprofile_and_imports(python, script, argv[1:], env, repo, pdir))
    say(f"profile of the warm rerun: {json.dumps(report)} (files in {pdir})")
    return report


def _cprofile_and_imports(
    python: str, script: str, args: list[str], env: dict[str, str], repo: Path, pdir: Path
) -> dict[str, Any]:
    prof = pdir / "warm-prebuilt.prof"
    subprocess.run([python, "-m", "cProfile", "-o", str(prof), script, *args], env=env, cwd=repo,
                   capture_output=True, check=False)  # fmt: skip
    with (pdir / "warm-prebuilt-cprofile.txt").open("w") as fh:
        stats = pstats.Stats(str(prof), stream=fh)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(20)
    imp = subprocess.run([python, "-X", "importtime", script, *args], env=env, cwd=repo,
                         capture_output=True, text=True, check=False)  # fmt: skip
    rows = []  # (cumulative us, name); top-level imports have one leading space
    for line in imp.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            _, cum, name = line.removeprefix("import time:").split("|", 2)
            rows.append((int(cum.strip()), name.rstrip()))
    top_level = [(c, n.strip()) for c, n in rows if not n[1:].startswith(" ")]
    top = sorted(top_level, reverse=True)[:15]
    (pdir / "warm-prebuilt-importtime.txt").write_text(imp.stderr)
    return {
        "imports_total_s": round(sum(c for c, _ in top_level) / 1e6, 3),
        "top_imports_ms": {n: round(c / 1000, 1) for c, n in top},
    }
