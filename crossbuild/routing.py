"""Which node of a buildx builder builds which platform, worked out the way buildx does it.

buildx (build/resolver/driver.go, v0.36) resolves each target's platforms in two passes:

1. every platform is matched strictly against the nodes' pins (`buildx create --platform`);
   when all of them match, only the nodes picked are contacted;
2. otherwise every node is booted and asked what its workers offer, and each platform goes
   to the first node that offers it, a node offering it exactly beating an earlier one that
   only runs it as a compatible platform (arm64 runs arm/v7, amd64 runs 386).

So a node that pins nothing but emulates everything (a QEMU-equipped x86 buildkitd) wins
every platform in the second pass when it comes first: pins are what make routing stick.
This module is pure: crossbuild.builder gathers the nodes, the route stage and doctor
print what `resolve` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crossbuild.platforms import Platform


@dataclass(frozen=True)
class Node:
    name: str
    endpoint: str
    pinned: tuple[Platform, ...]  # buildx's pins for it
    offered: tuple[Platform, ...]  # pins, then what its workers offer (only pins when it is down)
    up: bool  # answers now, or its driver starts it on demand
    status: str  # buildx's word: running, inactive, error...
    native: Platform | None = None  # its workers' own platform; None: not known
    configured: bool = True  # config.toml lists it

    def label(self) -> str:
        return f"'{self.name}' ({self.endpoint})" if self.endpoint else f"'{self.name}'"


@dataclass(frozen=True)
class Route:
    platform: Platform
    node: Node | None  # None: the builder has no node at all
    fallback: bool = False  # no node offers it: buildx sends it to the first node (COPY-only images build)

    @property
    def native(self) -> bool | None:
        """Built without emulation; None when the node's own platform is not known."""
        if self.node is None or self.node.native is None:
            return None
        return runs_natively(self.node.native, self.platform)

    def how(self) -> str:
        if self.node is None:
            return "-"
        if self.fallback:
            return "not offered"
        if self.native is None:
            return "pinned" if self.platform in self.node.pinned else "unknown"
        return "native" if self.native else "emulated"


# Architectures whose CPUs also run another one without QEMU, as containerd's platform
# vectors have it (amd64 runs 386; arm64 runs arm, on the many cores that keep AArch32).
ALSO_RUNS: dict[str, tuple[str, ...]] = {"amd64": ("386",), "arm64": ("arm",)}


def runs_natively(host: Platform, platform: Platform) -> bool:
    """A CPU runs its own architecture, and those ALSO_RUNS lists, without QEMU."""
    return host.os == platform.os and (host.arch == platform.arch or platform.arch in ALSO_RUNS.get(host.arch, ()))


def _compatible(offered: Platform) -> list[Platform]:
    """What a node offering `offered` also runs, best first (containerd's platformVector)."""
    out = [offered]
    if offered.arch == "amd64":
        level = int(offered.variant.removeprefix("v") or "1")
        out += [Platform(offered.os, "amd64", f"v{v}" if v > 1 else "") for v in range(level - 1, 0, -1)]
        out.append(Platform(offered.os, "386"))
    elif offered.arch == "arm":
        level = int(offered.variant.removeprefix("v") or "7")
        out += [Platform(offered.os, "arm", f"v{v}") for v in range(level - 1, 4, -1)]
    elif offered.arch == "arm64":
        out += [Platform(offered.os, "arm", f"v{v}") for v in (8, 7, 6, 5)]
    return out


def _match(nodes: Sequence[Node], platform: Platform, strict: bool) -> Node | None:
    """The node buildx picks for one platform: the first exact match, else the first compatible one."""
    best: tuple[int, int] | None = None  # (rank, node index)
    for i, node in enumerate(nodes):
        for offered in node.pinned if strict else node.offered:
            vector = [offered] if strict else _compatible(offered)
            if platform not in vector:
                continue
            rank = vector.index(platform)
            if best is None or rank < best[0]:
                best = (rank, i)
    return None if best is None else nodes[best[1]]


@dataclass(frozen=True)
class Routing:
    builder: str
    nodes: tuple[Node, ...]
    routes: tuple[Route, ...]
    pinned_only: bool  # the first pass placed every platform: only the nodes picked are contacted

    def used(self) -> list[Node]:
        picked = {r.node.name for r in self.routes if r.node is not None}
        return [n for n in self.nodes if n.name in picked]

    def served_by(self, node: Node) -> list[Platform]:
        return [r.platform for r in self.routes if r.node is not None and r.node.name == node.name]

    def rows(self) -> list[list[str]]:
        """platform, node, endpoint, native/emulated, status: the table doctor and --dry-run print."""
        rows = []
        for r in self.routes:
            if r.node is None:
                rows.append([str(r.platform), "-", "-", "-", "no node offers it"])
                continue
            if r.fallback:
                why = "no node offers it: buildx's first node (COPY-only images build; RUN steps need QEMU)"
                rows.append([str(r.platform), r.node.name, r.node.endpoint or "-", r.how(), f"{r.node.status}, {why}"])
                continue
            why = "pinned" if r.platform in r.node.pinned else "first node offering it"
            rows.append([str(r.platform), r.node.name, r.node.endpoint or "-", r.how(), f"{r.node.status}, {why}"])
        return rows

    def problems(self, runs_target_code: bool = True) -> list[tuple[str, str]]:
        """(what, fix) of each thing that makes the build fail: a platform no node offers when a
        Dockerfile runs target code (images that only COPY build on buildx's fallback node), a node
        that must answer but is down."""
        found = []
        missing = [str(r.platform) for r in self.routes if r.node is None or (r.fallback and runs_target_code)]
        if missing:
            found.append(
                (
                    f"no node of builder '{self.builder}' offers {', '.join(missing)}",
                    "pin it on a node ([builder] platforms or a [[builder.nodes]] entry) and run `make setup`, "
                    "or register QEMU on a node with `make setup`",
                )
            )
        wanted = [str(r.platform) for r in self.routes]
        for node in self.used():
            if not node.up:
                served = self.served_by(node)
                rest = [p for p in wanted if p not in map(str, served)]
                fix = "start that buildkitd" + (f", or build without it: PLATFORMS={','.join(rest)}" if rest else "")
                found.append(
                    (f"node {node.label()} serves {', '.join(map(str, served))} but is {node.status or 'down'}", fix)
                )
        if not self.pinned_only:
            for node in self.nodes:
                if not node.up and node not in self.used():
                    found.append(
                        (
                            f"node {node.label()} is {node.status or 'down'}, and buildx contacts every node "
                            "when a platform is not pinned",
                            "start it, pin every platform on a node, or drop the node from config.toml "
                            "and run `invoke setup --prune`",
                        )
                    )
        return found

    def warnings(self) -> list[str]:
        """Routing that works but is not what a multi-node builder is for."""
        found = []
        for r in self.routes:
            if r.node is None or r.native is not False:
                continue
            natives = [n.name for n in self.nodes if n.native is not None and runs_natively(n.native, r.platform)]
            if natives:
                found.append(
                    f"{r.platform} goes to node '{r.node.name}' under emulation although node '{natives[0]}' "
                    f"is native for it: pin {r.platform} on '{natives[0]}' and run `make setup`"
                )
        strays = [n.name for n in self.nodes if not n.configured]
        if strays and len(self.nodes) > 1:
            found.append(
                f"builder '{self.builder}' has node(s) {', '.join(strays)} that config.toml does not list: "
                "list them as [[builder.nodes]] (crossbuild splits the build cache per platform only then) "
                "or remove them with `invoke setup --prune`"
            )
        return found


def resolve(builder: str, nodes: Sequence[Node], platforms: Sequence[Platform]) -> Routing:
    """Where each platform goes, by buildx's rule (see the module docstring)."""
    strict = [_match(nodes, p, strict=True) for p in platforms]
    if all(n is not None for n in strict):
        return Routing(builder, tuple(nodes), tuple(map(Route, platforms, strict)), pinned_only=True)
    # a platform no node offers goes to the first node (buildx's resolver: `idx = 0`, not perfect)
    routes = []
    for p in platforms:
        n = _match(nodes, p, strict=False)
        routes.append(Route(p, n) if n is not None or not nodes else Route(p, nodes[0], fallback=True))
    return Routing(builder, tuple(nodes), tuple(routes), pinned_only=False)
