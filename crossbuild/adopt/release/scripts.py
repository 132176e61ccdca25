"""make and shell scripts (`-X` assignments with the variables they expand, `-tags`, `GOARM`)
and Go build programs (build.go, magefile.go, helpers/...: build-tag lists, `GOARM=`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from crossbuild.adopt.release.model import ReleaseSetup
from crossbuild.adopt.release.templates import shell_template
from crossbuild.adopt.versions import template_for

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
        # build tags only from make files: a shell script often builds a variant (a "small" build)
        is_make = path.name in _MAKE_FILES or path.suffix == ".mk"
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
            if setup.tags is None and is_make and re.search(r"\bgo\s+(build|install)\b", line):
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
