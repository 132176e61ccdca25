"""Builder setup: the usual manual recipe (docker >= 19.03, buildx, QEMU
binfmt, `buildx create`, bootstrap), automated and idempotent.

A builder is node 0 ([builder]) plus [[builder.nodes]]; `ensure_builder` compares what
`buildx inspect` shows with the config and runs only the `buildx create` calls that close
the gap (create, --append, change a node in place, --leave when asked to prune), so a
second `make setup` runs none. `survey` turns the builder into routing.Node values: what
each node pins, offers, whether it answers and which platform is its own.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from crossbuild import buildx, output, routing, runner
from crossbuild.config import BuilderConfig, BuilderNode, Config
from crossbuild.errors import UserError
from crossbuild.platforms import Platform, host_platform, normalise_platform
from crossbuild.runner import Runner

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF_DIRS = (Path("/usr/lib/binfmt.d"), Path("/etc/binfmt.d"))
# GOARCH -> the name QEMU's binfmt entry carries (qemu-<name>)
QEMU_ARCH = {
    "arm64": "aarch64",
    "arm": "arm",
    "386": "i386",
    "amd64": "x86_64",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64le": "mips64el",
    "mips64": "mips64",
    "mipsle": "mipsel",
    "mips": "mips",
    "loong64": "loongarch64",
}


def check_docker_version() -> str:
    version = buildx.docker_client_version()
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return version
    if (major, minor) < (19, 3):
        raise UserError(f"docker {version} is too old for buildx (needs >= 19.03): upgrade docker")
    return version


def foreign(platforms: Sequence[Platform]) -> list[Platform]:
    host = host_platform()
    return [p for p in platforms if p.arch != host.arch or (host.arch == "amd64" and p.arch == "386")]


def binfmt_registered(arch: str) -> bool:
    return (BINFMT_DIR / f"qemu-{QEMU_ARCH.get(arch, arch)}").exists()


def register_binfmt(run: Runner, platforms: Sequence[Platform]) -> list[str]:
    """Register the qemu-user-static handlers for each foreign platform (root only)."""
    done = []
    for p in foreign(platforms):
        if p.arch == "386" or binfmt_registered(p.arch):
            continue
        name = QEMU_ARCH.get(p.arch, p.arch)
        conf = next((d / f"qemu-{name}.conf" for d in BINFMT_CONF_DIRS if (d / f"qemu-{name}.conf").is_file()), None)
        if conf is None:
            raise UserError(f"no QEMU handler for {p}: install qemu-user-static (apt-get install qemu-user-static)")
        try:
            if not (BINFMT_DIR / "register").exists():
                run.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)])
            register = BINFMT_DIR / "register"
            text = conf.read_text()
            run.act(f"register {conf} in {register}", lambda: register.write_text(text))  # noqa: B023 - called at once
        except OSError as exc:
            raise UserError(
                f"cannot register QEMU for {p} ({exc.strerror}): run as root "
                f"`sudo sh -c 'cat {conf} > {BINFMT_DIR}/register'`"
            ) from exc
        done.append(name)
    return done


def registry_stanza(host: str, plain_http: bool = True) -> str:
    """What a buildkitd.toml needs so BuildKit pushes to `host`: plain HTTP, or TLS it does not verify."""
    lines = [f'[registry."{host}"]']
    lines += ["  http = true", "  insecure = true"] if plain_http else ["  insecure = true"]
    return "\n".join(lines)


def buildkitd_toml(cfg: Config) -> str:
    """Registry settings for the builder: plain HTTP / insecure and mirrors, from one setting
    (one table per host: TOML refuses a table defined twice)."""
    hosts = {cfg.registry.address, *cfg.registry.insecure}
    hosts |= {h.replace("127.0.0.1", "localhost") for h in hosts if h.startswith("127.0.0.1")}
    mirrors = dict(cfg.registry.mirrors)
    lines = ["# written by crossbuild from config.toml [registry]"]
    for host in sorted(hosts):
        lines.append(registry_stanza(host))
        if host in mirrors:
            lines.append("  mirrors = [" + ", ".join(f'"{m}"' for m in mirrors.pop(host)) + "]")
    for host, urls in mirrors.items():
        lines += [f'[registry."{host}"]', "  mirrors = [" + ", ".join(f'"{m}"' for m in urls) + "]"]
    return "\n".join(lines) + "\n"


def same_toml(a: str, b: str) -> bool:
    """Two buildkitd.toml texts that say the same (buildx stores the file re-marshalled)."""
    try:
        return tomllib.loads(a) == tomllib.loads(b)
    except tomllib.TOMLDecodeError:
        return a.strip() == b.strip()


# --- what each node is asked to be ------------------------------------------------------------


def kubernetes_selector(node: BuilderNode) -> tuple[tuple[str, str], ...]:
    """The node selector of a kubernetes node: the configured one, else kubernetes.io/arch of the one
    architecture whose machines run all its pins (arm64 for arm64 + arm/v7: a per-arch node pool),
    else none."""
    if node.options.nodeselector:
        return node.options.nodeselector
    arches = {p.arch for p in node.platforms}
    hosts = [a for a in sorted(arches) if arches <= {a, *routing.ALSO_RUNS.get(a, ())}]
    return (("kubernetes.io/arch", hosts[0]),) if hosts else ()


def node_driver_opts(driver: str, node: BuilderNode) -> dict[str, str]:
    """Every --driver-opt of one node: its driver_opts, TLS files, kubernetes settings."""
    opts = dict(node.driver_opts)
    o = node.options
    for key in ("cacert", "cert", "key", "servername"):
        if getattr(o, key):
            opts[key] = getattr(o, key)
    if driver == "kubernetes":
        if o.namespace:
            opts["namespace"] = o.namespace
        if o.replicas:
            opts["replicas"] = str(o.replicas)
        selector = kubernetes_selector(node)
        if selector:
            opts["nodeselector"] = ",".join(f"{k}={v}" for k, v in selector)
        if o.rootless:
            opts["rootless"] = "true"
    return opts


def _csv_field(text: str) -> str:
    """buildx reads each --driver-opt as a CSV record: quote a value holding a comma or a quote."""
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def driver_opt_args(opts: dict[str, str]) -> list[str]:
    return [_csv_field(f"{k}={v}") for k, v in opts.items()]


def check_tls_files(b: BuilderConfig) -> None:
    """The TLS files buildx will read exist (buildx itself only says "no such file" at build time)."""
    for node in b.all_nodes:
        for key in ("cacert", "cert", "key"):
            path = getattr(node.options, key)
            if path and not Path(path).is_file():
                raise UserError(f"builder node '{node.name}': {key} {path} not found; fix the path in config.toml")


# --- setup: close the gap between the builder and the config ----------------------------------


@dataclass(frozen=True)
class Step:
    """One `buildx` call of a setup, and the line printed once it ran."""

    argv: tuple[str, ...]
    says: str
    restart: bool = False  # buildx keeps the change but a running node uses it only once restarted


def _pins(values: Sequence[object]) -> set[Platform]:
    return {_parse(str(v)) for v in values}


def _differences(b: BuilderConfig, node: BuilderNode, have: buildx.NodeInfo, conf_text: str | None) -> list[str]:
    """What of one node differs from the config (empty: nothing to do)."""
    changes = []
    if b.driver != "kubernetes" and node.endpoint and node.endpoint != have.endpoint:
        changes.append(f"endpoint {have.endpoint} -> {node.endpoint}")
    if _pins(node.platforms) != _pins(have.pinned):
        changes.append(f"pins {','.join(have.pinned) or 'none'} -> {','.join(map(str, node.platforms)) or 'none'}")
    if node_driver_opts(b.driver, node) != dict(have.driver_opts):
        changes.append("driver options")
    if conf_text is not None and not same_toml(have.file("buildkitd.toml") or "", conf_text):
        changes.append("buildkitd.toml")
    return changes


def plan_builder(
    b: BuilderConfig, info: buildx.BuilderInfo | None, conf: Path | None, conf_text: str | None, prune: bool
) -> tuple[list[Step], list[str]]:
    """The buildx calls that make the builder match the config, and notes about what stays.

    Leaves first (a pruned node may hold an endpoint a new node takes), then changes in place,
    then appends; nodes not in the config stay unless `prune`. A pin or driver option can only be
    cleared by taking the node out and in again (buildx keeps them when a flag is not given).
    """
    names = [n.name for n in b.all_nodes]
    if info is not None and b.driver == "kubernetes":
        info = kubernetes_view(b, info, conf_text)
    have = {n.name: n for n in info.nodes} if info else {}
    strays = [n for n in (info.nodes if info else ()) if n.name not in names]
    steps: list[Step] = []
    notes: list[str] = []

    def create(node: BuilderNode, *, append: bool, first: bool = False) -> tuple[str, ...]:
        return tuple(
            buildx.create_argv(
                name=b.name,
                driver=b.driver,
                endpoint=node.endpoint if b.driver != "kubernetes" else "",
                driver_opt=driver_opt_args(node_driver_opts(b.driver, node)),
                buildkitd_config=conf,
                platform=[str(p) for p in node.platforms],
                node=node.name,
                append=append and not first,
            )
        )

    for stray in strays:
        if prune:
            steps.append(Step(tuple(buildx.leave_argv(name=b.name, node=stray.name)), f"removed node '{stray.name}'"))
            continue
        notes.append(
            f"node '{stray.name}' ({stray.endpoint}) is not in config.toml; kept (`invoke setup --prune` removes it)"
        )
        clash = next((n.name for n in b.all_nodes if n.endpoint and n.endpoint == stray.endpoint), None)
        if clash and clash not in have:
            raise UserError(
                f"node '{stray.name}' of builder '{b.name}' already uses {stray.endpoint}, which config.toml gives "
                f"node '{clash}': run `invoke setup --prune` to replace it"
            )
    if info is None:
        first, *rest = b.all_nodes
        steps.append(Step(create(first, append=False, first=True), f"created builder '{b.name}' ({b.driver})"))
        for node in rest:
            steps.append(Step(create(node, append=True), f"appended node '{node.name}' ({_pins_text(node)})"))
        return steps, notes
    appends = []
    for node in b.all_nodes:
        current = have.get(node.name)
        if current is None:
            appends.append(Step(create(node, append=True), f"appended node '{node.name}' ({_pins_text(node)})"))
            continue
        changes = _differences(b, node, current, conf_text)
        if not changes:
            continue
        clears = (not node.platforms and current.pinned) or (
            not node_driver_opts(b.driver, node) and current.driver_opts
        )
        says = f"updated node '{node.name}': {'; '.join(changes)}"
        if clears and len(have) - (len(strays) if prune else 0) > 1:
            steps.append(Step(tuple(buildx.leave_argv(name=b.name, node=node.name)), f"took node '{node.name}' out"))
            appends.append(Step(create(node, append=True), says))
        elif clears:
            steps.append(Step(("docker", "buildx", "rm", b.name), f"removed builder '{b.name}' to recreate it"))
            steps.append(Step(create(node, append=False, first=True), says))
        else:
            restart = b.managed and ("buildkitd.toml" in changes or "driver options" in changes)
            steps.append(Step(create(node, append=False), says, restart=restart))
    return steps + appends, notes


def kubernetes_view(b: BuilderConfig, info: buildx.BuilderInfo, conf_text: str | None) -> buildx.BuilderInfo:
    """A kubernetes builder whose pods run shows one node per pod (named <deployment>-<hash>-<hash>),
    with the pod's platforms and none of the node's settings: fold the pods back into the configured
    nodes (their deployments), taking the settings buildx does not show as they are configured."""
    folded: dict[str, buildx.NodeInfo] = {}
    for n in info.nodes:
        node = next((c for c in b.all_nodes if n.name == c.name or n.name.startswith(c.name + "-")), None)
        if node is None or n.name == node.name:
            folded.setdefault(n.name, n)
            continue
        folded.setdefault(
            node.name,
            buildx.NodeInfo(
                node.name,
                n.endpoint,
                n.status,
                n.error,
                n.platforms,
                n.pinned or tuple(map(str, node.platforms)),
                tuple(node_driver_opts(b.driver, node).items()),
                (("buildkitd.toml", conf_text),) if conf_text is not None else (),
            ),
        )
    return buildx.BuilderInfo(info.name, info.driver, info.status, info.platforms, tuple(folded.values()), info.error)


def _pins_text(node: BuilderNode) -> str:
    return ", ".join(map(str, node.platforms)) or "no pinned platforms"


def ensure_builder(
    run: Runner, cfg: Config, platforms: Sequence[Platform], prune: bool = False, runs_target_code: bool = True
) -> buildx.BuilderInfo:
    """Create or update the configured builder until `buildx inspect` matches config.toml, bootstrap
    it, and check every platform has a node that answers."""
    b = cfg.builder
    check_tls_files(b)
    info = buildx.inspect(b.name)
    if info is None and b.driver == "docker":
        raise UserError(f"builder '{b.name}' does not exist; the 'docker' driver is the daemon's own builder")
    if info is not None and info.driver and info.driver != b.driver:
        raise UserError(
            f"builder '{b.name}' exists with driver {info.driver}, config says {b.driver}: "
            f"`docker buildx rm {b.name}` and run `make setup` again, or change [builder] name"
        )
    conf: Path | None = None
    conf_text: str | None = None
    if b.managed:
        conf, conf_text = cfg.output_dir / "buildkitd.toml", buildkitd_toml(cfg)
    elif b.buildkitd_config:
        output.warn("builder.buildkitd_config is ignored for the remote driver: configure that buildkitd itself")
    # the docker driver's one node is the daemon's own: nothing for buildx create to change
    steps, notes = plan_builder(b, info, conf, conf_text, prune) if b.driver != "docker" else ([], [])
    if steps and conf is not None and conf_text is not None:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(conf_text)
    for step in steps:
        run.run(step.argv, hint=f"could not set up builder '{b.name}'")
        output.ok(step.says)
        if step.restart:
            output.info(
                f"node changes reach a running {b.driver} node when it restarts: "
                f"`docker buildx rm --keep-state {b.name}` then `make setup`"
            )
    for note in notes:
        output.info(note)
    if not steps and info is not None:
        output.ok(
            f"builder '{b.name}': its {len(b.all_nodes)} node(s) in config.toml are as configured; nothing changed"
        )
    if run.dry_run:
        return info or buildx.BuilderInfo(b.name, b.driver, "inactive", ())
    # remote nodes answer or not (bootstrapping waits for a dead one); the others start on demand
    info = buildx.inspect(b.name, bootstrap=b.managed)
    if info is None:
        raise UserError(f"builder '{b.name}' vanished during setup; run `make setup`")
    routing = route(cfg, info, platforms)
    for what, fix in routing.problems(runs_target_code):
        raise UserError(f"{what}; fix: {fix}")
    for warning in routing.warnings():
        output.warn(warning)
    return info


# --- survey: the builder's nodes as routing sees them ------------------------------------------


def _parse(text: str) -> Platform:
    parts = text.split("/")
    return normalise_platform(parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")


def _worker_platform(node: buildx.NodeInfo) -> Platform | None:
    """A remote node's own platform: the first its BuildKit workers list (buildctl, when installed)."""
    if runner.which("buildctl") is None or not node.running:
        return None
    argv = ["buildctl", "--addr", node.endpoint, "--timeout", "5"]
    opts = dict(node.driver_opts)
    for key, flag in (("cacert", "--tlscacert"), ("cert", "--tlscert"), ("key", "--tlskey")):
        runner.add_opt(argv, flag, opts.get(key))
    if opts.get("servername") or opts.get("cacert"):
        runner.add_opt(argv, "--tlsservername", opts.get("servername") or urlparse(node.endpoint).hostname)
    res = runner.run([*argv, "debug", "workers", "--format", "{{json .}}"], check=False, mutates=False)
    try:
        workers = json.loads(res.stdout) if res.returncode == 0 else []
        first = workers[0]["platforms"][0]
        return normalise_platform(first["os"], first["architecture"], first.get("variant", ""))
    except (ValueError, LookupError, TypeError):
        return None


def _docker_platform() -> Platform | None:
    res = runner.run(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], check=False, mutates=False)
    return _parse(res.stdout.strip()) if res.returncode == 0 and "/" in res.stdout else None


def native_platform(b: BuilderConfig, node: buildx.NodeInfo) -> Platform | None:
    """The platform a node runs without emulation: its workers' first (buildctl), the docker daemon's
    for local container drivers, the node pool's arch for kubernetes, else the first it lists when
    it pins nothing (then buildx lists the workers' platforms in their order)."""
    configured = next((n for n in b.all_nodes if n.name == node.name), None)
    found: Platform | None = None
    if b.driver == "remote":
        found = _worker_platform(node)
    elif b.driver == "kubernetes" and configured is not None:
        arch = dict(kubernetes_selector(configured)).get("kubernetes.io/arch")
        found = normalise_platform("linux", arch) if arch else None
    elif configured is not None and not configured.endpoint:
        found = _docker_platform()
    if found is None and not node.pinned and node.platforms:
        found = _parse(node.platforms[0])
    return found


def survey(b: BuilderConfig, info: buildx.BuilderInfo) -> list[routing.Node]:
    """The builder's nodes as routing.resolve needs them."""
    names = {n.name for n in b.all_nodes}
    nodes = []
    for n in info.nodes:
        up = n.running if b.driver == "remote" else not n.error
        nodes.append(
            routing.Node(
                name=n.name,
                endpoint=n.endpoint,
                pinned=tuple(_parse(p) for p in n.pinned),
                offered=tuple(_parse(p) for p in n.platforms),
                up=up,
                status=n.status or ("error: " + n.error if n.error else "unknown"),
                native=native_platform(b, n),
                # kubernetes nodes show up as one node per pod, named after it
                configured=n.name in names or b.driver == "kubernetes",
            )
        )
    return nodes


def route(cfg: Config, info: buildx.BuilderInfo, platforms: Sequence[Platform]) -> routing.Routing:
    """Where each platform of a build on this builder goes (crossbuild.routing)."""
    return routing.resolve(cfg.builder.name, survey(cfg.builder, info), platforms)
