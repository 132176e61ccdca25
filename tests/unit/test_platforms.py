"""Tests for crossbuild.platforms: parsing, normalising, Go environment.

Every parse passes `valid=` explicitly (the GOOS/GOARCH pairs of a recent
`go tool dist list`), so these tests need no Go toolchain.
"""

from __future__ import annotations

import dataclasses

import pytest

from crossbuild.errors import UserError
from crossbuild.platforms import (
    Platform,
    normalise_platform,
    parse_platform,
    parse_platforms,
    platform_of_config,
    require_image_platforms,
    split_list,
)

# Written out here rather than taken from the module, so a wrong list there shows.
_DIST_LIST = """
    aix/ppc64 android/386 android/amd64 android/arm android/arm64 darwin/amd64 darwin/arm64
    dragonfly/amd64 freebsd/386 freebsd/amd64 freebsd/arm freebsd/arm64 freebsd/riscv64
    illumos/amd64 ios/amd64 ios/arm64 js/wasm linux/386 linux/amd64 linux/arm linux/arm64
    linux/loong64 linux/mips linux/mips64 linux/mips64le linux/mipsle linux/ppc64 linux/ppc64le
    linux/riscv64 linux/s390x netbsd/386 netbsd/amd64 netbsd/arm netbsd/arm64 openbsd/386
    openbsd/amd64 openbsd/arm openbsd/arm64 openbsd/ppc64 openbsd/riscv64 plan9/386 plan9/amd64
    plan9/arm solaris/amd64 wasip1/wasm windows/386 windows/amd64 windows/arm64
"""
VALID = frozenset(_DIST_LIST.split())


def parse(text: str) -> Platform:
    return parse_platform(text, valid=VALID)


# --- accepted spellings -------------------------------------------------------

ACCEPTED = [
    ("linux/arm64", Platform("linux", "arm64")),
    ("linux_arm64", Platform("linux", "arm64")),
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux_amd64", Platform("linux", "amd64")),
    ("linux/arm/v6", Platform("linux", "arm", "v6")),
    ("linux/arm/v7", Platform("linux", "arm", "v7")),
    ("linux/arm/v5", Platform("linux", "arm", "v5")),
    ("linux_arm_v6", Platform("linux", "arm", "v6")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm64/v8", Platform("linux", "arm64")),
    ("linux/arm64/v8.0", Platform("linux", "arm64")),
    ("linux/arm64/v8.2", Platform("linux", "arm64", "v8.2")),
    ("linux/arm64/v9", Platform("linux", "arm64", "v9")),
    ("linux/amd64/v1", Platform("linux", "amd64")),
    ("linux/amd64/v2", Platform("linux", "amd64", "v2")),
    ("linux/amd64/v3", Platform("linux", "amd64", "v3")),
    ("linux/amd64/v4", Platform("linux", "amd64", "v4")),
    ("linux/386", Platform("linux", "386")),
    ("linux/ppc64le", Platform("linux", "ppc64le")),
    ("linux/s390x", Platform("linux", "s390x")),
    ("linux/riscv64", Platform("linux", "riscv64")),
    ("linux/loong64", Platform("linux", "loong64")),
    ("linux/mips64le", Platform("linux", "mips64le")),
    ("windows/amd64", Platform("windows", "amd64")),
    ("windows/arm64", Platform("windows", "arm64")),
    ("darwin/arm64", Platform("darwin", "arm64")),
    ("darwin/amd64", Platform("darwin", "amd64")),
    ("freebsd/amd64", Platform("freebsd", "amd64")),
    ("linux/aarch64", Platform("linux", "arm64")),
    ("linux/x86-64", Platform("linux", "amd64")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("linux/armv7", Platform("linux", "arm", "v7")),
    ("linux/armv7l", Platform("linux", "arm", "v7")),
    ("linux/armel", Platform("linux", "arm", "v6")),
    ("linux/armv6l", Platform("linux", "arm", "v6")),
    ("linux/i386", Platform("linux", "386")),
    ("linux/i686", Platform("linux", "386")),
    ("LINUX/ARM64", Platform("linux", "arm64")),
    ("  linux/arm64\n", Platform("linux", "arm64")),
]


@pytest.mark.parametrize(("text", "want"), ACCEPTED, ids=[t.strip() or repr(t) for t, _ in ACCEPTED])
def test_parse_platform_accepts(text: str, want: Platform) -> None:
    assert parse(text) == want


@pytest.mark.parametrize("text", ["linux/x86_64", "linux_x86_64"], ids=["slash", "openim-underscore"])
def test_parse_platform_x86_64_alias(text: str) -> None:
    # x86_64 contains the "_" separator of the OpenIM form (linux_arm64); it must still be an alias
    assert parse(text) == Platform("linux", "amd64")


# --- str, slug, exe suffix ----------------------------------------------------

STR_SLUG = [
    (Platform("linux", "arm64"), "linux/arm64", "linux-arm64"),
    (Platform("linux", "arm", "v7"), "linux/arm/v7", "linux-arm-v7"),
    (Platform("linux", "amd64", "v3"), "linux/amd64/v3", "linux-amd64-v3"),
    (Platform("linux", "arm64", "v8.2"), "linux/arm64/v8.2", "linux-arm64-v8.2"),
    (Platform("windows", "amd64"), "windows/amd64", "windows-amd64"),
]


@pytest.mark.parametrize(("platform", "text", "slug"), STR_SLUG, ids=[t for _, t, _ in STR_SLUG])
def test_str_and_slug(platform: Platform, text: str, slug: str) -> None:
    assert str(platform) == text
    assert platform.slug == slug


@pytest.mark.parametrize("text", ["linux/arm/v7", "linux/amd64/v3", "windows/amd64", "linux/arm64"])
def test_str_round_trips_through_parse(text: str) -> None:
    assert str(parse(text)) == text


@pytest.mark.parametrize(
    ("text", "suffix"),
    [("windows/amd64", ".exe"), ("windows/arm64", ".exe"), ("linux/amd64", ""), ("darwin/arm64", "")],
    ids=["windows-amd64", "windows-arm64", "linux", "darwin"],
)
def test_exe_suffix(text: str, suffix: str) -> None:
    assert parse(text).exe_suffix == suffix


@pytest.mark.parametrize(
    ("text", "linux"),
    [("linux/s390x", True), ("darwin/arm64", False), ("windows/amd64", False)],
    ids=["linux", "darwin", "windows"],
)
def test_is_linux(text: str, linux: bool) -> None:
    assert parse(text).is_linux is linux


def test_platform_is_frozen() -> None:
    p = parse("linux/arm64")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.arch = "amd64"  # type: ignore[misc]


# --- go_env ---------------------------------------------------------------------

GO_ENV = [
    ("linux/amd64", {"GOOS": "linux", "GOARCH": "amd64"}),
    ("linux/amd64/v1", {"GOOS": "linux", "GOARCH": "amd64"}),
    ("linux/amd64/v2", {"GOOS": "linux", "GOARCH": "amd64", "GOAMD64": "v2"}),
    ("linux/amd64/v3", {"GOOS": "linux", "GOARCH": "amd64", "GOAMD64": "v3"}),
    ("linux/amd64/v4", {"GOOS": "linux", "GOARCH": "amd64", "GOAMD64": "v4"}),
    ("linux/arm/v5", {"GOOS": "linux", "GOARCH": "arm", "GOARM": "5"}),
    ("linux/arm/v6", {"GOOS": "linux", "GOARCH": "arm", "GOARM": "6"}),
    ("linux/arm/v7", {"GOOS": "linux", "GOARCH": "arm", "GOARM": "7"}),
    ("linux/arm", {"GOOS": "linux", "GOARCH": "arm", "GOARM": "7"}),
    ("linux/arm64", {"GOOS": "linux", "GOARCH": "arm64"}),
    ("linux/arm64/v8", {"GOOS": "linux", "GOARCH": "arm64"}),
    ("linux/arm64/v8.2", {"GOOS": "linux", "GOARCH": "arm64", "GOARM64": "v8.2"}),
    ("linux/arm64/v9", {"GOOS": "linux", "GOARCH": "arm64", "GOARM64": "v9.0"}),
    ("linux/386", {"GOOS": "linux", "GOARCH": "386"}),
    ("linux/riscv64", {"GOOS": "linux", "GOARCH": "riscv64"}),
    ("windows/amd64", {"GOOS": "windows", "GOARCH": "amd64"}),
    ("darwin/arm64", {"GOOS": "darwin", "GOARCH": "arm64"}),
]


@pytest.mark.parametrize(("text", "env"), GO_ENV, ids=[t for t, _ in GO_ENV])
def test_go_env(text: str, env: dict[str, str]) -> None:
    assert parse(text).go_env() == env


def test_go_env_arm_without_variant_defaults_to_goarm_7() -> None:
    # A Platform built directly (not parsed) still gets Go's containerd-compatible default.
    assert Platform("linux", "arm").go_env()["GOARM"] == "7"


# --- rejected inputs ------------------------------------------------------------------

REJECTED = [
    ("", "empty platform"),
    ("   ", "empty platform"),
    ("linux", "is not os/arch[/variant]"),
    ("linux/", "is not os/arch[/variant]"),
    ("linux//arm64", "is not os/arch[/variant]"),
    ("linux/arm/v7/extra", "is not os/arch[/variant]"),
    ("linux/arm/v9", "arm variant must be one of v5, v6, v7"),
    ("linux/arm/v8", "arm variant must be one of v5, v6, v7"),
    ("linux/amd64/v9", "amd64 variant must be one of v1, v2, v3, v4"),
    ("linux/amd64/v5", "amd64 variant must be one of v1, v2, v3, v4"),
    ("linux/arm64/v7", "arm64 variant must be v8, v8.N, v9 or v9.N"),
    ("linux/arm64/v10", "arm64 variant must be v8, v8.N, v9 or v9.N"),
    ("linux/386/v2", "linux/386 has no variants; drop '/v2'"),
    ("linux/s390x/v1", "linux/s390x has no variants; drop '/v1'"),
    ("linux/arm65", "unknown platform 'linux/arm65'"),
    ("plan10/amd64", "unknown platform 'plan10/amd64'"),
]


@pytest.mark.parametrize(("text", "fragment"), REJECTED, ids=[t.strip() or repr(t) for t, _ in REJECTED])
def test_parse_platform_rejects(text: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        parse(text)
    assert fragment in str(info.value)


def test_unknown_platform_message_is_one_line_with_hint_and_choices() -> None:
    with pytest.raises(UserError) as info:
        parse("linux/arm65")
    msg = str(info.value)
    assert "\n" not in msg
    assert "did you mean linux/arm64?" in msg
    assert "valid choices are " in msg
    listed = msg.split("valid choices are ", 1)[1].split(", ")
    assert listed == sorted(VALID)


def test_unknown_platform_without_close_match_has_no_hint() -> None:
    with pytest.raises(UserError) as info:
        parse_platform("zz/qq", valid={"linux/amd64", "linux/arm64"})
    msg = str(info.value)
    assert "did you mean" not in msg
    assert msg == "unknown platform 'zz/qq': valid choices are linux/amd64, linux/arm64"


def test_valid_set_is_honoured() -> None:
    # A pair Go knows is still refused when the caller's toolchain does not list it.
    with pytest.raises(UserError, match="did you mean linux/amd64"):
        parse_platform("linux/arm64", valid={"linux/amd64"})


# --- lists ---------------------------------------------------------------------------

LISTS = [
    ("linux/amd64", ["linux/amd64"]),
    ("linux/amd64 linux/arm64", ["linux/amd64", "linux/arm64"]),
    ("linux/amd64,linux/arm64", ["linux/amd64", "linux/arm64"]),
    ("linux/amd64, linux_arm64\tlinux/arm/v7\n", ["linux/amd64", "linux/arm64", "linux/arm/v7"]),
    (["linux/amd64,linux/arm64", "linux/s390x"], ["linux/amd64", "linux/arm64", "linux/s390x"]),
    (("linux/386", "linux/ppc64le linux/riscv64"), ["linux/386", "linux/ppc64le", "linux/riscv64"]),
    ("linux/arm64 linux/amd64", ["linux/arm64", "linux/amd64"]),
]


@pytest.mark.parametrize(
    ("spec", "want"),
    LISTS,
    ids=["single", "spaces", "commas", "mixed-separators", "list-of-lists", "tuple", "order-kept"],
)
def test_parse_platforms(spec: str | list[str], want: list[str]) -> None:
    assert [str(p) for p in parse_platforms(spec, valid=VALID)] == want


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("linux/arm64 linux/amd64 linux/arm64", ["linux/arm64", "linux/amd64"]),
        ("linux/arm64 linux_arm64 linux/aarch64 linux/arm64/v8", ["linux/arm64"]),
        ("linux/arm linux/arm/v7 linux/arm/v6", ["linux/arm/v7", "linux/arm/v6"]),
        ("linux/amd64/v1 linux/amd64 linux/amd64/v3", ["linux/amd64", "linux/amd64/v3"]),
    ],
    ids=["exact-repeat", "spellings-of-arm64", "arm-default-is-v7", "amd64-v1-is-plain"],
)
def test_parse_platforms_drops_duplicates_keeping_first(spec: str, want: list[str]) -> None:
    assert [str(p) for p in parse_platforms(spec, valid=VALID)] == want


def test_parse_platforms_returns_tuple_of_platforms() -> None:
    got = parse_platforms("linux/arm/v7", valid=VALID)
    assert got == (Platform("linux", "arm", "v7"),)


@pytest.mark.parametrize("spec", ["", " , ", [], ["", " "]], ids=["empty", "separators-only", "empty-list", "blanks"])
def test_parse_platforms_empty_is_an_error(spec: str | list[str]) -> None:
    with pytest.raises(UserError, match="no platforms given"):
        parse_platforms(spec, valid=VALID)


def test_parse_platforms_reports_the_bad_item() -> None:
    with pytest.raises(UserError, match="unknown platform 'linux/arm65'"):
        parse_platforms("linux/amd64,linux/arm65", valid=VALID)


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("a,b c", ["a", "b", "c"]),
        (["a,b", "c"], ["a", "b", "c"]),
        ("  a ,, b  ", ["a", "b"]),
        ("", []),
    ],
    ids=["string", "list", "extra-separators", "empty"],
)
def test_split_list(spec: str | list[str], want: list[str]) -> None:
    assert split_list(spec) == want


# --- image platforms ----------------------------------------------------------------------


def test_require_image_platforms_accepts_linux() -> None:
    require_image_platforms(parse_platforms("linux/amd64 linux/arm64 linux/arm/v7 linux/s390x", valid=VALID))


@pytest.mark.parametrize("text", ["darwin/arm64", "windows/amd64"], ids=["darwin", "windows"])
def test_require_image_platforms_refuses_non_linux(text: str) -> None:
    platforms = parse_platforms(f"linux/amd64 {text}", valid=VALID)
    with pytest.raises(UserError) as info:
        require_image_platforms(platforms)
    msg = str(info.value)
    assert msg.startswith(f"{text} cannot be an image platform")
    assert "Linux kernel" in msg
    assert f"PLATFORMS={text}" in msg


# --- a bare architecture means Linux (the README's aliases) -----------------------------------

BARE = [
    ("aarch64", Platform("linux", "arm64")),
    ("x86_64", Platform("linux", "amd64")),
    ("x86-64", Platform("linux", "amd64")),
    ("armhf", Platform("linux", "arm", "v7")),
    ("armel", Platform("linux", "arm", "v6")),
    ("armv7l", Platform("linux", "arm", "v7")),
    ("i686", Platform("linux", "386")),
    ("arm64", Platform("linux", "arm64")),
    ("amd64", Platform("linux", "amd64")),
    ("arm", Platform("linux", "arm", "v7")),
    ("riscv64", Platform("linux", "riscv64")),
    ("S390X", Platform("linux", "s390x")),
]


@pytest.mark.parametrize(("text", "want"), BARE, ids=[t for t, _ in BARE])
def test_a_bare_architecture_is_linux(text: str, want: Platform) -> None:
    assert parse(text) == want


def test_platforms_variable_with_bare_aliases() -> None:
    got = parse_platforms("aarch64,x86_64 armhf", valid=VALID)
    assert [str(p) for p in got] == ["linux/arm64", "linux/amd64", "linux/arm/v7"]


@pytest.mark.parametrize(
    "text", ["linux", "windows", "arm65", "wasm"], ids=["os-linux", "os-windows", "typo", "no-linux-wasm"]
)
def test_a_bare_word_that_is_no_linux_architecture_is_refused(text: str) -> None:
    with pytest.raises(UserError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(f"platform '{text}' is not os/arch[/variant]")
    assert "a bare name must be a Linux architecture such as arm64" in message


# --- the platforms images declare (index entries, configs): one rule with the user's -------------

OCI_FIELDS = [
    (("linux", "arm64", ""), "linux/arm64"),
    (("linux", "arm64", "v8"), "linux/arm64"),
    (("linux", "arm64", "V8.0"), "linux/arm64"),
    (("linux", "arm64", "v9"), "linux/arm64/v9"),
    (("linux", "aarch64", ""), "linux/arm64"),
    (("Linux", "AArch64", ""), "linux/arm64"),
    (("linux", "x86_64", ""), "linux/amd64"),
    (("linux", "amd64", "v1"), "linux/amd64"),
    (("linux", "amd64", "v3"), "linux/amd64/v3"),
    (("linux", "arm", ""), "linux/arm/v7"),
    (("linux", "arm", "v6"), "linux/arm/v6"),
    (("linux", "armhf", ""), "linux/arm/v7"),
    (("linux", "arm", "v8"), "linux/arm/v8"),  # lenient: what a registry holds is read, not judged
    (("linux", "i386", ""), "linux/386"),
    (("windows", "amd64", ""), "windows/amd64"),
    (("linux", "riscv64", ""), "linux/riscv64"),
]


@pytest.mark.parametrize(
    ("fields", "want"), OCI_FIELDS, ids=[f"{'/'.join(p for p in f if p)}->{w}" for f, w in OCI_FIELDS]
)
def test_normalise_platform_reads_oci_fields(fields: tuple[str, str, str], want: str) -> None:
    assert str(normalise_platform(*fields)) == want


@pytest.mark.parametrize(
    "alias", ["aarch64", "x86_64", "x86-64", "armhf", "armel", "armv7", "armv7l", "armv6", "armv6l", "i386", "i686"]
)
def test_one_rule_for_typed_and_declared_platforms(alias: str) -> None:
    """Issue 11: an image config saying `aarch64` was linux/arm64 in one module and linux/aarch64 in another."""
    declared = platform_of_config({"os": "linux", "architecture": alias})
    assert declared == normalise_platform("linux", alias) == parse(f"linux/{alias}") == parse(alias)
