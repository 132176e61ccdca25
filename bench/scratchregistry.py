"""A docker-registry of the bench's own on a free loopback port, emptied on demand.

The transfer case (t) loads into it rather than into the registry on :5000: a destination that
already holds the blobs (or another repository of the same registry, from which skopeo mounts
them) would measure nothing. Each tool gets it empty, so each sends every byte.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.shell import Unavailable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(address: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}/v2/", timeout=2) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


class ScratchRegistry:
    """docker-registry serving `workdir`/data on 127.0.0.1:<free port>; `empty()` restarts it with no data."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise Unavailable("docker-registry not found (make tools installs it)")
        self.binary, self.workdir = binary, workdir
        self.address = f"127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {  # YAML is a superset of JSON
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.data)}, "delete": {"enabled": True}},
            "http": {"addr": self.address},
        }
        conf = self.workdir / "config.yml"
        conf.write_text(json.dumps(config, indent=2))
        log = self.workdir / "registry.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen([self.binary, "serve", str(conf)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not answers(self.address):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"docker-registry did not start on {self.address}: see {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def empty(self) -> None:
        """Restart with no data: the next tool finds none of the blobs."""
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        self.start()

    def stored_bytes(self) -> int:
        """Bytes of every blob the registry stores (manifests included)."""
        blobs = self.data / "docker" / "registry" / "v2" / "blobs"
        return sum(p.stat().st_size for p in blobs.rglob("data") if p.is_file()) if blobs.is_dir() else 0

    def close(self) -> None:
        """Stop it and remove its data."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ScratchRegistry:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
