"""Deployment files in offline bundles: declared in manifest.json, verified like the rest, and rewritten by
bundle.load to where the images went."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from synthetic_bundles import NAME, forge, members, two_images

from crossbuild import bundle
from crossbuild.bundle import loader
from crossbuild.errors import UserError

COMPOSE = """\
services:
  api:
    image: {api}   # ours
    platform: linux/arm64
  redis:
    image: {redis}
    platform: linux/arm64
  other:
    image: busybox:1
"""


def write_with_deploy(directory: Path) -> tuple[Path, str]:
    images = two_images()
    api, redis = (f"{i.entry.reference.registry}/{i.entry.reference.repository}@{i.entry.digest}" for i in images)
    text = COMPOSE.format(api=api, redis=redis)
    manifest = replace(
        bundle.BundleManifest(
            project="demo",
            version="v1.0.0",
            platform=bundle.platform_from_text("linux/arm64"),
            created="2023-11-14T22:13:20Z",
            images=tuple(i.entry for i in images),
        ),
        deploy=("deploy/docker-compose.yml",),
    )
    blobs = {d: b for i in images for d, b in i.blobs.items()}
    raw = {i.entry.digest: i.raw for i in images}
    entries = bundle.layout_entries(
        manifest, NAME, raw, lambda _img, digest: blobs[digest], {"deploy/docker-compose.yml": text.encode()}
    )
    path = directory / f"{NAME}.tar.gz"
    bundle.write_archive(path, NAME, entries, mtime=1_700_000_000)
    return path, text


def test_manifest_round_trips_its_deploy_files() -> None:
    images = two_images()
    manifest = bundle.BundleManifest(
        "demo", "v1", bundle.platform_from_text("linux/arm64"), "t", tuple(i.entry for i in images), ("deploy/a.yml",)
    )
    data = json.loads(manifest.dumps())
    assert data["deploy"] == ["deploy/a.yml"]
    assert bundle.BundleManifest.from_json(data) == manifest
    assert "deploy" not in json.loads(replace(manifest, deploy=()).dumps())  # old bundles stay byte for byte


@pytest.mark.parametrize(
    "bad", [["../x.yml"], ["deploy/a/b.yml"], ["deploy/x.sh"], "deploy/a.yml", ["deploy/a.yml"] * 2]
)
def test_bad_deploy_lists_are_refused(bad: object) -> None:
    images = two_images()
    data = json.loads(
        bundle.BundleManifest("demo", "v1", bundle.platform_from_text("linux/arm64"), "t", (images[0].entry,)).dumps()
    )
    data["deploy"] = bad
    with pytest.raises(UserError, match="deploy"):
        bundle.BundleManifest.from_json(data)


def test_the_reader_verifies_and_keeps_deploy_files(tmp_path: Path) -> None:
    path, text = write_with_deploy(tmp_path)
    verified = bundle.read_archive(path, None)
    assert verified.deploy == {"deploy/docker-compose.yml": text.encode()}
    assert "deploy/docker-compose.yml" in members(path)[f"{NAME}/SHA256SUMS"].decode()


def test_a_deploy_file_manifest_json_does_not_list_is_refused(tmp_path: Path) -> None:
    path, _ = write_with_deploy(tmp_path)
    extra = tmp_path / "extra.tar.gz"
    forge(path, extra, {}, added={"deploy/other.yml": b"services: {}\n"})
    with pytest.raises(UserError, match=r"'deploy/other.yml' is not a file a bundle has; nothing was imported"):
        bundle.read_archive(extra, None)


def test_bundle_load_points_the_files_at_the_registry_or_the_loaded_tags(tmp_path: Path) -> None:
    path, _ = write_with_deploy(tmp_path)
    verified = bundle.read_archive(path, None)
    api, redis = two_images()
    pushed = yaml.safe_load(loader.deploy_text(verified, "deploy/docker-compose.yml", "10.0.0.5:5000"))
    assert pushed["services"]["api"]["image"] == f"10.0.0.5:5000/demo/api@{api.entry.digest}"
    assert pushed["services"]["redis"]["image"] == f"10.0.0.5:5000/library/redis@{redis.entry.digest}"
    assert pushed["services"]["other"]["image"] == "busybox:1"
    loaded = loader.deploy_text(verified, "deploy/docker-compose.yml", None)
    assert yaml.safe_load(loaded)["services"]["api"]["image"] == "registry.example:5000/demo/api:v1.0.0"
    assert "# ours" in loaded
