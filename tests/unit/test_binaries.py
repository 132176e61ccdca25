"""Tests for crossbuild.binaries.

Headers are built here from the specifications' literal numbers rather than
the module's constants, so a wrong constant cannot make both sides agree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from crossbuild import binaries
from crossbuild.binaries import (
    ELF_MAGIC,
    BuildInfo,
    Header,
    check_binary,
    check_build_info,
    check_header,
    check_variant,
    elf_sections,
    expected_header,
    go_build_setting,
    is_checkable,
    missing_values,
    read_build_info,
    read_header,
)
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

# --- synthetic headers ------------------------------------------------------


def elf(machine: int, bits: int = 64, endian: str = "little") -> bytes:
    """A 64-byte ELF header: e_ident, then e_type, e_machine, e_version in the file's order."""
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if endian == "little" else 2, 1])
    ident = ident.ljust(16, b"\0")
    order = "<" if endian == "little" else ">"
    return (ident + struct.pack(order + "HHI", 2, machine, 1)).ljust(64, b"\0")


def pe(machine: int, magic: int, lfanew: int = 0x80) -> bytes:
    """DOS stub with e_lfanew at 0x3c, 'PE\\0\\0', a COFF header and the optional-header magic."""
    buf = bytearray(0x200)
    buf[0:2] = b"MZ"
    struct.pack_into("<I", buf, 0x3C, lfanew)
    buf[lfanew : lfanew + 4] = b"PE\0\0"
    # Machine, NumberOfSections, TimeDateStamp, PointerToSymbolTable,
    # NumberOfSymbols, SizeOfOptionalHeader, Characteristics
    struct.pack_into("<HHIIIHH", buf, lfanew + 4, machine, 1, 0, 0, 0, 0xF0, 0x22)
    struct.pack_into("<H", buf, lfanew + 24, magic)
    return bytes(buf)


def macho(cputype: int, bits: int = 64, endian: str = "little") -> bytes:
    """mach_header(_64): magic, cputype, cpusubtype, filetype=MH_EXECUTE, in the file's order."""
    magic = 0xFEEDFACF if bits == 64 else 0xFEEDFACE
    order = "<" if endian == "little" else ">"
    return struct.pack(order + "IIII", magic, cputype, 0, 2).ljust(32, b"\0")


def fat(*cputypes: int) -> bytes:
    head = struct.pack(">II", 0xCAFEBABE, len(cputypes))
    return head + b"".join(struct.pack(">IIIII", c, 0, 0x4000, 0x1000, 14) for c in cputypes)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def build_info(*settings: str, go_version: str = "go1.26.0", path: str = "example.com/app") -> bytes:
    """Go's .go.buildinfo section as the linker writes it since Go 1.18, between other bytes.

    16 bytes of junk (so the header stays 16-byte aligned after another
    16-byte multiple such as an ELF header), the 32-byte header (magic,
    pointer size 8, flags 0x2 = strings inline), then the Go version and the
    module info text as uvarint-length strings; the text is framed by 16
    bytes on either side, as cmd/go frames it.
    """
    lines = [f"path\t{path}", f"mod\t{path}\t(devel)\t"]
    lines += [f"build\t{s}" for s in settings]
    text = ("\n".join(lines) + "\n").encode()
    modinfo = (
        b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6" + text + b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
    )
    header = b"\xff Go buildinf:" + bytes([8, 2])
    header = header.ljust(32, b"\0")
    version = go_version.encode()
    return (
        b"\x00\x01junk".ljust(16, b"\0")
        + header
        + uvarint(len(version))
        + version
        + uvarint(len(modinfo))
        + modinfo
        + b"\xf9\xf8more junk"
    )


# --- read_header: ELF -------------------------------------------------------

# (e_machine, bits, endian) -> machine name, for every combination of the
# machines crossbuild knows with both classes and both byte orders.
_ELF_NAMES = {
    3: {32: "386", 64: "386"},
    22: {32: "s390", 64: "s390x"},
    40: {32: "arm", 64: "arm"},
    62: {32: "amd64", 64: "amd64"},
    183: {32: "arm64", 64: "arm64"},
    243: {32: "riscv32", 64: "riscv64"},
    258: {32: "loong32", 64: "loong64"},
}


def _elf_name(machine: int, bits: int, endian: str) -> str:
    suffix = "le" if endian == "little" else ""
    if machine == 8:
        return ("mips" if bits == 32 else "mips64") + suffix
    if machine == 21:
        return "ppc64" + suffix
    return _ELF_NAMES[machine][bits]


_ELF_COMBOS = [
    (m, bits, endian)
    for m in (3, 8, 21, 22, 40, 62, 183, 243, 258)
    for bits in (32, 64)
    for endian in ("little", "big")
]


@pytest.mark.parametrize(
    ("machine", "bits", "endian"),
    _ELF_COMBOS,
    ids=[f"EM{m}-{b}-{e}" for m, b, e in _ELF_COMBOS],
)
def test_read_header_elf_every_machine_class_and_endian(machine: int, bits: int, endian: str) -> None:
    assert read_header(elf(machine, bits, endian)) == Header("elf", _elf_name(machine, bits, endian), bits, endian)


# Every GOARCH Go links as ELF, with the header a correct binary has.
_GOOD_ELF = [
    ("386", 3, 32, "little"),
    ("amd64", 62, 64, "little"),
    ("arm", 40, 32, "little"),
    ("arm64", 183, 64, "little"),
    ("loong64", 258, 64, "little"),
    ("mips", 8, 32, "big"),
    ("mipsle", 8, 32, "little"),
    ("mips64", 8, 64, "big"),
    ("mips64le", 8, 64, "little"),
    ("ppc64", 21, 64, "big"),
    ("ppc64le", 21, 64, "little"),
    ("riscv64", 243, 64, "little"),
    ("s390x", 22, 64, "big"),
]


@pytest.mark.parametrize(("arch", "machine", "bits", "endian"), _GOOD_ELF, ids=[row[0] for row in _GOOD_ELF])
def test_correct_elf_binary_has_no_problems(arch: str, machine: int, bits: int, endian: str) -> None:
    platform = Platform("linux", arch, "v7" if arch == "arm" else "")
    data = elf(machine, bits, endian)
    assert expected_header(platform) == read_header(data)
    assert check_header(data, platform) == []


def test_unknown_elf_machine_is_named_by_number() -> None:
    assert read_header(elf(50)).machine == "unknown(50)"


# --- read_header: PE and Mach-O ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (pe(0x14C, 0x10B), Header("pe", "386", 32, "little")),
        (pe(0x1C4, 0x10B), Header("pe", "arm", 32, "little")),
        (pe(0x8664, 0x20B), Header("pe", "amd64", 64, "little")),
        (pe(0xAA64, 0x20B), Header("pe", "arm64", 64, "little")),
        (pe(0x8664, 0x20B, lfanew=0x40), Header("pe", "amd64", 64, "little")),
        (pe(0x1C0, 0x10B), Header("pe", "unknown(0x1c0)", 32, "little")),
        (macho(0x0100000C), Header("macho", "arm64", 64, "little")),
        (macho(0x01000007), Header("macho", "amd64", 64, "little")),
        (macho(0x01000012, endian="big"), Header("macho", "ppc64", 64, "big")),
        (macho(0x0100000C, endian="big"), Header("macho", "arm64", 64, "big")),
        (macho(7, bits=32), Header("macho", "386", 32, "little")),
        (macho(12, bits=32, endian="big"), Header("macho", "arm", 32, "big")),
        (macho(0x02000099), Header("macho", "unknown(0x2000099)", 64, "little")),
    ],
    ids=[
        "pe32-386",
        "pe32-arm",
        "pe64-amd64",
        "pe64-arm64",
        "pe64-short-dos-stub",
        "pe-unknown-machine",
        "macho64-le-arm64",
        "macho64-le-amd64",
        "macho64-be-ppc64",
        "macho64-be-arm64",
        "macho32-le-386",
        "macho32-be-arm",
        "macho-unknown-cpu",
    ],
)
def test_read_header_pe_and_macho(data: bytes, want: Header) -> None:
    assert read_header(data) == want


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "too short"),
        (b"\x7fEL", "too short"),
        (b"\x7fELF\x02\x01\x01\0\0\0", "truncated ELF"),
        (elf(62)[:4] + b"\x03" + elf(62)[5:], "invalid class 3"),
        (elf(62)[:5] + b"\x00" + elf(62)[6:], "invalid data encoding 0"),
        (b"#!/bin/sh\necho hello\n", r"not an ELF, PE or Mach-O executable \(starts with 23 21"),
        (bytes(range(200, 256)), "not an ELF, PE or Mach-O"),
        (b"MZ" + bytes(30), "truncated DOS/PE"),
        (pe(0x8664, 0x20B)[:0x90], "truncated PE file"),
        (pe(0x8664, 0x20B).replace(b"PE\0\0", b"NE\0\0"), "without a PE signature"),
        (pe(0x8664, 0x107), "optional-header magic 0x107"),
        (b"\xcf\xfa\xed\xfe", "truncated Mach-O"),
        (fat(0x01000007, 0x0100000C), r"universal \(fat\) Mach-O with 2 .*\(amd64, arm64\)"),
        (b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + bytes(32), "Java class"),
    ],
    ids=[
        "empty",
        "short-elf-magic",
        "truncated-elf",
        "elf-bad-class",
        "elf-bad-data",
        "shell-script",
        "random-bytes",
        "truncated-dos",
        "truncated-pe",
        "dos-without-pe",
        "pe-rom-image",
        "truncated-macho",
        "fat-macho",
        "java-class",
    ],
)
def test_read_header_rejects_non_executables(data: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_header(data)
    # check_header reports, rather than raises, so a build lists every bad binary.
    problems = check_header(data, Platform("linux", "amd64"))
    assert len(problems) == 1
    assert problems[0]


# --- expected_header --------------------------------------------------------


_EXPECTED = [
    (Platform("linux", "amd64"), Header("elf", "amd64", 64, "little")),
    (Platform("freebsd", "386"), Header("elf", "386", 32, "little")),
    (Platform("android", "arm64"), Header("elf", "arm64", 64, "little")),
    (Platform("linux", "arm", "v6"), Header("elf", "arm", 32, "little")),
    (Platform("linux", "s390x"), Header("elf", "s390x", 64, "big")),
    (Platform("linux", "mips"), Header("elf", "mips", 32, "big")),
    (Platform("linux", "mips64"), Header("elf", "mips64", 64, "big")),
    (Platform("windows", "amd64"), Header("pe", "amd64", 64, "little")),
    (Platform("windows", "386"), Header("pe", "386", 32, "little")),
    (Platform("darwin", "arm64"), Header("macho", "arm64", 64, "little")),
    (Platform("ios", "arm64"), Header("macho", "arm64", 64, "little")),
]


@pytest.mark.parametrize(("platform", "want"), _EXPECTED, ids=[str(p) for p, _ in _EXPECTED])
def test_expected_header(platform: Platform, want: Header) -> None:
    assert expected_header(platform) == want
    assert is_checkable(platform)


@pytest.mark.parametrize(
    ("platform", "match"),
    [
        (Platform("js", "wasm"), "unknown architecture 'wasm'"),
        (Platform("linux", "sparc64"), "unknown architecture 'sparc64'"),
        (Platform("aix", "ppc64"), "XCOFF"),
        (Platform("plan9", "amd64"), "Plan 9"),
    ],
    ids=["wasm", "sparc64", "aix-xcoff", "plan9-aout"],
)
def test_expected_header_refuses_what_it_cannot_check(platform: Platform, match: str) -> None:
    assert not is_checkable(platform)
    with pytest.raises(UserError, match=match):
        expected_header(platform)
    with pytest.raises(UserError):
        check_header(elf(62), platform)


# --- check_header mismatches ------------------------------------------------


@pytest.mark.parametrize(
    ("data", "platform", "want"),
    [
        (
            elf(62),
            Platform("linux", "arm64"),
            ["ELF machine is amd64 (x86-64), expected arm64"],
        ),
        (
            elf(40, bits=32),
            Platform("linux", "arm64"),
            ["ELF machine is arm (32-bit ARM), expected arm64", "32-bit, expected 64-bit"],
        ),
        (elf(62, bits=32), Platform("linux", "amd64"), ["32-bit, expected 64-bit"]),
        (
            elf(183, endian="big"),
            Platform("linux", "arm64"),
            ["big-endian, expected little-endian"],
        ),
        (
            elf(21, endian="little"),
            Platform("linux", "ppc64"),
            [
                "ELF machine is ppc64le (PowerPC 64-bit little-endian), expected ppc64",
                "little-endian, expected big-endian",
            ],
        ),
        (
            elf(8, bits=64, endian="big"),
            Platform("linux", "mips"),
            [
                "ELF machine is mips64 (MIPS 64-bit big-endian), expected mips",
                "64-bit, expected 32-bit",
            ],
        ),
        (
            elf(50),
            Platform("linux", "amd64"),
            ["ELF machine is unknown(50), expected amd64"],
        ),
        (
            pe(0x8664, 0x20B),
            Platform("linux", "amd64"),
            ["not an executable for linux: it is a PE file"],
        ),
        (
            elf(183),
            Platform("darwin", "arm64"),
            ["not an executable for darwin: it is an ELF file"],
        ),
        (
            macho(0x0100000C),
            Platform("windows", "amd64"),
            [
                "not an executable for windows: it is a Mach-O file",
                "Mach-O machine is arm64 (AArch64), expected amd64",
            ],
        ),
        (
            pe(0x14C, 0x10B),
            Platform("windows", "amd64"),
            ["PE machine is 386 (x86 32-bit), expected amd64", "32-bit, expected 64-bit"],
        ),
        (
            macho(0x0100000C, endian="big"),
            Platform("darwin", "arm64"),
            ["big-endian, expected little-endian"],
        ),
    ],
    ids=[
        "wrong-machine",
        "wrong-machine-and-class",
        "wrong-class-x32",
        "wrong-endian",
        "ppc64le-for-ppc64",
        "mips64-for-mips",
        "unknown-machine",
        "pe-for-linux",
        "elf-for-darwin",
        "macho-for-windows",
        "pe32-for-amd64",
        "macho-big-endian",
    ],
)
def test_check_header_reports_mismatches(data: bytes, platform: Platform, want: list[str]) -> None:
    assert check_header(data, platform) == want


# --- go_build_setting -------------------------------------------------------


_INFO = build_info(
    "-buildmode=exe",
    '-ldflags="-X main.version=v1.2.3 -s -w"',
    "CGO_ENABLED=0",
    "GOARCH=arm",
    "GOOS=linux",
    "GOARM=6",
    "GOARM64=v8.0",
)


@pytest.mark.parametrize(
    ("key", "want"),
    [
        ("GOARM", "6"),
        ("GOARM64", "v8.0"),
        ("CGO_ENABLED", "0"),
        ("-ldflags", "-X main.version=v1.2.3 -s -w"),
        ("GOAMD64", None),
        ("GOAR", None),
        ("path", None),
    ],
    ids=[
        "GOARM",
        "GOARM64-not-GOARM",
        "CGO_ENABLED",
        "quoted-ldflags",
        "absent",
        "prefix",
        "not-build",
    ],
)
def test_go_build_setting(key: str, want: str | None) -> None:
    assert go_build_setting(_INFO, key) == want


def test_go_build_setting_needs_the_build_info_header() -> None:
    # the text alone, as any file could hold it, is not build info
    assert go_build_setting(b"\nbuild\tGOARM=7\n", "GOARM") is None
    assert go_build_setting(b"", "GOARM") is None
    # cut off before the end of the module info: not trustworthy
    assert go_build_setting(_INFO[:-40], "GOARM") is None


# --- read_build_info --------------------------------------------------------


def test_read_build_info_reads_version_path_and_settings_in_order() -> None:
    data = build_info("-compiler=gc", "GOARCH=arm", "GOOS=linux", "GOARM=6", go_version="go1.22.1", path="x.io/cmd/a")
    info = read_build_info(data)
    assert info is not None
    assert (info.go_version, info.path, info.settings) == (
        "go1.22.1",
        "x.io/cmd/a",
        (("-compiler", "gc"), ("GOARCH", "arm"), ("GOOS", "linux"), ("GOARM", "6")),
    )


def test_read_build_info_needs_an_aligned_header_with_inline_strings() -> None:
    good = build_info("GOOS=linux")
    assert read_build_info(good) is not None
    assert read_build_info(b"\0" + good) is None, "a magic off the 16-byte alignment is not the section"
    pointer_format = good.replace(b"buildinf:\x08\x02", b"buildinf:\x08\x00")
    assert read_build_info(pointer_format) is None, "pre-1.18 pointer format is not read"
    odd_pointer = good.replace(b"buildinf:\x08\x02", b"buildinf:\x05\x02")
    assert read_build_info(odd_pointer) is None


def test_read_build_info_skips_a_magic_that_is_only_a_string_constant() -> None:
    # a program that reads build info itself holds the magic as a constant, followed by other bytes
    constant = b"\xff Go buildinf:".ljust(48, b"\x07")
    data = constant + build_info("GOARCH=riscv64")
    assert read_build_info(data) is not None
    info = read_build_info(data)
    assert info is not None and info.setting("GOARCH") == "riscv64"


def test_read_build_info_without_the_frame_has_no_settings() -> None:
    header = b"\xff Go buildinf:" + bytes([8, 2])
    text = b"path\tx\nbuild\tGOOS=linux\n"
    data = header.ljust(32, b"\0") + bytes([8]) + b"go1.26.0" + bytes([len(text)]) + text
    assert read_build_info(data) == BuildInfo("go1.26.0", "", ())


def test_read_build_info_of_a_non_go_file() -> None:
    assert read_build_info(elf(62)) is None
    assert read_build_info(b"") is None


# --- check_build_info -------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "platform", "want"),
    [
        (["GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0"], Platform("linux", "arm64"), []),
        (
            ["GOOS=linux", "GOARCH=amd64", "GOAMD64=v1"],
            Platform("linux", "arm64"),
            ["built with GOARCH=amd64, expected GOARCH=arm64 for linux/arm64"],
        ),
        (
            ["GOOS=windows", "GOARCH=amd64", "GOAMD64=v1"],
            Platform("linux", "amd64"),
            ["built with GOOS=windows, expected GOOS=linux for linux/amd64"],
        ),
        (
            ["GOOS=linux", "GOARCH=arm", "GOARM=5"],
            Platform("linux", "arm", "v7"),
            ["built with GOARM=5, expected GOARM=7 for linux/arm/v7"],
        ),
        (
            ["GOOS=linux", "GOARCH=amd64", "GOAMD64=v3"],
            Platform("linux", "amd64"),
            ["built with GOAMD64=v3, expected GOAMD64=v1 for linux/amd64"],
        ),
        ([], Platform("linux", "s390x"), []),
    ],
    ids=["right", "amd64-for-arm64", "windows-for-linux", "goarm5-labelled-v7", "goamd64-v3-for-baseline", "none"],
)
def test_check_build_info(settings: list[str], platform: Platform, want: list[str]) -> None:
    assert check_build_info(build_info(*settings), platform) == want


def test_check_build_info_of_a_non_go_binary_is_silent() -> None:
    assert check_build_info(elf(62), Platform("linux", "arm64")) == []


# --- check_variant ----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "platform", "want"),
    [
        (["GOARM=6"], Platform("linux", "arm", "v6"), []),
        (["GOARM=7"], Platform("linux", "arm", "v7"), []),
        (["GOARM=7"], Platform("linux", "arm"), []),
        (["GOARM=7,softfloat"], Platform("linux", "arm", "v7"), []),
        (
            ["GOARM=6"],
            Platform("linux", "arm", "v7"),
            ["built with GOARM=6, expected GOARM=7 for linux/arm/v7"],
        ),
        (
            ["GOARM=7"],
            Platform("linux", "arm", "v5"),
            ["built with GOARM=7, expected GOARM=5 for linux/arm/v5"],
        ),
        (["GOAMD64=v3"], Platform("linux", "amd64", "v3"), []),
        (["GOAMD64=v1"], Platform("linux", "amd64"), []),
        (
            ["GOAMD64=v2"],
            Platform("linux", "amd64", "v3"),
            ["built with GOAMD64=v2, expected GOAMD64=v3 for linux/amd64/v3"],
        ),
        (
            ["GOAMD64=v3"],
            Platform("linux", "amd64"),
            ["built with GOAMD64=v3, expected GOAMD64=v1 for linux/amd64"],
        ),
        (["GOARM64=v8.0"], Platform("linux", "arm64"), []),
        (["GOARM64=v9.0"], Platform("linux", "arm64", "v9"), []),
        (
            ["GOARM64=v8.0"],
            Platform("linux", "arm64", "v8.2"),
            ["built with GOARM64=v8.0, expected GOARM64=v8.2 for linux/arm64/v8.2"],
        ),
        ([], Platform("linux", "arm", "v7"), []),
        ([], Platform("linux", "amd64", "v3"), []),
        (["GOARM=6"], Platform("linux", "riscv64"), []),
    ],
    ids=[
        "arm-v6",
        "arm-v7",
        "arm-default-v7",
        "arm-v7-softfloat",
        "arm-v6-for-v7",
        "arm-v7-for-v5",
        "amd64-v3",
        "amd64-default-v1",
        "amd64-v2-for-v3",
        "amd64-v3-for-baseline",
        "arm64-default",
        "arm64-v9",
        "arm64-v8.0-for-v8.2",
        "arm-no-build-info",
        "amd64-no-build-info",
        "no-variant-arch",
    ],
)
def test_check_variant(settings: list[str], platform: Platform, want: list[str]) -> None:
    assert check_variant(build_info(*settings), platform) == want


# --- missing_values ---------------------------------------------------------


def test_missing_values_reports_keys_whose_value_is_absent_in_order() -> None:
    data = b"\0\0v1.2.3\0abc123\0caf\xc3\xa9\0"
    values = {
        "example.com/app/pkg/version.Version": "v1.2.3",
        "example.com/app/pkg/version.Commit": "abc123",
        "example.com/app/pkg/version.Date": "2024-01-01",
        "wrong/path.Version": "v9.9.9",
        "example.com/app/pkg/version.Name": "café",
        "example.com/app/pkg/version.Empty": "",
    }
    assert missing_values(data, values) == [
        "example.com/app/pkg/version.Date",
        "wrong/path.Version",
    ]


def test_missing_values_with_nothing_to_check() -> None:
    assert missing_values(b"anything", {}) == []
    assert missing_values(b"", {"main.version": ""}) == []


def test_missing_values_ignores_the_ldflags_build_setting() -> None:
    # Without -trimpath Go records -ldflags in the build info, so an ignored
    # -X value is still in the file: that copy must not count.
    data = build_info('-ldflags="-X nosuch/pkg.version=v8.8.8"', "GOOS=linux")
    assert missing_values(data, {"nosuch/pkg.version": "v8.8.8"}) == ["nosuch/pkg.version"]
    data += b"\0v8.8.8\0"
    assert missing_values(data, {"nosuch/pkg.version": "v8.8.8"}) == []


# --- check_binary -----------------------------------------------------------


def test_check_binary_combines_every_check(tmp_path: Path) -> None:
    path = tmp_path / "app"
    path.write_bytes(elf(40, bits=32) + build_info("GOARM=6") + b"\0v1.0.0\0")
    platform = Platform("linux", "arm", "v6")
    assert check_binary(path, platform, {"main.version": "v1.0.0"}) == []

    problems = check_binary(path, Platform("linux", "arm", "v7"), {"main.version": "v1.0.0", "bad/pkg.v": "v2"})
    assert problems == [
        "built with GOARM=6, expected GOARM=7 for linux/arm/v7",
        "-X bad/pkg.v=v2 is not in the binary (the Go linker ignores -X for a symbol that "
        "does not exist: check the package path)",
    ]
    assert check_binary(path, Platform("linux", "arm64"), {})[0].startswith("ELF machine is arm")


def test_check_binary_reports_unreadable_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read binary"):
        check_binary(tmp_path / "missing", Platform("linux", "amd64"), {})
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a binary at all")
    assert check_binary(garbage, Platform("linux", "amd64"), {}) == [
        "not an ELF, PE or Mach-O executable (starts with 6e 6f 74 20 61 20 62 69)"
    ]


def test_header_bytes_covers_a_go_pe_header() -> None:
    assert read_header(pe(0x8664, 0x20B)[: binaries.HEADER_BYTES]).machine == "amd64"


# --- real Go binaries -------------------------------------------------------

_GO_MAIN = """package main

import "fmt"

var version = "dev"

func main() { fmt.Println("hello", version) }
"""

# (platform built, a platform the binary must fail for)
_GO_TARGETS = [
    (Platform("linux", "arm64"), Platform("linux", "amd64")),
    (Platform("linux", "arm", "v6"), Platform("linux", "arm", "v7")),
    (Platform("linux", "s390x"), Platform("linux", "ppc64")),
    (Platform("windows", "amd64"), Platform("linux", "amd64")),
    (Platform("darwin", "arm64"), Platform("darwin", "amd64")),
]


def _go_build(src: Path, platform: Platform, ldflags: str, out: Path) -> bytes:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GOARM", "GOAMD64", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64")
    }
    env.update(platform.go_env(), CGO_ENABLED="0", GOTOOLCHAIN="local")
    subprocess.run(
        ["go", "build", "-ldflags", ldflags, "-o", str(out), "."],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out.read_bytes()


@pytest.mark.integration
@pytest.mark.parametrize(("platform", "wrong"), _GO_TARGETS, ids=[str(p) for p, _ in _GO_TARGETS])
def test_real_go_binaries(tmp_path: Path, platform: Platform, wrong: Platform) -> None:
    if shutil.which("go") is None:
        pytest.skip("go is not installed")
    src = tmp_path / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/hello\n\ngo 1.22\n")
    (src / "main.go").write_text(_GO_MAIN)

    good = tmp_path / f"hello{platform.exe_suffix}"
    data = _go_build(src, platform, "-X main.version=v7.7.7-test", good)
    values = {"main.version": "v7.7.7-test"}
    assert check_binary(good, platform, values) == []
    assert check_binary(good, wrong, values) != []
    if platform.os == "linux":  # ELF: the sections as binutils' readelf reads them, the -X value in .rodata
        sections = elf_sections(data)
        for name, (offset, size) in _readelf_sections(good).items():
            assert sections[name] == (offset, size), name
        start, size = sections[".rodata"]
        assert data.find(b"v7.7.7-test", start, start + size) >= 0
    else:
        assert elf_sections(data) == {}

    bad = tmp_path / f"bad{platform.exe_suffix}"
    data = _go_build(src, platform, "-X nosuch/pkg.version=v8.8.8", bad)
    assert missing_values(data, {"nosuch/pkg.version": "v8.8.8"}) == ["nosuch/pkg.version"]
    problems = check_binary(bad, platform, {"nosuch/pkg.version": "v8.8.8"})
    assert problems == [
        "-X nosuch/pkg.version=v8.8.8 is not in the binary (the Go linker ignores -X for a "
        "symbol that does not exist: check the package path)"
    ]


def _readelf_sections(path: Path) -> dict[str, tuple[int, int]]:
    """(file offset, size) of the sections with bytes in the file, as `readelf -SW` prints them."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    proc = subprocess.run(["readelf", "-SW", str(path)], check=True, capture_output=True, text=True, timeout=60)
    found = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m and m.group(2) != "NOBITS" and m.group(1).startswith("."):
            found[m.group(1)] = (int(m.group(3), 16), int(m.group(4), 16))
    assert ".rodata" in found and ".go.buildinfo" in found, proc.stdout
    return found


def test_elf_sections_of_what_is_not_a_whole_elf_file_is_empty() -> None:
    assert elf_sections(b"MZ" + b"\0" * 200) == {}
    assert elf_sections(ELF_MAGIC + b"\x02\x01" + b"\0" * 100) == {}  # no section table
    assert elf_sections(ELF_MAGIC + b"\x02\x01" + b"\0" * 34 + b"\xff" * 8 + b"\0" * 40) == {}  # table past the end


def _go_version_m(path: Path) -> dict[str, str]:
    """The `build` settings `go version -m` prints: the independent reading of the same bytes."""
    proc = subprocess.run(["go", "version", "-m", str(path)], check=True, capture_output=True, text=True, timeout=120)
    settings = {}
    for line in proc.stdout.splitlines():
        fields = line.strip().split("\t")
        if fields[0] == "build" and "=" in fields[1]:
            key, _, value = fields[1].partition("=")
            # Go quotes values with spaces (strconv.Quote); for these ASCII values that is JSON
            settings[key] = json.loads(value) if value.startswith('"') else value
    return settings


# what each build must record, and a platform label it must be refused for
_BUILD_INFO_TARGETS = [
    (Platform("linux", "amd64"), {}, Platform("linux", "arm64"), "GOARCH=amd64, expected GOARCH=arm64"),
    (Platform("linux", "amd64", "v3"), {"GOAMD64": "v3"}, Platform("linux", "amd64"), "GOAMD64=v3, expected"),
    (Platform("linux", "arm", "v5"), {"GOARM": "5"}, Platform("linux", "arm", "v7"), "GOARM=5, expected GOARM=7"),
    (Platform("linux", "arm64"), {}, Platform("linux", "riscv64"), "GOARCH=arm64, expected GOARCH=riscv64"),
    (Platform("windows", "arm64"), {}, Platform("linux", "arm64"), "GOOS=windows, expected GOOS=linux"),
]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("platform", "recorded", "wrong", "message"),
    _BUILD_INFO_TARGETS,
    ids=[str(p) for p, *_ in _BUILD_INFO_TARGETS],
)
def test_build_info_of_real_go_binaries_agrees_with_go_version_m(
    tmp_path: Path, platform: Platform, recorded: dict[str, str], wrong: Platform, message: str
) -> None:
    if shutil.which("go") is None:
        pytest.skip("go is not installed")
    src = tmp_path / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/hello\n\ngo 1.22\n")
    (src / "main.go").write_text(_GO_MAIN)
    out = tmp_path / f"hello{platform.exe_suffix}"
    data = _go_build(src, platform, "-s -w", out)

    info = read_build_info(data)
    assert info is not None
    witness = _go_version_m(out)
    assert dict(info.settings) == witness
    assert info.path == "example.com/hello"
    assert info.go_version.startswith("go")
    assert (info.setting("GOOS"), info.setting("GOARCH")) == (platform.os, platform.arch)
    for key, value in recorded.items():
        assert info.setting(key) == value
    assert check_build_info(data, platform) == []
    problems = check_build_info(data, wrong)
    assert any(message in p for p in problems), problems
