"""The protocol every case implements: untimed preparation, then timed phases, then targets.

A case says only what to run. The driver (bench/driver.py) resets caches, waits
for the machine to be idle, times each phase and reads the bytes pushed at the
registry (bench/measure.py), retries a disturbed run and catches failures; the
report (bench/report.py) turns the results into tables, targets and the chart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from bench.context import Context
from bench.results import CaseResult, Target


class Case(ABC):
    """One way of shipping the monorepo's services (or a part of it), measured phase by phase."""

    key: str  # "a": how --cases and the table name it
    slug: str  # "a-prebuilt": its registry prefix and scratch directories
    title: str  # "crossbuild prebuilt": the table's label
    phases: tuple[str, ...] = ("cold", "warm")  # timed in this order, each after an idle wait
    repeatable: bool = True  # may run again, under a fresh prefix, when other processes disturbed its first phase
    in_default: bool = True  # run when --cases is not given (False: only when named)
    builds: bool = True  # uses the BuildKit builder: checked at the start, pruned by the cold reset

    def prepare(self, ctx: Context, res: CaseResult) -> None:  # noqa: B027 - optional hook, nothing by default
        """Untimed setup that a real pipeline has already done (install a tool, push a base image).

        Runs before the cold reset, so it leaves no cache behind. Raise
        shell.Unavailable(reason) when the tool cannot be had here: the case is
        reported as unavailable and the others still run.
        """

    def setup(self, ctx: Context, res: CaseResult) -> None:  # noqa: B027 - optional hook, nothing by default
        """Untimed, after the cold reset: write what the timed commands read (Dockerfiles, an edited file)."""

    def before(self, ctx: Context, res: CaseResult, phase: str) -> None:  # noqa: B027 - optional hook
        """Untimed, before each phase and its idle wait: what differs between phases (a sweep's next point)."""

    @abstractmethod
    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        """The timed commands of one phase; notes on where the time went go to res.notes."""

    def finish(self, ctx: Context, res: CaseResult) -> None:  # noqa: B027 - optional hook, nothing by default
        """After the timed phases: derived figures (extrapolation), untimed profiles."""

    def tables(self, results: Mapping[str, CaseResult]) -> list[str]:
        """Markdown tables of what this case measured besides its phases' times (printed and in results.md)."""
        return []

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        """The target lines this case owns, from every case's results.

        Called for every case in the list, run or not, so a target that cannot be
        evaluated still prints as N/A with the reason.
        """
        return []
