"""`docker buildx`, mirrored: one function per subcommand, keyword arguments
named after its flags, typed results parsed from `--metadata-file` JSON.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossbuild import runner
from crossbuild.errors import CommandError, UserError
from crossbuild.runner import Runner

BUILDX_HINT = (
    "docker buildx is missing: install the buildx plugin "
    "(https://github.com/docker/buildx#installing) or run `make tools`"
)


@dataclass(frozen=True)
class NodeInfo:
    """One node as `buildx inspect` shows it."""

    name: str
    endpoint: str = ""
    status: str = ""  # running, inactive, stopped... ("" when buildx reported an error instead)
    error: str = ""
    platforms: tuple[str, ...] = ()  # pinned first, then what its workers offer, in buildx's order
    pinned: tuple[str, ...] = ()  # the --platform pins (buildx marks them with *)
    driver_opts: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # name -> text of the configuration files buildx keeps for it

    @property
    def running(self) -> bool:
        return self.status == "running"

    def file(self, name: str) -> str | None:
        return dict(self.files).get(name)


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    status: str  # status of the first node: running, inactive, ...
    platforms: tuple[str, ...]  # what any node offers
    nodes: tuple[NodeInfo, ...] = ()
    error: str = ""  # what buildx reported about the builder as a whole

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def node(self, name: str) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == name), None)

    def platforms_cover(self, platform: object) -> bool:
        """buildx lists amd64 variants separately; a plain entry covers the variants."""
        text = str(platform)
        return any(text == p or text.startswith(p + "/") for p in self.platforms)


class RegistryRefused(CommandError):
    """A BuildKit node could not talk to a registry the way it tried: HTTPS to a registry that
    speaks plain HTTP, or TLS with a certificate it does not trust. The cure is in that node's
    buildkitd.toml, not in crossbuild. buildx says so only in its output; `_refused` is the one
    place that reads it (python-on-whales maps stderr to typed errors the same way)."""

    def __init__(self, base: CommandError, host: str, plain_http: bool) -> None:
        super().__init__(base.argv, base.returncode, base.stderr, base.stdout, base.hint)
        self.host = host  # "" when buildx did not name it
        self.plain_http = plain_http  # True: it speaks HTTP; False: its certificate is not trusted


_PLAIN_HTTP = "server gave HTTP response to HTTPS client"
_UNTRUSTED = ("x509: certificate signed by unknown authority", "tls: failed to verify certificate")
_URL_HOST = re.compile(r"https://([^/\s\"']+)/")


def _refused(exc: CommandError) -> RegistryRefused | None:
    for line in (exc.stderr + "\n" + exc.stdout).splitlines():
        plain = _PLAIN_HTTP in line
        if plain or any(u in line for u in _UNTRUSTED):
            host = _URL_HOST.search(line)
            return RegistryRefused(exc, host.group(1) if host else "", plain)
    return None


def _run_build(run: Runner, argv: Sequence[str], **kwargs: Any) -> runner.Result:
    """Run a build or bake; a registry a node cannot talk to raises RegistryRefused."""
    try:
        return run.run(argv, **kwargs)
    except CommandError as exc:
        refused = _refused(exc)
        if refused is not None:
            raise refused from exc
        raise


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


_DRIVER_OPT = re.compile(r'([^\s=]+)="((?:[^"\\]|\\.)*)"')


def parse_inspect(text: str) -> BuilderInfo:
    """Parse `docker buildx inspect` text output (it has no JSON format).

    Keys start a line; indented lines belong to the section above them (Labels, GC policy,
    File#name, whose lines buildx prints as ` > line`). Within Nodes, Name starts a node.
    """
    head: dict[str, str] = {}
    nodes: list[dict[str, Any]] = []
    section = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            body = line.strip()
            if nodes and section.startswith("file#") and (body.startswith(">") or body == ">"):
                nodes[-1]["files"][section.removeprefix("file#")].append(line.lstrip()[2:].rstrip())
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        section = key
        if key == "nodes":
            nodes.append({})  # a marker: the nodes begin
            continue
        if not nodes:
            head.setdefault(key, value)
        elif key == "name":
            nodes.append({"name": value, "files": {}})
        elif key.startswith("file#") and "name" in nodes[-1]:
            nodes[-1]["files"][key.removeprefix("file#")] = []
        elif "name" in nodes[-1]:
            nodes[-1].setdefault(key, value)
    parsed = tuple(_node_info(n) for n in nodes if "name" in n)
    platforms = dict.fromkeys(p for n in parsed for p in n.platforms)
    status = parsed[0].status if parsed else ""
    return BuilderInfo(
        head.get("name", ""), head.get("driver", ""), status, tuple(platforms), parsed, head.get("error", "")
    )


def _node_info(raw: dict[str, Any]) -> NodeInfo:
    listed = [p.strip() for p in str(raw.get("platforms", "")).split(",") if p.strip()]
    files = {name: "\n".join(lines).strip("\n") for name, lines in raw["files"].items()}
    opts = [(k, re.sub(r"\\(.)", r"\1", v)) for k, v in _DRIVER_OPT.findall(raw.get("driver options", ""))]
    return NodeInfo(
        name=raw["name"],
        endpoint=raw.get("endpoint", ""),
        status=raw.get("status", ""),
        error=raw.get("error", ""),
        platforms=tuple(dict.fromkeys(p.rstrip("*") for p in listed)),
        pinned=tuple(p.rstrip("*") for p in listed if p.endswith("*")),
        driver_opts=tuple(sorted(opts)),
        files=tuple(sorted(files.items())),
    )


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


def create_argv(
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
) -> list[str]:
    """`buildx create`: a new builder, --append a node, or (a --node that exists, no --append)
    change that node in place."""
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
    return argv


def create(
    run: Runner,
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
    argv = create_argv(
        name=name,
        driver=driver,
        endpoint=endpoint,
        driver_opt=driver_opt,
        buildkitd_config=buildkitd_config,
        platform=platform,
        node=node,
        append=append,
        bootstrap=bootstrap,
    )
    run.run(argv, hint=f"could not create builder '{name}'")


def leave_argv(*, name: str, node: str) -> list[str]:
    """`buildx create --leave`: take one node out of a builder."""
    return ["docker", "buildx", "create", "--name", name, "--node", node, "--leave"]


def rm(run: Runner, name: str) -> None:
    run.run(["docker", "buildx", "rm", name], check=False)


# The bake file is generated by crossbuild and names paths under the project and
# build/ (contexts, rendered Dockerfiles, OCI and cache outputs); buildx >= 0.19
# would ask for an --allow=fs.read/fs.write per path, which older buildx rejects.
BAKE_ENV = {"BUILDX_BAKE_ENTITLEMENTS_FS": "0"}


def bake_argv(
    *,
    file: Path,
    builder: str,
    metadata_file: Path,
    targets: Sequence[str] = (),
    provenance: bool = False,
    no_cache: bool = False,
    progress: str | None = None,
) -> list[str]:
    argv = ["docker", "buildx", "bake", "--builder", builder, "--file", str(file)]
    runner.add_flag(argv, "--no-cache", no_cache)
    runner.add_opt(argv, "--progress", progress)
    argv += ["--metadata-file", str(metadata_file)]
    argv += ["--provenance", "true" if provenance else "false"]
    return argv + list(targets)


def bake(
    run: Runner,
    *,
    file: Path,
    builder: str,
    metadata_file: Path,
    targets: Sequence[str] = (),
    provenance: bool = False,
    cwd: Path | None = None,
    no_cache: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, dict[str, Any]]:
    """Build every target of a bake definition in one invocation; return the metadata.

    `cancel`: once set, the bake is killed (the run it belongs to failed beside it).

    With `on_event`, buildx reports in its machine-readable form (`--progress=rawjson`: one
    SolveStatus JSON object per line on stderr, vertexes, statuses and logs) and each object is
    handed over as it arrives; a failure's message is then rebuilt as readable text (buildx's own
    plain lines and the failed steps' output), not JSON.
    """
    argv = bake_argv(
        file=file,
        builder=builder,
        metadata_file=metadata_file,
        targets=targets,
        provenance=provenance,
        no_cache=no_cache,
        progress="rawjson" if on_event is not None else None,
    )
    if on_event is None:
        result = _run_build(run, argv, cwd=cwd, env=BAKE_ENV, hint="image build failed", cancel=cancel)
    else:
        readable = RawProgress(on_event)
        result = run.run(argv, cwd=cwd, env=BAKE_ENV, check=False, on_line=readable.feed, cancel=cancel)
        if result.returncode != 0:
            failed = CommandError(argv, result.returncode, readable.text(), result.stdout, hint="image build failed")
            raise _refused(failed) or failed
    if result.planned:
        return {}
    data: dict[str, dict[str, Any]] = json.loads(metadata_file.read_text())
    return data


class RawProgress:
    """Reads `--progress=rawjson` lines: JSON objects go to `on_event`, anything else (buildx's
    closing "ERROR: ..." lines) is kept as text, as are the logs of steps that failed."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.on_event = on_event
        self.plain: list[str] = []
        self.names: dict[str, str] = {}  # vertex digest -> name
        self.logs: dict[str, list[str]] = {}  # vertex digest -> its output lines (last 40)
        self.failed: list[str] = []  # vertex digests that reported an error, in order

    def feed(self, line: str) -> None:
        try:
            event = json.loads(line) if line.startswith("{") else None
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if line.strip():
                self.plain.append(line)
            return
        for vertex in event.get("vertexes") or []:
            digest = str(vertex.get("digest", ""))
            self.names[digest] = str(vertex.get("name", ""))
            if vertex.get("error") and digest not in self.failed:
                self.failed.append(digest)
        for log in event.get("logs") or []:
            try:
                text = base64.b64decode(log.get("data") or "").decode(errors="replace")
            except (ValueError, TypeError):
                continue
            kept = self.logs.setdefault(str(log.get("vertex", "")), [])
            kept += text.splitlines()
            del kept[:-40]
        self.on_event(event)

    def text(self) -> str:
        """What a person needs from a failed bake: each failed step's name and output, then buildx's error."""
        out: list[str] = []
        for digest in self.failed:
            out.append(f"#{self.names.get(digest, digest)}")
            out += [f"  {line}" for line in self.logs.get(digest, [])[-15:]]
        return "\n".join(out + self.plain) + "\n"


def build_argv(
    *,
    context: Path,
    file: Path,
    builder: str,
    platform: Sequence[str],
    tag: Sequence[str] = (),
    output: Sequence[str] = (),
    build_arg: Mapping[str, str] | None = None,
    provenance: bool = False,
    metadata_file: Path | None = None,
) -> list[str]:
    argv = ["docker", "buildx", "build", "--builder", builder, "--file", str(file)]
    argv += ["--platform", ",".join(platform)]
    runner.add_opt(argv, "--tag", list(tag) or None)
    runner.add_opt(argv, "--output", list(output) or None)
    runner.add_opt(argv, "--build-arg", [f"{k}={v}" for k, v in (build_arg or {}).items()] or None)
    argv += ["--provenance", "true" if provenance else "false"]
    runner.add_opt(argv, "--metadata-file", metadata_file)
    argv.append(str(context))
    return argv


def build(run: Runner, argv: Sequence[str], metadata_file: Path | None = None) -> dict[str, Any]:
    """Run a `build_argv` command; the metadata it wrote, when it ran and was asked for."""
    if _run_build(run, argv, hint="image build failed").planned or metadata_file is None:
        return {}
    data: dict[str, Any] = json.loads(metadata_file.read_text())
    return data


PROBE_DOCKERFILE = "FROM scratch\nLABEL org.opencontainers.image.title=crossbuild-probe\n"


def probe_push(builder: str, platform: str, repository: str, timeout: float = 180) -> None:
    """Build an empty image for `platform` (so buildx sends it to the node serving that platform)
    and push it by digest, untagged, to `repository`: the node can push there, or this raises."""
    argv = ["docker", "buildx", "build", "--builder", builder, "--platform", platform, "--provenance", "false"]
    argv += ["--output", f"type=image,name={repository},push-by-digest=true,push=true", "-"]
    _run_build(runner.QUERIES, argv, input_text=PROBE_DOCKERFILE, timeout=timeout, hint="push probe failed")


def imagetools_create(
    run: Runner,
    *,
    builder: str,
    tags: Sequence[str],
    sources: Sequence[str],
    dry_run: bool = False,
    metadata_file: Path | None = None,
    annotations: Mapping[str, str] | None = None,
) -> str:
    """`buildx imagetools create`; with dry_run (its --dry-run) it pushes nothing and
    returns the index it would push, as JSON text. `annotations` go on the index."""
    argv = ["docker", "buildx", "imagetools", "create", "--builder", builder]
    runner.add_opt(argv, "--tag", list(tags))
    runner.add_opt(argv, "--annotation", [f"index:{k}={v}" for k, v in sorted((annotations or {}).items())])
    runner.add_flag(argv, "--dry-run", dry_run)
    runner.add_opt(argv, "--metadata-file", metadata_file)
    argv += list(sources)
    return run.run(argv, hint="could not create the manifest list", mutates=not dry_run).stdout


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
    annotations: Sequence[str] = (),
) -> dict[str, Any]:
    """One target of a bake JSON file (https://docs.docker.com/build/bake/reference/).

    `annotations`: "index:KEY=VALUE" / "manifest:KEY=VALUE", as buildx's --annotation spells them.
    """
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
    if annotations:
        target["annotations"] = list(annotations)
    return target
