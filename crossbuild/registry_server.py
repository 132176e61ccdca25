"""The embedded default registry: a local OCI registry on 127.0.0.1:5000 with
its data under build/, started on demand.

Uses a `registry` / `docker-registry` binary (Debian's docker-registry is
distribution 2.8) when installed, else a `registry:2` container through the
docker SDK. Health-checked with GET /v2/ before use.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from crossbuild import hosts, output, runner
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.oci import parse_reference
from crossbuild.runner import Runner

CONTAINER_NAME = "crossbuild-registry"


def _host_port(address: str) -> tuple[str, int]:
    """The embedded registry's listen address as (host, port); 127.0.0.1 and 5000 where it leaves them out."""
    try:
        host, port = hosts.split_host_port(address)
    except ValueError as exc:
        raise UserError(f"[registry] address {exc}; give HOST:PORT, e.g. 127.0.0.1:5000") from None
    return host or "127.0.0.1", 5000 if port is None else port


def healthy(address: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def serves_image_registry(cfg: Config) -> bool:
    """Is the image registry the embedded one (same port on a loopback host)?"""
    if not cfg.registry.embedded:
        return False
    registry = parse_reference(cfg.image.registry_prefix + "/x").registry
    if not hosts.is_loopback(registry):
        return False
    return hosts.port(registry) == _host_port(cfg.registry.address)[1]  # no port: 443 or 80, not ours


def _config_yaml(data_dir: Path, address: str) -> str:
    """distribution's config.yml (a data structure dumped as YAML: any path or address is quoted right)."""
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(data_dir / "data")}, "delete": {"enabled": True}},
        "http": {"addr": address},
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def up(run: Runner, cfg: Config, wait: float = 15.0) -> str:
    """Start the embedded registry unless something already answers there."""
    address = cfg.registry.address
    if healthy(address):
        return f"registry already answering on {address}"
    started = run.act(f"start the embedded registry on {address}", lambda: _start(cfg, wait))
    return started if started is not None else f"would start the embedded registry on {address}"


def _start(cfg: Config, wait: float) -> str:
    address = cfg.registry.address
    data_dir = cfg.registry.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = runner.which("registry") or runner.which("docker-registry")
    if binary:
        conf = data_dir / "config.yml"
        conf.write_text(_config_yaml(data_dir, address))
        log = (data_dir / "registry.log").open("ab")
        with log:
            proc = subprocess.Popen(  # long-lived daemon: not a runner command, it must outlive us
                [binary, "serve", str(conf)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (data_dir / "registry.pid").write_text(str(proc.pid))
        how = f"{binary} (pid {proc.pid})"
    else:
        how = _start_container(data_dir, address)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if healthy(address):
            return f"started {how} on {address}, data in {data_dir}"
        time.sleep(0.2)
    raise UserError(
        f"registry did not answer on {address} within {wait:g}s; see {data_dir / 'registry.log'} "
        "or set [registry] address to a free port"
    )


def _start_container(data_dir: Path, address: str) -> str:
    import docker  # noqa: PLC0415 - only needed when no registry binary is installed
    import docker.errors  # noqa: PLC0415

    host, port = _host_port(address)
    try:
        client = docker.from_env()
        client.containers.run(
            "registry:2",
            name=CONTAINER_NAME,
            detach=True,
            remove=True,
            ports={"5000/tcp": (host, port)},
            volumes={str((data_dir / "data").resolve()): {"bind": "/var/lib/registry", "mode": "rw"}},
        )
    except docker.errors.DockerException as exc:
        raise UserError(
            f"no registry binary installed and the registry:2 container could not start ({exc}); "
            "install Debian's docker-registry (`make tools`) or point REGISTRY_PREFIX at a registry"
        ) from exc
    return f"container {CONTAINER_NAME} (registry:2)"


def down(cfg: Config) -> str:
    pid_file = cfg.registry.data_dir / "registry.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text().strip() or 0)
        pid_file.unlink()
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return "registry was not running"
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        return f"stopped registry (pid {pid})"
    try:
        import docker  # noqa: PLC0415
        import docker.errors  # noqa: PLC0415

        docker.from_env().containers.get(CONTAINER_NAME).stop()
    except Exception:  # noqa: BLE001 - no daemon or no container both mean "nothing to stop"
        return "no embedded registry was running"
    return f"stopped container {CONTAINER_NAME}"


def ensure(run: Runner, cfg: Config) -> None:
    if serves_image_registry(cfg):
        output.info(up(run, cfg))
