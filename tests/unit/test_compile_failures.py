"""How go build failures are reported: one message for the platforms whose go output was the same,
and the fix when go could not download a module (pure grouping, then real go with GOPROXY=off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import commands, config, gobuild
from crossbuild.config import Overrides
from crossbuild.errors import UserError
from crossbuild.platforms import parse_platform
from crossbuild.session import for_config

AMD64, ARM64, ARMV7 = (parse_platform(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7"))
UNDEFINED = "cmd/api/main.go:3:2: undefined: foo"
REFUSED = (
    "pkg/x/x.go:5:2: example.com/tools@v0.1.0: reading https://proxy.golang.org/example.com/tools/@v/v0.1.0.zip: "
    "403 Forbidden\n\tserver response: This module version is not available."
)


def _failed(platform: object, output: str, failed: tuple[str, ...] = ("api",)) -> gobuild.PlatformResult:
    message = f"compile failed for {', '.join(failed)} on {platform}:\n{output}"
    return gobuild.PlatformResult(platform, (), 1.0, message, failed, output=output)  # type: ignore[arg-type]


def test_the_same_output_on_several_platforms_is_said_once_naming_them_all() -> None:
    results = [_failed(AMD64, UNDEFINED), _failed(ARM64, UNDEFINED), _failed(ARMV7, UNDEFINED)]
    assert gobuild.compile_failures(results) == [
        f"compile failed for api on linux/amd64, linux/arm64, linux/arm/v7:\n{UNDEFINED}"
    ]


def test_different_outputs_or_services_stay_apart_in_the_order_they_came() -> None:
    other = "cmd/api/main_arm.go:4:1: syntax error"
    results = [
        _failed(AMD64, UNDEFINED),
        _failed(ARM64, other),
        gobuild.PlatformResult(ARMV7, (), 0.1, "stopped: the run failed beside it"),
        _failed(ARMV7, UNDEFINED, ("api", "push")),
        gobuild.PlatformResult(AMD64, (), 1.0),  # built: nothing to say
    ]
    assert gobuild.compile_failures(results) == [
        f"compile failed for api on linux/amd64:\n{UNDEFINED}",
        f"compile failed for api on linux/arm64:\n{other}",
        "stopped: the run failed beside it",
        f"compile failed for api, push on linux/arm/v7:\n{UNDEFINED}",
    ]


def test_a_module_go_could_not_download_adds_the_fix_once() -> None:
    messages = gobuild.compile_failures([_failed(AMD64, REFUSED), _failed(ARM64, REFUSED)])
    assert messages == [f"compile failed for api on linux/amd64, linux/arm64:\n{REFUSED}", gobuild.DOWNLOAD_HINT]
    assert gobuild.compile_failures([_failed(AMD64, UNDEFINED)])[-1] != gobuild.DOWNLOAD_HINT


@pytest.mark.parametrize(
    "line",
    [
        'go: example.com/y@v1.2.3: Get "https://proxy.golang.org/example.com/y/@v/v1.2.3.mod": dial tcp: i/o timeout',
        "main.go:5:2: cannot find module providing package example.com/y: module lookup disabled by GOPROXY=off",
        "go: example.com/priv@v1.0.0: reading example.com/priv/go.mod at revision v1.0.0: git ls-remote -q origin",
    ],
    ids=["no-network", "goproxy-off", "private-git"],
)
def test_download_failures_go_reports_are_recognised(line: str) -> None:
    assert gobuild.download_hint(line) == gobuild.DOWNLOAD_HINT


@pytest.mark.parametrize("line", [UNDEFINED, "main.go:9:5: syntax error: unexpected x@y: reading"])
def test_compiler_errors_are_not_taken_for_download_failures(line: str) -> None:
    assert gobuild.download_hint(line) == ""


@pytest.mark.usefixtures("git_isolated")
def test_real_go_without_the_module_says_it_once_for_both_platforms_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = tmp_path / "mod"
    (mod / "cmd/api").mkdir(parents=True)
    (mod / "go.mod").write_text("module example.invalid/app\n\ngo 1.22\n\nrequire example.invalid/tools v0.1.0\n")
    (mod / "cmd/api/main.go").write_text(
        'package main\n\nimport "example.invalid/tools"\n\nfunc main() { tools.Run() }\n'
    )
    (tmp_path / "config.toml").write_text('[project]\nmodule_dir = "mod"\n[[services]]\nname = "api"\n')
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "empty-module-cache"))
    cfg = config.load(tmp_path / "config.toml", Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1"})
    with pytest.raises(UserError) as caught:
        commands.build(for_config(cfg), [AMD64, ARM64])
    text = str(caught.value)
    assert text.count("compile failed for") == 1, text
    assert "compile failed for api on linux/amd64, linux/arm64:" in text
    assert "example.invalid/tools" in text  # go's own words
    assert text.rstrip().endswith(gobuild.DOWNLOAD_HINT)
