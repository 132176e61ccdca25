"""Deployment files pinned to digests: the step after publishing (like `ko resolve`).

`invoke resolve FILE...` rewrites, in Kubernetes YAML and docker compose files, every image of
this project to `repository@sha256:...` (the index the last publish recorded in
build/state/images.json, or what the registry's tag names now), and, on request, every other
image to `image@sha256:...` of what its tag names now. Nothing else in the file changes:
the image values are found with their positions in the YAML and replaced in the text, so
comments, ordering and quoting stay as they were.

Which values are images: in a compose file (one document with a `services:` mapping) each
service's `image:`, after `${VAR}` substitution as docker compose does it; in Kubernetes YAML
every `image:` key in every document (containers, initContainers, CronJob templates, ...).

The text part (`find`, `rewrite`) takes no Config: offline bundles use it on the air-gapped
host, where only the archive is (crossbuild.bundle.loader).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from crossbuild import hosts
from crossbuild.compose import ComposeLoader, compose_variables, interpolate
from crossbuild.errors import UserError
from crossbuild.oci import Client, Reference, parse_reference

if TYPE_CHECKING:
    from crossbuild.config import Config
    from crossbuild.incremental import State

COMPOSE, KUBERNETES = "compose", "kubernetes"


@dataclass(frozen=True)
class Found:
    """One image value in a file: where its scalar is, what it says, and (compose) whose it is."""

    image: str  # the reference it names (compose: after ${VAR} substitution)
    raw: str  # the scalar as written
    start: int  # character offsets of the scalar in the text
    end: int
    style: str | None  # the scalar's quote: None (plain), "'" or '"'
    service: str = ""  # compose service name
    mapping: yaml.MappingNode | None = None  # the compose service, to set its platform


def _load(text: str, where: str) -> list[yaml.Node]:
    try:
        return [doc for doc in yaml.compose_all(text, Loader=ComposeLoader) if doc is not None]
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: invalid YAML: {str(exc).splitlines()[0]}") from exc


def _get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None


def kind_of(docs: Sequence[yaml.Node]) -> str:
    """compose or kubernetes, or a UserError for YAML that is neither."""
    if len(docs) == 1 and _get(docs[0], "services") is not None and _get(docs[0], "kind") is None:
        return COMPOSE
    if docs and all(_get(d, "kind") is not None or _get(d, "apiVersion") is not None for d in docs):
        return KUBERNETES
    raise UserError("neither a docker compose file (top-level services:) nor Kubernetes YAML (apiVersion:, kind:)")


def kind(text: str, where: str) -> str:
    """compose or kubernetes: what a file is, read without substituting anything."""
    try:
        return kind_of(_load(text, where))
    except UserError as exc:
        raise UserError(f"{where}: {exc}" if not str(exc).startswith(where) else str(exc)) from None


def _scalar(node: yaml.Node) -> yaml.ScalarNode | None:
    return node if isinstance(node, yaml.ScalarNode) and node.style not in ("|", ">") else None


def find(text: str, where: str, variables: Mapping[str, str] | None = None) -> tuple[str, list[Found]]:
    """(kind, every image value in file order). `variables`: what compose's ${VAR}s see."""
    docs = _load(text, where)
    try:
        kind = kind_of(docs)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    found: list[Found] = []
    if kind == COMPOSE:
        services = _get(docs[0], "services")
        assert services is not None
        if not isinstance(services[1], yaml.MappingNode):
            raise UserError(f"{where}: services: is not a mapping")
        for key, spec in services[1].value:
            entry = _get(spec, "image")
            node = _scalar(entry[1]) if entry else None
            if node is None or not node.value:
                continue
            try:
                image = interpolate(node.value, variables or {}).text
            except UserError as exc:
                raise UserError(f"{where}: service {key.value}: {exc}") from None
            found.append(_found(node, image, str(key.value), spec if isinstance(spec, yaml.MappingNode) else None))
        return kind, found

    def walk(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                scalar = _scalar(v)
                if isinstance(k, yaml.ScalarNode) and k.value == "image" and scalar is not None and scalar.value:
                    found.append(_found(scalar, scalar.value))
                else:
                    walk(v)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)

    for doc in docs:
        walk(doc)
    return kind, found


def _found(node: yaml.ScalarNode, image: str, service: str = "", mapping: yaml.MappingNode | None = None) -> Found:
    style = node.style if node.style in ("'", '"') else None
    return Found(image, node.value, node.start_mark.index, node.end_mark.index, style, service, mapping)


def _quoted(value: str, style: str | None) -> str:
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return value


def _platform_edit(text: str, f: Found, platform: str) -> tuple[int, int, str]:
    """(start, end, new text) that sets a compose service's platform: its value replaced, or a key added."""
    assert f.mapping is not None
    existing = _get(f.mapping, "platform")
    if existing is not None:
        return existing[1].start_mark.index, existing[1].end_mark.index, platform
    if f.mapping.flow_style:
        return f.end, f.end, f", platform: {platform}"
    key = _get(f.mapping, "image")
    assert key is not None
    column = key[0].start_mark.column
    line_end = text.find("\n", f.end)  # after the image line, so a comment on it stays there
    at = len(text) if line_end < 0 else line_end
    return at, at, "\n" + " " * column + f"platform: {platform}"


@dataclass(frozen=True)
class Change:
    image: str  # as the file named it (after substitution)
    pinned: str  # what it says now


def rewrite(
    text: str,
    where: str,
    pin: Callable[[Found], str | None],
    *,
    variables: Mapping[str, str] | None = None,
    platform: str = "",
) -> tuple[str, list[Change]]:
    """The text with each image `pin` returns a value for replaced by it; others untouched.

    `platform`: in a compose file, also set `platform:` on every service whose image was pinned
    (an offline bundle holds one platform's images).
    """
    what, found = find(text, where, variables)
    edits: list[tuple[int, int, str]] = []
    changes = []
    for f in found:
        new = pin(f)
        if new is None or new == f.image:
            continue
        edits.append((f.start, f.end, _quoted(new, f.style)))
        changes.append(Change(f.image, new))
        if platform and what == COMPOSE and f.mapping is not None:
            edits.append(_platform_edit(text, f, platform))
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:start] + new + text[end:]
    return text, changes


# --- what this project published ---------------------------------------------------------------


def _same_registry(a: str, b: str) -> bool:
    """localhost:5000 and 127.0.0.1:5000 are one registry; other hosts are compared as written."""
    if a == b:
        return True
    return hosts.is_loopback(a) and hosts.is_loopback(b) and hosts.port(a) == hosts.port(b)


@dataclass(frozen=True)
class Published:
    """One service's image as the last publish left it."""

    service: str
    repositories: tuple[Reference, ...]  # configured, and recorded (they differ after a REGISTRY_PREFIX change)
    tags: tuple[str, ...]
    digest: str | None  # recorded index digest
    recorded: Reference | None


def published(cfg: Config, state: State) -> list[Published]:
    found = []
    for s in cfg.services:
        configured = parse_reference(cfg.image_ref(s))
        record = state.get(s.name)
        recorded = parse_reference(record["repository"]) if isinstance(record.get("repository"), str) else None
        repos = tuple(r for r in (configured, recorded) if r is not None)
        digest = record.get("digest") if isinstance(record.get("digest"), str) else None
        found.append(Published(s.name, repos, cfg.image_tags(s), digest, recorded))
    return found


class Pinner:
    """Decides each image's pinned form: this project's from its last publish, others' on request."""

    def __init__(self, client: Client, services: Sequence[Published], third_party: bool = False) -> None:
        self.client, self.services, self.third_party = client, services, third_party
        self.cache: dict[str, str | None] = {}

    def service_of(self, ref: Reference) -> Published | None:
        for p in self.services:
            for repo in p.repositories:
                if repo.repository == ref.repository and _same_registry(repo.registry, ref.registry):
                    return p
        return None

    def __call__(self, f: Found) -> str | None:
        if f.image not in self.cache:
            self.cache[f.image] = self._pin(f.image)
        return self.cache[f.image]

    def _pin(self, image: str) -> str | None:
        try:
            ref = parse_reference(image)
        except UserError:
            return None  # not a reference (a template of another tool): not ours to change
        if ref.digest:
            return None
        mine = self.service_of(ref)
        if mine is not None:
            return f"{ref.registry}/{ref.repository}@{self._project_digest(mine, ref, image)}"
        if not self.third_party:
            return None
        digest = self.client.manifest_exists(ref)
        if digest is None:
            raise UserError(f"{image}: the registry has no such image, so it cannot be pinned")
        return f"{image}@{digest}"

    def _project_digest(self, mine: Published, ref: Reference, image: str) -> str:
        """The last publish's index when the file names no tag or one the publish moved; else the tag's."""
        recorded = mine.digest and mine.recorded is not None
        if recorded and (ref.tag is None or ref.tag in mine.tags):
            assert mine.digest is not None
            if self.client.manifest_exists(ref.at(mine.digest)) is not None:
                return mine.digest
        tag = ref.tag or mine.tags[0]
        digest = self.client.manifest_exists(Reference(ref.registry, ref.repository, tag, None))
        if digest is None:
            raise UserError(
                f"{image}: service {mine.service} has no published index "
                f"({ref.registry}/{ref.repository}:{tag} not found): run `make image.multiarch` first"
            )
        return digest


@dataclass(frozen=True)
class Resolved:
    path: Path
    kind: str
    text: str
    changes: list[Change]


def resolve_files(paths: Sequence[Path], pinner: Pinner, environ: Mapping[str, str] | None = None) -> list[Resolved]:
    """Each file read and rewritten in memory (nothing written): every problem before any output."""
    env = dict(os.environ if environ is None else environ)
    out = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{path}: cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text") from None
        variables = compose_variables(path, env) if kind(text, str(path)) == COMPOSE else {}
        new, changes = rewrite(text, str(path), pinner, variables=variables)
        out.append(Resolved(path, kind(text, str(path)), new, changes))
    return out
