"""buildx's rawjson progress condensed into rows per service and platform; a failed bake's readable error."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crossbuild import bake, buildx, config
from crossbuild.plan import ImageTarget, plan
from crossbuild.platforms import parse_platforms

EXAMPLE = Path(__file__).resolve().parents[2] / "config.toml"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def start(self, key: str, status: str = "") -> None:
        self.events.append(("start", key, status))

    def update(self, key: str, status: str, detail: str = "") -> None:
        self.events.append(("update", key, status + (f" [{detail}]" if detail else "")))

    def finish(self, key: str, status: str, failed: bool = False) -> None:
        self.events.append(("failed" if failed else "finish", key, status))


@pytest.fixture(scope="module")
def targets() -> list[ImageTarget]:
    cfg = config.load(EXAMPLE, config.Overrides(images=("api", "push"), version="v1.0.0"), environ={})
    return list(plan(cfg, parse_platforms("linux/amd64,linux/arm64"), cfg.selected_images()).targets)


def vertex(digest: str, name: str, **state: Any) -> dict[str, Any]:
    return {"vertexes": [{"digest": digest, "name": name, **state}]}


def test_rows_are_each_service_then_its_platforms(targets: list[ImageTarget]) -> None:
    assert bake.rows_of(targets) == (
        "api",
        "api linux/amd64",
        "api linux/arm64",
        "push",
        "push linux/amd64",
        "push linux/arm64",
    )


def test_vertexes_become_rows(targets: list[ImageTarget]) -> None:
    rec = Recorder()
    c = bake.Condenser(targets, rec)
    c.event(vertex("d0", "[internal] load local bake definitions", started="t"))
    c.event(vertex("d1", "[api internal] load build context", started="t"))
    c.event(vertex("d2", "[api linux/arm64 1/2] COPY linux/arm64/api /usr/local/bin/api", started="t"))
    c.event(vertex("d3", "[push linux/amd64 1/1] COPY x y", started="t", cached=True))
    c.event(vertex("d3", "[push linux/amd64 1/1] COPY x y", started="t", completed="t", cached=True))
    c.event(vertex("d2", "[api linux/arm64 1/2] COPY linux/arm64/api /usr/local/bin/api", started="t", completed="t"))
    c.event(vertex("d4", "[api] exporting to image", started="t"))
    c.event(
        {
            "statuses": [
                {"id": "pushing layers", "vertex": "d4", "current": 3 << 20, "total": 6 << 20},
                {"id": "exporting manifest sha256:abc", "vertex": "d4"},
            ]
        }
    )
    assert rec.events == [
        ("update", "api", "preparing"),
        ("update", "api linux/arm64", "1/2 COPY linux/arm64/api /usr/local/bin/api"),
        ("update", "push linux/amd64", "1/1 COPY x y (cached)"),
        ("finish", "push linux/amd64", "cached"),
        ("finish", "api linux/arm64", "built"),
        ("update", "api", "exporting"),
        ("update", "api", "pushing [3.0 MiB/6.0 MiB]"),
        ("update", "api", "exporting"),
    ]
    c.finish(bake.rows_of(targets), "done")
    finished = {key for kind, key, _ in rec.events if kind == "finish"}
    assert finished == set(bake.rows_of(targets))


def test_one_target_has_no_target_in_its_names(targets: list[ImageTarget]) -> None:
    rec = Recorder()
    c = bake.Condenser(targets[:1], rec)
    c.event(vertex("d1", "[linux/amd64 1/1] COPY a b", started="t"))
    c.event(vertex("d2", "exporting to image", started="t"))
    assert rec.events == [("update", "api linux/amd64", "1/1 COPY a b"), ("update", "api", "exporting")]


def test_a_failed_vertex_fails_its_row(targets: list[ImageTarget]) -> None:
    rec = Recorder()
    c = bake.Condenser(targets, rec)
    c.event(vertex("d1", "[push linux/arm64 2/3] RUN make", started="t", error="exit code: 2"))
    assert rec.events == [("failed", "push linux/arm64", "failed: 2/3 RUN make")]


def test_raw_progress_gives_events_and_a_readable_failure() -> None:
    seen: list[dict[str, Any]] = []
    raw = buildx.RawProgress(seen.append)
    log = base64.b64encode(b"compiling...\nmain.go:3: undefined: x\n").decode()
    raw.feed(json.dumps(vertex("d1", "[api linux/arm64 2/3] RUN go build", started="t")))
    raw.feed(json.dumps({"logs": [{"vertex": "d1", "stream": 2, "data": log}]}))
    raw.feed(json.dumps(vertex("d1", "[api linux/arm64 2/3] RUN go build", error="exit code: 1")))
    raw.feed("ERROR: failed to solve: process did not complete successfully: exit code: 1")
    raw.feed("{not json")
    assert len(seen) == 3
    text = raw.text()
    assert text.splitlines() == [
        "#[api linux/arm64 2/3] RUN go build",
        "  compiling...",
        "  main.go:3: undefined: x",
        "ERROR: failed to solve: process did not complete successfully: exit code: 1",
        "{not json",
    ]


def test_bake_argv_asks_for_rawjson_only_when_told() -> None:
    plain = buildx.bake_argv(file=Path("b.json"), builder="x", metadata_file=Path("m.json"))
    streamed = buildx.bake_argv(file=Path("b.json"), builder="x", metadata_file=Path("m.json"), progress="rawjson")
    assert "--progress" not in plain
    assert streamed[streamed.index("--progress") + 1] == "rawjson"


# --- one-platform parts (crossbuild.earlybake) ---------------------------------------------------


def test_steps_of_one_platform_parts_go_to_their_platform_rows(targets: list[ImageTarget]) -> None:
    cut = [replace(t, platforms=(p,), part=True) for t in targets for p in t.platforms]
    rec = Recorder()
    c = bake.Condenser(cut, rec)
    c.event(vertex("d1", "[api-linux-arm64 1/1] COPY linux/arm64/api/ /", started="t"))
    c.event(vertex("d1", "[api-linux-arm64 1/1] COPY linux/arm64/api/ /", completed="t"))
    assert ("update", "api linux/arm64", "1/1 COPY linux/arm64/api/ /") in rec.events
    assert ("finish", "api linux/arm64", "built") in rec.events


def test_a_lone_one_platform_part_still_has_its_platform_row(targets: list[ImageTarget]) -> None:
    one = replace(targets[0], platforms=parse_platforms("linux/arm64"), part=True)
    rec = Recorder()
    c = bake.Condenser([one], rec)
    c.event(vertex("d1", "[1/1] COPY linux/arm64/api/ /", started="t"))
    assert ("update", "api linux/arm64", "1/1 COPY linux/arm64/api/ /") in rec.events
