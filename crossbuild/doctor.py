"""Environment checks; each one prints ok or the exact command that fixes it.

The image targets run the relevant subset as a preflight, so a missing piece
fails in the first second with the fix, not ten minutes into a build.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crossbuild import builder, buildx, golist, registry_server, routing, runner
from crossbuild.config import Config
from crossbuild.errors import CommandError, UserError
from crossbuild.oci import Client, RegistryError, SpeaksPlainHTTP, Unreachable, parse_reference
from crossbuild.platforms import Platform

MIN_FREE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True
    rows: tuple[tuple[str, ...], ...] = ()  # a table printed under the line (the builder's routing)

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "failed" if self.blocking else "warn"


def docker_versions() -> list[Check]:
    try:
        client = buildx.docker_client_version()
    except (UserError, CommandError):
        return [
            Check(
                "docker client",
                False,
                "docker CLI not found",
                "install docker: https://docs.docker.com/engine/install/ or `make tools`",
            )
        ]
    checks = [Check("docker client", True, client)]
    res = runner.run(["docker", "version", "--format", "{{.Server.Version}}"], check=False, mutates=False)
    if res.returncode == 0 and res.stdout.strip():
        checks.append(Check("docker daemon", True, res.stdout.strip()))
    else:
        tail = (res.stderr.strip().splitlines() or ["no answer"])[-1]
        checks.append(
            Check(
                "docker daemon",
                False,
                tail,
                "start it: `sudo systemctl start docker` (or `make tools`)",
                blocking=False,
            )
        )
    return checks


def buildx_version() -> Check:
    try:
        return Check("buildx", True, buildx.version())
    except UserError:
        return Check(
            "buildx",
            False,
            "docker buildx plugin not found",
            "go install github.com/docker/buildx/cmd/buildx@v0.36.1 && "
            "cp $(go env GOPATH)/bin/buildx ~/.docker/cli-plugins/docker-buildx (or `make tools`)",
        )


def make_cmd(cfg: Config, target: str) -> str:
    """`make <target>`, naming the config file when it is not the default one."""
    default = Path.cwd() / "config.toml"
    return f"make {target}" if cfg.path == default.resolve() else f"make {target} CONFIG={cfg.path}"


ROUTE_HEADERS = ("platform", "node", "endpoint", "runs", "status")


def builder_state(cfg: Config, platforms: Sequence[Platform], runs_target_code: bool = True) -> Check:
    return _builder(cfg, platforms, runs_target_code)[0]


def _builder(
    cfg: Config, platforms: Sequence[Platform], runs_target_code: bool = True
) -> tuple[Check, routing.Routing | None]:
    """The builder answers and every platform has a node that will build it (crossbuild.routing:
    with no RUN step on the target platform, any node builds any platform); the check carries the
    routing table."""
    name = cfg.builder.name
    setup = make_cmd(cfg, "setup")
    try:
        info = buildx.inspect(name)
    except (UserError, CommandError) as exc:
        return Check(f"builder {name}", False, str(exc), setup), None
    if info is None:
        return Check(f"builder {name}", False, "does not exist", setup), None
    if cfg.builder.managed and not all(n.running for n in info.nodes):
        try:  # container and kubernetes nodes start on demand; a remote one answers or it does not
            info = buildx.inspect(name, bootstrap=True) or info
        except CommandError as exc:
            return Check(
                f"builder {name}",
                False,
                f"{info.driver}, {info.status}: cannot bootstrap ({exc.tail(1)})",
                f"docker buildx inspect --bootstrap {name}",
            ), None
    route = builder.route(cfg, info, platforms)
    rows = tuple(tuple(r) for r in route.rows())
    problems = route.problems(runs_target_code)
    if problems:
        what, fix = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        return Check(f"builder {name}", False, what + more, fix, rows=rows), route
    running = sum(1 for n in info.nodes if n.running)
    nodes = "running" if len(info.nodes) == 1 else f"{running} of {len(info.nodes)} nodes running"
    return Check(f"builder {name}", True, f"{info.driver}, {nodes}, {', '.join(info.platforms)}", rows=rows), route


def routing_warnings(route: routing.Routing | None) -> list[Check]:
    return [
        Check("routing", False, w, "see the routing table above", blocking=False)
        for w in (route.warnings() if route else [])
    ]


def builder_push(cfg: Config, route: routing.Routing | None) -> list[Check]:
    """Can each node push to the target registry? Asked only of builders crossbuild does not
    configure (the remote driver): an empty image per node, pushed by digest, untagged, into
    <registry_prefix>/crossbuild-probe. A node that speaks HTTPS to a plain-HTTP registry, or does
    not trust its certificate, gets the buildkitd.toml stanza that fixes it."""
    if route is None or cfg.builder.driver != "remote":
        return []
    repository = f"{cfg.image.registry_prefix}/crossbuild-probe"
    host = parse_reference(repository).registry
    checks = []
    for node in route.used():
        platform = str(route.served_by(node)[0])
        name = f"push from node {node.name}"
        try:
            buildx.probe_push(cfg.builder.name, platform, repository)
        except buildx.RegistryRefused as exc:
            problem = "answers plain HTTP" if exc.plain_http else "has a certificate the node does not trust"
            stanza = builder.registry_stanza(exc.host or host, exc.plain_http)
            checks.append(
                Check(
                    name,
                    False,
                    f"its buildkitd cannot push to {exc.host or host}: the registry {problem}",
                    "add to that buildkitd's buildkitd.toml and restart it:\n" + stanza,
                )
            )
            continue
        except CommandError as exc:
            checks.append(Check(name, False, f"cannot push to {host}: {exc.tail(1)}", f"check {host} from that node"))
            continue
        checks.append(Check(name, True, f"pushed a probe for {platform} to {host}"))
    return checks


def binfmt(platforms: Sequence[Platform], needed: bool) -> list[Check]:
    checks = []
    for p in builder.foreign(platforms):
        if p.arch == "386":
            continue
        name = builder.QEMU_ARCH.get(p.arch, p.arch)
        if builder.binfmt_registered(p.arch):
            checks.append(Check(f"binfmt {p.arch}", True, f"/proc/sys/fs/binfmt_misc/qemu-{name}"))
        else:
            checks.append(
                Check(
                    f"binfmt {p.arch}",
                    False,
                    "not registered: foreign images cannot be smoke-tested" + ("" if not needed else " or built"),
                    f"sudo sh -c 'cat /usr/lib/binfmt.d/qemu-{name}.conf > /proc/sys/fs/binfmt_misc/register' "
                    "(apt-get install qemu-user-static first), or `make setup`",
                    blocking=needed,
                )
            )
    return checks


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def go_version(cfg: Config) -> Check:
    if runner.which("go") is None:
        return Check("go", False, "not found", "install Go: https://go.dev/dl/")
    have = runner.output(["go", "env", "GOVERSION"])
    name = "go.mod" if (cfg.module_dir / "go.mod").is_file() else "go.work"
    match = re.search(r"^go\s+(\S+)", (cfg.module_dir / name).read_text(), re.MULTILINE)
    want = match.group(1) if match else "1.0"
    if _version_tuple(have.removeprefix("go")) < _version_tuple(want):
        return Check("go", False, f"{have}, but {name} asks for go {want}", f"install Go >= {want}: https://go.dev/dl/")
    return Check("go", True, f"{have} ({name}: go {want})")


def go_modules(cfg: Config) -> Check:
    """Can go resolve everything the services import (modules downloadable, nothing missing)?"""
    if runner.which("go") is None:
        return Check("go modules", False, "go not found", "install Go: https://go.dev/dl/")
    services = cfg.selected_bins() or cfg.services
    env = golist.go_env_for("linux", "amd64", cfg.go.cgo, dict(cfg.go.env))
    try:
        listed = golist.load(cfg.module_dir, [s.package for s in services], env, cfg.go.tags, deps=True)
    except CommandError as exc:
        return Check("go modules", False, exc.tail(1), f"cd {cfg.module_dir} && go mod download")
    broken = [p for p in listed if p.error]
    if broken:
        first = broken[0].error.splitlines()[0]
        return Check(
            "go modules",
            False,
            f"{len(broken)} package(s) do not resolve: {first}",
            f"cd {cfg.module_dir} && go mod download (check GOPROXY / GOPRIVATE / GOFLAGS)",
        )
    return Check("go modules", True, f"{len(listed)} packages of {len(services)} service(s) resolve")


def _registry_problem(exc: RegistryError) -> str:
    """What doctor's row says about a registry that failed its probe (the fix is in the row's own column)."""
    if isinstance(exc, SpeaksPlainHTTP):
        return exc.reason
    if isinstance(exc, Unreachable):
        return f"is not reachable: {exc.reason}"
    return exc.reason or str(exc)


def registry(cfg: Config, client: Client) -> Check:
    host = parse_reference(cfg.image.registry_prefix + "/x").registry
    try:
        scheme = client.probe(host)
    except RegistryError as exc:
        if registry_server.serves_image_registry(cfg):
            return Check(f"registry {host}", True, "embedded registry not running; it starts on demand", blocking=False)
        fix = f"start a registry on {host} or set REGISTRY_PREFIX to one"
        return Check(f"registry {host}", False, _registry_problem(exc), fix)
    return Check(f"registry {host}", True, f"answers over {scheme.upper()}")


def disk(cfg: Config) -> Check:
    path = cfg.output_dir if cfg.output_dir.exists() else cfg.root
    free = shutil.disk_usage(path).free
    gib = free / 1024**3
    if free < MIN_FREE_BYTES:
        return Check(
            "disk",
            False,
            f"{gib:.1f} GiB free under {path}",
            "free space or set [project] output_dir elsewhere",
            blocking=free < MIN_FREE_BYTES // 4,
        )
    return Check("disk", True, f"{gib:.1f} GiB free under {path}")


def run_all(cfg: Config, platforms: Sequence[Platform], client: Client, needs_emulation: bool) -> list[Check]:
    checks = docker_versions()
    bx = buildx_version()
    checks.append(bx)
    route = None
    if bx.ok:
        state, route = _builder(cfg, platforms, needs_emulation)
        checks += [state, *routing_warnings(route)]
        route = route if state.ok else None
    checks += binfmt(platforms, needs_emulation)
    checks.append(go_version(cfg))
    checks.append(go_modules(cfg))
    reg = registry(cfg, client)
    checks.append(reg)
    if reg.ok and reg.blocking:  # the registry answers (an embedded one not yet started is not blocking)
        checks += builder_push(cfg, route)
    checks.append(disk(cfg))
    return checks


def preflight(cfg: Config, platforms: Sequence[Platform], runs_target_code: bool = True) -> routing.Routing | None:
    """The subset an image build needs; raise the first blocking problem with its fix.

    Returns the routing it read from the builder, so the route stage need not ask again. A
    builder that answers needs buildx, so `docker buildx version` (0.13 s) runs only to explain
    a builder that does not."""
    state, route = _builder(cfg, platforms, runs_target_code)
    if not state.ok and state.blocking:
        plugin = buildx_version()
        check = plugin if not plugin.ok else state
        raise UserError(f"{check.name}: {check.detail}; fix: {check.fix}")
    return route
