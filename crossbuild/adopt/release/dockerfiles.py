"""The last stage of a repository's Dockerfiles: EXPOSE, USER, ENTRYPOINT/CMD arguments, runtime base."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from crossbuild.adopt.release.model import ReleaseSetup

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
