"""One benchmark run: where it writes, how it runs commands, what it builds, and the cold reset.

Every case receives the same Context: the run's directories and registry
prefixes, the Shell that logs commands, the Meter that reads the registry, the
Workspace (monorepo and tool configs) and the way to start crossbuild.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import regstats, workspace
from bench.measure import Meter
from bench.monorepo import Size
from bench.regstats import REGISTRY, REGISTRY_ADDR
from bench.shell import Shell, clean_env
from bench.workspace import BUILDER, PROJECT, Workspace

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def invoke_argv(override: str) -> list[str]:
    """How to start crossbuild's tasks: --invoke, else the project's venv, else this interpreter's invoke."""
    venv_invoke = PROJECT / ".venv" / "bin" / "invoke"
    if override:
        return shlex.split(override)
    if venv_invoke.is_file():
        return [str(venv_invoke)]
    return [sys.executable, "-m", "invoke"]


@dataclass
class Context:
    args: argparse.Namespace
    out: Path
    run_id: str
    shell: Shell
    meter: Meter
    invoke: list[str]
    ws: Workspace | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # --profile: where crossbuild's warm rerun spends time
    done: set[str] = field(default_factory=set)  # untimed setup already done in this run (by name)

    @property
    def work(self) -> Path:
        return self.out / "work"

    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def tools(self) -> Path:
        """Downloaded and installed tools (ko, the arm64 Go): kept between runs."""
        return self.out / "tools"

    @property
    def workspace(self) -> Workspace:
        assert self.ws is not None, "Context.generate() first"
        return self.ws

    def prefix(self, slug: str) -> str:
        return f"{REGISTRY}/bench/{self.run_id}/{slug}"

    def gocache(self, slug: str) -> Path:
        return self.work / "gocache" / slug

    def case_dir(self, slug: str) -> Path:
        """Scratch directory of one case (its Dockerfiles, its binaries), emptied by the cold reset."""
        return self.work / slug

    def env(self, gocache: Path | None = None) -> dict[str, str]:
        return clean_env(gocache)

    def crossbuild(self, task: str) -> list[str | os.PathLike[str]]:
        """argv of one crossbuild task run in the monorepo."""
        return [*self.invoke, "--search-root", self.workspace.repo, task]

    def generate(self, size: str | Size | None = None, platforms: tuple[str, ...] | None = None) -> None:
        """(Re)generate the monorepo all cases build: --size and --platforms, or a sweep point's."""
        repo = self.work / "repo"
        if repo.exists():
            shutil.rmtree(repo)
        self.work.mkdir(parents=True, exist_ok=True)
        self.ws = workspace.create(
            repo,
            size or self.args.size,
            seed=self.args.seed,
            platforms=platforms or tuple(self.args.platforms.split(",")),
            run_id=self.run_id,
            storage=self.meter.v2,
        )

    def cold_reset(self, slug: str, log: str, builds: bool = True) -> None:
        """Empty caches for a cold run: BuildKit prune (for a case that `builds`), a fresh GOCACHE, no
        crossbuild build/, no case dir, and the monorepo as committed (an earlier case's edit phases
        undone, even if it failed in one)."""
        self.workspace.restore()
        if builds:
            self.shell.run(["docker", "buildx", "prune", "--builder", BUILDER, "-af"], env=self.env(), log=log)
        shutil.rmtree(self.workspace.repo / "build", ignore_errors=True)
        for d in (self.gocache(slug), self.case_dir(slug)):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)

    def ensure_registry(self) -> None:
        start_registry_if_down(self.shell, self.invoke)


def start_registry_if_down(shell: Shell, invoke: list[str]) -> None:
    """Start crossbuild's embedded registry when nothing answers (someone may have stopped it)."""
    if not regstats.registry_up():
        say("registry down: starting it with crossbuild's registry.up")
        shell.run([*invoke, "--search-root", PROJECT, "registry.up"], env=clean_env(), cwd=PROJECT, log="setup")


def open_run(args: argparse.Namespace, builds: bool = True) -> Context:
    """Check the infrastructure the cases need (the BuildKit builder only when one `builds`) and set up
    the run; exits with the fix when it is missing."""
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "logs", ignore_errors=True)
    shell = Shell(out / "logs")
    invoke = invoke_argv(args.invoke)
    start_registry_if_down(shell, invoke)
    if not regstats.registry_up():
        raise SystemExit(f"no registry answers on {REGISTRY_ADDR}; run `make tools` or `make registry.up`")
    proc = (
        shell.run(["docker", "buildx", "inspect", BUILDER], env=clean_env(), log="setup", check=False)
        if builds
        else None
    )
    if proc is not None and proc.returncode != 0:
        raise SystemExit(f"buildx builder '{BUILDER}' not found; run `make tools` (or `make setup`)")
    meter = Meter()
    say(f"bytes pushed: {meter.method}")
    run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
    return Context(args, out, run_id, shell, meter, invoke)
