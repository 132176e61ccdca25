"""The witnesses the other tests trust (support/witness.py), checked against a registry of this module's own.

A witness that missed content would let `nothing was pushed` assertions pass vacuously, so
its answers are compared here with what was pushed through the distribution spec's raw
endpoints (support/inputs.py) and with skopeo.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.inputs import canonical_json, put_manifest, tar_gz_layer, upload_blob
from support.registries import Registry, docker_registry
from support.witness import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    catalog,
    repositories_under,
    resolves,
    skopeo_digest,
    skopeo_tags,
    tags,
)

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# Neighbours of ns/ on both sides, whether the catalog sorts by string ("ns-x/" < "ns/") or,
# as distribution's filesystem driver does, by path segment ("ns" < "ns-x").
REPOSITORIES = ("aa/one", "ns-x/api", "ns/api", "ns/push", "ns/rpc/user", "nsz/api", "zz/last")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, dict[str, str]]]:
    """A registry holding one image under each of REPOSITORIES, tagged v1; repository -> manifest digest."""
    with docker_registry(tmp_path_factory.mktemp("witness")) as running:
        digests = {}
        for repository in REPOSITORIES:
            layer, diff_id = tar_gz_layer({"hello.txt": repository.encode()})
            config = canonical_json(
                {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
            )
            manifest = canonical_json(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": OCI_CONFIG,
                        "digest": upload_blob(running.url, repository, config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": OCI_LAYER_GZIP,
                            "digest": upload_blob(running.url, repository, layer),
                            "size": len(layer),
                        }
                    ],
                }
            )
            digests[repository] = put_manifest(running.url, repository, "v1", manifest, OCI_MANIFEST)
        yield running, digests


@pytest.mark.parametrize("page", [1, 2, 1000], ids=["page-1", "page-2", "page-1000"])
def test_catalog_reads_every_page(registry: tuple[Registry, dict[str, str]], page: int) -> None:
    running, _ = registry
    assert sorted(catalog(running.address, page=page)) == sorted(REPOSITORIES)  # each once, none missing


@pytest.mark.parametrize("page", [1, 2, 1000], ids=["page-1", "page-2", "page-1000"])
def test_repositories_under_a_namespace_and_nothing_else(registry: tuple[Registry, dict[str, str]], page: int) -> None:
    running, _ = registry
    assert repositories_under("ns", running.address, page=page) == ["ns/api", "ns/push", "ns/rpc/user"]
    assert repositories_under("nosuch", running.address, page=page) == []


def test_tags_and_resolves_agree_with_skopeo(registry: tuple[Registry, dict[str, str]]) -> None:
    running, digests = registry
    assert tags("ns/api", running.address) == ["v1"] == skopeo_tags(f"{running.address}/ns/api")
    assert tags("ns/nosuch", running.address) == []
    assert resolves(running.address, "ns/api", "v1")
    assert not resolves(running.address, "ns/api", "v2")
    assert skopeo_digest(f"{running.address}/ns/api:v1") == digests["ns/api"]
