"""crossbuild.routing: which node buildx sends each platform to, and what doctor warns about.

The cases are buildx's resolver (build/resolver/driver.go) as measured on this project's
builders: pins win in a first, strict pass; without them the first node offering a platform
wins, an exact offer beating an earlier compatible one.
"""

from __future__ import annotations

import pytest

from crossbuild.platforms import Platform
from crossbuild.routing import Node, Routing, resolve

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
ARMV7 = Platform("linux", "arm", "v7")
I386 = Platform("linux", "386")
S390X = Platform("linux", "s390x")
THREE = (AMD64, ARM64, ARMV7)
QEMU_X86 = (AMD64, ARM64, ARMV7, S390X)  # what an x86 buildkitd with binfmt handlers offers


def node(
    name: str,
    pinned: tuple[Platform, ...] = (),
    offered: tuple[Platform, ...] = (),
    native: Platform | None = None,
    up: bool = True,
    configured: bool = True,
) -> Node:
    return Node(
        name=name,
        endpoint=f"unix:///{name}.sock",
        pinned=pinned,
        offered=pinned + tuple(p for p in offered if p not in pinned),
        up=up,
        status="running" if up else "inactive",
        native=native,
        configured=configured,
    )


def picked(routing: Routing) -> dict[str, str]:
    return {str(r.platform): (r.node.name if r.node else "-") for r in routing.routes}


def test_every_platform_pinned_goes_to_its_node() -> None:
    nodes = [
        node("x86", (AMD64,), QEMU_X86, native=AMD64),
        node("arm", (ARM64,), (ARM64, AMD64), native=ARM64),
        node("armv7", (ARMV7,), (ARMV7,), native=ARMV7),
    ]
    routing = resolve("farm", nodes, THREE)
    assert routing.pinned_only
    assert picked(routing) == {"linux/amd64": "x86", "linux/arm64": "arm", "linux/arm/v7": "armv7"}
    assert [r.how() for r in routing.routes] == ["native", "native", "native"]
    assert routing.problems() == [] and routing.warnings() == []


def test_an_unpinned_qemu_node_first_takes_everything() -> None:
    """The issue's measurement: node 0 offers arm64 under QEMU and comes first, so the arm64
    node gets nothing, and doctor says arm64 is emulated although a native node exists."""
    nodes = [node("x86", (), QEMU_X86, native=AMD64), node("arm", (ARM64,), (ARM64,), native=ARM64)]
    routing = resolve("farm", nodes, THREE)
    assert not routing.pinned_only
    assert picked(routing) == {"linux/amd64": "x86", "linux/arm64": "x86", "linux/arm/v7": "x86"}
    assert [r.how() for r in routing.routes] == ["native", "emulated", "emulated"]
    assert routing.warnings() == [
        "linux/arm64 goes to node 'x86' under emulation although node 'arm' is native for it: "
        "pin linux/arm64 on 'arm' and run `make setup`",
        "linux/arm/v7 goes to node 'x86' under emulation although node 'arm' is native for it: "
        "pin linux/arm/v7 on 'arm' and run `make setup`",
    ]


def test_pinning_node_0_sends_the_rest_where_they_are_offered() -> None:
    nodes = [node("x86", (AMD64, ARMV7), QEMU_X86, native=AMD64), node("arm", (ARM64,), (ARM64,), native=ARM64)]
    routing = resolve("farm", nodes, THREE)
    assert picked(routing) == {"linux/amd64": "x86", "linux/arm64": "arm", "linux/arm/v7": "x86"}
    assert routing.pinned_only


def test_an_exact_offer_beats_an_earlier_compatible_one() -> None:
    nodes = [node("arm64", (), (ARM64,)), node("armv7", (), (ARMV7,))]
    assert picked(resolve("farm", nodes, (ARMV7,))) == {"linux/arm/v7": "armv7"}
    # with no exact offer, arm64 runs arm/v7 and amd64 runs 386
    assert picked(resolve("farm", nodes[:1], (ARMV7,))) == {"linux/arm/v7": "arm64"}
    assert picked(resolve("farm", [node("x86", (), (AMD64,))], (I386,))) == {"linux/386": "x86"}


def test_the_first_exact_offer_wins_a_tie() -> None:
    nodes = [node("a", (), (AMD64, ARM64)), node("b", (), (ARM64,))]
    assert picked(resolve("farm", nodes, (ARM64,))) == {"linux/arm64": "a"}


def test_no_node_offers_it() -> None:
    """buildx sends it to the first node: fine for an image that only copies files in, a problem
    when a RUN step must execute target code there."""
    routing = resolve("farm", [node("x86", (AMD64,), (AMD64,)), node("arm", (ARM64,), (ARM64,))], (AMD64, S390X))
    assert picked(routing) == {"linux/amd64": "x86", "linux/s390x": "x86"}
    (what, fix), *_ = routing.problems()
    assert what == "no node of builder 'farm' offers linux/s390x"
    assert "make setup" in fix
    assert routing.problems(runs_target_code=False) == []
    row = next(r for r in routing.rows() if r[0] == "linux/s390x")
    assert (row[1], row[3]) == ("x86", "not offered") and "no node offers it" in row[4], row


def test_a_builder_without_nodes_builds_nothing() -> None:
    routing = resolve("farm", [], (AMD64,))
    assert picked(routing) == {"linux/amd64": "-"}
    assert routing.problems(runs_target_code=False)[0][0] == "no node of builder 'farm' offers linux/amd64"


def test_a_down_node_names_the_platforms_it_serves() -> None:
    nodes = [
        node("x86", (AMD64,), (AMD64,)),
        node("arm", (ARM64,), (ARM64,), up=False),
        node("armv7", (ARMV7,), (ARMV7,)),
    ]
    assert resolve("farm", nodes, THREE).problems() == [
        (
            "node 'arm' (unix:///arm.sock) serves linux/arm64 but is inactive",
            "start that buildkitd, or build without it: PLATFORMS=linux/amd64,linux/arm/v7",
        )
    ]


def test_a_down_node_nobody_needs_is_fine_when_every_platform_is_pinned() -> None:
    nodes = [node("x86", (AMD64,), (AMD64,)), node("arm", (ARM64,), (ARM64,), up=False)]
    assert resolve("farm", nodes, (AMD64,)).problems() == []


def test_a_down_node_matters_when_a_platform_is_not_pinned() -> None:
    """buildx's second pass boots every node, so any that is down fails the build."""
    nodes = [node("x86", (), QEMU_X86), node("arm", (ARM64,), (ARM64,), up=False)]
    problems = resolve("farm", nodes, (AMD64,)).problems()
    assert [what for what, _ in problems] == [
        "node 'arm' (unix:///arm.sock) is inactive, and buildx contacts every node when a platform is not pinned"
    ]


@pytest.mark.parametrize(
    ("native", "platform", "how"),
    [
        (None, ARM64, "pinned"),
        (AMD64, I386, "native"),
        (ARM64, ARMV7, "native"),
        (ARMV7, ARM64, "emulated"),
    ],
    ids=["unknown-native", "386-on-amd64", "armv7-on-arm64", "arm64-on-armv7"],
)
def test_native_or_emulated(native: Platform | None, platform: Platform, how: str) -> None:
    routing = resolve("farm", [node("n", (platform,), (platform,), native=native)], (platform,))
    assert routing.routes[0].how() == how


def test_rows_and_a_node_the_config_does_not_list() -> None:
    nodes = [node("x86", (AMD64,), (AMD64,), native=AMD64), node("old", (), (ARM64,), configured=False)]
    routing = resolve("farm", nodes, (AMD64, ARM64))
    assert routing.rows() == [
        ["linux/amd64", "x86", "unix:///x86.sock", "native", "running, pinned"],
        ["linux/arm64", "old", "unix:///old.sock", "unknown", "running, first node offering it"],
    ]
    assert routing.warnings() == [
        "builder 'farm' has node(s) old that config.toml does not list: list them as [[builder.nodes]] "
        "(crossbuild splits the build cache per platform only then) or remove them with `invoke setup --prune`"
    ]
