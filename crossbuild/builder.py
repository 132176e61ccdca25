"""Builder setup: the usual manual recipe (docker >= 19.03, buildx, QEMU
binfmt, `buildx create`, bootstrap), automated and idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossbuild import buildx, output
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.platforms import Platform, host_platform
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


def buildkitd_toml(cfg: Config) -> str:
    """Registry settings for the builder: plain HTTP / insecure and mirrors, from one setting."""
    hosts = {cfg.registry.address, *cfg.registry.insecure}
    hosts |= {h.replace("127.0.0.1", "localhost") for h in hosts if h.startswith("127.0.0.1")}
    lines = ["# written by crossbuild from config.toml [registry]"]
    for host in sorted(hosts):
        lines += [f'[registry."{host}"]', "  http = true", "  insecure = true"]
    for host, mirrors in cfg.registry.mirrors:
        lines += [f'[registry."{host}"]', "  mirrors = [" + ", ".join(f'"{m}"' for m in mirrors) + "]"]
    return "\n".join(lines) + "\n"


def ensure_builder(run: Runner, cfg: Config, platforms: Sequence[Platform]) -> buildx.BuilderInfo:
    """Create the configured builder when missing, bootstrap it, check its platforms."""
    b = cfg.builder
    info = buildx.inspect(b.name)
    if info is None:
        if b.driver == "docker":
            raise UserError(f"builder '{b.name}' does not exist; the 'docker' driver is the daemon's own builder")
        conf = None
        if b.driver != "remote":
            conf = cfg.output_dir / "buildkitd.toml"
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text(buildkitd_toml(cfg))
        elif b.buildkitd_config:
            output.warn("builder.buildkitd_config is ignored for the remote driver: configure that buildkitd itself")
        buildx.create(
            run,
            name=b.name,
            driver=b.driver,
            endpoint=b.endpoint,
            driver_opt=[f"{k}={v}" for k, v in b.driver_opts],
            buildkitd_config=conf,
        )
        info = buildx.BuilderInfo(b.name, b.driver, "inactive", (), ())
        output.ok(f"created builder '{b.name}' ({b.driver})")
    elif info.driver and info.driver != b.driver:
        raise UserError(
            f"builder '{b.name}' exists with driver {info.driver}, config says {b.driver}: "
            f"`docker buildx rm {b.name}` and run `make setup` again, or change [builder] name"
        )
    if b.nodes:
        # append the configured nodes that are missing (also after a half-finished earlier setup)
        node_conf: Path | None = cfg.output_dir / "buildkitd.toml" if b.driver != "remote" else None
        for node in b.nodes:
            if node.name in info.nodes:
                continue
            buildx.create(
                run,
                name=b.name,
                driver=b.driver,
                endpoint=node.endpoint,
                node=node.name,
                append=True,
                platform=[str(p) for p in node.platforms],
                driver_opt=[f"{k}={v}" for k, v in node.driver_opts],
                buildkitd_config=node_conf,
            )
            output.ok(f"appended node '{node.name}' ({', '.join(map(str, node.platforms)) or 'its own platforms'})")
    if run.dry_run:
        return info  # a builder only planned cannot be bootstrapped
    info = buildx.inspect(b.name, bootstrap=True)
    if info is None:
        raise UserError(f"builder '{b.name}' vanished during bootstrap; run `make setup`")
    missing = [str(p) for p in platforms if str(p) not in info.platforms and not info.platforms_cover(p)]
    if missing and info.platforms:
        raise UserError(
            f"builder '{b.name}' does not build {', '.join(missing)} (it has {', '.join(info.platforms)}): "
            "register QEMU with `make setup` or add a node for them in [[builder.nodes]]"
        )
    return info
