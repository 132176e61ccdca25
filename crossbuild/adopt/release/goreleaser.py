"""GoReleaser's builds (main, binary, ldflags and -X, flags, tags, env, goos/goarch/goarm/goamd64,
ignore, targets) and promu's (binaries, ldflags, -tags), mapped to config.toml settings.

Settings every build shares become project-wide ([go]); the rest stay per service.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from crossbuild import services as discovered
from crossbuild.adopt.release.model import Build, ReleaseSetup
from crossbuild.adopt.release.templates import _GR_TEMPLATE, goreleaser_template, promu_template

GORELEASER_NAMES = (".goreleaser.yaml", ".goreleaser.yml", "goreleaser.yaml", "goreleaser.yml")
GORELEASER_DIRS = (".", "build", ".github", "scripts", "deploy", "hack")
# GoReleaser v2 defaults (goreleaser.com/customization/builds/go/)
_GR_GOOS = ("darwin", "linux", "windows")
_GR_GOARCH = ("386", "amd64", "arm64")
_GR_GOARM = "6"


# Architectures Linux images exist for (the OCI image-spec's platform list, Go's names).
def find_goreleaser(root: Path) -> Path | None:
    for directory in GORELEASER_DIRS:
        for name in GORELEASER_NAMES:
            path = root / directory / name
            if path.is_file():
                return path
    return None


def _strs(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    return []


def _words(text: str) -> list[str]:
    """Shell words of a flags string, each {{ template }} (which may hold quotes and blanks) kept whole."""
    templates = [m.group(0) for m in _GR_TEMPLATE.finditer(text)]
    held = _GR_TEMPLATE.sub(lambda m: f"\x00{templates.index(m.group(0))}\x00", text)
    try:
        words = shlex.split(held)
    except ValueError:
        words = held.split()
    return [re.sub(r"\x00(\d+)\x00", lambda m: templates[int(m.group(1))], w) for w in words]


_CONTROL = re.compile(r"\{\{-?\s*(if|else|end|range|with|define|block|template)\b")


def split_ldflags(flags: Iterable[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(-ldflags arguments other than -X, {-X variable: raw value}, what cannot be mapped: template
    conditions and words a release's environment fills in)."""
    other: list[str] = []
    x: dict[str, str] = {}
    conditional: list[str] = []
    for raw in flags:
        if _CONTROL.search(raw):
            conditional.append(raw)  # {{if .IsNightly}}-X ...{{end}}: not what a release build does
            continue
        words = _words(raw)
        n = 0
        while n < len(words):
            word = words[n]
            if word == "-X" and n + 1 < len(words):
                var, _, val = words[n + 1].partition("=")
                x[var] = val
                n += 2
                continue
            if word.startswith("-X="):
                var, _, val = word[3:].partition("=")
                x[var] = val
            elif "{{" in word and goreleaser_template(word) is None:
                conditional.append(word)  # {{ .Env.LDFLAGS }}: filled by the release's environment
            elif word:
                other.append(word)
            n += 1
    return other, x, conditional


def _gr_platforms(build: Mapping[str, Any]) -> list[str]:
    targets = _strs(build.get("targets"))
    found: list[str] = []
    if targets and not any(t.startswith("go_") for t in targets):
        for t in targets:
            parts = t.split("_")
            if len(parts) < 2:
                continue
            os_, arch = parts[0], parts[1]
            variant = parts[2] if len(parts) > 2 else ""
            found.append(_platform(os_, arch, variant))
        return found
    goos = _strs(build.get("goos")) or list(_GR_GOOS)
    goarch = _strs(build.get("goarch")) or list(_GR_GOARCH)
    goarm = _strs(build.get("goarm")) or [_GR_GOARM]
    goamd64 = _strs(build.get("goamd64")) or ["v1"]
    ignore = [i for i in build.get("ignore") or [] if isinstance(i, dict)]
    for os_ in goos:
        for arch in goarch:
            variants = goarm if arch == "arm" else goamd64 if arch == "amd64" else [""]
            for variant in variants:
                if any(_ignored(i, os_, arch, variant) for i in ignore):
                    continue
                found.append(_platform(os_, arch, variant))
    return found


def _ignored(rule: Mapping[str, Any], os_: str, arch: str, variant: str) -> bool:
    checks = {"goos": os_, "goarch": arch, "goarm": variant if arch == "arm" else None}
    checks["goamd64"] = variant if arch == "amd64" else None
    return all(key not in rule or str(rule[key]) == (value or "") for key, value in checks.items())


def _platform(os_: str, arch: str, variant: str) -> str:
    if arch == "arm":
        v = variant.lstrip("v") or _GR_GOARM
        return f"{os_}/arm/v{v}"
    if arch == "amd64" and variant and variant != "v1":
        return f"{os_}/amd64/{variant}"
    return f"{os_}/{arch}"


_PLATFORM_FIELDS = re.compile(r"\{\{-?\s*\.(Os|Arch|Arm|Arm64|Amd64|Mips|Target|Runtime)\b")


def _cgo(raw: Mapping[str, Any]) -> bool:
    return any(item.replace(" ", "") == "CGO_ENABLED=1" for item in _strs(raw.get("env")))


def _representative(raws: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Of one program's builds (per OS, per feature set), the one an image is made like:
    a Linux build, without cgo (cross-compiling cgo needs a C toolchain per target)."""

    def score(raw: Mapping[str, Any]) -> tuple[bool, bool, bool]:
        linux = any(p.startswith("linux/") for p in _gr_platforms(raw))
        toolchain = any(item.split("=", 1)[0] in ("CC", "CXX") for item in _strs(raw.get("env")))
        return linux, not _cgo(raw), not toolchain

    return max(raws, key=score)


def _binary_name(raw: Mapping[str, Any], package: str, default: str, setup: ReleaseSetup) -> str:
    binary_raw = str(raw.get("binary") or "")
    base = binary_raw.rsplit("/", 1)[-1]
    if base and not _PLATFORM_FIELDS.search(base):
        rendered = goreleaser_template(base)
        if rendered is not None:
            name = discovered.sanitize_name(rendered.replace("{project}", setup.project_name or default))
            if name and "{" not in name:
                return name
    # no binary, or one named per platform (cosign-linux-{{ .Arch }}): the program's own name
    return default if package == "." else discovered.sanitize_name(Path(package).name) or default


def read_goreleaser(path: Path, root: Path, module_dir: Path, setup: ReleaseSetup, project: str = "app") -> None:
    rel = path.relative_to(root).as_posix()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        setup.cannot(f"{rel}: not valid YAML ({str(exc).splitlines()[0]})")
        return
    if not isinstance(data, dict):
        return
    if isinstance(data.get("project_name"), str):
        setup.project_name = data["project_name"]
    builds = data.get("builds")
    if builds is None and isinstance(data.get("build"), dict):
        builds = [data["build"]]
    if builds is None and discovered.is_main(module_dir):
        builds = [{}]  # GoReleaser's default: one build of the module root
    by_package: dict[str, list[Mapping[str, Any]]] = {}
    for raw in builds or []:
        if not isinstance(raw, dict) or raw.get("skip") is True:
            continue
        if raw.get("builder", "go") != "go":
            setup.cannot(f"{rel}: build {raw.get('id', '?')} uses builder {raw.get('builder')}, not go")
            continue
        build_dir = module_dir / str(raw.get("dir") or ".")
        main = str(raw.get("main") or ".")
        package = discovered.package_of(module_dir, os.path.relpath(build_dir / main, module_dir))
        by_package.setdefault(package, []).append(raw)
    default = discovered.sanitize_name(setup.project_name) or project
    for package, raws in by_package.items():
        raw = _representative(raws)
        build = Build(name=_binary_name(raw, package, default, setup), package=package)
        for each in raws:
            build.platforms += [p for p in _gr_platforms(each) if p not in build.platforms]
        if len(raws) > 1:
            setup.cannot(
                f"{rel}: {len(raws)} builds of {package}; settings taken from build {raw.get('id', '?')} "
                "(Linux, no cgo)"
            )
        other, xs, unmapped = split_ldflags(_strs(raw.get("ldflags")))
        for entry in unmapped:
            setup.cannot(f"{rel}: ldflags {entry!r} (a template crossbuild cannot fill)")
        if raw.get("ldflags") is not None and (other or not unmapped):
            build.ldflags = other  # ({{ .Env.LDFLAGS }} alone says nothing crossbuild can use)
        for var, value in xs.items():
            tmpl = goreleaser_template(value)
            if tmpl is None:
                setup.cannot(f"{rel}: -X {var}={value} (template not mapped)")
            else:
                build.x[var] = tmpl
        tags = [t for item in _strs(raw.get("tags")) for t in re.split(r"[,\s]+", item) if t]
        for flag in _strs(raw.get("flags")):
            m = re.fullmatch(r"-tags[= ](.+)", flag)
            if m:
                tags += [t for t in re.split(r"[,\s]+", m.group(1).strip("'\"")) if t]
            elif flag == "-trimpath":
                build.trimpath = True
            elif flag not in ("-v", "-a"):
                setup.cannot(f"{rel}: build flag {flag}")
        # what GoReleaser builds with is the release: no tags there means none (not a script's)
        build.tags = list(dict.fromkeys(t for t in tags if "{{" not in t))
        for item in _strs(raw.get("env")):
            key, _, value = item.partition("=")
            if key == "CGO_ENABLED":
                build.cgo = value.strip() == "1"
            elif "{{" in value:
                setup.cannot(f"{rel}: env {item} (template not mapped)")
            elif key:
                build.env[key] = value
        if raw.get("hooks"):
            setup.cannot(f"{rel}: build hooks are not run")
        setup.builds.append(build)
    if data.get("before"):
        setup.cannot(f"{rel}: `before` hooks are not run (crossbuild builds from the checkout as it is)")
    for build in setup.builds:
        setup.take(f"services.{build.name}", build.package, rel)
        for p in build.platforms:
            if p not in setup.platforms:
                setup.platforms.append(p)
    _fold_common(setup, rel)


def _fold_common(setup: ReleaseSetup, source: str) -> None:
    """Settings every build shares become project-wide ([go]); the rest stay per build."""
    builds = setup.builds
    if not builds:
        return
    first = builds[0]
    if all(b.tags == first.tags for b in builds) and first.tags is not None:
        setup.tags = first.tags  # [] too: the release builds without tags, a script does not add any
        if first.tags:
            setup.take("go.tags", first.tags, source)
        for b in builds:
            b.tags = None
    if all(b.ldflags == first.ldflags for b in builds) and first.ldflags is not None:
        setup.ldflags = first.ldflags
        setup.take("go.ldflags", first.ldflags, source)
        for b in builds:
            b.ldflags = None
    common_x = {k: v for k, v in first.x.items() if all(b.x.get(k) == v for b in builds)}
    for var, tmpl in common_x.items():
        setup.x[var] = tmpl
        setup.take(f"go.x.{var}", tmpl, source)
        for b in builds:
            b.x.pop(var, None)
    if all(b.cgo == first.cgo for b in builds) and first.cgo is not None:
        setup.cgo = first.cgo
        setup.take("go.cgo", first.cgo, source)
    if any(b.trimpath for b in builds):
        setup.trimpath = True
    common_env = {k: v for k, v in first.env.items() if all(b.env.get(k) == v for b in builds)}
    for key, value in common_env.items():
        setup.env[key] = value
        setup.take(f"go.env.{key}", value, source)
        for b in builds:
            b.env.pop(key, None)
    for b in builds:
        own: tuple[tuple[str, object], ...] = (("tags", b.tags), ("ldflags", b.ldflags), ("x", b.x), ("env", b.env))
        for what, setting in own:
            if setting:
                setup.take(f"services.{b.name}.go.{what}", setting, source)


def read_promu(path: Path, root: Path, module_dir: Path, setup: ReleaseSetup) -> None:
    rel = path.relative_to(root).as_posix()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        setup.cannot(f"{rel}: not valid YAML ({str(exc).splitlines()[0]})")
        return
    build = data.get("build") if isinstance(data, dict) else None
    if not isinstance(build, dict):
        return
    for item in build.get("binaries") or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        package = discovered.package_of(module_dir, str(item.get("path") or "."))
        name = discovered.sanitize_name(str(item["name"]).rsplit("/", 1)[-1])
        if name and package not in {b.package for b in setup.builds}:
            setup.builds.append(Build(name=name, package=package))
            setup.take(f"services.{name}", package, rel)
    ldflags = str(build.get("ldflags") or "")
    other, xs, _conditional = split_ldflags([ldflags.replace("\n", " ")])
    if other and setup.ldflags is None:
        setup.ldflags = other
        setup.take("go.ldflags", other, rel)
    for var, value in xs.items():
        tmpl = promu_template(value)
        if tmpl is None:
            setup.cannot(f"{rel}: -X {var}={value} (template not mapped)")
        elif var not in setup.x:
            setup.x[var] = tmpl
            setup.take(f"go.x.{var}", tmpl, rel)
    flags = str(build.get("flags") or "")
    m = re.search(r"-tags[= ]([^\s]+)", flags)
    if m and setup.tags is None:
        setup.tags = [t for t in m.group(1).strip("'\"").split(",") if t]
        setup.take("go.tags", setup.tags, rel)
