"""`crossbuild init [DIR]`: adopt crossbuild in an existing Go repository, unedited.

The steps, each in its own module:

* repository: the Go module or workspace, the project name, an output
  directory nobody else uses;
* crossbuild.services: the main packages below cmd/ (any depth) or at the root;
* release: what the repository's own release setup says (GoReleaser, make and
  shell scripts, Go build programs, Dockerfiles), each setting with its file;
* versions: the -X variables to stamp, judged the way the build judges them
  (crossbuild.stamping: one `go list -deps` and the govars helper; nothing is
  compiled, so init takes seconds even on a large repository);
* render / makefiles: config.toml, and a Makefile or `crossbuild.mk`.

An existing file is never overwritten without `force`; running init twice
changes nothing and says so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crossbuild import config as config_mod
from crossbuild import output, platforms, stamping
from crossbuild import services as discovered
from crossbuild.adopt import makefiles, release, render, repository, versions
from crossbuild.config import Service
from crossbuild.errors import UserError

NEXT_TARGET = "image.multiarch"
WRITTEN, OVERWRITTEN, UNCHANGED, SKIPPED = "written", "overwritten", "unchanged", "skipped"


@dataclass(frozen=True)
class FileReport:
    path: str  # relative to the repository, POSIX
    status: str  # written | overwritten | unchanged | skipped


@dataclass(frozen=True)
class InitResult:
    root: Path
    module: str
    services: tuple[str, ...]
    x: tuple[tuple[str, str], ...]  # (-X variable, template) written to [go.x]
    files: tuple[FileReport, ...]
    notes: tuple[str, ...]
    include_line: str  # the line to add to the user's Makefile; "" when nothing to add
    next_command: str
    taken: tuple[release.Taken, ...] = ()  # settings taken from the release setup
    unmapped: tuple[str, ...] = ()  # what the release setup says that crossbuild cannot express

    @property
    def changed(self) -> bool:
        return any(f.status in (WRITTEN, OVERWRITTEN) for f in self.files)

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files if f.status == SKIPPED)


# --- writing ---------------------------------------------------------------------------------------------


def decide(path: Path, content: str, force: bool) -> str:
    """What writing `content` to `path` would do: written / overwritten / unchanged / skipped."""
    if not path.exists() and not path.is_symlink():
        return WRITTEN
    try:
        current = path.read_bytes()
    except OSError:
        return SKIPPED
    if current == content.encode():
        return UNCHANGED
    return OVERWRITTEN if force and path.is_file() else SKIPPED


def write_file(root: Path, rel: str, content: str, force: bool) -> FileReport:
    path = root / rel
    status = decide(path, content, force)
    if status in (WRITTEN, OVERWRITTEN):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.crossbuild-init.tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
    return FileReport(rel, status)


# --- planning --------------------------------------------------------------------------------------------


class _Clock:
    """Step lines with the time each step took, so a long init is never silent."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.monotonic()

    def step(self, message: str) -> None:
        if not self.quiet:
            output.step(f"{message} ({time.monotonic() - self.started:.1f}s)")


def _services(
    repo: repository.Repository, found: discovered.Discovery, setup: release.ReleaseSetup, notes: list[str]
) -> list[render.ServiceDraft]:
    """The release's builds when it has any (that is what it ships), else every main package found."""
    drafts: list[render.ServiceDraft] = []
    if setup.builds:
        source = next((t.source for t in setup.taken if t.setting.startswith("services.")), "the release setup")
        shipped = {b.package for b in setup.builds}
        for b in setup.builds:
            if not (repo.module_dir / b.package).is_dir() or not discovered.is_main(repo.module_dir / b.package):
                notes.append(f"{source}: build {b.name} ({b.package}) is not a main package here; left out")
                continue
            drafts.append(
                render.ServiceDraft(b.name, b.package, b.tags, b.ldflags, dict(b.x), dict(b.env), source=source)
            )
        others = [m.package for m in found.services if m.package not in shipped]
        if others and drafts:
            notes.append(f"not built by {source}, so left out: {', '.join(others)}")
    if not drafts:
        drafts = [render.ServiceDraft(m.name, m.package, source="") for m in found.services]
    for package, why in found.left_out:
        notes.append(f"{package} left out: {why} (list it in config.toml to build it)")
    names = [d.name for d in drafts]
    for d in drafts:
        if names.count(d.name) > 1:
            raise UserError(f"{repo.root}: two programs are both named {d.name}; list services by hand")
        d.cmd = setup.cmd.get(d.name, [])
    return drafts


def _platforms(setup: release.ReleaseSetup) -> tuple[list[str], list[str]]:
    """(binary platforms, image platforms): the release's, else crossbuild's defaults (with its GOARM)."""
    valid = platforms.go_dist_list()
    known = [p for p in setup.platforms if "/".join(p.split("/")[:2]) in valid]
    images = [p for p in setup.image_platforms() if p in known]
    if known and images:
        return known, images
    defaults = list(config_mod.DEFAULT_PLATFORMS)
    if setup.arm_variant:
        defaults = [f"linux/arm/{setup.arm_variant}" if p.startswith("linux/arm/") else p for p in defaults]
    return defaults, defaults


def plan(target_dir: Path, force: bool = False, quiet: bool = False) -> tuple[dict[str, str], InitResult]:
    """Everything init would write (relative path -> content) and the result, writing nothing."""
    clock = _Clock(quiet)
    repo = repository.find(target_dir)
    clock.step(f"module {repo.module or repo.name} in {repo.module_rel}")
    notes: list[str] = []
    found = discovered.discover(repo.module_dir, repo.name)
    setup = release.read(repo.root, repo.module_dir, [m.name for m in found.services], repo.name)
    drafts = _services(repo, found, setup, notes)
    if not drafts:
        raise UserError(
            f"{repo.module_dir}: no main packages below cmd/ or at the module root; crossbuild builds each "
            "main package (list others in config.toml as [[services]] with name and package)"
        )
    clock.step(f"{len(drafts)} service(s): {', '.join(d.name for d in drafts)}")
    services = [Service(name=d.name, package=d.package, image=d.name) for d in drafts]
    choice = versions.Choice()
    x_packages = sorted({var.rpartition(".")[0] for var in setup.x} - {"main"})
    clock.step(f"go list -deps and version variables of {len(services)} service(s)")
    try:
        inspection = stamping.inspect(
            repo.module_dir, services, x_packages, tags=setup.tags or (), cgo=bool(setup.cgo), env=setup.env
        )
    except UserError as exc:
        notes.append(f"could not list what the services link ({exc}); -X entries not checked")
        choice.x = list(setup.x.items())
    else:
        choice = versions.choose(inspection, setup.x)
    notes += choice.notes
    output_dir, note = repository.choose_output_dir(repo.root)
    if note:
        notes.append(note)
    ignore_note = repository.gitignore_note(repo.root, output_dir)
    if ignore_note:
        notes.append(ignore_note)
    binary_platforms, image_platforms = _platforms(setup)
    origins = {t.setting: t.source for t in setup.taken}
    if setup.platforms or setup.arm_variant:
        origins["platforms"] = next(
            (t.source for t in setup.taken if t.setting.startswith(("services.", "platforms"))), ""
        )
    draft = render.Draft(
        module=repo.module,
        name=discovered.sanitize_name(setup.project_name) or repo.name,
        module_dir=repo.module_rel,
        output_dir=output_dir,
        source_url=repository.source_url(repo.module),
        services=drafts,
        ldflags=setup.ldflags if setup.ldflags is not None else ["-s", "-w"],
        tags=setup.tags or [],
        cgo=bool(setup.cgo),
        env=setup.env,
        x=choice.x,
        x_left_out=choice.left_out,
        binary_platforms=binary_platforms,
        image_platforms=image_platforms,
        expose=setup.expose,
        user=setup.user or config_mod.ImageConfig.user,
        origins=origins,
    )
    if setup.cgo:
        notes.append("the release builds with CGO_ENABLED=1: cross-compiling needs a C toolchain per target")
    files = {config_mod.DEFAULT_CONFIG: render.config_toml(draft)}
    make = makefiles.choose_makefile(repo.root)
    installed = makefiles.installed_command()
    include_line = ""
    next_target = NEXT_TARGET
    if make.file == "Makefile":
        files["Makefile"] = makefiles.render_makefile(repo.module or repo.name, installed)
    else:
        files[makefiles.INCLUDE_FILE] = makefiles.render_include(make.defined, installed)
        if make.wrapper:
            files[make.wrapper] = makefiles.render_wrapper(make.user_makefile)
            notes.append(
                f"{make.wrapper} includes your {make.user_makefile} and crossbuild.mk (make reads it first); "
                f"or add `{makefiles.INCLUDE_LINE}` to {make.user_makefile} and delete {make.wrapper}"
            )
        elif not make.included:
            include_line = makefiles.INCLUDE_LINE
        if makefiles.is_defined(NEXT_TARGET, make.defined):
            next_target = f"crossbuild.{NEXT_TARGET}"
    reports = tuple(FileReport(rel, decide(repo.root / rel, text, force)) for rel, text in files.items())
    result = InitResult(
        root=repo.root,
        module=repo.module or repo.name,
        services=tuple(d.name for d in drafts),
        x=tuple(choice.x),
        files=reports,
        notes=tuple(dict.fromkeys(notes)),
        include_line=include_line,
        next_command=f"make {next_target}",
        taken=tuple(setup.taken),
        unmapped=tuple(setup.unmapped),
    )
    return files, result


def init(target_dir: Path, force: bool = False) -> InitResult:
    """Adopt crossbuild in the Go repository at `target_dir`; print what was done and what next."""
    output.step(f"crossbuild init {target_dir}")
    files, planned = plan(target_dir, force)
    reports = tuple(write_file(planned.root, rel, text, force) for rel, text in files.items())
    result = InitResult(**{**planned.__dict__, "files": reports})
    report(result)
    return result


def _rows(taken: Sequence[release.Taken]) -> list[list[str]]:
    return [[t.setting, t.value if len(t.value) <= 60 else t.value[:57] + "...", t.source] for t in taken]


def report(result: InitResult) -> None:
    output.ok(f"module {result.module}: {len(result.services)} service(s): {', '.join(result.services)}")
    if result.taken:
        output.step("taken from the repository's release setup:")
        output.table(["setting", "value", "from"], _rows(result.taken))
    for what in result.unmapped:
        output.info(f"not mapped: {what}")
    if result.x:
        packages = ", ".join(sorted({var.rpartition(".")[0] for var, _t in result.x}))
        output.ok(f"-X: {versions.stamped_values(result.x)} ({packages})")
    for note in result.notes:
        output.info(f"note: {note}")
    output.table(["file", "result"], [[f.path, output.status_word(f.status)] for f in result.files])
    if result.skipped:
        output.warn(f"left alone (exists, differs): {', '.join(result.skipped)}; re-run with --force to overwrite")
    elif not result.changed:
        output.ok("nothing to do: all files up to date")
    if result.include_line:
        makefile = next((n for n in makefiles.MAKEFILE_NAMES if (result.root / n).is_file()), "Makefile")
        output.step(f"add this line to your {makefile}:")
        print(f"    {result.include_line}", flush=True)
    if not makefiles.installed_command() and not (result.root / ".venv/bin/crossbuild").is_file():
        output.warn(
            "the make targets run `crossbuild`: install it once per machine with pipx install /path/to/crossbuild"
        )
    output.step(f"next: {result.next_command}")
