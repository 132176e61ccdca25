"""Fuzz targets: platform lists, image references, tag templates, config.toml (the bundle reader and
compose substitution are in test_fuzz_bundle.py).

Run long: `make fuzz` (HYPOTHESIS_PROFILE=long). See conftest.py for the contract.
"""

from __future__ import annotations

import os
import shutil
import string
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossbuild import config, platforms, version
from crossbuild.config import Overrides
from crossbuild.errors import UserError
from crossbuild.oci import parse_reference

REPO = Path(__file__).resolve().parents[2]
DIST = frozenset(platforms._FALLBACK_DIST.split())  # the real list, without running go per example
ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}

# Text that looks like what people type, plus arbitrary unicode.
_PLATFORM_WORDS = ["linux", "darwin", "windows", "amd64", "arm64", "arm", "v6", "v7", "v8", "v9.2", "x86_64"]
_SEPARATORS = ["/", "_", ",", " ", "\t", "\n", "-", "."]
typed = st.lists(st.sampled_from(_PLATFORM_WORDS + _SEPARATORS), max_size=12).map("".join)
anything = st.text(max_size=60)


def one_line_error(exc: UserError) -> None:
    text = str(exc)
    assert text.strip(), "empty error message"
    assert "Traceback" not in text
    assert "\n" not in text, f"a multi-line error: {text!r}"


@given(st.one_of(typed, anything))
def test_platform_lists(text: str) -> None:
    try:
        parsed = platforms.parse_platforms(text, DIST)
    except UserError as exc:
        one_line_error(exc)
        return
    assert parsed
    for p in parsed:  # what was accepted prints in the canonical form and parses back to itself
        assert platforms.parse_platform(str(p), DIST) == p


_REF_ALPHABET = string.ascii_letters + string.digits + "/:@._-" + "sha256"
ref_like = st.text(alphabet=_REF_ALPHABET, max_size=80)
digests = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"@sha256:{h}")


@given(st.one_of(ref_like, anything, st.tuples(ref_like, digests).map("".join)))
def test_image_references(text: str) -> None:
    try:
        ref = parse_reference(text)
    except UserError as exc:
        one_line_error(exc)
        return
    assert ref.registry and ref.repository
    assert parse_reference(str(ref)) == ref  # round trip


_FIELDS = list(config._TEMPLATE_FIELDS)
template_parts = st.one_of(
    st.sampled_from([f"{{{f}}}" for f in _FIELDS]),
    st.sampled_from(["{", "}", "{{", "}}", "{0}", "{version!r}", "{version:>9}", "{nope}", "{.x}", "{version[0]}"]),
    st.text(max_size=8),
)
templates = st.lists(template_parts, max_size=6).map("".join)
VALUES = version.VersionInfo("v1.2.3-4-gabcdef0-dirty", "ab" * 20, "dirty", "2024-01-02T03:04:05Z").template_values()


@given(templates)
def test_tag_templates(template: str) -> None:
    try:
        tag = version.tag_safe(config.fill_template(template, {**VALUES, "service": "api", "project": "p"}, "t"))
    except UserError as exc:
        one_line_error(exc)
        return
    assert 0 < len(tag) <= 128
    assert tag[0] not in ".-"
    assert all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in tag)


# --- config.toml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("fuzz-config")
    shutil.copytree(REPO / "examples" / "imdemo", root / "mod")
    yield root


def _value() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.text(max_size=20), st.integers(-5, 300), st.booleans(), st.just("linux/arm64"))
    leaf = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=8), scalars, max_size=3))
    return leaf


def _table(name: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = [*config.SCHEMA[name], "typo_key"]
    return st.dictionaries(st.sampled_from(keys), _value(), max_size=5)


def _document() -> st.SearchStrategy[dict[str, Any]]:
    tables = {name: _table(name) for name in config.TOP_LEVEL if name != "services"}
    services = st.lists(_table("services"), max_size=3)
    return st.fixed_dictionaries({}, optional={**tables, "services": services, "bogus": _table("project")})


def _toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the shapes _document makes (tomllib only reads)."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{scalar(str(k))} = {scalar(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)

    lines = []
    for table, body in data.items():
        rows = body if table == "services" else [body]
        for row in rows:
            lines.append(f"[[{table}]]" if table == "services" else f"[{table}]")
            lines += [f"{scalar(str(k))} = {scalar(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


@given(_document())
def test_config_documents(project: Path, data: dict[str, Any]) -> None:
    data.setdefault("project", {})["module_dir"] = "mod"
    text = _toml(data)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # our writer made something TOML does not allow (e.g. a key twice): not crossbuild's input
    path = project / "config.toml"
    path.write_text(text)
    try:
        config.load(path, Overrides(), ENV)
    except UserError as exc:
        one_line_error(exc)


@given(st.text(max_size=200))
def test_config_raw_text(project: Path, text: str) -> None:
    path = project / "config.toml"
    path.write_text(text)
    try:
        config.load(path, Overrides(), ENV)
    except UserError as exc:
        one_line_error(exc)
