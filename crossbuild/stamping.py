"""Version stamping: which [go.x] variables each service's binary really carries.

`go build -ldflags -X pkg.Var=value` sets a package-level string variable at
link time, and ignores without a word a variable that does not exist, a
constant, an embedded file, or a package the binary does not link
(cmd/link, golang/go#11009). crossbuild asks the Go toolchain before
anything compiles:

* `go list -deps` (golist.load): the packages each service links;
* govars (golist.string_vars): the string variables each package declares,
  which of them -X can set, and which code reads them.

A [go.x] variable applies to every service that links its package (`main.X`:
to every service whose main package declares X), so a helper binary that
does not import the version package is simply not stamped. A variable that
no service links, that is a constant or an embed, or that does not exist is
an error naming the variable, its package, the services and file:line,
before any compiler runs. A variable a service links but whose code never
reads it is dropped by the linker's dead-code pass: it is not expected in
that binary, and a note says so.

All services are compiled with the same -ldflags either way (one `go build`
for all of them); what differs per service is what the checks expect.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crossbuild import golist, gosources, incremental
from crossbuild.config import Config, Service
from crossbuild.errors import UserError

STATE_NAME = "stamping"
# go list's and govars' answers, kept for the next run (crossbuild.gosources decides when they still hold)
SOURCES_STATE_NAME = "gosources"
HEADERS_STATE_NAME = "goheaders"


@dataclass(frozen=True)
class Stamping:
    """Per service, the -X variables its binary carries; notes on the ones it does not."""

    applies: tuple[tuple[str, tuple[str, ...]], ...]
    notes: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()  # (variable, why it cannot be stamped anywhere)

    def for_service(self, name: str) -> tuple[str, ...]:
        return dict(self.applies).get(name, ())


@dataclass(frozen=True)
class Inspection:
    """What go list and govars say about the services and the module's own packages they link."""

    services: tuple[Service, ...]
    module_dir: Path
    mains: Mapping[str, golist.Package]  # service -> its main package
    by_path: Mapping[str, golist.Package]  # every package listed
    found: Mapping[str, golist.PackageVars]  # import path -> string variables and selectors

    def links(self, service: str) -> frozenset[str]:
        return self.mains[service].links

    def readers(self, pkg_path: str, name: str, service: str) -> bool:
        """Does code linked into `service` read pkg_path.name?"""
        pv = self.found.get(pkg_path)
        sv = pv.vars.get(name) if pv is not None else None
        if sv is not None and sv.local:
            return True
        ref = f"{pkg_path}.{name}"
        return any(ref in self.found[dep].refs for dep in self.links(service) if dep in self.found)


def _split(var: str, where: str) -> tuple[str, str]:
    pkg, _, name = var.rpartition(".")
    if not pkg or not name or "/" in name:
        raise UserError(f"{where}: '{var}' is not <import path>.<variable>, e.g. example.com/app/pkg/version.Version")
    return pkg, name


def why_not_settable(var: str, sv: golist.StringVar, base: Path | None = None) -> str:
    if base is not None and sv.file.is_absolute():
        sv = replace(sv, file=Path(os.path.relpath(sv.file, base)))
    if sv.kind == "const":
        return (
            f"-X {var}: {sv.name} is a constant ({sv.where}); -X can only set a variable: "
            f'declare it with `var {sv.name} = "..."`'
        )
    if sv.kind == "embed":
        return f"-X {var}: {sv.name} is filled by //go:embed ({sv.where}); -X cannot change it"
    if sv.kind == "expr":
        return (
            f"-X {var}: {sv.name} is initialised by a computed expression ({sv.where}); the linker cannot "
            "override it: initialise it with a string literal or leave it uninitialised"
        )
    return f"-X {var}: {sv.name} is not declared as a string ({sv.where}); -X sets string variables only"


def _missing(var: str, pkg: str, name: str, declared: Sequence[str], where_dir: Path) -> str:
    near = difflib.get_close_matches(name, list(declared), n=1)
    hint = f" (did you mean {pkg}.{near[0]}?)" if near else ""
    return f"-X {var}: package {pkg} ({where_dir}) declares no string variable {name}{hint}"


def inspect(
    module_dir: Path,
    services: Sequence[Service],
    x_packages: Sequence[str] = (),
    *,
    tags: Sequence[str] = (),
    cgo: bool = False,
    env: Mapping[str, str] | None = None,
    cache: incremental.State | None = None,
    exclude: Sequence[Path] = (),
) -> Inspection:
    """One `go list -deps` over the services (and x_packages), then govars over the module's own packages.

    `cache`: their answers from earlier runs, reused where the sources they read are unchanged
    (crossbuild.gosources; `exclude`: directories of the module that are not sources)."""
    go_env = golist.go_env_for("linux", "amd64", cgo, env)
    patterns = [s.package for s in services] + list(x_packages)
    listed = _listed(module_dir, patterns, go_env, tags, cache, exclude)
    # the standard library's directories need no resolving: a service is never one of them
    by_dir = {p.dir.resolve(): p for p in listed if p.dir != Path() and not p.standard}
    mains: dict[str, golist.Package] = {}
    for s in services:
        pkg = by_dir.get((module_dir / s.package).resolve())
        if pkg is None or pkg.name != "main":
            detail = f": {pkg.error}" if pkg is not None and pkg.error else ""
            raise UserError(f"service '{s.name}': {s.package} is not a main package go can list{detail}")
        mains[s.name] = pkg
    # the repository's own packages: its module(s), a go.work's modules too; not the module cache
    modules = {p.module for p in mains.values() if p.module}
    root = module_dir.resolve()

    @functools.cache
    def inside(module_dir: Path | None) -> bool:
        return module_dir is not None and module_dir.resolve().is_relative_to(root)

    def ours(p: golist.Package) -> bool:
        return p.module in modules or inside(p.module_dir) or p.import_path in x_packages

    own = [p for p in listed if not p.standard and p.dir != Path() and ours(p)]
    found = _string_vars(own, tags, cgo, cache)
    return Inspection(tuple(services), module_dir, mains, {p.import_path: p for p in listed}, found)


def _listed(
    module_dir: Path,
    patterns: Sequence[str],
    go_env: Mapping[str, str],
    tags: Sequence[str],
    cache: incremental.State | None,
    exclude: Sequence[Path],
) -> list[golist.Package]:
    """go list -deps, or its answer from an earlier run when no file header, file name or
    module file changed since. Only main packages keep their Deps (the others' are never read),
    and an answer with errors is not kept: fetching a module can change it."""
    key = gosources.graph_key(module_dir, patterns, go_env, tags, exclude) if cache is not None else None
    record = cache.get("graph") if cache is not None else {}
    if key is not None and record.get("key") == key and isinstance(record.get("packages"), list):
        return golist.packages(record["packages"])
    items = [
        item if item.get("Name") == "main" else {k: v for k, v in item.items() if k != "Deps"}
        for item in golist.load_items(module_dir, patterns, go_env, tags, deps=True)
    ]
    if cache is not None:
        if key is not None and not any(i.get("Error") or i.get("DepsErrors") for i in items):
            cache.put("graph", {"key": key, "packages": items})
        else:
            cache.drop("graph")
    return golist.packages(items)


def _string_vars(
    own: Sequence[golist.Package], tags: Sequence[str], cgo: bool, cache: incremental.State | None
) -> dict[str, golist.PackageVars]:
    """govars over the packages' directories; with `cache`, only over those whose files changed."""
    import_paths = {p.dir: p.import_path for p in own}
    options: dict[str, Any] = {"goos": "linux", "goarch": "amd64", "tags": list(tags), "cgo": cgo}
    if cache is None:
        return golist.string_vars(import_paths, import_paths, **options)
    settings = {**options, "govars": golist.helper_source_key(), "go": gosources.go_binary_key()}
    known = cache.get("vars")
    keys = {str(d): gosources.dir_key(d, settings) for d in import_paths}
    stale = [Path(d) for d, k in keys.items() if (known.get(d) or {}).get("key") != k]
    fresh = {str(Path(item["dir"])): item for item in golist.govars_items(stale, **options)}
    records: dict[str, dict[str, Any]] = {
        d: {"key": k, "item": fresh[d]} if d in fresh else known[d] for d, k in keys.items()
    }
    cache.put("vars", records)
    return golist.package_vars([r["item"] for r in records.values()], import_paths)


def judge(inspection: Inspection, variables: Sequence[str], where: str = "go.x") -> Stamping:
    """Which of `variables` each service carries, and why a variable cannot be stamped anywhere."""
    services = inspection.services
    applies: dict[str, list[str]] = {s.name: [] for s in services}
    notes: list[str] = []
    problems: list[tuple[str, str]] = []
    not_linked: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (package, services) -> variables
    everyone = ", ".join(s.name for s in services)
    for var in dict.fromkeys(variables):
        pkg_path, name = _split(var, where)
        if pkg_path == "main":
            declaring = []
            for s in services:
                pv = inspection.found.get(inspection.mains[s.name].import_path)
                sv = pv.vars.get(name) if pv is not None else None
                if sv is None:
                    continue
                if not sv.settable:
                    problems.append((var, why_not_settable(var, sv, inspection.module_dir)))
                    break
                declaring.append(s.name)
                if sv.local:
                    applies[s.name].append(var)
                else:
                    notes.append(f"-X {var}: {s.name} never reads {name}, so the linker drops it there")
            else:
                if not declaring:
                    problems.append(
                        (
                            var,
                            f"-X {var}: no service's main package declares {name} ({everyone}); declare "
                            f"`var {name} string` in package main or point the entry at the package that has it",
                        )
                    )
            continue
        pkg = inspection.by_path.get(pkg_path)
        if pkg is None or (pkg.error and not pkg.name):
            reason = pkg.error.splitlines()[0] if pkg is not None and pkg.error else "go list does not know it"
            problems.append((var, f"-X {var}: package {pkg_path} cannot be found ({reason}); fix the import path"))
            continue
        linked_by = [s.name for s in services if pkg_path in inspection.links(s.name)]
        if not linked_by:
            problems.append(
                (
                    var,
                    f"-X {var}: no service links package {pkg_path} ({everyone} do not import it); the Go linker "
                    "would ignore it. Fix the import path or remove the entry",
                )
            )
            continue
        pv = inspection.found.get(pkg_path)
        sv = pv.vars.get(name) if pv is not None else None
        if sv is None:
            declared = [v.name for v in pv.vars.values()] if pv is not None else []
            problems.append((var, _missing(var, pkg_path, name, declared, pkg.dir)))
            continue
        if not sv.settable:
            problems.append((var, why_not_settable(var, sv, inspection.module_dir)))
            continue
        for svc in linked_by:
            if inspection.readers(pkg_path, name, svc):
                applies[svc].append(var)
            else:
                notes.append(f"-X {var}: {svc} links {pkg_path} but never reads {name}, so the linker drops it there")
        unlinked = tuple(s.name for s in services if s.name not in linked_by)
        if unlinked:
            not_linked.setdefault((pkg_path, unlinked), []).append(name)
    for (pkg_path, unlinked), names in not_linked.items():
        shown = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
        notes.append(f"-X {pkg_path}.{shown}: not stamped into {', '.join(unlinked)} (they do not link {pkg_path})")
    return Stamping(tuple((s, tuple(v)) for s, v in applies.items()), tuple(dict.fromkeys(notes)), tuple(problems))


def analyse(
    module_dir: Path,
    services: Sequence[Service],
    variables: Sequence[str],
    *,
    tags: Sequence[str] = (),
    cgo: bool = False,
    env: Mapping[str, str] | None = None,
    where: str = "go.x",
    cache: incremental.State | None = None,
    exclude: Sequence[Path] = (),
) -> Stamping:
    """Which of `variables` each service carries; UserError for the first that cannot be stamped anywhere."""
    variables = list(dict.fromkeys(variables))
    if not variables or not services:
        return Stamping(tuple((s.name, ()) for s in services))
    x_packages = sorted({_split(v, where)[0] for v in variables} - {"main"})
    inspection = inspect(module_dir, services, x_packages, tags=tags, cgo=cgo, env=env, cache=cache, exclude=exclude)
    stamping = judge(inspection, variables, where)
    if stamping.problems:
        raise UserError(f"{where}: {stamping.problems[0][1]}")
    return stamping


def parts_file(cfg: Config) -> Path:
    """build/state/goheaders.json: each .go file's share of the package graph's key, by its stat."""
    return cfg.output_dir / "state" / f"{HEADERS_STATE_NAME}.json"


def _settings_key(cfg: Config, services: Sequence[Service]) -> str:
    return incremental.key_of(
        {
            "services": [[s.name, s.package] for s in services],
            "x": sorted({var for s in services for var, _t in cfg.go_for(s).x}),
            "tags": list(cfg.go.tags),
            "cgo": cfg.go.cgo,
            "env": sorted(cfg.go.env),
        }
    )


def _inputs_key(cfg: Config, services: Sequence[Service], tree: str) -> str:
    return incremental.key_of({"tree": tree, "settings": _settings_key(cfg, services)})


def resolve(
    cfg: Config, services: Sequence[Service], tree: str = "", state: incremental.State | None = None
) -> tuple[Config, Stamping]:
    """cfg with `stamped` filled in for `services`.

    The answer is cached in `state` (its caller saves it) under a key of the tree and settings.
    """
    variables = [var for s in services for var, _t in cfg.go_for(s).x]
    if not variables:
        return cfg, Stamping(tuple((s.name, ()) for s in services))
    tree = tree or incremental.tree_hash(cfg.module_dir, exclude=[cfg.output_dir])
    key = _inputs_key(cfg, services, tree)
    if state is None:
        state = incremental.State(cfg.output_dir / "state" / f"{STATE_NAME}.json")
    record = state.get("last")
    if record.get("key") == key and isinstance(record.get("applies"), dict):
        stamping = Stamping(
            tuple((s.name, tuple(record["applies"].get(s.name, ()))) for s in services),
            tuple(record.get("notes", ())),
        )
    else:
        sources = incremental.State(cfg.output_dir / "state" / f"{SOURCES_STATE_NAME}.json")
        gosources.load_parts(parts_file(cfg))
        stamping = analyse(
            cfg.module_dir,
            services,
            variables,
            tags=cfg.go.tags,
            cgo=cfg.go.cgo,
            env=dict(cfg.go.env),
            where=f"{cfg.path.name} [go.x]",
            cache=sources,
            exclude=[cfg.output_dir],
        )
        sources.save()
        gosources.save_parts(parts_file(cfg))
        state.put(
            "last",
            {
                "key": key,
                "applies": dict(stamping.applies),
                "notes": list(stamping.notes),
            },
        )
    return replace(cfg, stamped=stamping.applies), stamping
