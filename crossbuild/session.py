"""One Session per task: the Config, the Runner, one registry client and the state files.

tasks.py opens it from the command line's flags; the pipeline and the steps it runs
take what they need from it, so nothing reads the environment, builds a second
registry client or opens a state file twice during one run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from crossbuild import config as config_mod
from crossbuild import incremental, runner
from crossbuild.config import Config, Overrides
from crossbuild.oci import Client as RegistryClient
from crossbuild.runner import Runner


@dataclass
class Session:
    cfg: Config
    runner: Runner
    client: RegistryClient
    _states: dict[str, incremental.State] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run

    def state(self, name: str) -> incremental.State:
        """<output_dir>/state/<name>.json, read once per session."""
        if name not in self._states:
            self._states[name] = incremental.State(self.cfg.output_dir / "state" / f"{name}.json")
        return self._states[name]

    def with_config(self, cfg: Config) -> Session:
        """The same session for a refined Config (e.g. with -X stamping resolved)."""
        return replace(self, cfg=cfg)


def make_runner(dry_run: bool = False, verbose: bool = False, environ: Mapping[str, str] | None = None) -> Runner:
    """The task's Runner; V=1 (make's name) also means verbose. Queries share the verbosity."""
    environ = os.environ if environ is None else environ
    verbose = verbose or environ.get("V", "") not in ("", "0")
    runner.QUERIES.verbose = verbose
    return Runner(dry_run=dry_run, verbose=verbose)


def open_session(
    config_path: str | os.PathLike[str] | None,
    overrides: Overrides | None = None,
    *,
    dry_run: bool = False,
    verbose: bool = False,
) -> Session:
    run = make_runner(dry_run, verbose)
    cfg = config_mod.load(config_path, overrides or Overrides())
    return Session(cfg=cfg, runner=run, client=RegistryClient(insecure=cfg.registry.insecure))


def for_config(cfg: Config, run: Runner | None = None) -> Session:
    """A session around an already loaded Config (tests, and tasks that load it themselves)."""
    return Session(cfg=cfg, runner=run or Runner(), client=RegistryClient(insecure=cfg.registry.insecure))


def state_path(cfg: Config, name: str) -> Path:
    return cfg.output_dir / "state" / f"{name}.json"
