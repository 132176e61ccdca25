"""Finding and replacing image values in Kubernetes YAML and compose files, text otherwise untouched."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from crossbuild import resolve
from crossbuild.errors import UserError

K8S = """\
# the api, with a sidecar
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api   # image: not-this
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: "reg:5000/ns/api:v1"   # quoted, commented
      containers:
        - {name: api, image: 'reg:5000/ns/api'}
        - name: redis
          image: redis:7
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: job}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: job
              image: reg:5000/ns/worker:v1
"""

COMPOSE = """\
services:
  api:
    image: ${REG:-reg:5000}/ns/api:${TAG}   # ours
    ports: ["8080:8080"]
  cache: {image: redis:7}
  old:
    image: reg:5000/ns/worker:v1
    platform: linux/amd64
  built:
    build: ./built
"""


def pins(mapping: dict[str, str]) -> Callable[[resolve.Found], str | None]:
    return lambda found: mapping.get(found.image)


def test_kind() -> None:
    assert resolve.kind(K8S, "k.yaml") == resolve.KUBERNETES
    assert resolve.kind(COMPOSE, "c.yml") == resolve.COMPOSE
    with pytest.raises(UserError, match=r"^x.yml: neither a docker compose file"):
        resolve.kind("just: text\n", "x.yml")


def test_every_kubernetes_image_is_found_in_order() -> None:
    kind, found = resolve.find(K8S, "k.yaml")
    assert kind == resolve.KUBERNETES
    assert [f.image for f in found] == ["reg:5000/ns/api:v1", "reg:5000/ns/api", "redis:7", "reg:5000/ns/worker:v1"]
    assert [f.style for f in found] == ['"', "'", None, None]


def test_rewrite_keeps_everything_but_the_pinned_values() -> None:
    text, changes = resolve.rewrite(
        K8S,
        "k.yaml",
        pins({"reg:5000/ns/api:v1": "reg:5000/ns/api@sha256:1", "reg:5000/ns/api": "reg:5000/ns/api@sha256:1"}),
    )
    assert text == (
        K8S.replace('"reg:5000/ns/api:v1"', '"reg:5000/ns/api@sha256:1"').replace(
            "'reg:5000/ns/api'", "'reg:5000/ns/api@sha256:1'"
        )
    )
    assert [c.image for c in changes] == ["reg:5000/ns/api:v1", "reg:5000/ns/api"]
    docs = list(yaml.safe_load_all(text))
    assert docs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "reg:5000/ns/worker:v1"
    )


def test_compose_images_are_substituted_then_replaced_whole() -> None:
    kind, found = resolve.find(COMPOSE, "c.yml", {"TAG": "v2"})
    assert kind == resolve.COMPOSE
    assert [(f.service, f.image) for f in found] == [
        ("api", "reg:5000/ns/api:v2"),
        ("cache", "redis:7"),
        ("old", "reg:5000/ns/worker:v1"),
    ]
    text, _ = resolve.rewrite(
        COMPOSE, "c.yml", pins({"reg:5000/ns/api:v2": "reg:5000/ns/api@sha256:2"}), variables={"TAG": "v2"}
    )
    assert "    image: reg:5000/ns/api@sha256:2   # ours\n" in text
    assert "${" not in text.splitlines()[2]
    assert text.count("\n") == COMPOSE.count("\n")


def test_compose_platform_is_set_added_or_replaced() -> None:
    text, _ = resolve.rewrite(
        COMPOSE,
        "c.yml",
        pins({"reg:5000/ns/api:v2": "A@sha256:1", "redis:7": "R@sha256:2", "reg:5000/ns/worker:v1": "W@sha256:3"}),
        variables={"TAG": "v2"},
        platform="linux/arm64",
    )
    data = yaml.safe_load(text)
    assert {name: svc.get("platform") for name, svc in data["services"].items()} == {
        "api": "linux/arm64",
        "cache": "linux/arm64",
        "old": "linux/arm64",
        "built": None,
    }
    assert "    image: A@sha256:1   # ours\n    platform: linux/arm64\n" in text  # after the commented line
    assert "cache: {image: R@sha256:2, platform: linux/arm64}" in text


def test_a_required_variable_names_the_service() -> None:
    with pytest.raises(UserError, match=r"c.yml: service api: required variable TAG"):
        resolve.find(COMPOSE.replace("${TAG}", "${TAG:?set TAG}"), "c.yml", {})


def test_invalid_yaml_is_one_line() -> None:
    with pytest.raises(UserError, match=r"^bad.yml: invalid YAML"):
        resolve.find("services: [\n", "bad.yml")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("localhost:5000", "127.0.0.1:5000", True),
        ("localhost:5000", "localhost:5001", False),
        ("reg.lan:5000", "reg.lan:5000", True),
        ("reg.lan:5000", "10.0.0.5:5000", False),
    ],
    ids=["loopback-names", "other-port", "same-host", "other-host"],
)
def test_same_registry(a: str, b: str, same: bool) -> None:
    assert resolve._same_registry(a, b) is same
