"""What a repository's release setup says, as crossbuild settings, each with the file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

IMAGE_ARCHES = ("386", "amd64", "arm", "arm64", "ppc64le", "s390x", "riscv64", "loong64", "mips64le")


@dataclass(frozen=True)
class Taken:
    setting: str  # config.toml key, e.g. "go.tags"
    value: str
    source: str  # file, relative to the repository


@dataclass
class Build:
    """One program as the release builds it."""

    name: str
    package: str  # "./cmd/x", relative to the module directory
    tags: list[str] | None = None
    ldflags: list[str] | None = None  # everything but -X
    x: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cgo: bool | None = None
    trimpath: bool | None = None
    platforms: list[str] = field(default_factory=list)


@dataclass
class ReleaseSetup:
    builds: list[Build] = field(default_factory=list)  # GoReleaser's, merged per program
    x: dict[str, str] = field(default_factory=dict)  # -X variable -> crossbuild template
    tags: list[str] | None = None
    ldflags: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cgo: bool | None = None
    trimpath: bool | None = None
    platforms: list[str] = field(default_factory=list)  # os/arch[/variant] the release ships
    arm_variant: str = ""  # "v6" from GOARM=6 in a script
    expose: list[str] = field(default_factory=list)
    user: str | None = None
    cmd: dict[str, list[str]] = field(default_factory=dict)  # binary name -> CMD arguments
    base: str = ""  # the release image's runtime base ("" none seen)
    project_name: str = ""
    taken: list[Taken] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def take(self, setting: str, value: object, source: str) -> None:
        shown = value if isinstance(value, str) else repr(value)
        entry = Taken(setting, shown, source)
        if entry not in self.taken:
            self.taken.append(entry)

    def cannot(self, what: str) -> None:
        if what not in self.unmapped:
            self.unmapped.append(what)

    def image_platforms(self) -> list[str]:
        return [p for p in self.platforms if p.startswith("linux/") and p.split("/")[1] in IMAGE_ARCHES]
