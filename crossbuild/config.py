"""config.toml + environment + flags -> one frozen, validated Config.

Precedence, resolved here and nowhere else: flags > environment variables
(named as in OpenIM's make rules: PLATFORMS, BINS, IMAGES, REGISTRY_PREFIX,
VERSION, BASE_IMAGE, plus GO_IMAGE, MODE) > config.toml > built-in defaults.
Later stages receive the Config and never read the file or the environment.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from crossbuild import hosts, runner
from crossbuild import platforms as plat
from crossbuild import services as discovered
from crossbuild import version as ver
from crossbuild.errors import UserError
from crossbuild.platforms import Platform

T = TypeVar("T")
DEFAULT_CONFIG = "config.toml"
MODES = ("prebuilt", "multistage")
DRIVERS = ("docker-container", "remote", "kubernetes", "docker")
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
DEFAULT_REGISTRY = "127.0.0.1:5000"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_TEMPLATE_FIELDS = (
    "version",
    "version_no_v",
    "commit",
    "short_commit",
    "tree_state",
    "date",
    "date_short",
    "timestamp",
    "service",
    "project",
)
# What crossbuild writes into project.output_dir, and all that `clean` removes there.
OUTPUT_ENTRIES = (
    "bin",
    "context",
    "dockerfiles",
    "bake",
    "state",
    "reports",
    "digests",
    "oci",
    "bundles",
    "cache",
    "go-image",
    "registry",
    "bench",
    ".crossbuild",
)
# The runtime base crossbuild assembles offline (CA certificates, zoneinfo, a nonroot user).
STATIC_BASE = "static"

# The schema: table -> key -> expected type(s). Unknown keys are errors.
_STR, _BOOL, _INT, _LIST, _TABLE = str, bool, int, list, dict
# What one builder node takes beyond its name and endpoint: [builder] for node 0, [[builder.nodes]] for the others.
_NODE_KEYS: dict[str, type | tuple[type, ...]] = {
    "platforms": (_LIST, _STR),  # pinned: buildx sends these platforms to this node
    "cacert": _STR,  # TLS files of a remote tcp:// endpoint (buildx --driver-opt cacert=...)
    "cert": _STR,
    "key": _STR,
    "servername": _STR,
    "namespace": _STR,  # kubernetes driver options
    "replicas": _INT,
    "nodeselector": _TABLE,
    "rootless": _BOOL,
}
SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "project": {"name": _STR, "module_dir": _STR, "output_dir": _STR, "source": _STR, "description": _STR},
    "services": {
        "name": _STR,
        "package": _STR,
        "image": _STR,
        "smoke_args": _LIST,
        "dockerfile": _STR,
        "mode": _STR,
        "smoke_exit": _INT,
        "smoke_expect": _STR,
        "cmd": _LIST,
        "go": _TABLE,
    },
    # per-service [go] overrides: [[services]] ... then [services.go]
    "services.go": {"x": _TABLE, "tags": _LIST, "ldflags": (_LIST, _STR), "env": _TABLE},
    "go": {
        "ldflags": (_LIST, _STR),
        "x": _TABLE,
        "tags": _LIST,
        "cgo": _BOOL,
        "trimpath": _BOOL,
        "jobs": _INT,
        "env": _TABLE,
    },
    "platforms": {"binaries": (_LIST, _STR), "images": (_LIST, _STR)},
    "image": {
        "registry_prefix": _STR,
        "tags": _LIST,
        "mode": _STR,
        "dockerfile": _STR,
        "base_image": _STR,
        "go_image": _STR,
        "user": _STR,
        "labels": _TABLE,
        "annotations": _TABLE,
        "release_tags": _LIST,
        "provenance": _BOOL,
        "verify": _BOOL,
        "compression_level": _INT,
        "cache_ref": _STR,
        "expose": _LIST,
        "sbom": _BOOL,
        "sbom_format": _STR,
        "bake_early": _STR,
    },
    "registry": {"address": _STR, "embedded": _BOOL, "data_dir": _STR, "insecure": _LIST, "mirrors": _TABLE},
    # [builder] is node 0 of the builder; [[builder.nodes]] are the others (crossbuild.builder)
    "builder": {
        "name": _STR,
        "driver": _STR,
        "endpoint": _STR,
        "driver_opts": _TABLE,
        "nodes": _LIST,
        "buildkitd_config": _STR,
        **_NODE_KEYS,
    },
    "bundle": {"images": _LIST, "compose": _STR, "kubernetes": _LIST},
    "sign": {"key": _STR, "public_key": _STR, "password_env": _STR, "keyless": _BOOL, "identity": _STR, "issuer": _STR},
    "builder.nodes": {"name": _STR, "driver": _STR, "endpoint": _STR, "driver_opts": _TABLE, **_NODE_KEYS},
}
TOP_LEVEL = ("project", "services", "go", "platforms", "image", "registry", "builder", "bundle", "sign")
SBOM_FORMATS = ("spdx", "cyclonedx")
# auto: while the compile runs only when the images are assembled on other machines (earlybake.wanted)
BAKE_EARLY = ("auto", "always", "never")
GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class ServiceGo:
    """A service's own [services.go] settings; None = the project's [go] value."""

    x: tuple[tuple[str, str], ...] = ()  # merged over [go.x]; a "" template removes the variable
    tags: tuple[str, ...] | None = None  # replaces [go] tags
    ldflags: tuple[str, ...] | None = None  # replaces [go] ldflags
    env: tuple[tuple[str, str], ...] = ()  # merged over [go] env


@dataclass(frozen=True)
class Service:
    name: str
    package: str  # relative to the module dir, "./cmd/api"
    image: str  # repository name under the registry prefix
    # None: probed (the first of --version, version, -version, -v, --help, help that
    # exits within the timeout); a tuple: exactly these arguments
    smoke_args: tuple[str, ...] | None = None
    dockerfile: str = ""  # own Dockerfile, relative to the config file; "" = mode's template
    mode: str = ""  # "" = the project's mode
    smoke_exit: int | None = None  # expected exit code of the smoke run (None: 0, or what the probe saw)
    smoke_expect: str = ""  # optional regular expression the smoke output must match
    cmd: tuple[str, ...] = ()  # the image's default CMD (arguments after the entrypoint)
    go: ServiceGo = ServiceGo()

    @property
    def binary_name(self) -> str:
        return self.name


@dataclass(frozen=True)
class NodeOptions:
    """What a node adds to `buildx create` beyond its endpoint and pins: the TLS files of a remote
    tcp:// endpoint (absolute paths, as buildx requires) and the kubernetes driver's settings."""

    cacert: str = ""
    cert: str = ""
    key: str = ""
    servername: str = ""
    namespace: str = ""
    replicas: int = 0  # 0: buildx's default (1)
    nodeselector: tuple[tuple[str, str], ...] = ()  # empty: kubernetes.io/arch of the pins, when they share one
    rootless: bool = False

    @property
    def tls(self) -> bool:
        return bool(self.cacert or self.cert or self.key or self.servername)


@dataclass(frozen=True)
class BuilderNode:
    name: str
    endpoint: str
    platforms: tuple[Platform, ...] = ()  # pinned: buildx routes these platforms to this node
    driver_opts: tuple[tuple[str, str], ...] = ()
    options: NodeOptions = NodeOptions()


@dataclass(frozen=True)
class BuilderConfig:
    """One buildx builder: node 0 is [builder] itself, the others are [[builder.nodes]]."""

    name: str = "crossbuild"
    driver: str = "remote"
    endpoint: str = "unix:///run/crossbuild-buildkitd.sock"
    driver_opts: tuple[tuple[str, str], ...] = ()
    nodes: tuple[BuilderNode, ...] = ()
    buildkitd_config: str = ""
    platforms: tuple[Platform, ...] = ()  # node 0's pins
    options: NodeOptions = NodeOptions()  # node 0's TLS / kubernetes settings

    @property
    def first_node(self) -> str:
        """Node 0's name: what `buildx create` calls it when not told (`make tools` made crossbuild0)."""
        return f"{self.name}0"

    @property
    def all_nodes(self) -> tuple[BuilderNode, ...]:
        first = BuilderNode(self.first_node, self.endpoint, self.platforms, self.driver_opts, self.options)
        return (first, *self.nodes)

    @property
    def managed(self) -> bool:
        """crossbuild writes this builder's buildkitd.toml (every driver but remote and docker)."""
        return self.driver not in ("remote", "docker")


@dataclass(frozen=True)
class RegistryConfig:
    address: str = DEFAULT_REGISTRY  # the embedded registry's listen address
    embedded: bool = True
    data_dir: Path = Path("build/registry")
    insecure: tuple[str, ...] = ()
    mirrors: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def is_insecure(self, host: str) -> bool:
        """Plain HTTP for loopback and for registries listed as insecure (crossbuild.hosts decides both)."""
        return hosts.is_loopback(host) or hosts.is_listed(host, self.insecure)


@dataclass(frozen=True)
class GoConfig:
    ldflags: tuple[str, ...] = ()
    x: tuple[tuple[str, str], ...] = ()  # (-X variable, template)
    tags: tuple[str, ...] = ()
    cgo: bool = False
    trimpath: bool = True
    jobs: int = 0  # platforms compiled at once; 0 = twice the number of cores
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImageConfig:
    registry_prefix: str = f"{DEFAULT_REGISTRY}/crossbuild"
    tags: tuple[str, ...] = ("{version}", "latest")
    mode: str = "prebuilt"
    dockerfile: str = ""
    base_image: str = STATIC_BASE
    go_image: str = "localhost:5000/golang:local"
    user: str = "65532:65532"
    labels: tuple[tuple[str, str], ...] = ()
    provenance: bool = False
    verify: bool = True
    # gzip level of the layers crossbuild builds: 1 (fastest) is what ko and
    # go-containerregistry use; 9 makes smaller layers for slow links, slowly.
    compression_level: int = 1
    # registry repository for the BuildKit cache of multistage builds ("" = build/cache/buildkit/)
    cache_ref: str = ""
    expose: tuple[str, ...] = ()  # EXPOSE lines of every image ("8080", "53/udp")
    annotations: tuple[tuple[str, str], ...] = ()  # extra OCI annotations on the index and its manifests
    # tags that move only for a release: a clean tree, no snapshot (unless forced)
    release_tags: tuple[str, ...] = ("latest",)
    sbom: bool = True  # attach an SBOM (from each binary's Go build info) to every index
    sbom_format: str = "spdx"  # spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON)
    # bake a platform's images while the others compile (crossbuild.earlybake): auto, always, never
    bake_early: str = "auto"

    @property
    def static_base(self) -> bool:
        """The runtime base is the one crossbuild assembles offline."""
        return self.base_image == STATIC_BASE


@dataclass(frozen=True)
class SignConfig:
    """[sign]: who signs each index and how verify checks it (crossbuild.cosign, crossbuild.signatures).

    The password is never held here: only the name of the variable that has it, read when cosign
    runs, so a printed or pickled Config carries no secret.
    """

    key: Path | None = None  # cosign private key: sign with it (None: no key signing)
    public_key: Path | None = None  # what verify checks signatures against (default: key with .pub)
    password_env: str = "COSIGN_PASSWORD"  # noqa: S105 - the variable's name, not a password
    keyless: bool = False  # sign with an OIDC identity (GitHub Actions), no key
    identity: str = ""  # keyless: certificate identity regexp verify requires
    issuer: str = GITHUB_OIDC_ISSUER  # keyless: OIDC issuer verify requires

    @property
    def signs(self) -> bool:
        return self.key is not None or self.keyless

    @property
    def verifies(self) -> bool:
        return self.public_key is not None or self.keyless

    @property
    def signer(self) -> str:
        """Who signs, for the content key: the public key's path and bytes' digest, or keyless."""
        if self.keyless:
            return f"keyless {self.identity} {self.issuer}"
        if self.key is None or self.public_key is None:
            return ""
        from crossbuild import incremental  # noqa: PLC0415 - only the content key asks

        return f"key {incremental.file_digest(self.public_key)}"


@dataclass(frozen=True)
class Config:
    path: Path  # the config file (may not exist: defaults)
    root: Path  # directory of the config file; relative paths start here
    name: str
    module_dir: Path
    output_dir: Path
    source: str
    services: tuple[Service, ...]
    go: GoConfig
    binary_platforms: tuple[Platform, ...]
    image_platforms: tuple[Platform, ...]
    image: ImageConfig
    registry: RegistryConfig
    builder: BuilderConfig
    version: ver.VersionInfo
    bins: tuple[str, ...] = ()  # BINS filter: selected service names
    images: tuple[str, ...] = ()  # IMAGES filter
    platforms_overridden: bool = False
    bundle_images: tuple[str, ...] = ()  # third-party images offline bundles carry too
    bundle_compose: str = ""  # a compose file offline bundles carry, rewritten to their images
    bundle_kubernetes: tuple[str, ...] = ()  # Kubernetes YAML files offline bundles carry, likewise
    description: str = ""  # [project] description: the org.opencontainers.image.description annotation
    force_release_tags: bool = False  # move release tags even from a dirty tree (--force-release-tags)
    snapshot: bool = False  # no release tags; each platform's image tagged too, for local testing
    # service -> the -X variables its binary carries (crossbuild.stamping.resolve); None: not resolved
    stamped: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    sign: SignConfig = SignConfig()

    @property
    def bin_dir(self) -> Path:
        return self.output_dir / "bin"

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise UserError(_unknown("service", name, [s.name for s in self.services]))

    def selected_bins(self) -> tuple[Service, ...]:
        return tuple(s for s in self.services if not self.bins or s.name in self.bins)

    def selected_images(self) -> tuple[Service, ...]:
        return tuple(s for s in self.services if not self.images or s.name in self.images)

    def go_for(self, service: Service | None = None) -> GoConfig:
        """The [go] settings one service builds with: [go] with its [services.go] over it."""
        if service is None:
            return self.go
        own = service.go
        x = dict(self.go.x)
        for var, tmpl in own.x:
            if tmpl:
                x[var] = tmpl
            else:
                x.pop(var, None)
        return replace(
            self.go,
            x=tuple(x.items()),
            tags=self.go.tags if own.tags is None else own.tags,
            ldflags=self.go.ldflags if own.ldflags is None else own.ldflags,
            env=tuple({**dict(self.go.env), **dict(own.env)}.items()),
        )

    def x_values(self, service: Service | None = None) -> dict[str, str]:
        """The -X map (of [go.x] and the service's [services.go] x) with templates filled in."""
        values = self.template_values(service)
        return {var: fill_template(tmpl, values, f"go.x.{var}") for var, tmpl in self.go_for(service).x}

    def expected_x(self, service: Service) -> dict[str, str]:
        """The -X values `service`'s binary must carry: x_values less the variables it does not
        link or never reads (crossbuild.stamping); all of them until stamping is resolved."""
        values = self.x_values(service)
        if self.stamped is None:
            return values
        carried = set(dict(self.stamped).get(service.name, ()))
        return {var: value for var, value in values.items() if var in carried}

    def template_values(self, service: Service | None = None) -> dict[str, str]:
        values = self.version.template_values()
        values["project"] = self.name
        values["service"] = service.name if service else ""
        return values

    def image_ref(self, service: Service) -> str:
        return f"{self.image.registry_prefix}/{service.image}"

    def all_image_tags(self, service: Service) -> tuple[str, ...]:
        """Every tag [image] tags makes, release-only ones included."""
        values = self.template_values(service)
        tags = (ver.tag_safe(fill_template(t, values, "image.tags")) for t in self.image.tags)
        return tuple(dict.fromkeys(tags))

    def held_tags(self, service: Service) -> tuple[str, ...]:
        """Release-only tags ([image] release_tags) that do not move: a snapshot, or a dirty tree
        unless --force-release-tags."""
        if not self.snapshot and (self.version.tree_state != "dirty" or self.force_release_tags):
            return ()
        values = self.template_values(service)
        release = {ver.tag_safe(fill_template(t, values, "image.release_tags")) for t in self.image.release_tags}
        return tuple(t for t in self.all_image_tags(service) if t in release)

    def image_tags(self, service: Service) -> tuple[str, ...]:
        """The tags a publish moves: [image] tags less the held release-only ones."""
        held = self.held_tags(service)
        tags = tuple(t for t in self.all_image_tags(service) if t not in held)
        if not tags:
            why = "this is a snapshot" if self.snapshot else f"the tree is dirty (version {self.version.version})"
            raise UserError(
                f"every tag of {service.name} ({', '.join(held)}) is release-only and {why}: add a tag such as "
                '"{version}" to [image] tags, commit, or give --force-release-tags'
            )
        return tags

    def mode_of(self, service: Service) -> str:
        return service.mode or self.image.mode


@dataclass(frozen=True)
class Overrides:
    """Values given on the command line; None means "not given"."""

    platforms: tuple[str, ...] | None = None
    bins: tuple[str, ...] | None = None
    images: tuple[str, ...] | None = None
    registry_prefix: str | None = None
    version: str | None = None
    base_image: str | None = None
    go_image: str | None = None
    mode: str | None = None
    verify: bool | None = None
    force_release_tags: bool | None = None
    snapshot: bool | None = None


def fill_template(template: str, values: Mapping[str, str], where: str) -> str:
    try:
        return template.format_map(values)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError) as exc:
        raise UserError(f"{where}: bad template {template!r}: use only {{{'}, {'.join(_TEMPLATE_FIELDS)}}}") from exc


def _unknown(kind: str, name: str, known: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"unknown {kind} '{name}'{hint}; known: {', '.join(known) or 'none'}"


def _check_keys(table: Mapping[str, Any], schema_name: str, where: str) -> None:
    schema = SCHEMA[schema_name]
    for key, value in table.items():
        if key not in schema:
            near = difflib.get_close_matches(key, list(schema), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(schema)}"
            raise UserError(f"{where}: unknown key '{key}'{hint}")
        expected = schema[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
            raise UserError(f"{where}.{key}: expected {names}, got {type(value).__name__} {value!r}")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; syntax errors name the file and the line."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read config: {exc.strerror}") from exc


def _validate_tables(data: Mapping[str, Any], path: Path) -> None:
    for key, value in data.items():
        if key not in TOP_LEVEL:
            near = difflib.get_close_matches(key, TOP_LEVEL, n=1)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid tables: {', '.join(TOP_LEVEL)}"
            raise UserError(f"{path}: unknown table '{key}'{hint}")
        if key == "services":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise UserError(f"{path}: 'services' must be an array of tables: [[services]]")
            for n, svc in enumerate(value):
                _check_keys(svc, "services", f"{path}: services[{n}]")
                if "go" in svc:
                    _check_keys(svc["go"], "services.go", f"{path}: services[{n}].go")
            continue
        if not isinstance(value, dict):
            raise UserError(f"{path}: '{key}' must be a table: [{key}]")
        _check_keys(value, key, f"{path}: {key}")
        if key == "builder":
            for n, node in enumerate(value.get("nodes", [])):
                if not isinstance(node, dict):
                    raise UserError(f"{path}: builder.nodes[{n}] must be a table: [[builder.nodes]]")
                _check_keys(node, "builder.nodes", f"{path}: builder.nodes[{n}]")


def _str_pairs(table: Mapping[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    for k, v in table.items():
        if not isinstance(v, str):
            raise UserError(f"{where}.{k}: expected a string, got {type(v).__name__}")
    return tuple((str(k), str(v)) for k, v in table.items())


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if not isinstance(item, str):
            raise UserError(f"{where}: expected strings, got {item!r}")
    return tuple(items)


def _env_list(environ: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """A list variable: None when unset or empty; an error when set to separators only (PLATFORMS=',')."""
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    items = tuple(plat.split_list(raw))
    if not items:
        raise UserError(f"{name}={raw!r} names nothing; give a list such as {_EXAMPLES.get(name, 'a,b')} or unset it")
    return items


def _env_str(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name, "").strip()
    return raw or None


def _env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise UserError(f"{name}={raw}: expected 1 or 0")


def _tracked(root: Path, path: Path) -> list[str]:
    """Files git tracks under `path` (none outside a git checkout)."""
    if runner.which("git") is None:
        return []
    result = runner.run(["git", "-C", str(root), "ls-files", "--", str(path)], check=False, mutates=False)
    return result.stdout.split() if result.returncode == 0 else []


def _output_dir(root: Path, value: str, module_dir: Path, cfg_path: Path) -> Path:
    """project.output_dir: a directory of crossbuild's own inside the project.

    `clean` deletes there, so the project itself, a parent, a directory outside the
    project, one holding the Go module or the config, or tracked files are refused.
    """
    where = f"{cfg_path}: project.output_dir = {value!r}"
    fix = 'use a directory of its own inside the project, e.g. output_dir = "build"'
    base = root
    root = _project_root(root, module_dir)
    path = (base / value).resolve()
    if not value.strip() or path == root or root.is_relative_to(path):
        raise UserError(f"{where} is the project directory or a parent of it; {fix}")
    if not path.is_relative_to(root):
        raise UserError(f"{where} is outside the project ({root}); {fix}")
    if module_dir.resolve().is_relative_to(path) or cfg_path.resolve().is_relative_to(path):
        raise UserError(f"{where} holds the Go module or this config file; {fix}")
    tracked = _tracked(root, path)
    if tracked:
        raise UserError(f"{where} holds files tracked by git ({tracked[0]}, ...); {fix}, one git does not track")
    return base / value


def _project_root(config_dir: Path, module_dir: Path) -> Path:
    """The git checkout holding the config file, else the nearest directory holding both it and the module."""
    if runner.which("git") is not None:
        result = runner.run(["git", "-C", str(config_dir), "rev-parse", "--show-toplevel"], check=False, mutates=False)
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip()).resolve()
    return Path(os.path.commonpath([config_dir.resolve(), module_dir.resolve()]))


def _check_prefix(prefix: str, overrides: Overrides, environ: Mapping[str, str], cfg_path: Path) -> None:
    """registry_prefix must be <registry>[/<namespace>...] that image references can start with."""
    from crossbuild.oci import InvalidReference, parse_reference  # noqa: PLC0415 - oci imports config's peers

    if overrides.registry_prefix is not None:
        where = f"--registry-prefix {overrides.registry_prefix!r}"
    elif _env_str(environ, "REGISTRY_PREFIX") is not None:
        where = f"REGISTRY_PREFIX={environ['REGISTRY_PREFIX'].strip()!r}"
    else:
        where = f"{cfg_path}: image.registry_prefix = {prefix!r}"
    if not prefix or "@" in prefix or ":" in prefix.partition("/")[2]:
        raise UserError(f"{where}: give a registry and namespace without tag or digest, e.g. 127.0.0.1:5000/myteam")
    try:
        parse_reference(f"{prefix}/crossbuild-name-check")
    except InvalidReference as exc:
        raise UserError(f"{where}: not a registry prefix ({exc.why}); e.g. 127.0.0.1:5000/myteam") from None


def _named_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The config file the user named, and where: --config, then CONFIG (make's name), then CROSSBUILD_CONFIG."""
    if path is not None:
        return os.fspath(path), "--config"
    for var in ("CONFIG", "CROSSBUILD_CONFIG"):
        value = environ.get(var, "").strip()
        if value:
            return value, f"{var}={value}"
    return None, ""


def pick(flag: T | None, env: T | None, conf: T | None, default: T) -> T:
    """The precedence rule, in one place: flag > env > config > default."""
    for value in (flag, env, conf):
        if value is not None:
            return value
    return default


def discover_services(module_dir: Path, project: str) -> list[Service]:
    """The services crossbuild finds without [[services]]: crossbuild.services.discover's rule."""
    found = discovered.discover(module_dir, project)
    return [Service(name=m.name, package=m.package, image=m.name) for m in found.services]


def _services(data: Sequence[Mapping[str, Any]], module_dir: Path, where: Path, project: str) -> tuple[Service, ...]:
    if not data:
        found = discover_services(module_dir, project)
        if not found:
            raise UserError(
                f"{module_dir}: no main packages below cmd/ or at the module root; list them in {where} "
                "as [[services]] with name and package"
            )
        return tuple(found)
    services: list[Service] = []
    for n, raw in enumerate(data):
        name = raw.get("name")
        if not name:
            raise UserError(f"{where}: services[{n}] needs a name")
        if not _NAME.match(name):
            raise UserError(f"{where}: service name '{name}' must be lower-case letters, digits, '.', '_' or '-'")
        package = raw.get("package", f"./cmd/{name}")
        if package != "." and not package.startswith("./"):
            package = "./" + package
        pkg_dir = module_dir / package
        if not pkg_dir.is_dir():
            raise UserError(f"{where}: service '{name}': package directory {pkg_dir} does not exist")
        if not discovered.is_main(pkg_dir):
            raise UserError(
                f"{where}: service '{name}': {package} has no 'package main' .go file, so it builds no binary"
            )
        mode = raw.get("mode", "")
        if mode and mode not in MODES:
            raise UserError(f"{where}: service '{name}': mode must be one of {', '.join(MODES)}, got '{mode}'")
        expect = raw.get("smoke_expect", "")
        if expect:
            try:
                re.compile(expect)
            except re.error as exc:
                raise UserError(
                    f"{where}: service '{name}': smoke_expect {expect!r} is not a regular expression ({exc})"
                ) from exc
        smoke_exit = raw.get("smoke_exit")
        if smoke_exit is not None and not 0 <= smoke_exit <= 125:
            raise UserError(
                f"{where}: service '{name}': smoke_exit must be 0-125 (126 and above mean the program "
                "could not run or was killed by a signal)"
            )
        smoke_args = raw.get("smoke_args")
        services.append(
            Service(
                name=name,
                package=package,
                image=raw.get("image", name),
                smoke_args=None if smoke_args is None else _str_list(smoke_args, f"services[{n}].smoke_args"),
                dockerfile=raw.get("dockerfile", ""),
                mode=mode,
                smoke_exit=smoke_exit,
                smoke_expect=expect,
                cmd=_str_list(raw.get("cmd", []), f"services[{n}].cmd"),
                go=_service_go(raw.get("go", {}), f"services[{n}].go"),
            )
        )
    names = [s.name for s in services]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{where}: service listed twice: {', '.join(dupes)}")
    return tuple(services)


def _service_go(data: Mapping[str, Any], where: str) -> ServiceGo:
    ldflags = data.get("ldflags")
    tags = data.get("tags")
    return ServiceGo(
        x=_str_pairs(data.get("x", {}), f"{where}.x"),
        tags=None if tags is None else _str_list(tags, f"{where}.tags"),
        ldflags=None
        if ldflags is None
        else (tuple(ldflags.split()) if isinstance(ldflags, str) else _str_list(ldflags, f"{where}.ldflags")),
        env=_str_pairs(data.get("env", {}), f"{where}.env"),
    )


def _filter(names: tuple[str, ...] | None, services: Sequence[Service], var: str) -> tuple[str, ...]:
    if not names:
        return ()
    known = [s.name for s in services]
    for name in names:
        if name not in known:
            raise UserError(f"{var}: " + _unknown("service", name, known))
    return names


def _builder(data: Mapping[str, Any], where: Path) -> BuilderConfig:
    driver = data.get("driver", BuilderConfig.driver)
    if driver not in DRIVERS:
        raise UserError(f"{where}: builder.driver must be one of {', '.join(DRIVERS)}, got '{driver}'")
    endpoint = data.get("endpoint", BuilderConfig.endpoint if driver == "remote" else "")
    if driver in ("remote",) and not endpoint:
        raise UserError(
            f"{where}: builder.driver = 'remote' needs builder.endpoint, e.g. unix:///run/buildkit.sock or tcp://host:1234"
        )
    name = data.get("name", BuilderConfig.name)
    if not _NAME.match(name):
        raise UserError(f"{where}: builder.name '{name}' must be lower-case letters, digits, '.', '_' or '-'")
    nodes = []
    for n, node in enumerate(data.get("nodes", [])):
        at = f"{where}: builder.nodes[{n}]"
        if not node.get("name"):
            raise UserError(f"{at} needs a name")
        if not _NAME.match(node["name"]):
            raise UserError(f"{at}.name '{node['name']}' must be lower-case letters, digits, '.', '_' or '-'")
        if node.get("driver", driver) != driver:
            raise UserError(
                f"{at}.driver = '{node['driver']}' but builder.driver = '{driver}': a buildx builder has one "
                "driver for all its nodes; drop the key or make it a builder of its own"
            )
        pins = _pins(node, at)
        if driver == "remote" and not node.get("endpoint"):
            raise UserError(f"{at} needs an endpoint for the remote driver, e.g. tcp://arm-box:1234")
        nodes.append(
            BuilderNode(
                name=node["name"],
                endpoint=node.get("endpoint", ""),
                platforms=pins,
                driver_opts=_str_pairs(node.get("driver_opts", {}), f"builder.nodes[{n}].driver_opts"),
                options=_node_options(node, driver, node.get("endpoint", ""), where.parent, at),
            )
        )
    b = BuilderConfig(
        name=name,
        driver=driver,
        endpoint=endpoint,
        driver_opts=_str_pairs(data.get("driver_opts", {}), "builder.driver_opts"),
        nodes=tuple(nodes),
        buildkitd_config=data.get("buildkitd_config", ""),
        platforms=_pins(data, f"{where}: builder"),
        options=_node_options(data, driver, endpoint, where.parent, f"{where}: builder"),
    )
    _check_nodes(b, where)
    return b


def _pins(table: Mapping[str, Any], at: str) -> tuple[Platform, ...]:
    if not table.get("platforms"):
        return ()
    pins = plat.parse_platforms(_str_list(table["platforms"], f"{at}.platforms"))
    plat.require_image_platforms(pins)
    return pins


_TLS_KEYS = ("cacert", "cert", "key", "servername")
_KUBERNETES_KEYS = ("namespace", "replicas", "nodeselector", "rootless")


def _node_options(table: Mapping[str, Any], driver: str, endpoint: str, root: Path, at: str) -> NodeOptions:
    """TLS files (remote tcp:// only; absolute, as buildx wants them) and kubernetes settings."""
    tls = {k: table[k] for k in _TLS_KEYS if table.get(k)}
    if tls and (driver != "remote" or not endpoint.startswith("tcp://")):
        raise UserError(f"{at}.{next(iter(tls))}: TLS files apply to a remote driver's tcp:// endpoint only")
    if tls and not tls.get("cacert"):
        raise UserError(f"{at}: TLS needs cacert (the CA that signed the buildkitd's certificate) as well")
    if bool(tls.get("cert")) != bool(tls.get("key")):
        raise UserError(f"{at}: give cert and key together (the client certificate and its key)")
    k8s = [k for k in _KUBERNETES_KEYS if k in table]
    if k8s and driver != "kubernetes":
        raise UserError(f"{at}.{k8s[0]} applies to the kubernetes driver only (builder.driver is '{driver}')")
    clash = [k for k in (*_TLS_KEYS, *_KUBERNETES_KEYS) if k in table and k in table.get("driver_opts", {})]
    if clash:
        raise UserError(f"{at}: {clash[0]} is given twice, as a key and in driver_opts: keep one")
    replicas = table.get("replicas", 0)
    if "replicas" in table and replicas < 1:
        raise UserError(f"{at}.replicas must be at least 1")
    files = {k: str((root / v).resolve()) for k, v in tls.items() if k != "servername"}
    return NodeOptions(
        **files,
        servername=tls.get("servername", ""),
        namespace=table.get("namespace", ""),
        replicas=replicas,
        nodeselector=_str_pairs(table.get("nodeselector", {}), f"{at}.nodeselector"),
        rootless=table.get("rootless", False),
    )


def _check_nodes(b: BuilderConfig, where: Path) -> None:
    """What buildx would refuse or silently change: repeated names or endpoints, a platform pinned twice."""
    if b.nodes and b.driver == "docker":
        raise UserError(f"{where}: the docker driver has one node: use remote, docker-container or kubernetes")
    seen_names: set[str] = set()
    endpoints: dict[str, str] = {}
    pinned: dict[Platform, str] = {}
    for node in b.all_nodes:
        if node.name in seen_names:
            raise UserError(f"{where}: builder node '{node.name}' is named twice (node 0 is [builder], {b.first_node})")
        seen_names.add(node.name)
        if b.driver == "kubernetes" and node.endpoint:
            raise UserError(
                f"{where}: builder node '{node.name}': the kubernetes driver takes no endpoint "
                "(buildx finds the cluster through KUBECONFIG); drop it"
            )
        if b.driver != "kubernetes":
            key = node.endpoint or "the local docker"
            if key in endpoints:
                raise UserError(
                    f"{where}: builder nodes '{endpoints[key]}' and '{node.name}' share the endpoint {key}: "
                    "buildx takes one node per endpoint"
                )
            endpoints[key] = node.name
        for p in node.platforms:
            if p in pinned:
                raise UserError(
                    f"{where}: {p} is pinned on nodes '{pinned[p]}' and '{node.name}': "
                    "buildx keeps a platform on one node only; pin it once"
                )
            pinned[p] = node.name


_EXAMPLES = {"PLATFORMS": "linux/amd64,linux/arm64", "BINS": "api,push", "IMAGES": "api,push"}
_PORT = re.compile(r"^[0-9]{1,5}(-[0-9]{1,5})?(/(tcp|udp|sctp))?$")


def _expose(value: Any, where: str) -> tuple[str, ...]:
    """EXPOSE entries as Dockerfile spells them: 8080, "8080/tcp", "53/udp", "7000-7002"."""
    ports = []
    for item in value:
        text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(text, str) or not _PORT.match(text):
            raise UserError(f'{where}: {item!r} is not a port: use 8080, "8080/tcp" or "53/udp"')
        ports.append(text)
    return tuple(ports)


def _registry(data: Mapping[str, Any], root: Path, output_dir: Path) -> RegistryConfig:
    mirrors = []
    for host, urls in data.get("mirrors", {}).items():
        mirrors.append((host, _str_list(urls, f"registry.mirrors.{host}")))
    data_dir = Path(data["data_dir"]) if "data_dir" in data else output_dir / "registry"
    return RegistryConfig(
        address=data.get("address", DEFAULT_REGISTRY),
        embedded=data.get("embedded", True),
        data_dir=data_dir if data_dir.is_absolute() else root / data_dir,
        insecure=_str_list(data.get("insecure", []), "registry.insecure"),
        mirrors=tuple(mirrors),
    )


def _sign(data: Mapping[str, Any], root: Path, cfg_path: Path, environ: Mapping[str, str]) -> SignConfig:
    """[sign], with SIGN= (off, keyless, or a key file) over it: the generated CI workflow signs keyless."""
    chosen = _env_str(environ, "SIGN")
    key_text: str = data.get("key", "")
    keyless = bool(data.get("keyless", False))
    where = f"{cfg_path}: sign.key"
    if chosen is not None:
        where = f"SIGN={chosen}"
        if chosen.lower() in ("0", "off", "false", "no"):
            return SignConfig()
        keyless = chosen.lower() == "keyless"
        key_text = "" if keyless else chosen
    if keyless and key_text:
        raise UserError(f"{cfg_path}: [sign] has both key and keyless = true; keep one")
    identity = data.get("identity", "")
    if keyless and not identity and environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        identity = f"^{re.escape(server)}/{re.escape(environ['GITHUB_REPOSITORY'])}/"
    password_env = data.get("password_env", SignConfig.password_env)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
        raise UserError(f"{cfg_path}: sign.password_env = {password_env!r} is not an environment variable name")
    key = root / key_text if key_text else None
    if key is not None and not key.is_file():
        raise UserError(
            f"{where}: no key file {key}; make one with `cosign generate-key-pair` (its password in "
            f"${password_env}), or remove [sign] key to publish unsigned"
        )
    pub_text = data.get("public_key", "")
    public = root / pub_text if pub_text else (key.with_suffix(".pub") if key is not None else None)
    if public is not None and not public.is_file():
        raise UserError(
            f"{cfg_path}: sign.public_key: no public key file {public}; `cosign public-key --key {key_text or 'KEY'}` "
            "writes it"
        )
    return SignConfig(
        key=key,
        public_key=public,
        password_env=password_env,
        keyless=keyless,
        identity=identity,
        issuer=data.get("issuer", SignConfig.issuer),
    )


def load(
    path: str | os.PathLike[str] | None = None,
    overrides: Overrides | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, merge and validate everything the pipeline needs, once."""
    overrides = overrides or Overrides()
    environ = os.environ if environ is None else environ
    named, source = _named_config(path, environ)
    cfg_path = Path(named or DEFAULT_CONFIG).resolve()
    if named is not None and not cfg_path.is_file():
        raise UserError(
            f"{source}: config file {cfg_path} not found; create one with `crossbuild init` or fix the path"
        )
    data = read_toml(cfg_path) if cfg_path.is_file() else {}
    _validate_tables(data, cfg_path)
    root = cfg_path.parent

    project = data.get("project", {})
    module_dir = (root / project.get("module_dir", ".")).resolve()
    if not module_dir.is_dir():
        raise UserError(f"{cfg_path}: project.module_dir {module_dir} does not exist")
    if not (module_dir / "go.mod").is_file() and not (module_dir / "go.work").is_file():
        raise UserError(
            f"{cfg_path}: project.module_dir {module_dir} has no go.mod or go.work; "
            "point it at the Go module (or workspace) root"
        )
    output_dir = _output_dir(root, project.get("output_dir", "build"), module_dir, cfg_path)
    name = project.get("name", module_dir.name)

    if "services" in data and not data["services"]:
        raise UserError(
            f"{cfg_path}: services = [] lists no service; list them as [[services]] tables, "
            "or delete the line to build every main package crossbuild discovers"
        )
    services = _services(data.get("services", []), module_dir, cfg_path, name)

    go = data.get("go", {})
    ldflags = go.get("ldflags", [])
    go_cfg = GoConfig(
        ldflags=tuple(ldflags.split()) if isinstance(ldflags, str) else _str_list(ldflags, "go.ldflags"),
        x=_str_pairs(go.get("x", {}), "go.x"),
        tags=_str_list(go.get("tags", []), "go.tags"),
        cgo=go.get("cgo", False),
        trimpath=go.get("trimpath", True),
        jobs=go.get("jobs", 0),
        env=_str_pairs(go.get("env", {}), "go.env"),
    )
    if go_cfg.jobs < 0:
        raise UserError(f"{cfg_path}: go.jobs must be >= 0 (0 means twice the number of cores)")

    conf_platforms = data.get("platforms", {})
    flag_platforms = overrides.platforms or None
    env_platforms = _env_list(environ, "PLATFORMS")
    chosen = flag_platforms or env_platforms
    binary_platforms = plat.parse_platforms(
        chosen or _str_list(conf_platforms.get("binaries", DEFAULT_PLATFORMS), f"{cfg_path}: platforms.binaries")
    )
    image_platforms = plat.parse_platforms(
        chosen or _str_list(conf_platforms.get("images", DEFAULT_PLATFORMS), f"{cfg_path}: platforms.images")
    )
    if not chosen and "images" in conf_platforms:
        try:
            plat.require_image_platforms(image_platforms)
        except UserError as exc:
            raise UserError(f"{cfg_path}: platforms.images: {exc}") from exc

    image = data.get("image", {})
    mode = pick(overrides.mode, _env_str(environ, "MODE"), image.get("mode"), ImageConfig.mode)
    if mode not in MODES:
        raise UserError(f"MODE={mode}: must be one of {', '.join(MODES)}")
    tags = _str_list(image.get("tags", list(ImageConfig.tags)), "image.tags")
    if not tags:
        raise UserError(f"{cfg_path}: image.tags must list at least one tag template")
    image_cfg = ImageConfig(
        registry_prefix=pick(
            overrides.registry_prefix,
            _env_str(environ, "REGISTRY_PREFIX"),
            image.get("registry_prefix"),
            f"{DEFAULT_REGISTRY}/{name}",
        ).rstrip("/"),
        tags=tags,
        mode=mode,
        dockerfile=image.get("dockerfile", ""),
        base_image=pick(
            overrides.base_image, _env_str(environ, "BASE_IMAGE"), image.get("base_image"), ImageConfig.base_image
        ),
        go_image=pick(overrides.go_image, _env_str(environ, "GO_IMAGE"), image.get("go_image"), ImageConfig.go_image),
        user=image.get("user", ImageConfig.user),
        labels=_str_pairs(image.get("labels", {}), "image.labels"),
        annotations=_str_pairs(image.get("annotations", {}), "image.annotations"),
        release_tags=_str_list(image.get("release_tags", list(ImageConfig.release_tags)), "image.release_tags"),
        provenance=image.get("provenance", False),
        verify=pick(overrides.verify, _env_bool(environ, "VERIFY"), image.get("verify"), True),
        compression_level=image.get("compression_level", ImageConfig.compression_level),
        cache_ref=pick(None, _env_str(environ, "CACHE_REF"), image.get("cache_ref"), "").rstrip("/"),
        expose=_expose(image.get("expose", []), f"{cfg_path}: image.expose"),
        sbom=pick(None, _env_bool(environ, "SBOM"), image.get("sbom"), ImageConfig.sbom),
        sbom_format=image.get("sbom_format", ImageConfig.sbom_format),
        bake_early=pick(None, _env_str(environ, "BAKE_EARLY"), image.get("bake_early"), ImageConfig.bake_early),
    )
    if image_cfg.bake_early not in BAKE_EARLY:
        where = "BAKE_EARLY" if _env_str(environ, "BAKE_EARLY") is not None else f"{cfg_path}: image.bake_early ="
        raise UserError(f"{where} {image_cfg.bake_early!r}: use one of {', '.join(BAKE_EARLY)}")
    if image_cfg.sbom_format not in SBOM_FORMATS:
        raise UserError(
            f"{cfg_path}: image.sbom_format = {image_cfg.sbom_format!r}: use one of {', '.join(SBOM_FORMATS)}"
        )
    _check_prefix(image_cfg.registry_prefix, overrides, environ, cfg_path)
    if ":" in image_cfg.cache_ref.rpartition("/")[2] or "@" in image_cfg.cache_ref:
        where = "CACHE_REF" if _env_str(environ, "CACHE_REF") is not None else f"{cfg_path}: image.cache_ref ="
        raise UserError(
            f"{where} {image_cfg.cache_ref!r}: give a repository without tag or digest, "
            "e.g. registry.example.com/team/app-cache (crossbuild adds one tag per cache)"
        )
    if not 0 <= image_cfg.compression_level <= 9:
        raise UserError(
            f"{cfg_path}: image.compression_level = {image_cfg.compression_level}: "
            "must be a gzip level from 0 (none) to 9 (smallest); 1 is the fastest that compresses"
        )

    version_info = ver.compute(module_dir, environ, overrides.version or _env_str(environ, "VERSION"))
    values = {**version_info.template_values(), "project": name, "service": ""}
    for var, tmpl in go_cfg.x:
        fill_template(tmpl, values, f"go.x.{var}")
    for tmpl in image_cfg.tags:
        tag = fill_template(tmpl, values, "image.tags")
        if "{service}" not in tmpl:  # per-service tags are checked when they are made
            ver.tag_safe(tag)

    bins = overrides.bins if overrides.bins is not None else _env_list(environ, "BINS")
    imgs = overrides.images if overrides.images is not None else _env_list(environ, "IMAGES")
    return Config(
        path=cfg_path,
        root=root,
        name=name,
        module_dir=module_dir,
        output_dir=output_dir,
        source=project.get("source", ""),
        services=services,
        go=go_cfg,
        binary_platforms=binary_platforms,
        image_platforms=image_platforms,
        image=image_cfg,
        registry=_registry(data.get("registry", {}), root, output_dir),
        builder=_builder(data.get("builder", {}), cfg_path),
        version=version_info,
        bins=_filter(bins, services, "BINS"),
        images=_filter(imgs, services, "IMAGES"),
        platforms_overridden=bool(chosen),
        bundle_images=_str_list(data.get("bundle", {}).get("images", []), "bundle.images"),
        bundle_compose=data.get("bundle", {}).get("compose", ""),
        bundle_kubernetes=_str_list(data.get("bundle", {}).get("kubernetes", []), "bundle.kubernetes"),
        description=project.get("description", ""),
        force_release_tags=pick(overrides.force_release_tags, _env_bool(environ, "FORCE_RELEASE_TAGS"), None, False),
        snapshot=pick(overrides.snapshot, _env_bool(environ, "SNAPSHOT"), None, False),
        sign=_sign(data.get("sign", {}), root, cfg_path, environ),
    )
