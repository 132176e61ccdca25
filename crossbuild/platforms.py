"""The platform model: parsing, normalising and mapping to Go's environment.

A Platform is `os/arch[/variant]` exactly as `$TARGETPLATFORM` spells it, so
`build/bin/<platform>/<service>` is what a Dockerfile can COPY. OCI variants
map to Go's GOARM / GOAMD64 / GOARM64 as the OCI image-spec describes them
(image-index "platform.variant": arm v5-v7, arm64 v8[.x]/v9[.x], amd64 v1-v4).
`go tool dist list` is the truth for which GOOS/GOARCH pairs exist.

One set of spelling rules serves both directions: what a user types
(`parse_platform`: `linux/aarch64`, `linux_arm64`, bare `aarch64` for
linux/arm64) and what an image declares in an index entry or its config
(`normalise_platform`, `platform_of_config`: lenient, since the registry's
content is not ours to refuse). Both lower-case, map the aliases and drop the
variants that mean "the default", so `aarch64` is linux/arm64 wherever it is
read.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crossbuild import runner
from crossbuild.errors import UserError

# Architecture spellings people type, mapped to (GOARCH, variant).
_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv7": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
}

_ARM_VARIANTS = {"v5", "v6", "v7"}
_AMD64_VARIANTS = {"v1", "v2", "v3", "v4"}
_ARM64_VARIANT = re.compile(r"^v(8|9)(\.[0-9])?$")

# Used only when `go` is not installed, so error messages still list choices.
_FALLBACK_DIST = (
    "aix/ppc64 android/386 android/amd64 android/arm android/arm64 darwin/amd64 "
    "darwin/arm64 dragonfly/amd64 freebsd/386 freebsd/amd64 freebsd/arm freebsd/arm64 "
    "freebsd/riscv64 illumos/amd64 ios/amd64 ios/arm64 js/wasm linux/386 linux/amd64 "
    "linux/arm linux/arm64 linux/loong64 linux/mips linux/mips64 linux/mips64le "
    "linux/mipsle linux/ppc64 linux/ppc64le linux/riscv64 linux/s390x netbsd/386 "
    "netbsd/amd64 netbsd/arm netbsd/arm64 openbsd/386 openbsd/amd64 openbsd/arm "
    "openbsd/arm64 openbsd/ppc64 openbsd/riscv64 plan9/386 plan9/amd64 plan9/arm "
    "solaris/amd64 wasip1/wasm windows/386 windows/amd64 windows/arm64"
)


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)

    @property
    def slug(self) -> str:
        """File-name friendly form: linux-arm-v7."""
        return str(self).replace("/", "-")

    @property
    def exe_suffix(self) -> str:
        return ".exe" if self.os == "windows" else ""

    @property
    def is_linux(self) -> bool:
        return self.os == "linux"

    def go_env(self) -> dict[str, str]:
        """GOOS/GOARCH plus the variant variable Go reads for this arch."""
        env = {"GOOS": self.os, "GOARCH": self.arch}
        if self.arch == "arm":
            env["GOARM"] = (self.variant or "v7").removeprefix("v")
        elif self.arch == "amd64" and self.variant:
            env["GOAMD64"] = self.variant
        elif self.arch == "arm64" and self.variant:
            env["GOARM64"] = self.variant if "." in self.variant else f"{self.variant}.0"
        return env


def _canonical(os_: str, arch: str, variant: str) -> Platform:
    """The one spelling rule: lower case, arch aliases, and the variants that mean the default
    ([image] image-index.md: arm64 v8, amd64 v1; an arm image without a variant is v7, containerd's default).
    Unknown variants are kept as they are: refusing them is the strict parser's job."""
    os_, arch, variant = os_.strip().lower(), arch.strip().lower(), variant.strip().lower()
    if arch in _ARCH_ALIASES:
        arch, alias_variant = _ARCH_ALIASES[arch]
        variant = variant or alias_variant
    if arch == "arm":
        variant = variant or "v7"
    elif (arch == "arm64" and variant in ("v8", "v8.0")) or (arch == "amd64" and variant == "v1"):
        variant = ""
    return Platform(os_, arch, variant)


def normalise_platform(os_: str, arch: str, variant: str = "") -> Platform:
    """An image's platform fields (index entry or config) spelled the way parse_platform spells them.

    Lenient: any case, the aliases (aarch64, x86_64, armhf...), variants kept when unknown, no
    check against `go tool dist list`, because this reads what a registry holds, not what a user typed.
    """
    return _canonical(os_, arch, variant)


def platform_of_config(config: Mapping[str, Any]) -> Platform:
    """The platform an image config declares in os / architecture / variant ([image] config.md)."""
    os_, arch = config.get("os"), config.get("architecture")
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        raise UserError("image config has no os/architecture: it is not a container image")
    variant = config.get("variant")
    return normalise_platform(os_, arch, variant if isinstance(variant, str) else "")


def _check_variant(platform: Platform, text: str) -> None:
    """What a user may ask Go to build: the variants GOARM / GOAMD64 / GOARM64 accept."""
    arch, variant = platform.arch, platform.variant
    if arch == "arm":
        if variant not in _ARM_VARIANTS:
            raise UserError(f"platform '{text}': arm variant must be one of v5, v6, v7 (GOARM), got '{variant}'")
    elif arch == "arm64":
        if variant and not _ARM64_VARIANT.match(variant):
            raise UserError(f"platform '{text}': arm64 variant must be v8, v8.N, v9 or v9.N (GOARM64)")
    elif arch == "amd64":
        if variant and variant not in _AMD64_VARIANTS:
            raise UserError(f"platform '{text}': amd64 variant must be one of v1, v2, v3, v4 (GOAMD64)")
    elif variant:
        raise UserError(f"platform '{text}': {platform.os}/{arch} has no variants; drop '/{variant}'")


@functools.cache
def go_dist_list() -> frozenset[str]:
    """Valid GOOS/GOARCH pairs from the installed toolchain."""
    if runner.which("go") is None:
        return frozenset(_FALLBACK_DIST.split())
    return frozenset(runner.output(["go", "tool", "dist", "list"]).split())


def parse_platform(text: str, valid: Iterable[str] | None = None) -> Platform:
    """Parse one platform in any accepted spelling and check it exists.

    `os/arch[/variant]`, the OpenIM form `os_arch[_variant]`, or a bare Linux architecture
    (`aarch64`, `x86_64`, `armhf`, `arm64`...), which means linux/<arch>.
    """
    raw = text.strip()
    if not raw:
        raise UserError("empty platform: use os/arch, for example linux/arm64")
    not_a_platform = f"platform '{raw}' is not os/arch[/variant], for example linux/arm64 or linux/arm/v7"
    pairs = frozenset(valid) if valid is not None else go_dist_list()
    # x86_64 holds the separator of the OpenIM form (linux_arm64): rename it before splitting
    parts = re.split(r"[/_]", re.sub(r"x86[_-]64", "amd64", raw.lower()))
    if len(parts) == 1 and parts[0]:
        platform = _canonical("linux", parts[0], "")
        if f"linux/{platform.arch}" not in pairs:
            raise UserError(f"{not_a_platform} (a bare name must be a Linux architecture such as arm64)")
        _check_variant(platform, raw)
        return platform
    if len(parts) not in (2, 3) or not all(parts):
        raise UserError(not_a_platform)
    platform = _canonical(parts[0], parts[1], parts[2] if len(parts) == 3 else "")
    pair = f"{platform.os}/{platform.arch}"
    if pair not in pairs:
        near = difflib.get_close_matches(pair, sorted(pairs), n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        raise UserError(f"unknown platform '{raw}': {hint}valid choices are {', '.join(sorted(pairs))}")
    _check_variant(platform, raw)
    return platform


def split_list(spec: str | Sequence[str]) -> list[str]:
    """Split 'a,b c' and ['a,b', 'c'] alike into items."""
    items = [spec] if isinstance(spec, str) else list(spec)
    return [tok for item in items for tok in re.split(r"[\s,]+", item) if tok]


def parse_platforms(spec: str | Sequence[str], valid: Iterable[str] | None = None) -> tuple[Platform, ...]:
    """Parse a space/comma separated list (or a list of such), keeping order, dropping repeats."""
    valid_set = frozenset(valid) if valid is not None else None
    seen: dict[Platform, None] = {}
    for tok in split_list(spec):
        seen.setdefault(parse_platform(tok, valid_set), None)
    if not seen:
        raise UserError("no platforms given: use for example PLATFORMS=linux/amd64,linux/arm64")
    return tuple(seen)


def require_image_platforms(platforms: Iterable[Platform]) -> None:
    """Container images run on a Linux kernel; refuse darwin/windows with the reason."""
    for p in platforms:
        if not p.is_linux:
            raise UserError(
                f"{p} cannot be an image platform: container images need a Linux kernel "
                f"({p.os} images are not supported by BuildKit's OCI worker); "
                f"build {p.os} binaries with `make build.multiarch PLATFORMS={p}` instead"
            )


@functools.cache
def host_platform() -> Platform:
    """The machine's own platform, as Go sees it."""
    if runner.which("go") is None:
        import platform as _pf  # noqa: PLC0415 - only needed without Go

        machine = _pf.machine().lower()
        arch, variant = _ARCH_ALIASES.get(machine, (machine, ""))
        return Platform("linux", arch, variant)
    goos, goarch = runner.output(["go", "env", "GOHOSTOS", "GOHOSTARCH"]).split()
    return Platform(goos, goarch, "v7" if goarch == "arm" else "")
