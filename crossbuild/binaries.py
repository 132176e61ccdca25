"""Check that a built binary really is what its platform label promises.

A cross-compile can go wrong without any error: a stray GOARCH in the
environment, a cached artefact copied to the wrong directory, a GOARM that
does not match the image variant, or an `-ldflags -X` for a package path that
does not exist (the Go linker ignores those silently). An image built from
such a binary only fails when it runs on the target machine, so every binary
is checked from its bytes before it is packaged.

Only the executable headers are parsed (ELF, PE, Mach-O), with the offsets
from the specifications named below; Go's embedded build info (what
`go version -m` prints) supplies GOOS, GOARCH and GOARM / GOAMD64 / GOARM64.

Universal ("fat") Mach-O files are rejected with a ValueError that names the
architectures inside: `go build` never writes one, and reporting only the
first slice would pass or fail a binary depending on slice order.
"""

from __future__ import annotations

import ast
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from crossbuild.errors import UserError
from crossbuild.platforms import Platform

# Enough of a file for read_header, for callers that do not read it whole:
# Go puts the PE header at 0x80 and fat Mach-O tables are tiny.
HEADER_BYTES = 4096

# --- ELF (System V ABI, "ELF header") ---------------------------------------
ELF_MAGIC = b"\x7fELF"
EI_CLASS = 4  # e_ident index: 1 = 32-bit, 2 = 64-bit
EI_DATA = 5  # e_ident index: 1 = little-endian, 2 = big-endian
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
E_MACHINE_OFFSET = 18  # after e_ident[16] and e_type (u16), in both classes
ELF_MIN_SIZE = E_MACHINE_OFFSET + 2
# "Section header table" fields: (e_shoff, e_shentsize, e_shnum, e_shstrndx) offsets and formats per class,
# and in a section header the (sh_name, sh_offset, sh_size) offsets and formats
ELF_SH_TABLE = {32: ((0x20, "I"), (0x2E, "H"), (0x30, "H"), (0x32, "H")),
                64: ((0x28, "Q"), (0x3A, "H"), (0x3C, "H"), (0x3E, "H"))}  # fmt: skip
ELF_SH_FIELDS = {32: ((0x00, "I"), (0x10, "I"), (0x14, "I")), 64: ((0x00, "I"), (0x18, "Q"), (0x20, "Q"))}
SHT_NOBITS = 8  # a section with no bytes in the file (.bss)

EM_386 = 3
EM_MIPS = 8
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243
EM_LOONGARCH = 258

# --- PE/COFF (Microsoft PE format) ------------------------------------------
DOS_MAGIC = b"MZ"
E_LFANEW_OFFSET = 0x3C  # u32: file offset of the PE signature
PE_SIGNATURE = b"PE\0\0"
COFF_HEADER_SIZE = 20  # Machine (u16) is its first field
OPTIONAL_HEADER_OFFSET = len(PE_SIGNATURE) + COFF_HEADER_SIZE  # from e_lfanew
PE32_MAGIC = 0x10B
PE32_PLUS_MAGIC = 0x20B

IMAGE_FILE_MACHINE_I386 = 0x14C
IMAGE_FILE_MACHINE_ARMNT = 0x1C4
IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_FILE_MACHINE_ARM64 = 0xAA64

# --- Mach-O (<mach-o/loader.h>, <mach-o/fat.h>), read as a big-endian u32 ----
MH_MAGIC = 0xFEEDFACE  # 32-bit, stored big-endian
MH_CIGAM = 0xCEFAEDFE  # 32-bit, stored little-endian
MH_MAGIC_64 = 0xFEEDFACF
MH_CIGAM_64 = 0xCFFAEDFE
FAT_MAGIC = 0xCAFEBABE  # universal binary; the fat header is always big-endian
FAT_MAGIC_64 = 0xCAFEBABF
MACHO_CPUTYPE_OFFSET = 4
FAT_NARCH_OFFSET = 4
FAT_ARCH_OFFSET = 8  # first fat_arch entry; cputype is its first field
FAT_ARCH_SIZE = 20
FAT_ARCH_64_SIZE = 32
# Java class files share 0xcafebabe; their next u32 (versions) is >= 45.
FAT_MAX_ARCHS = 30

CPU_ARCH_ABI64 = 0x01000000
CPU_TYPE_X86 = 7
CPU_TYPE_ARM = 12
CPU_TYPE_POWERPC = 18
CPU_TYPE_X86_64 = CPU_ARCH_ABI64 | CPU_TYPE_X86
CPU_TYPE_ARM64 = CPU_ARCH_ABI64 | CPU_TYPE_ARM
CPU_TYPE_POWERPC64 = CPU_ARCH_ABI64 | CPU_TYPE_POWERPC

_PE_MACHINES = {
    IMAGE_FILE_MACHINE_I386: "386",
    IMAGE_FILE_MACHINE_ARMNT: "arm",
    IMAGE_FILE_MACHINE_AMD64: "amd64",
    IMAGE_FILE_MACHINE_ARM64: "arm64",
}
_MACHO_CPUS = {
    CPU_TYPE_X86: "386",
    CPU_TYPE_ARM: "arm",
    CPU_TYPE_X86_64: "amd64",
    CPU_TYPE_ARM64: "arm64",
    CPU_TYPE_POWERPC64: "ppc64",
}

# GOARCH -> (bits, endian) for every architecture Go writes ELF/PE/Mach-O for.
_ARCH_LAYOUT: dict[str, tuple[int, str]] = {
    "386": (32, "little"),
    "amd64": (64, "little"),
    "arm": (32, "little"),
    "arm64": (64, "little"),
    "loong64": (64, "little"),
    "mips": (32, "big"),
    "mipsle": (32, "little"),
    "mips64": (64, "big"),
    "mips64le": (64, "little"),
    "ppc64": (64, "big"),
    "ppc64le": (64, "little"),
    "riscv64": (64, "little"),
    "s390x": (64, "big"),
}

# Spelled out in messages because "amd64" alone does not tell everyone "x86-64".
_ARCH_NAMES = {
    "386": "x86 32-bit",
    "amd64": "x86-64",
    "arm": "32-bit ARM",
    "arm64": "AArch64",
    "loong64": "LoongArch 64-bit",
    "mips": "MIPS 32-bit big-endian",
    "mipsle": "MIPS 32-bit little-endian",
    "mips64": "MIPS 64-bit big-endian",
    "mips64le": "MIPS 64-bit little-endian",
    "ppc64": "PowerPC 64-bit big-endian",
    "ppc64le": "PowerPC 64-bit little-endian",
    "riscv64": "RISC-V 64-bit",
    "s390x": "IBM Z",
    "riscv32": "RISC-V 32-bit",
    "loong32": "LoongArch 32-bit",
    "s390": "IBM S/390 31-bit",
}

_FORMAT_NAMES = {"elf": "ELF", "pe": "PE", "macho": "Mach-O"}
_FORMAT_ARTICLES = {"elf": "an", "pe": "a", "macho": "a"}

# Go links these as XCOFF (aix) and Plan 9 a.out (plan9), which are not parsed.
UNCHECKED_OS = frozenset({"aix", "plan9"})

# The build-info line that records -ldflags: it contains every -X value
# verbatim whether or not the linker applied it, so missing_values ignores it.
_LDFLAGS_LINE = b"\nbuild\t-ldflags="


@dataclass(frozen=True)
class Header:
    format: str  # "elf" | "pe" | "macho"
    machine: str  # GOARCH-style name, or "unknown(<num>)"
    bits: int
    endian: str  # "little" | "big"


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data[:8])


def _elf_machine(number: int, bits: int, endian: str) -> str:
    little = endian == "little"
    if number == EM_MIPS:
        base = "mips" if bits == 32 else "mips64"
        return base + ("le" if little else "")
    if number == EM_PPC64:
        return "ppc64le" if little else "ppc64"
    simple = {EM_386: "386", EM_ARM: "arm", EM_X86_64: "amd64", EM_AARCH64: "arm64"}
    if number in simple:
        return simple[number]
    # The 32-bit flavours are no GOARCH, but naming them beats "unknown".
    by_bits = {
        EM_S390: ("s390", "s390x"),
        EM_RISCV: ("riscv32", "riscv64"),
        EM_LOONGARCH: ("loong32", "loong64"),
    }
    if number in by_bits:
        return by_bits[number][bits == 64]
    return f"unknown({number})"


def _read_elf(data: bytes) -> Header:
    if len(data) < ELF_MIN_SIZE:
        raise ValueError(f"truncated ELF header: {len(data)} bytes, need {ELF_MIN_SIZE}")
    klass, order = data[EI_CLASS], data[EI_DATA]
    if klass not in (ELFCLASS32, ELFCLASS64):
        raise ValueError(f"ELF file with invalid class {klass} (expected 1 = 32-bit or 2 = 64-bit)")
    if order not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ValueError(f"ELF file with invalid data encoding {order} (expected 1 = LSB or 2 = MSB)")
    bits = 32 if klass == ELFCLASS32 else 64
    endian = "little" if order == ELFDATA2LSB else "big"
    (machine,) = struct.unpack_from("<H" if endian == "little" else ">H", data, E_MACHINE_OFFSET)
    return Header("elf", _elf_machine(machine, bits, endian), bits, endian)


def elf_sections(data: bytes) -> dict[str, tuple[int, int]]:
    """An ELF file's sections by name: (file offset, size); {} for anything that is not a whole,
    well-formed ELF file (a caller then looks at the whole file instead)."""
    if not data.startswith(ELF_MAGIC) or len(data) < 0x40:
        return {}
    try:
        header = _read_elf(data)
    except ValueError:
        return {}
    end = "<" if header.endian == "little" else ">"

    def field(at: int, spec: tuple[int, str]) -> int:
        value: int = struct.unpack_from(end + spec[1], data, at + spec[0])[0]
        return value

    shoff, shentsize, shnum, shstrndx = (field(0, f) for f in ELF_SH_TABLE[header.bits])
    if not shoff or shentsize < 0x28 or shstrndx >= shnum or shoff + shnum * shentsize > len(data):
        return {}
    entries = []
    for i in range(shnum):
        at = shoff + i * shentsize
        kind = field(at, (0x04, "I"))
        name, offset, size = (field(at, f) for f in ELF_SH_FIELDS[header.bits])
        entries.append((name, 0 if kind == SHT_NOBITS else offset, 0 if kind == SHT_NOBITS else size))
    _, names_at, names_size = entries[shstrndx]
    names = data[names_at : names_at + names_size]
    sections = {}
    for name, offset, size in entries:
        if offset + size <= len(data) and 0 <= name < len(names):
            sections[names[name : names.find(b"\0", name)].decode("ascii", errors="replace")] = (offset, size)
    return sections


def _read_pe(data: bytes) -> Header:
    if len(data) < E_LFANEW_OFFSET + 4:
        raise ValueError(f"truncated DOS/PE header: {len(data)} bytes")
    (lfanew,) = struct.unpack_from("<I", data, E_LFANEW_OFFSET)
    end = lfanew + OPTIONAL_HEADER_OFFSET + 2
    if len(data) < end:
        raise ValueError(f"truncated PE file: the PE header at {lfanew:#x} ends past the {len(data)} bytes read")
    if data[lfanew : lfanew + len(PE_SIGNATURE)] != PE_SIGNATURE:
        raise ValueError("MZ (DOS) file without a PE signature: not a Windows executable")
    (machine,) = struct.unpack_from("<H", data, lfanew + len(PE_SIGNATURE))
    (magic,) = struct.unpack_from("<H", data, lfanew + OPTIONAL_HEADER_OFFSET)
    if magic == PE32_MAGIC:
        bits = 32
    elif magic == PE32_PLUS_MAGIC:
        bits = 64
    else:
        raise ValueError(
            f"PE file with optional-header magic {magic:#x} (expected 0x10b or 0x20b): "
            "an object file or not an executable"
        )
    name = _PE_MACHINES.get(machine, f"unknown({machine:#x})")
    return Header("pe", name, bits, "little")


def _read_macho(data: bytes, magic: int) -> Header:
    if len(data) < MACHO_CPUTYPE_OFFSET + 4:
        raise ValueError(f"truncated Mach-O header: {len(data)} bytes")
    endian = "big" if magic in (MH_MAGIC, MH_MAGIC_64) else "little"
    bits = 64 if magic in (MH_MAGIC_64, MH_CIGAM_64) else 32
    fmt = ">I" if endian == "big" else "<I"
    (cputype,) = struct.unpack_from(fmt, data, MACHO_CPUTYPE_OFFSET)
    name = _MACHO_CPUS.get(cputype, f"unknown({cputype:#x})")
    return Header("macho", name, bits, endian)


def _reject_fat(data: bytes, magic: int) -> NoReturn:
    """Always raises: explain a universal binary, or a Java class file sharing its magic."""
    if len(data) < FAT_ARCH_OFFSET:
        raise ValueError(f"truncated universal Mach-O header: {len(data)} bytes")
    (count,) = struct.unpack_from(">I", data, FAT_NARCH_OFFSET)
    if count == 0 or count > FAT_MAX_ARCHS:
        raise ValueError(f"not an ELF, PE or Mach-O executable (magic {magic:#x}, probably a Java class file)")
    size = FAT_ARCH_64_SIZE if magic == FAT_MAGIC_64 else FAT_ARCH_SIZE
    names = []
    for i in range(count):
        offset = FAT_ARCH_OFFSET + i * size
        if offset + 4 > len(data):
            names.append("...")
            break
        (cputype,) = struct.unpack_from(">I", data, offset)
        names.append(_MACHO_CPUS.get(cputype, f"unknown({cputype:#x})"))
    raise ValueError(
        f"universal (fat) Mach-O with {count} architectures ({', '.join(names)}): "
        "go build writes one architecture per binary; check each slice (lipo -thin)"
    )


def read_header(data: bytes) -> Header:
    """Identify format, CPU, word size and byte order from a file's first bytes.

    Raises ValueError, with a message fit for a user, for anything that is
    not a thin ELF, PE or Mach-O file (see the module docstring for fat files).
    Unrecognised machine numbers are not an error: they come back as
    "unknown(<num>)" (decimal for ELF, hex for PE and Mach-O, as each spec
    writes them) so the caller can report the mismatch.
    """
    if len(data) < 4:
        raise ValueError(f"too short to be an executable: {len(data)} bytes")
    if data.startswith(ELF_MAGIC):
        return _read_elf(data)
    (magic,) = struct.unpack_from(">I", data, 0)
    if magic in (MH_MAGIC, MH_CIGAM, MH_MAGIC_64, MH_CIGAM_64):
        return _read_macho(data, magic)
    if magic in (FAT_MAGIC, FAT_MAGIC_64):
        _reject_fat(data, magic)
    if data.startswith(DOS_MAGIC):
        return _read_pe(data)
    raise ValueError(f"not an ELF, PE or Mach-O executable (starts with {_hex(data)})")


def is_checkable(platform: Platform) -> bool:
    """Whether expected_header can describe this platform's binaries at all."""
    return platform.os not in UNCHECKED_OS and platform.arch in _ARCH_LAYOUT


def expected_header(platform: Platform) -> Header:
    """The header a Go binary for this platform must have."""
    if platform.os in UNCHECKED_OS:
        raise UserError(
            f"cannot check {platform} binaries: Go writes {platform.os} executables in a "
            "format crossbuild does not read (XCOFF / Plan 9 a.out)"
        )
    layout = _ARCH_LAYOUT.get(platform.arch)
    if layout is None:
        raise UserError(
            f"cannot check {platform} binaries: unknown architecture '{platform.arch}' "
            f"(known: {', '.join(sorted(_ARCH_LAYOUT))})"
        )
    if platform.os == "windows":
        fmt = "pe"
    elif platform.os in ("darwin", "ios"):
        fmt = "macho"
    else:
        fmt = "elf"
    bits, endian = layout
    return Header(fmt, platform.arch, bits, endian)


def _describe(machine: str) -> str:
    name = _ARCH_NAMES.get(machine)
    return f"{machine} ({name})" if name else machine


def check_header(data: bytes, platform: Platform) -> list[str]:
    """Problems that stop this binary running on `platform`; empty when none.

    Unreadable data is reported as a problem, not raised, so a whole build
    can list every bad binary at once. An unknown platform still raises
    UserError: that is a configuration mistake, not a bad binary.
    """
    want = expected_header(platform)
    try:
        got = read_header(data)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if got.format != want.format:
        article = _FORMAT_ARTICLES[got.format]
        problems.append(f"not an executable for {platform.os}: it is {article} {_FORMAT_NAMES[got.format]} file")
    if got.machine != want.machine:
        problems.append(f"{_FORMAT_NAMES[got.format]} machine is {_describe(got.machine)}, expected {want.machine}")
    if got.bits != want.bits:
        problems.append(f"{got.bits}-bit, expected {want.bits}-bit")
    if got.endian != want.endian:
        problems.append(f"{got.endian}-endian, expected {want.endian}-endian")
    return problems


def _go_unquote(value: str) -> str:
    """Undo the strconv.Quote Go applies to build settings with spaces or quotes."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            result = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(result, str):
            return result
    return value


# --- Go build info (what `go version -m` reads) -------------------------------
# The linker writes a 32-byte header into the .go.buildinfo section, 16-byte
# aligned: the magic, then the pointer size (byte 14) and flags (byte 15).
# Since Go 1.18 flag 0x2 is set and the Go version and the module info follow
# the header inline, each as a uvarint length plus bytes. The module info text
# ("path\t…", "mod\t…", "build\tKEY=VALUE" lines) is framed by 16 bytes on
# either side, the last of the text being a newline.
BUILDINFO_MAGIC = b"\xff Go buildinf:"
BUILDINFO_HEADER_SIZE = 32
BUILDINFO_ALIGN = 16
BUILDINFO_PTR_SIZE_OFFSET = 14
BUILDINFO_FLAGS_OFFSET = 15
BUILDINFO_FLAG_INLINE = 0x2
MODINFO_FRAME = 16
UVARINT_MAX_BYTES = 10


@dataclass(frozen=True)
class Module:
    """One `mod`, `dep` or `=>` line of the build info: what `go version -m` prints."""

    path: str
    version: str  # "v1.2.3", "(devel)", "" for a local replacement
    sum: str = ""  # "h1:<base64 sha256>" (go.sum's), "" when Go recorded none
    replace: Module | None = None  # the `=>` line under a dep: what was really compiled


@dataclass(frozen=True)
class BuildInfo:
    """Go's embedded build information: the toolchain, the main package and the build settings."""

    go_version: str  # "go1.26.0"
    path: str  # the main package's import path
    settings: tuple[tuple[str, str], ...]  # ("GOOS", "linux"), ("GOARCH", "arm"), ("GOARM", "7"), ...
    main: Module | None = None  # the `mod` line: the main module (None for a `go run` of files)
    deps: tuple[Module, ...] = ()  # the `dep` lines, in Go's order (sorted by path)

    def setting(self, key: str) -> str | None:
        return next((value for name, value in self.settings if name == key), None)


def _uvarint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, position after it) of an unsigned LEB128 varint, or None when cut off or overlong."""
    value = 0
    for n in range(UVARINT_MAX_BYTES):
        if pos + n >= len(data):
            return None
        byte = data[pos + n]
        value |= (byte & 0x7F) << (7 * n)
        if byte < 0x80:
            return value, pos + n + 1
    return None


def _inline_strings(data: bytes, pos: int, count: int) -> list[bytes] | None:
    found = []
    for _ in range(count):
        head = _uvarint(data, pos)
        if head is None:
            return None
        size, pos = head
        if pos + size > len(data):
            return None
        found.append(data[pos : pos + size])
        pos += size
    return found


def _module(rest: str) -> Module:
    """`path<TAB>version[<TAB>sum]` of a mod, dep or => line (debug/buildinfo's format)."""
    fields = rest.split("\t")
    fields += [""] * (3 - len(fields))
    return Module(fields[0], fields[1], fields[2])


def parse_modinfo(text: str) -> BuildInfo:
    """The module info text (`go version -m` without its first line); go_version is left empty."""
    path, settings = "", []
    main: Module | None = None
    deps: list[Module] = []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "path":
            path = rest
        elif kind == "mod":
            main = _module(rest)
        elif kind == "dep":
            deps.append(_module(rest))
        elif kind == "=>":
            replacement = _module(rest)
            if deps:
                deps[-1] = replace(deps[-1], replace=replacement)
            elif main is not None:
                main = replace(main, replace=replacement)
        elif kind == "build":
            key, sep, value = rest.partition("=")
            if sep:
                settings.append((key, _go_unquote(value)))
    return BuildInfo("", path, tuple(settings), main, tuple(deps))


def _build_info_at(data: bytes, at: int) -> BuildInfo | None:
    if len(data) - at < BUILDINFO_HEADER_SIZE:
        return None
    ptr_size, flags = data[at + BUILDINFO_PTR_SIZE_OFFSET], data[at + BUILDINFO_FLAGS_OFFSET]
    if ptr_size not in (4, 8) or not flags & BUILDINFO_FLAG_INLINE:
        return None  # before Go 1.18 the strings sat behind pointers: not read
    strings = _inline_strings(data, at + BUILDINFO_HEADER_SIZE, 2)
    if strings is None:
        return None
    version, modinfo = strings
    framed = len(modinfo) > 2 * MODINFO_FRAME and modinfo[-MODINFO_FRAME - 1] == ord("\n")
    text = modinfo[MODINFO_FRAME:-MODINFO_FRAME] if framed else b""
    info = parse_modinfo(text.decode("utf-8", errors="replace"))
    return replace(info, go_version=version.decode("utf-8", errors="replace"))


def read_build_info(data: bytes) -> BuildInfo | None:
    """The build info of a Go binary (1.18 or later), or None for anything else.

    Only 16-byte aligned copies of the magic count, as in the section the
    linker writes, so a program that merely contains the magic as a string
    constant (one that reads build info itself) is not misread.
    """
    section = elf_sections(data).get(".go.buildinfo")  # where the linker puts it in an ELF file
    if section is not None and data.startswith(BUILDINFO_MAGIC, section[0]) and section[0] % BUILDINFO_ALIGN == 0:
        info = _build_info_at(data, section[0])
        if info is not None:
            return info
    start = 0
    while (at := data.find(BUILDINFO_MAGIC, start)) >= 0:
        start = at + 1
        if at % BUILDINFO_ALIGN == 0 and (info := _build_info_at(data, at)) is not None:
            return info
    return None


def go_build_setting(data: bytes, key: str) -> str | None:
    """A `build\tKEY=VALUE` setting from Go's embedded build info, or None.

    Go records the GOOS, GOARCH and GOARM / GOAMD64 / GOARM64 it compiled for
    there, which is the only trace of the variant in the binary. Quoted values
    are unquoted.
    """
    info = read_build_info(data)
    return None if info is None else info.setting(key)


def _expected_setting(platform: Platform) -> tuple[str, str] | None:
    if platform.arch == "arm":
        return "GOARM", (platform.variant or "v7").removeprefix("v")
    if platform.arch == "amd64":
        # No variant means the baseline: a v3 binary labelled amd64 dies with
        # SIGILL on older CPUs, which is exactly what this check is for.
        return "GOAMD64", platform.variant or "v1"
    if platform.arch == "arm64":
        variant = platform.variant or "v8.0"
        return "GOARM64", variant if "." in variant else f"{variant}.0"
    return None


def _variant_problems(info: BuildInfo, platform: Platform) -> list[str]:
    expected = _expected_setting(platform)
    if expected is None:
        return []
    key, want = expected
    got = info.setting(key)
    if got is None or got.split(",")[0] == want:
        return []
    return [f"built with {key}={got}, expected {key}={want} for {platform}"]


def check_variant(data: bytes, platform: Platform) -> list[str]:
    """Problems with the CPU variant (GOARM, GOAMD64, GOARM64) the binary was built for.

    Absent build info (not Go, or older than Go 1.18) is not a problem: there
    is nothing to compare. Options after a comma (GOARM=7,softfloat) are ignored.
    """
    info = read_build_info(data)
    return [] if info is None else _variant_problems(info, platform)


def check_build_info(data: bytes, platform: Platform) -> list[str]:
    """Problems with the GOOS, GOARCH and CPU variant Go recorded for this binary.

    A second witness beside the executable header: the header says which CPU
    the file is for, the build info says which target the Go toolchain
    compiled, including the GOARM / GOAMD64 level the header cannot show.
    Absent build info is not a problem (see check_variant).
    """
    info = read_build_info(data)
    if info is None:
        return []
    problems = []
    for key, want in (("GOOS", platform.os), ("GOARCH", platform.arch)):
        got = info.setting(key)
        if got is not None and got != want:
            problems.append(f"built with {key}={got}, expected {key}={want} for {platform}")
    return problems + _variant_problems(info, platform)


def _without_ldflags_record(data: bytes) -> bytes:
    """Drop the build-info -ldflags lines, which hold every -X value even when ignored."""
    if _LDFLAGS_LINE not in data:
        return data
    parts = []
    pos = 0
    while (start := data.find(_LDFLAGS_LINE, pos)) >= 0:
        parts.append(data[pos:start])
        end = data.find(b"\n", start + len(_LDFLAGS_LINE))
        pos = len(data) if end < 0 else end
    parts.append(data[pos:])
    return b"".join(parts)


def missing_values(data: bytes, values: Mapping[str, str]) -> list[str]:
    """Keys of `-X key=value` whose value is not in the binary.

    The build-info record of -ldflags is ignored, since without -trimpath it
    holds the value even when the linker dropped the -X. A value that occurs
    elsewhere by chance (say "1") cannot be detected as missing; empty values
    are skipped because they are in every binary.
    """
    wanted = {key: value for key, value in values.items() if value}
    if not wanted:
        return []
    # The linker writes each -X value into read-only data (.rodata in ELF, an eighth of a Go
    # binary; runtime.modinfo, with its -ldflags line, lies there too): a value found there is in,
    # and only one not found there is looked for everywhere else.
    rodata = elf_sections(data).get(".rodata")
    if rodata is not None:
        region = _without_ldflags_record(data[rodata[0] : rodata[0] + rodata[1]])
        wanted = {key: value for key, value in wanted.items() if value.encode() not in region}
        if not wanted:
            return []
    haystack = _without_ldflags_record(data)
    return [key for key, value in wanted.items() if value.encode() not in haystack]


def check_binary(path: Path, platform: Platform, values: Mapping[str, str]) -> list[str]:
    """Every problem with one built binary, from a single read of the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read binary {path}: {exc.strerror or exc}") from exc
    problems = check_header(data, platform)
    problems += check_build_info(data, platform)
    problems += [
        f"-X {key}={values[key]} is not in the binary (the Go linker ignores -X for a "
        "symbol that does not exist: check the package path)"
        for key in missing_values(data, values)
    ]
    return problems
