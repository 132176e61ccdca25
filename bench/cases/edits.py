"""(h) and (i): the edits developers make, rebuilt and shipped by crossbuild (a), ko (e), the loop (d), the floor (f).

Those four cases take two more timed phases after cold and warm, so each edit is
measured with the tool's own caches warm and its images already published:

  edit-main    (h) one line of ONE service's main.go changes (a string constant)
  edit-shared  (i) then one line of a package every service imports changes

`before` applies the edit, untimed; it stays until the next case's cold reset
(Context.cold_reset restores the monorepo). The version stamp does not change with
it (Workspace.edit_line), so what differs between the builds is the edit alone.
The targets compare the four cases phase by phase; (h)'s bytes target reads what
crossbuild pushed per repository against the same repository's cold push.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.cases import bakealone
from bench.cases.base import Case
from bench.context import Context
from bench.measure import Phase
from bench.monorepo import Monorepo, Package
from bench.results import CaseResult, Target, by_repo, human

MAIN = "edit-main"
SHARED = "edit-shared"
PHASES = (MAIN, SHARED)
# a rebuilt binary may compress a few bytes larger than the one it replaces: the bytes
# bounds are the measured cold push of the same repositories, plus this much
GROWTH = 1.05


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the repository
    old: str  # the line as generated, indentation aside
    new: str


def main_edit(mono: Monorepo) -> Edit:
    """(h): the input separator, a string constant, of the first service's main.go."""
    service = next(iter(mono.services))
    return Edit(
        f"cmd/{service}/main.go",
        'input := strings.Join(os.Args[1:], " ")',
        'input := strings.Join(os.Args[1:], ", ")',
    )


def shared_package(mono: Monorepo) -> Package:
    """The deepest package every service imports (directly or not): packages import only
    lower-numbered ones, so the lowest of them is the one most of the others build on."""
    common = set.intersection(*(mono.reachable(s) for s in mono.services)) if mono.services else set()
    if not common:
        raise ValueError("no package is imported by every service")
    return mono.packages[min(common)]


def shared_edit(mono: Monorepo) -> Edit:
    """(i): the error message of the shared package's Decode, which every Process calls."""
    name = shared_package(mono).name
    return Edit(
        f"{shared_package(mono).rel}/{name}.go",
        f'return nil, fmt.Errorf("{name}: decode: %w", err)',
        f'return nil, fmt.Errorf("{name}: decode records: %w", err)',
    )


EDITS: dict[str, Callable[[Monorepo], Edit]] = {MAIN: main_edit, SHARED: shared_edit}


class EditPhases(Case):
    """A case that, after cold and warm, times the edit phases; mixed into (a), (d), (e) and (f)."""

    phases: tuple[str, ...] = ("cold", "warm", *PHASES)

    def before(self, ctx: Context, res: CaseResult, phase: str) -> None:
        if phase in EDITS:
            edit = EDITS[phase](ctx.workspace.mono)
            ctx.workspace.edit_line(edit.path, edit.old, edit.new)


def _phase(r: CaseResult | None, name: str) -> Phase | None:
    return r.phases.get(name) if r is not None and r.ok else None


def _missing(results: Mapping[str, CaseResult], keys: str) -> str:
    """Why a target over `keys` cannot be evaluated: the first case not run or not ok."""
    for k in keys:
        r = results.get(k)
        if r is None:
            return f"case {k} not run"
        if r.status != "ok":
            return f"case {k} {r.status}"
    return "no edit phases measured"


def one_repo_bound(edited: Phase, cold: Phase) -> tuple[bool, str]:
    """(h)'s bytes: pushed into one repository only, and about no more than that repository's cold push.

    The threshold is measured, not fixed: the cold push of the service that changed
    is its layers, configs and manifests for each platform plus its index.
    """
    repos = edited.pushed_by_repo
    full = human(cold.bytes_pushed)
    if not repos:
        return False, f"nothing pushed (the edit must change one image); cold push {full}"
    if len(repos) > 1:
        return False, f"pushed into {len(repos)} repositories: {by_repo(repos)} (cold push {full})"
    ((repo, size),) = repos.items()
    cold_repo = cold.pushed_by_repo.get(repo)
    if cold_repo is None:
        return False, f"pushed {human(size)} into {repo}, which the cold push did not create"
    limit = GROWTH * cold_repo
    detail = f"{human(size)} into {repo} only, limit {human(int(limit))} = {GROWTH} x its cold push (all: {full})"
    return size <= limit, detail


def same_repos_bound(edited: Phase, cold: Phase) -> tuple[bool, str]:
    """(i)'s bytes: every image changed, so about the cold push, into the cold push's repositories only."""
    if edited.bytes_pushed is None or cold.bytes_pushed is None:
        return False, "bytes pushed n/a (registry replaced during the run?)"
    strays = sorted(set(edited.pushed_by_repo) - set(cold.pushed_by_repo))
    if strays:
        return False, f"pushed into repositories the cold push did not create: {', '.join(strays)}"
    limit = GROWTH * cold.bytes_pushed
    detail = (f"{human(edited.bytes_pushed)} into {len(edited.pushed_by_repo)} repositories, "
              f"limit {human(int(limit))} = {GROWTH} x the cold push")  # fmt: skip
    return edited.bytes_pushed <= limit, detail


def targets(results: Mapping[str, CaseResult]) -> list[Target]:
    """(h) and (i): crossbuild (a) against the floor (f), ko (e), and its own cold push."""
    a, e, f = results.get("a"), results.get("e"), results.get("f")
    out: list[Target] = []

    name = "(h) edit main.go: crossbuild <= floor + 2 s"
    am, fm = _phase(a, MAIN), _phase(f, MAIN)
    if am and fm:
        limit = fm.wall_s + 2
        out.append(Target(name, am.wall_s <= limit, f"{am.wall_s:.1f}s vs limit {limit:.1f}s (floor {fm.wall_s:.1f}s)"))
    else:
        out.append(Target(name, None, _missing(results, "af")))

    name = "(h) edit main.go: crossbuild >= 3x faster than ko"
    em = _phase(e, MAIN)
    if am and em:
        ratio = em.wall_s / am.wall_s
        out.append(Target(name, ratio >= 3, f"ko {em.wall_s:.1f}s vs {am.wall_s:.1f}s: {ratio:.1f}x"))
    else:
        out.append(Target(name, None, _missing(results, "ae")))

    name = "(h) edit main.go: crossbuild pushes one service's layers only"
    ac = _phase(a, "cold")
    if am and ac:
        passed, detail = one_repo_bound(am, ac)
        others = [f"({k}) {human(p.bytes_pushed)}" for k in "ed" if (p := _phase(results.get(k), MAIN))]
        out.append(Target(name, passed, detail + (f"; others pushed {', '.join(others)}" if others else "")))
    else:
        out.append(Target(name, None, _missing(results, "a")))

    name = "(i) edit a shared package: crossbuild <= 1.1 x floor + 3 s"
    ash, fsh = _phase(a, SHARED), _phase(f, SHARED)
    if ash and fsh:
        limit = 1.1 * fsh.wall_s + 3
        detail = f"{ash.wall_s:.1f}s vs limit {limit:.1f}s (floor {fsh.wall_s:.1f}s)"
        detail += bakealone.beside(fsh.wall_s, results, fsh.cpu.get("machine_busy_cpu_s"))
        out.append(Target(name, ash.wall_s <= limit, detail))
    else:
        out.append(Target(name, None, _missing(results, "af")))

    name = "(i) edit a shared package: crossbuild pushes every service's new layers, no more"
    if ash and ac:
        passed, detail = same_repos_bound(ash, ac)
        others = [f"({k}) {human(p.bytes_pushed)}" for k in "ed" if (p := _phase(results.get(k), SHARED))]
        out.append(Target(name, passed, detail + (f"; others pushed {', '.join(others)}" if others else "")))
    else:
        out.append(Target(name, None, _missing(results, "a")))
    return out
