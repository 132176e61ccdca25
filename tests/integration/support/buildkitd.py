"""buildkitd daemons of a test's own, client certificates, and the daemons' own records.

Nothing here imports crossbuild. Each daemon has its own --root, its own unix socket (and,
when asked, a tcp:// listener with mutual TLS), its worker limited to the platforms it is
given, and a buildkitd.toml that lets it push to the shared registry on localhost:5000. What
a daemon built is read from its build history with buildctl (`debug histories`, `debug logs`),
which asks that daemon alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .registries import free_port

BUILDKITD = shutil.which("buildkitd") or "/usr/local/bin/buildkitd"
BUILDCTL = shutil.which("buildctl") or "/usr/local/bin/buildctl"
LOCAL_REGISTRIES = ("localhost:5000", "127.0.0.1:5000")


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all made by openssl."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path) -> None:
    proc = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    key_opts = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", *key_opts, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=crossbuild test CA")
    made = {}
    for who, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        key, csr, cert, extfile = (directory / f"{who}.{s}" for s in ("key", "csr", "pem", "ext"))
        extfile.write_text(ext)
        _openssl("req", *key_opts, "-keyout", key, "-out", csr, "-subj", f"/CN=crossbuild test {who}")
        _openssl(
            "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", extfile,
        )  # fmt: skip
        made[who] = (cert, key)
    return Certs(ca, made["server"][0], made["server"][1], made["client"][0], made["client"][1])


def registry_toml(hosts: Sequence[str]) -> str:
    return "".join(f'[registry."{h}"]\n  http = true\n  insecure = true\n' for h in hosts)


@dataclass
class Daemon:
    name: str
    platforms: tuple[str, ...]
    directory: Path  # short: holds the socket (a unix socket path is at most 107 bytes)
    tcp: str = ""  # tcp://127.0.0.1:PORT with mutual TLS, when asked for
    netns: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def unix(self) -> str:
        return f"unix://{self.directory / 'buildkitd.sock'}"

    @property
    def log(self) -> Path:
        return self.directory / "buildkitd.log"

    def buildctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BUILDCTL, "--addr", self.unix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def answers(self) -> bool:
        return self.buildctl("debug", "workers", timeout=10).returncode == 0

    def records(self) -> list[dict[str, Any]]:
        """The daemon's build history, oldest first: one record per solve it ran."""
        proc = self.buildctl("debug", "histories", "--format", "{{json .}}")
        assert proc.returncode == 0, proc.stderr
        found = [json.loads(line)["record"] for line in proc.stdout.splitlines() if line.strip()]
        return sorted(found, key=lambda r: (r.get("CreatedAt", {}).get("seconds", 0), r.get("Ref", "")))

    def built_platforms(self) -> set[str]:
        """Every platform its build records were asked for (a multi-platform solve lists several)."""
        return {p for r in self.records() for p in r.get("FrontendAttrs", {}).get("platform", "").split(",") if p}

    def vertices(self, ref: str) -> list[dict[str, Any]]:
        """The steps of one recorded build, as BuildKit logged them (name, cached, ...), last state of each."""
        proc = self.buildctl("debug", "logs", "--progress", "rawjson", ref)
        assert proc.returncode == 0, proc.stderr
        last: dict[str, dict[str, Any]] = {}
        for line in proc.stdout.splitlines():
            if line.strip():
                for v in json.loads(line).get("vertexes") or []:
                    last[v["digest"]] = {**last.get(v["digest"], {}), **v}
        return list(last.values())

    def start(self, certs: Certs | None = None, extra_toml: str = "") -> None:
        conf = self.directory / "buildkitd.toml"
        conf.write_text(
            registry_toml(LOCAL_REGISTRIES)
            + extra_toml
            + "[worker.oci]\n  enabled = true\n  platforms = ["
            + ", ".join(f'"{p}"' for p in self.platforms)
            + "]\n[worker.containerd]\n  enabled = false\n"
        )
        argv = [BUILDKITD, "--config", str(conf), "--root", str(self.directory / "root"), "--addr", self.unix]
        if self.tcp and certs is not None:
            argv += ["--addr", self.tcp, "--tlscacert", str(certs.ca)]
            argv += ["--tlscert", str(certs.server_cert), "--tlskey", str(certs.server_key)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.answers():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"buildkitd {self.name} did not answer: {self.log.read_text()[-3000:]}"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


@contextlib.contextmanager
def daemons(
    specs: Sequence[tuple[str, tuple[str, ...], bool]], certs: Certs | None = None, netns: str = ""
) -> Iterator[list[Daemon]]:
    """Start one buildkitd per (name, platforms, with_tcp) and stop them all afterwards."""
    base = Path(tempfile.mkdtemp(prefix="cbn-", dir="/tmp"))
    started: list[Daemon] = []
    try:
        for name, platforms, with_tcp in specs:
            d = Daemon(name, platforms, base / name, netns=netns)
            d.directory.mkdir()
            if with_tcp:
                d.tcp = f"tcp://127.0.0.1:{free_port()}"
            started.append(d)
            d.start(certs)
        yield started
    finally:
        for d in started:
            d.stop()
        shutil.rmtree(base, ignore_errors=True)


def buildx_rm(name: str) -> None:
    subprocess.run(["docker", "buildx", "rm", name], capture_output=True, timeout=120, check=False)


def buildx_inspect(name: str) -> str:
    proc = subprocess.run(["docker", "buildx", "inspect", name], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def buildx_store(name: str) -> Path:
    """buildx's own record of a builder (what `buildx create` wrote): nodes, endpoints, pins, options."""
    root = Path(
        os.environ.get("BUILDX_CONFIG") or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "buildx"
    )
    return root / "instances" / name


def buildx_nodes(name: str) -> dict[str, dict[str, Any]]:
    """node name -> {endpoint, pins (os/arch[/variant]), driver_opts} from buildx's store."""
    data = json.loads(buildx_store(name).read_text())
    return {
        n["Name"]: {
            "endpoint": n["Endpoint"],
            "pins": sorted(
                "/".join(x for x in (p["os"], p["architecture"], p.get("variant", "")) if x)
                for p in n.get("Platforms") or []
            ),
            "driver_opts": n.get("DriverOpts") or {},
        }
        for n in data["Nodes"]
    }
