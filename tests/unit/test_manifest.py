"""manifest.check_legs: CI matrix legs are merged only when they agree with each other and with the merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import config, manifest, plan
from crossbuild.config import Config, Overrides
from crossbuild.errors import UserError


@pytest.fixture
def cfg(imdemo_copy: Path) -> Config:
    root = imdemo_copy.parent.parent
    path = root / "config.toml"
    path.write_text(
        '[project]\nmodule_dir = "examples/imdemo"\n\n[platforms]\nimages = ["linux/amd64", "linux/arm64"]\n'
    )
    return config.load(path, Overrides(), {"VERSION": "v1.2.3"})


def legs(cfg: Config, **changes: dict[str, str]) -> tuple[plan.ImageTarget, dict[str, dict[str, str]]]:
    (target,) = plan.plan(cfg, cfg.image_platforms, [cfg.service("api")]).targets
    base = {
        "version": "v1.2.3",
        "commit": cfg.version.commit,
        "tree_state": cfg.version.tree_state,
        "config": plan.leg_config(cfg, target.service),
    }
    records = {str(p): {**base, "platform": str(p), **changes.get(str(p), {})} for p in target.platforms}
    return target, records


def test_agreeing_legs_merge(cfg: Config) -> None:
    target, records = legs(cfg)
    manifest.check_legs(cfg, target, records)


def test_legs_of_two_versions_are_named(cfg: Config) -> None:
    target, records = legs(cfg, **{"linux/arm64": {"version": "v1.2.2", "commit": "abcdef1234"}})
    with pytest.raises(
        UserError, match=r"different versions \(linux/amd64: v1\.2\.3 .*; linux/arm64: v1\.2\.2 \(abcdef1"
    ):
        manifest.check_legs(cfg, target, records)


def test_legs_of_another_config_are_refused(cfg: Config) -> None:
    target, records = legs(cfg, **{"linux/amd64": {"config": "0123456789abcdef"}})
    with pytest.raises(UserError, match=r"different configs .*linux/amd64=0123456789abcdef"):
        manifest.check_legs(cfg, target, records)


def test_a_merge_at_another_version_moves_nothing(cfg: Config) -> None:
    target, records = legs(cfg)
    other = config.load(cfg.path, Overrides(), {"VERSION": "v9.9.9"})
    with pytest.raises(UserError, match=r"legs were built at v1\.2\.3 .* this merge runs at v9\.9\.9"):
        manifest.check_legs(other, target, records)


def test_records_without_provenance_are_refused(cfg: Config) -> None:
    target, records = legs(cfg)
    del records["linux/arm64"]["version"]
    with pytest.raises(UserError, match=r"record of linux/arm64 does not say which version"):
        manifest.check_legs(cfg, target, records)


def test_leg_config_follows_what_decides_the_image(cfg: Config) -> None:
    api = cfg.service("api")
    changed = config.load(cfg.path, Overrides(base_image="scratch"), {"VERSION": "v1.2.3"})
    assert plan.leg_config(cfg, api) == plan.leg_config(config.load(cfg.path, Overrides(), {}), api)
    assert plan.leg_config(cfg, api) != plan.leg_config(changed, api)
