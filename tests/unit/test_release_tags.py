"""Release-only tags and dirty trees, OCI annotations in the plan and the bake file, GitHub's output forms."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from crossbuild import bake, config, output
from crossbuild.config import Config, Overrides
from crossbuild.errors import UserError
from crossbuild.images import platform_tag
from crossbuild.plan import oci_annotations, plan
from crossbuild.platforms import parse_platforms

EXAMPLE = Path(__file__).resolve().parents[2] / "config.toml"
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


def example(state: str = "clean", env: dict[str, str] | None = None, **flags: object) -> Config:
    cfg = config.load(EXAMPLE, Overrides(version="v1.2.3", **flags), {**ENV, **(env or {})})  # type: ignore[arg-type]
    return replace(cfg, version=replace(cfg.version, tree_state=state))


@pytest.mark.parametrize(
    ("state", "env", "flags", "tags"),
    [
        ("clean", {}, {}, ("v1.2.3", "latest")),
        ("dirty", {}, {}, ("v1.2.3",)),
        ("dirty", {}, {"force_release_tags": True}, ("v1.2.3", "latest")),
        ("dirty", {"FORCE_RELEASE_TAGS": "1"}, {}, ("v1.2.3", "latest")),
        ("clean", {}, {"snapshot": True}, ("v1.2.3",)),
        ("clean", {"SNAPSHOT": "1"}, {}, ("v1.2.3",)),
        ("dirty", {}, {"snapshot": True, "force_release_tags": True}, ("v1.2.3",)),
    ],
    ids=["clean", "dirty", "dirty-forced", "dirty-forced-env", "snapshot", "snapshot-env", "snapshot-beats-force"],
)
def test_which_tags_move(state: str, env: dict[str, str], flags: dict[str, object], tags: tuple[str, ...]) -> None:
    cfg = example(state, env, **flags)
    api = cfg.service("api")
    assert cfg.image_tags(api) == tags
    assert cfg.all_image_tags(api) == ("v1.2.3", "latest")
    assert set(cfg.held_tags(api)) == {"latest"} - set(tags)


def test_only_release_tags_and_a_dirty_tree_is_one_clear_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('tags = ["{version}", "latest"]', 'tags = ["latest"]')
    text = text.replace('module_dir = "examples/imdemo"', f'module_dir = "{EXAMPLE.parent / "examples/imdemo"}"')
    path = tmp_path / "config.toml"
    path.write_text(text)
    cfg = config.load(path, Overrides(version="v1"), ENV)
    cfg = replace(cfg, version=replace(cfg.version, tree_state="dirty"))
    with pytest.raises(UserError, match=r"every tag of api \(latest\) is release-only and the tree is dirty"):
        cfg.image_tags(cfg.service("api"))


def test_platform_tag() -> None:
    assert platform_tag("v1.2-dirty", "linux/arm/v7") == "v1.2-dirty-linux-arm-v7"


def test_annotations_say_source_revision_version_created_and_description(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('source = "', 'description = "imdemo {service} service"\nsource = "', 1)
    text = text.replace('module_dir = "examples/imdemo"', f'module_dir = "{EXAMPLE.parent / "examples/imdemo"}"')
    text += '\n[image.annotations]\n"org.example.built-for" = "{project}/{service}"\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    cfg = config.load(path, Overrides(version="v1.2.3"), ENV)
    got = oci_annotations(cfg, cfg.service("api"))
    assert got["org.opencontainers.image.version"] == "v1.2.3"
    assert got["org.opencontainers.image.revision"] == cfg.version.commit
    assert got["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert got["org.opencontainers.image.source"] == "https://github.com/crossbuild-example/imdemo"
    assert got["org.opencontainers.image.description"] == "imdemo {service} service"  # description is not a template
    assert got["org.example.built-for"] == "imdemo/api"


@pytest.mark.parametrize(
    ("index", "levels"), [(True, {"index", "manifest"}), (False, {"manifest"})], ids=["index", "leg"]
)
def test_the_bake_file_carries_the_annotations(index: bool, levels: set[str]) -> None:
    cfg = example()
    targets = plan(cfg, parse_platforms("linux/amd64"), (cfg.service("api"),)).targets
    body = bake.definition(cfg, targets, lambda t: ["type=cacheonly"], with_tags=False, index=index)
    entries = body["target"]["api"]["annotations"]
    assert {e.split(":", 1)[0] for e in entries} == levels
    assert "manifest:org.opencontainers.image.version=v1.2.3" in entries


# --- GitHub Actions forms -----------------------------------------------------------------


def test_error_annotation_only_under_github_actions(capsys: pytest.CaptureFixture[str]) -> None:
    output.annotate_error("a\nb 100%", title="crossbuild image.multiarch", environ={})
    assert capsys.readouterr().out == ""
    output.annotate_error("a\nb 100%", title="crossbuild: x, y", environ={"GITHUB_ACTIONS": "true"})
    assert capsys.readouterr().out == "::error title=crossbuild%3A x%2C y::a%0Ab 100%25\n"


def test_step_summary_appends_markdown(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("before\n")
    table = output.markdown_table(["service", "detail"], [["api", "a|b\nc"]])
    assert output.step_summary(table, {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "before\n| service | detail |\n|---|---|\n| api | a\\|b c |\n\n"
    assert output.step_summary(table, {}) is None
