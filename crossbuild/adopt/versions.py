"""Which version variables `crossbuild init` stamps with -X, and why.

The release setup's own -X entries come first (they say what the project
stamps). Without them, the module's packages that the services link are
searched for package-level string variables with version-like names
(Version, GitCommit, BuildDate, ... as GoReleaser's main.version,
main.commit, main.date): the library package that the most services read
wins, plus `main.<Var>` for services whose own main package declares them.
Every entry is then judged the way the build judges it (crossbuild.stamping):
an entry nothing links, a constant, an embed or a computed value is left out
with its file:line and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from crossbuild import stamping
from crossbuild.golist import StringVar

# Variable name, lower case and without _ or -, -> crossbuild template.
VERSION_TEMPLATES: dict[str, str] = {
    "version": "{version}",
    "gitversion": "{version}",
    "appversion": "{version}",
    "buildversion": "{version}",
    "semver": "{version}",
    "gittag": "{version}",
    "gitcommit": "{commit}",
    "commit": "{commit}",
    "commitsha": "{commit}",
    "commithash": "{commit}",
    "githash": "{commit}",
    "gitsha": "{commit}",
    "revision": "{commit}",
    "gitrevision": "{commit}",
    "buildcommit": "{commit}",
    "shortcommit": "{short_commit}",
    "gitshortcommit": "{short_commit}",
    "builddate": "{date}",
    "date": "{date}",
    "buildtime": "{date}",
    "buildtimestamp": "{date}",
    "commitdate": "{date}",
    "gitcommitdate": "{date}",
    "compiledate": "{date}",
    "gittreestate": "{tree_state}",
    "treestate": "{tree_state}",
}


def template_for(var: str) -> str | None:
    """The crossbuild template a version variable gets, None when the name is not recognised."""
    return VERSION_TEMPLATES.get(re.sub(r"[_-]", "", var).lower())


@dataclass
class Choice:
    x: list[tuple[str, str]] = field(default_factory=list)  # (-X variable, template)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (-X variable, template) judged unusable
    notes: list[str] = field(default_factory=list)


def _version_vars(pv_vars: Mapping[str, StringVar]) -> dict[str, StringVar]:
    return {name: sv for name, sv in pv_vars.items() if template_for(name) is not None}


def candidates(inspection: stamping.Inspection) -> tuple[list[tuple[str, str]], list[str]]:
    """(-X entries worth stamping, notes on version variables -X cannot set), from the packages linked."""
    notes: list[str] = []
    services = [s.name for s in inspection.services]
    main_paths = {inspection.mains[s].import_path for s in services}
    scored: list[tuple[tuple[bool, int, int, int], str, list[str]]] = []
    for path, pv in inspection.found.items():
        if path in main_paths:
            continue
        wanted = _version_vars(pv.vars)
        linking = [s for s in services if path in inspection.links(s)]
        readable = [
            n for n, sv in wanted.items() if sv.settable and any(inspection.readers(path, n, s) for s in linking)
        ]
        for name, sv in wanted.items():
            if not sv.settable and any(path in inspection.links(s) for s in services):
                notes.append(stamping.why_not_settable(f"{path}.{name}", sv, inspection.module_dir))
        if not readable:
            continue
        unread = [n for n, sv in wanted.items() if sv.settable and n not in readable]
        notes += [f"-X {path}.{n} left out: no service reads it, so the linker would drop it" for n in unread]
        read_by = {
            s for s in services for n in readable if path in inspection.links(s) and inspection.readers(path, n, s)
        }
        if not read_by:
            continue
        has_version = any(template_for(n) == "{version}" for n in readable)
        scored.append(((has_version, len(read_by), len(readable), -path.count("/")), path, readable))
    x: list[tuple[str, str]] = []
    covered: set[str] = set()
    if scored:
        scored.sort(reverse=True)
        _score, path, names = scored[0]
        x += [(f"{path}.{n}", template_for(n) or "") for n in names]
        covered = {s for s in services if path in inspection.links(s)}
    main_names: dict[str, None] = {}
    for s in services:
        if s in covered:
            continue
        main_vars = inspection.found.get(inspection.mains[s].import_path)
        if main_vars is None:
            continue
        for name, sv in _version_vars(main_vars.vars).items():
            if sv.settable and sv.local:
                main_names.setdefault(name, None)
            elif not sv.settable:
                notes.append(stamping.why_not_settable(f"main.{name}", sv, inspection.module_dir))
    x += [(f"main.{n}", template_for(n) or "") for n in main_names]
    return x, list(dict.fromkeys(notes))


def choose(inspection: stamping.Inspection, release_x: Mapping[str, str], where: str = "release setup") -> Choice:
    """The [go.x] entries init writes: the release's own -X entries, else the best candidates found."""
    choice = Choice()
    if release_x:
        proposed = list(release_x.items())
    else:
        proposed, choice.notes = candidates(inspection)
    if not proposed:
        return choice
    judged = stamping.judge(inspection, [var for var, _t in proposed], where)
    bad = dict(judged.problems)
    for var, tmpl in proposed:
        if var in bad:
            choice.left_out.append((var, tmpl))
            choice.notes.append(f"left out {bad[var]}")
        else:
            choice.x.append((var, tmpl))
    choice.notes += list(judged.notes)
    return choice


def stamped_values(x: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{var.rsplit('.', 1)[-1]}={tmpl}" for var, tmpl in x)
