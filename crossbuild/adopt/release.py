"""What a repository's own release setup says about its builds, mapped to config.toml.

Read in this order; the first source that says something about a setting wins:

1. GoReleaser (`.goreleaser.yaml`/`.yml`, also in build/, .github/, scripts/):
   builds (main, binary, ldflags and -X, flags, tags, env, goos/goarch/goarm/
   goamd64, ignore, targets); promu (`.promu.yml`, the Prometheus projects'):
   binaries, ldflags and -X, -tags;
2. make and shell scripts (Makefile, *.mk, scripts/ hack/ build/ *.sh): `-X`
   assignments with the variables they expand, `-tags`, `GOARM`;
3. Go build programs (build.go, magefile.go, helpers|scripts|hack|tools|build
   *.go): build-tag lists and `GOARM=` literals;
4. Dockerfiles: the last stage's EXPOSE, USER, ENTRYPOINT/CMD arguments and
   runtime base (the base is only reported).

Every setting taken is recorded with the file it came from, and everything
that was seen but cannot be mapped is listed, so `init` can say both.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crossbuild import services as discovered
from crossbuild.adopt.versions import template_for

GORELEASER_NAMES = (".goreleaser.yaml", ".goreleaser.yml", "goreleaser.yaml", "goreleaser.yml")
GORELEASER_DIRS = (".", "build", ".github", "scripts", "deploy", "hack")
# GoReleaser v2 defaults (goreleaser.com/customization/builds/go/)
_GR_GOOS = ("darwin", "linux", "windows")
_GR_GOARCH = ("386", "amd64", "arm64")
_GR_GOARM = "6"
# Architectures Linux images exist for (the OCI image-spec's platform list, Go's names).
IMAGE_ARCHES = ("386", "amd64", "arm", "arm64", "ppc64le", "s390x", "riscv64", "loong64", "mips64le")

# GoReleaser template fields -> crossbuild template fields.
_GR_FIELDS = {
    "Version": "{version_no_v}",
    "RawVersion": "{version_no_v}",
    "Tag": "{version}",
    "Summary": "{version}",
    "Commit": "{commit}",
    "FullCommit": "{commit}",
    "ShortCommit": "{short_commit}",
    "Date": "{date}",
    "CommitDate": "{date}",
    "Timestamp": "{timestamp}",
    "CommitTimestamp": "{timestamp}",
    "ProjectName": "{project}",
}
# Go time layouts -> crossbuild fields.
_LAYOUTS = {
    "2006-01-02": "{date_short}",
    "2006-01-02T15:04:05Z07:00": "{date}",
    "2006-01-02T15:04:05Z": "{date}",
}
_GR_TEMPLATE = re.compile(r"\{\{-?\s*(?P<body>.*?)\s*-?\}\}")


@dataclass(frozen=True)
class Taken:
    setting: str  # config.toml key, e.g. "go.tags"
    value: str
    source: str  # file, relative to the repository


@dataclass
class Build:
    """One program as the release builds it."""

    name: str
    package: str  # "./cmd/x", relative to the module directory
    tags: list[str] | None = None
    ldflags: list[str] | None = None  # everything but -X
    x: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cgo: bool | None = None
    trimpath: bool | None = None
    platforms: list[str] = field(default_factory=list)


@dataclass
class ReleaseSetup:
    builds: list[Build] = field(default_factory=list)  # GoReleaser's, merged per program
    x: dict[str, str] = field(default_factory=dict)  # -X variable -> crossbuild template
    tags: list[str] | None = None
    ldflags: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cgo: bool | None = None
    trimpath: bool | None = None
    platforms: list[str] = field(default_factory=list)  # os/arch[/variant] the release ships
    arm_variant: str = ""  # "v6" from GOARM=6 in a script
    expose: list[str] = field(default_factory=list)
    user: str | None = None
    cmd: dict[str, list[str]] = field(default_factory=dict)  # binary name -> CMD arguments
    base: str = ""  # the release image's runtime base ("" none seen)
    project_name: str = ""
    taken: list[Taken] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def take(self, setting: str, value: object, source: str) -> None:
        shown = value if isinstance(value, str) else repr(value)
        entry = Taken(setting, shown, source)
        if entry not in self.taken:
            self.taken.append(entry)

    def cannot(self, what: str) -> None:
        if what not in self.unmapped:
            self.unmapped.append(what)

    def image_platforms(self) -> list[str]:
        return [p for p in self.platforms if p.startswith("linux/") and p.split("/")[1] in IMAGE_ARCHES]


# --- templates ---------------------------------------------------------------------------------------


def goreleaser_template(value: str) -> str | None:
    """A GoReleaser value as a crossbuild template; None when a part cannot be mapped."""
    out: list[str] = []
    pos = 0
    for m in _GR_TEMPLATE.finditer(value):
        out.append(value[pos : m.start()].replace("{", "{{").replace("}", "}}"))
        body = m.group("body")
        field_m = re.fullmatch(r"\.(\w+)", body)
        time_m = re.fullmatch(r'(?:time|\.Now\.Format|\.CommitDate\.Format|\.Date\.Format)\s+"([^"]+)"', body)
        if field_m and field_m.group(1) in _GR_FIELDS:
            out.append(_GR_FIELDS[field_m.group(1)])
        elif time_m and time_m.group(1) in _LAYOUTS:
            out.append(_LAYOUTS[time_m.group(1)])
        else:
            return None
        pos = m.end()
    out.append(value[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def shell_template(expanded: str, var: str) -> str | None:
    """A make/shell value (variables already expanded) as a crossbuild template, by what it runs."""
    text = expanded.strip().strip("'\"")
    if "$" not in text and "`" not in text and "(" not in text:
        return text.replace("{", "{{").replace("}", "}}") if text else None
    lower = text.lower()
    if "describe" in lower or re.search(r"\b(git_)?(version|tag)\b", lower):
        return "{version}"
    if "rev-parse" in lower and ("--short" in lower or "cut -c" in lower or "head -c" in lower):
        return "{short_commit}"
    if "rev-parse" in lower or re.search(r"\b(git_)?(commit|sha|revision|hash)\b", lower):
        return "{commit}"
    if re.search(r"\bdate\b", lower):
        if "%s" in text:
            return "{timestamp}"
        if re.search(r"\+['\"]?%Y-%m-%d['\"]?(\s|\)|$)", text):
            return "{date_short}"
        return "{date}"
    if "status" in lower or "dirty" in lower or "tree" in lower:
        return "{tree_state}"
    return None


# --- GoReleaser -------------------------------------------------------------------------------------------


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
    """(-ldflags arguments other than -X, {-X variable: raw value}, entries skipped as conditional)."""
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


def read_goreleaser(path: Path, root: Path, module_dir: Path, setup: ReleaseSetup) -> None:
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
    merged: dict[str, Build] = {}
    for raw in builds or []:
        if not isinstance(raw, dict) or raw.get("skip") is True:
            continue
        if raw.get("builder", "go") != "go":
            setup.cannot(f"{rel}: build {raw.get('id', '?')} uses builder {raw.get('builder')}, not go")
            continue
        build_dir = module_dir / str(raw.get("dir") or ".")
        main = str(raw.get("main") or ".")
        package = discovered.package_of(module_dir, os.path.relpath(build_dir / main, module_dir))
        # GoReleaser names a binary after the project unless told; with several builds that
        # collides, so crossbuild names an unnamed one after its directory instead.
        default = setup.project_name if len(builds or []) == 1 and setup.project_name else Path(package).name
        binary_raw = str(raw.get("binary") or default or "app")
        binary = goreleaser_template(binary_raw.rsplit("/", 1)[-1]) or ""
        name = discovered.sanitize_name(binary.replace("{project}", setup.project_name or "app").strip("{}"))
        if not name:
            setup.cannot(f"{rel}: binary {binary_raw!r} has no usable name")
            continue
        build = merged.setdefault(package, Build(name=name, package=package))
        platforms = _gr_platforms(raw)
        build.platforms += [p for p in platforms if p not in build.platforms]
        linux = any(p.startswith("linux/") for p in platforms)
        if build.ldflags is not None and not linux:
            continue  # keep the Linux build's settings when one program has per-OS builds
        other, xs, conditional = split_ldflags(_strs(raw.get("ldflags")))
        for entry in conditional:
            setup.cannot(f"{rel}: ldflags {entry!r} (a template condition)")
        if raw.get("ldflags") is not None:
            build.ldflags = other
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
        if tags:
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
    if data.get("before"):
        setup.cannot(f"{rel}: `before` hooks are not run (crossbuild builds from the checkout as it is)")
    setup.builds = list(merged.values())
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
        setup.tags = first.tags
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


# --- promu (the Prometheus projects' build tool) ------------------------------------------------------------

_PROMU_FIELDS = {"Version": "{version_no_v}", "Revision": "{commit}"}


def promu_template(value: str) -> str | None:
    """A promu -X value ({{.Version}} is the VERSION file's, {{.Revision}} the commit) as a crossbuild template."""
    out: list[str] = []
    pos = 0
    for m in _GR_TEMPLATE.finditer(value):
        out.append(value[pos : m.start()].replace("{", "{{").replace("}", "}}"))
        field_m = re.fullmatch(r"\.(\w+)", m.group("body"))
        if not field_m or field_m.group(1) not in _PROMU_FIELDS:
            return None
        out.append(_PROMU_FIELDS[field_m.group(1)])
        pos = m.end()
    out.append(value[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


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


# --- make and shell ---------------------------------------------------------------------------------------

_MAKE_FILES = ("Makefile", "GNUmakefile", "makefile")
_SCRIPT_GLOBS = ("*.mk", "build/*.mk", "scripts/*.mk", "scripts/*.sh", "hack/*.sh", "build/*.sh", "*.sh")
_ASSIGN = re.compile(
    r"^\s*(?:export\s+|override\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?::{0,3}|\?|\+)?=\s*(?P<v>.*)$"
)
_REF = re.compile(r"\$[({](?P<name>[A-Za-z_][A-Za-z0-9_]*)[)}]|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
_X_FLAG = re.compile(r"-X(?:\s+|=)")


def _logical(text: str) -> list[str]:
    return text.replace("\\\n", " ").splitlines()


def _definitions(lines: Iterable[str]) -> dict[str, str]:
    defs: dict[str, str] = {}
    for line in lines:
        if line.startswith("\t"):
            stripped = line.strip()
            m = _ASSIGN.match(stripped) if "=" in stripped else None
        else:
            m = _ASSIGN.match(line)
        if m and not line.lstrip().startswith("#"):
            defs.setdefault(m.group("name"), m.group("v").split(" #", 1)[0].strip())
    return defs


def expand(value: str, defs: Mapping[str, str], depth: int = 0) -> str:
    if depth > 8:
        return value

    def sub(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        return expand(defs[name], defs, depth + 1) if name in defs else m.group(0)

    return _REF.sub(sub, value)


def _x_assignments(line: str) -> list[tuple[str, str]]:
    """(variable, raw value) of every -X in one logical line; values keep $(...) groups whole."""
    found: list[tuple[str, str]] = []
    for m in _X_FLAG.finditer(line):
        pos = m.end()
        quote = line[pos] if pos < len(line) and line[pos] in "'\"" else ""
        pos += len(quote)
        eq = line.find("=", pos)
        if eq < 0:
            continue
        var = line[pos:eq]
        if not re.fullmatch(r"[\w./~-]+\.[A-Za-z_]\w*", var):
            continue
        end = eq + 1
        depth = 0
        while end < len(line):
            ch = line[end]
            if ch in "({":
                depth += 1
            elif ch in ")}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (ch == quote or (not quote and (ch.isspace() or ch in "'\""))):
                break
            end += 1
        found.append((var, line[eq + 1 : end]))
    return found


def read_scripts(root: Path, setup: ReleaseSetup) -> None:
    files = [root / n for n in _MAKE_FILES] + [p for g in _SCRIPT_GLOBS for p in sorted(root.glob(g))]
    seen: set[Path] = set()
    for path in files:
        if not path.is_file() or path in seen:
            continue
        seen.add(path)
        rel = path.relative_to(root).as_posix()
        try:
            lines = _logical(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        defs = _definitions(lines)
        for line in lines:
            if line.lstrip().startswith("#"):
                continue
            for var, raw in _x_assignments(expand(line, defs)):
                if var in setup.x:
                    continue
                tmpl = shell_template(raw, var)
                if tmpl is None:
                    name = var.rsplit(".", 1)[-1]
                    guess = _by_name(name)
                    if guess is None:
                        setup.cannot(f"{rel}: -X {var}={raw}")
                        continue
                    tmpl = guess
                setup.x[var] = tmpl
                setup.take(f"go.x.{var}", tmpl, rel)
            if setup.tags is None and re.search(r"\bgo\s+(build|install)\b", line):
                m = re.search(r"-tags(?:\s+|=)(?P<q>['\"]?)(?P<t>[^'\"\s]+(?:\s[^'\"\s]+)*?)(?P=q)(?:\s|$)", line)
                if m:
                    tags = [t for t in re.split(r"[,\s]+", expand(m.group("t"), defs)) if t and "$" not in t]
                    if tags:
                        setup.tags = tags
                        setup.take("go.tags", tags, rel)
            m = re.search(r"\bGOARM\s*[?:]?=\s*['\"]?(\d)", line)
            if m and not setup.arm_variant:
                setup.arm_variant = f"v{m.group(1)}"
                setup.take("platforms (arm variant)", setup.arm_variant, rel)


def _by_name(name: str) -> str | None:
    return template_for(name)


# --- Go build programs ------------------------------------------------------------------------------------

_GO_BUILD_FILES = ("build.go", "magefile.go", "mage.go", "make.go")
_GO_BUILD_DIRS = ("helpers", "scripts", "hack", "tools", "build", "magefiles", "mage", "internal/build")


def read_go_programs(root: Path, setup: ReleaseSetup) -> None:
    files = [root / n for n in _GO_BUILD_FILES]
    for directory in _GO_BUILD_DIRS:
        base = root / directory
        if base.is_dir():
            files += sorted(p for p in base.rglob("*.go") if len(p.relative_to(base).parts) <= 3)
    for path in files:
        if not path.is_file() or path.name.endswith("_test.go"):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "-tags" not in text and "BuildTags" not in text and "GOARM" not in text:
            continue
        rel = path.relative_to(root).as_posix()
        tags = _go_tags(text)
        if tags and setup.tags is None:
            setup.tags = tags
            setup.take("go.tags", tags, rel)
        m = re.search(r'"GOARM=(\d)"', text)
        if m and not setup.arm_variant:
            setup.arm_variant = f"v{m.group(1)}"
            setup.take("platforms (arm variant)", setup.arm_variant, rel)


def _go_tags(text: str) -> list[str]:
    m = re.search(r"BuildTags\w*\s*:?=?\s*\[\]string\{(?P<list>[^}]*)\}", text)
    if m:
        return re.findall(r'"([^"]+)"', m.group("list"))
    m = re.search(r'"-tags=([^"]+)"', text) or re.search(r'"-tags"\s*,\s*"([^"]+)"', text)
    if m:
        return [t for t in re.split(r"[,\s]+", m.group(1)) if t]
    m = re.search(r'"-tags"\s*,\s*(?P<ident>[A-Za-z_]\w*)', text)
    if m:
        d = re.search(rf'\b{m.group("ident")}\s*:?=\s*"([^"]+)"', text)
        if d:
            return [t for t in re.split(r"[,\s]+", d.group(1)) if t]
    return []


# --- Dockerfiles ------------------------------------------------------------------------------------------

_DOCKERFILE_DIRS = (".", "docker", "build", "deploy", "deployments", "build/docker", "images")


def find_dockerfiles(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory in _DOCKERFILE_DIRS:
        base = root / directory
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            name = path.name.lower()
            if path.is_file() and (
                name == "dockerfile" or name.startswith("dockerfile.") or name.endswith(".dockerfile")
            ):
                found.append(path)
    return found


def _instructions(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in text.replace("\\\n", " ").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _exec_form(value: str) -> list[str] | None:
    if value.startswith("["):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return None
        return [str(v) for v in parsed] if isinstance(parsed, list) else None
    return None


def read_dockerfile(path: Path, root: Path, binaries: Sequence[str], setup: ReleaseSetup) -> None:
    rel = path.relative_to(root).as_posix()
    try:
        instructions = _instructions(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return
    last = max((n for n, (word, _v) in enumerate(instructions) if word == "FROM"), default=-1)
    if last < 0:
        return
    stage = instructions[last:]
    base = stage[0][1].split()
    base_ref = next((w for w in base if not w.startswith("--")), "")
    if base_ref and not setup.base:
        setup.base = base_ref
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    for word, value in stage[1:]:
        if word == "EXPOSE" and not setup.expose:
            ports = [p for p in value.split() if re.fullmatch(r"[0-9]{1,5}(-[0-9]{1,5})?(/(tcp|udp|sctp))?", p)]
            if ports:
                setup.expose = ports
                setup.take("image.expose", ports, rel)
        elif word == "USER" and setup.user is None:
            user = _user(value)
            if user is None:
                setup.cannot(f"{rel}: USER {value} (the static base has root, nobody and nonroot only)")
            else:
                setup.user = user
                setup.take("image.user", user, rel)
        elif word == "ENTRYPOINT":
            entrypoint = _exec_form(value)
            if entrypoint is None:
                setup.cannot(f"{rel}: ENTRYPOINT {value} (shell form)")
        elif word == "CMD":
            cmd = _exec_form(value)
    if entrypoint:
        program = Path(entrypoint[0]).name
        if program in binaries:
            args = entrypoint[1:] + (cmd or [])
            if args and program not in setup.cmd:
                setup.cmd[program] = args
                setup.take(f"services.{program}.cmd", args, rel)
        else:
            setup.cannot(f"{rel}: ENTRYPOINT {entrypoint[0]} is not one of the services (a wrapper script?)")


def _user(value: str) -> str | None:
    user, _, group = value.strip().partition(":")
    known = {"root": "0", "nobody": "65534", "nonroot": "65532"}
    uid = known.get(user, user)
    gid = known.get(group, group) if group else uid
    if uid.isdigit() and gid.isdigit():
        return f"{uid}:{gid}"
    return None


# --- all of it ---------------------------------------------------------------------------------------------


def read(root: Path, module_dir: Path, binaries: Sequence[str]) -> ReleaseSetup:
    """The release setup of the repository at `root` (Go module at `module_dir`)."""
    setup = ReleaseSetup()
    goreleaser = find_goreleaser(root)
    if goreleaser is not None:
        read_goreleaser(goreleaser, root, module_dir, setup)
    if (root / ".promu.yml").is_file():
        read_promu(root / ".promu.yml", root, module_dir, setup)
    read_scripts(root, setup)
    read_go_programs(root, setup)
    names = list(binaries) + [b.name for b in setup.builds]
    dockerfiles = find_dockerfiles(root)
    for path in dockerfiles:
        read_dockerfile(path, root, names, setup)
    if setup.base:
        setup.cannot(
            f"release image base {setup.base}: crossbuild's default static base (CA certificates, zoneinfo, "
            "a nonroot user) is used; set [image] base_image to run on that instead"
        )
    return setup
