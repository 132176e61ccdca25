"""`docker buildx`, mirrored: one function per subcommand, keyword arguments
named after its flags, typed results parsed from `--metadata-file` JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossbuild import runner
from crossbuild.errors import CommandError, UserError

BUILDX_HINT = (
    "docker buildx is missing: install the buildx plugin "
    "(https://github.com/docker/buildx#installing) or run `make tools`"
)


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    status: str  # status of the first node: running, inactive, ...
    platforms: tuple[str, ...]
    nodes: tuple[str, ...]


def version() -> str:
    try:
        return runner.output(["docker", "buildx", "version"], hint=BUILDX_HINT)
    except CommandError as exc:
        raise UserError(BUILDX_HINT) from exc


def docker_client_version() -> str:
    out = runner.output(
        ["docker", "version", "--format", "{{.Client.Version}}"],
        hint="the docker CLI is missing: install docker (https://docs.docker.com/engine/install/)",
    )
    return out.splitlines()[0] if out else ""


def parse_inspect(text: str) -> BuilderInfo:
    """Parse `docker buildx inspect` text output (it has no JSON format)."""
    name = driver = status = ""
    platforms: list[str] = []
    nodes: list[str] = []
    in_nodes = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "nodes":
            in_nodes = True
        elif key == "name" and not in_nodes:
            name = value
        elif key == "name" and in_nodes:
            nodes.append(value)
        elif key == "driver" and not driver:
            driver = value
        elif key == "status" and not status:
            status = value
        elif key == "platforms":
            platforms += [p.strip().rstrip("*") for p in value.split(",") if p.strip()]
    return BuilderInfo(name, driver, status, tuple(dict.fromkeys(platforms)), tuple(nodes))


def inspect(builder: str, bootstrap: bool = False) -> BuilderInfo | None:
    """The builder's state, or None when no builder has that name."""
    argv = ["docker", "buildx", "inspect"]
    runner.add_flag(argv, "--bootstrap", bootstrap)
    argv.append(builder)
    res = runner.run(argv, check=False, mutates=False, hint=BUILDX_HINT)
    if res.returncode != 0:
        if re.search(r"no builder|not found", res.stderr, re.IGNORECASE):
            return None
        raise CommandError(res.argv, res.returncode, res.stderr, res.stdout, hint="buildx inspect failed")
    return parse_inspect(res.stdout)


def create(
    *,
    name: str,
    driver: str,
    endpoint: str = "",
    driver_opt: Sequence[str] = (),
    buildkitd_config: Path | None = None,
    platform: Sequence[str] = (),
    node: str | None = None,
    append: bool = False,
    bootstrap: bool = False,
) -> None:
    argv = ["docker", "buildx", "create", "--name", name, "--driver", driver]
    runner.add_opt(argv, "--driver-opt", list(driver_opt) or None)
    runner.add_opt(argv, "--buildkitd-config", buildkitd_config)
    if platform:
        argv += ["--platform", ",".join(platform)]
    runner.add_opt(argv, "--node", node)
    runner.add_flag(argv, "--append", append)
    runner.add_flag(argv, "--bootstrap", bootstrap)
    if endpoint:
        argv.append(endpoint)
    runner.run(argv, hint=f"could not create builder '{name}'")


def rm(name: str) -> None:
    runner.run(["docker", "buildx", "rm", name], check=False)


def bake(
    *,
    file: Path,
    builder: str,
    metadata_file: Path,
    targets: Sequence[str] = (),
    provenance: bool = False,
    cwd: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Build every target of a bake definition in one invocation; return the metadata."""
    argv = ["docker", "buildx", "bake", "--builder", builder, "--file", str(file)]
    argv += ["--metadata-file", str(metadata_file)]
    argv += ["--provenance", "true" if provenance else "false"]
    argv += list(targets)
    runner.run(argv, cwd=cwd, capture=True, hint="image build failed")
    if runner.OPTIONS.dry_run:
        return {}
    data: dict[str, dict[str, Any]] = json.loads(metadata_file.read_text())
    return data


def imagetools_create(*, builder: str, tags: Sequence[str], sources: Sequence[str], dry_run: bool = False) -> None:
    argv = ["docker", "buildx", "imagetools", "create", "--builder", builder]
    runner.add_opt(argv, "--tag", list(tags))
    runner.add_flag(argv, "--dry-run", dry_run)
    argv += list(sources)
    runner.run(argv, hint="could not create the manifest list")


def bake_target(
    *,
    context: str,
    dockerfile: str,
    platforms: Sequence[str],
    args: Mapping[str, str],
    labels: Mapping[str, str],
    tags: Sequence[str] = (),
    output: Sequence[str] = (),
    cache_from: Sequence[str] = (),
    cache_to: Sequence[str] = (),
) -> dict[str, Any]:
    """One target of a bake JSON file (https://docs.docker.com/build/bake/reference/)."""
    target: dict[str, Any] = {
        "context": context,
        "dockerfile": dockerfile,
        "platforms": list(platforms),
        "args": dict(args),
        "labels": dict(labels),
    }
    if tags:
        target["tags"] = list(tags)
    if output:
        target["output"] = list(output)
    if cache_from:
        target["cache-from"] = list(cache_from)
    if cache_to:
        target["cache-to"] = list(cache_to)
    return target
