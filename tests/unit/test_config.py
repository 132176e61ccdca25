"""Tests for crossbuild.config.load: precedence, validation, discovery, templates.

Every load passes an explicit `environ`, so the real environment never leaks
in. Config files and Go modules are written into tmp_path (a copy of
examples/imdemo, or a one-command module); git runs for real where a commit is
needed and is isolated from the user's configuration (see conftest.py).
"""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crossbuild import config
from crossbuild.config import Config, Overrides, RegistryConfig, Service
from crossbuild.errors import UserError
from crossbuild.hosts import is_loopback
from crossbuild.platforms import Platform

pytestmark = pytest.mark.usefixtures("git_isolated")

REPO_ROOT = Path(__file__).resolve().parents[2]
EPOCH = "1700000000"
EPOCH_DATE = "2023-11-14T22:13:20Z"
BASE_ENV = {"SOURCE_DATE_EPOCH": EPOCH}
IMDEMO_SERVICES = ["api", "msggateway", "push", "rpc-user"]


def write_config(root: Path, body: str = "", module_dir: str = "examples/imdemo") -> Path:
    """config.toml in root with [project] module_dir, then `body` (dedented)."""
    path = root / "config.toml"
    path.write_text(f'[project]\nmodule_dir = "{module_dir}"\n\n' + textwrap.dedent(body))
    return path


def write_raw(root: Path, body: str) -> Path:
    path = root / "config.toml"
    path.write_text(textwrap.dedent(body))
    return path


def load(path: Path, env: dict[str, str] | None = None, **flags: Any) -> Config:
    return config.load(path, Overrides(**flags), {**BASE_ENV, **(env or {})})


def user_error(path: Path, env: dict[str, str] | None = None, **flags: Any) -> str:
    with pytest.raises(UserError) as info:
        load(path, env, **flags)
    return str(info.value)


@pytest.fixture
def imdemo(imdemo_copy: Path) -> Path:
    """tmp_path with examples/imdemo copied in; configs go in tmp_path."""
    return imdemo_copy.parent.parent


# --- the shipped configuration --------------------------------------------------------------


def test_shipped_config_loads(imdemo: Path) -> None:
    shutil.copy(REPO_ROOT / "config.toml", imdemo / "config.toml")
    cfg = load(imdemo / "config.toml")
    assert cfg.name == "imdemo"
    assert cfg.module_dir == (imdemo / "examples" / "imdemo").resolve()
    assert cfg.output_dir == imdemo / "build"
    assert cfg.bin_dir == imdemo / "build" / "bin"
    assert [s.name for s in cfg.services] == ["api", "rpc-user", "msggateway", "push"]
    assert [str(p) for p in cfg.binary_platforms] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert cfg.image_platforms == cfg.binary_platforms
    assert cfg.image.registry_prefix == "localhost:5000/imdemo"
    assert cfg.image.tags == ("{version}", "latest")
    assert cfg.image.mode == "prebuilt"
    assert cfg.go.ldflags == ("-s", "-w")
    assert cfg.go.cgo is False
    assert cfg.registry.address == "127.0.0.1:5000"
    assert cfg.builder.driver == "remote"
    assert cfg.builder.endpoint == "unix:///run/crossbuild-buildkitd.sock"
    assert cfg.platforms_overridden is False


def test_defaults_without_config_file(tiny_module: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # path=None and no CROSSBUILD_CONFIG: ./config.toml, which does not exist -> defaults, module = cwd
    monkeypatch.chdir(tiny_module)
    cfg = config.load(None, None, dict(BASE_ENV))
    assert cfg.path == tiny_module.resolve() / "config.toml"
    assert cfg.module_dir == tiny_module.resolve()
    assert cfg.name == "mod"
    assert cfg.services == (Service(name="x", package="./cmd/x", image="x"),)
    assert [str(p) for p in cfg.binary_platforms] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert cfg.image.registry_prefix == "127.0.0.1:5000/mod"
    assert cfg.image == config.ImageConfig(registry_prefix="127.0.0.1:5000/mod")
    assert cfg.go == config.GoConfig()
    assert cfg.builder == config.BuilderConfig()


def test_crossbuild_config_environment_variable(imdemo: Path) -> None:
    path = write_config(imdemo, '[image]\nregistry_prefix = "from-env-config/x"\n')
    cfg = config.load(None, None, {**BASE_ENV, "CROSSBUILD_CONFIG": str(path)})
    assert cfg.path == path.resolve()
    assert cfg.image.registry_prefix == "from-env-config/x"


def test_explicit_path_must_exist(tmp_path: Path) -> None:
    msg = user_error(tmp_path / "nope.toml")
    assert msg == (
        f"--config: config file {(tmp_path / 'nope.toml').resolve()} not found; "
        "create one with `crossbuild init` or fix the path"
    )


@pytest.mark.parametrize("var", ["CONFIG", "CROSSBUILD_CONFIG"])
def test_config_named_by_the_environment_must_exist(tmp_path: Path, imdemo: Path, var: str) -> None:
    """CROSSBUILD_CONFIG=/nope used to report a missing go.mod, CONFIG=/nope silently used ./config.toml."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(UserError) as info:
        config.load(None, Overrides(), {**BASE_ENV, var: str(missing)})
    assert str(info.value) == (
        f"{var}={missing}: config file {missing.resolve()} not found; create one with `crossbuild init` or fix the path"
    )


def test_config_variable_names_the_file(tmp_path: Path, imdemo: Path) -> None:
    path = write_raw(imdemo, '[project]\nname = "fromenv"\nmodule_dir = "examples/imdemo"\n')
    assert config.load(None, Overrides(), {**BASE_ENV, "CONFIG": str(path)}).name == "fromenv"


# --- precedence: flag > environment > config.toml > default ------------------------------------


@dataclass(frozen=True)
class Knob:
    name: str  # environment variable
    flag: dict[str, Any]  # Overrides(**flag)
    env: str
    conf: str  # TOML; "" when config.toml has no key for this knob
    get: Callable[[Config], object]
    want: dict[str, object] = field(default_factory=dict)


KNOBS = [
    Knob(
        "PLATFORMS",
        {"platforms": ("linux/s390x",)},
        "linux/ppc64le, linux_riscv64",
        '[platforms]\nbinaries = ["linux/386"]\n',
        lambda c: [str(p) for p in c.binary_platforms],
        {
            "flag": ["linux/s390x"],
            "env": ["linux/ppc64le", "linux/riscv64"],
            "config": ["linux/386"],
            "default": ["linux/amd64", "linux/arm64", "linux/arm/v7"],
        },
    ),
    Knob(
        "BINS",
        {"bins": ("push",)},
        "api rpc-user",
        "",
        lambda c: c.bins,
        {"flag": ("push",), "env": ("api", "rpc-user"), "default": ()},
    ),
    Knob(
        "IMAGES",
        {"images": ("msggateway",)},
        "api,push",
        "",
        lambda c: c.images,
        {"flag": ("msggateway",), "env": ("api", "push"), "default": ()},
    ),
    Knob(
        "REGISTRY_PREFIX",
        {"registry_prefix": "flag.example:5000/team"},
        "env.example/team",
        '[image]\nregistry_prefix = "conf.example/team"\n',
        lambda c: c.image.registry_prefix,
        {
            "flag": "flag.example:5000/team",
            "env": "env.example/team",
            "config": "conf.example/team",
            "default": "127.0.0.1:5000/imdemo",
        },
    ),
    Knob(
        "VERSION",
        {"version": "v3.0.0-flag"},
        "v2.0.0-env",
        "",
        lambda c: c.version.version,
        {"flag": "v3.0.0-flag", "env": "v2.0.0-env", "default": "v0.0.0-dev"},
    ),
    Knob(
        "BASE_IMAGE",
        {"base_image": "gcr.io/distroless/static:nonroot"},
        "alpine:3.20",
        '[image]\nbase_image = "busybox:1.36"\n',
        lambda c: c.image.base_image,
        {
            "flag": "gcr.io/distroless/static:nonroot",
            "env": "alpine:3.20",
            "config": "busybox:1.36",
            "default": "static",
        },
    ),
    Knob(
        "GO_IMAGE",
        {"go_image": "golang:1.23-flag"},
        "golang:1.22-env",
        '[image]\ngo_image = "golang:1.21-conf"\n',
        lambda c: c.image.go_image,
        {
            "flag": "golang:1.23-flag",
            "env": "golang:1.22-env",
            "config": "golang:1.21-conf",
            "default": "localhost:5000/golang:local",
        },
    ),
    # Only two valid modes: each level differs from the one just below it.
    Knob(
        "MODE",
        {"mode": "multistage"},
        "prebuilt",
        '[image]\nmode = "multistage"\n',
        lambda c: c.image.mode,
        {"flag": "multistage", "env": "prebuilt", "config": "multistage", "default": "prebuilt"},
    ),
    Knob(
        "VERIFY",
        {"verify": False},
        "1",
        "[image]\nverify = false\n",
        lambda c: c.image.verify,
        {"flag": False, "env": True, "config": False, "default": True},
    ),
]

PRECEDENCE = [(k, level) for k in KNOBS for level in ("flag", "env", "config", "default") if level in k.want]


@pytest.mark.parametrize(("knob", "level"), PRECEDENCE, ids=[f"{k.name}-{level}" for k, level in PRECEDENCE])
def test_precedence(imdemo: Path, knob: Knob, level: str) -> None:
    conf = knob.conf if level != "default" else ""
    env = {knob.name: knob.env} if level in ("flag", "env") else {}
    flags = knob.flag if level == "flag" else {}
    cfg = load(write_config(imdemo, conf), env, **flags)
    assert knob.get(cfg) == knob.want[level]


def test_platforms_env_sets_image_platforms_too(imdemo: Path) -> None:
    path = write_config(imdemo, '[platforms]\nbinaries = ["linux/386"]\nimages = ["linux/amd64"]\n')
    cfg = load(path, {"PLATFORMS": "linux/arm64 linux/arm/v6"})
    assert [str(p) for p in cfg.binary_platforms] == ["linux/arm64", "linux/arm/v6"]
    assert cfg.image_platforms == cfg.binary_platforms
    assert cfg.platforms_overridden is True


def test_config_binary_and_image_platforms_are_separate(imdemo: Path) -> None:
    path = write_config(imdemo, '[platforms]\nbinaries = "linux/amd64 windows/amd64"\nimages = ["linux/arm64"]\n')
    cfg = load(path)
    assert cfg.binary_platforms == (Platform("linux", "amd64"), Platform("windows", "amd64"))
    assert cfg.image_platforms == (Platform("linux", "arm64"),)
    assert cfg.platforms_overridden is False


@pytest.mark.parametrize(
    "name", ["REGISTRY_PREFIX", "BASE_IMAGE", "GO_IMAGE", "MODE"], ids=["prefix", "base", "go", "mode"]
)
def test_blank_environment_value_is_not_given(imdemo: Path, name: str) -> None:
    body = '[image]\nregistry_prefix = "c/p"\nbase_image = "b"\ngo_image = "g"\nmode = "multistage"\n'
    cfg = load(write_config(imdemo, body), {name: "   "})
    assert (cfg.image.registry_prefix, cfg.image.base_image, cfg.image.go_image, cfg.image.mode) == (
        "c/p",
        "b",
        "g",
        "multistage",
    )


def test_registry_prefix_trailing_slash_dropped(imdemo: Path) -> None:
    cfg = load(write_config(imdemo), {"REGISTRY_PREFIX": "localhost:5000/team/"})
    assert cfg.image.registry_prefix == "localhost:5000/team"
    assert cfg.image_ref(cfg.service("api")) == "localhost:5000/team/api"


def test_empty_bins_flag_overrides_env(imdemo: Path) -> None:
    cfg = load(write_config(imdemo), {"BINS": "api"}, bins=())
    assert cfg.bins == ()
    assert [s.name for s in cfg.selected_bins()] == IMDEMO_SERVICES


def test_bins_and_images_select_services(imdemo: Path) -> None:
    cfg = load(write_config(imdemo), {"BINS": "push,api", "IMAGES": "rpc-user"})
    # selection keeps the services' order, not the variable's
    assert [s.name for s in cfg.selected_bins()] == ["api", "push"]
    assert [s.name for s in cfg.selected_images()] == ["rpc-user"]


@pytest.mark.parametrize(
    ("env", "flags", "var"),
    [
        ({"BINS": "api,apii"}, {}, "BINS"),
        ({}, {"bins": ("apii",)}, "BINS"),
        ({"IMAGES": "apii"}, {}, "IMAGES"),
    ],
    ids=["bins-env", "bins-flag", "images-env"],
)
def test_unknown_service_in_filter(imdemo: Path, env: dict[str, str], flags: dict[str, Any], var: str) -> None:
    msg = user_error(write_config(imdemo), env, **flags)
    assert msg == f"{var}: unknown service 'apii' (did you mean 'api'?); known: api, msggateway, push, rpc-user"


def test_config_service_lookup(imdemo: Path) -> None:
    cfg = load(write_config(imdemo))
    assert cfg.service("push").package == "./cmd/push"
    with pytest.raises(UserError, match=r"unknown service 'pushh' \(did you mean 'push'\?\)"):
        cfg.service("pushh")


@pytest.mark.parametrize(
    ("value", "want"), [("0", False), ("no", False), ("off", False), ("TRUE", True), ("yes", True)]
)
def test_verify_env_spellings(imdemo: Path, value: str, want: bool) -> None:
    assert load(write_config(imdemo), {"VERIFY": value}).image.verify is want


def test_verify_env_rejects_other_words(imdemo: Path) -> None:
    assert user_error(write_config(imdemo), {"VERIFY": "maybe"}) == "VERIFY=maybe: expected 1 or 0"


@pytest.mark.parametrize(("env", "flags"), [({"MODE": "docker"}, {}), ({}, {"mode": "docker"})], ids=["env", "flag"])
def test_bad_mode(imdemo: Path, env: dict[str, str], flags: dict[str, Any]) -> None:
    assert user_error(write_config(imdemo), env, **flags) == "MODE=docker: must be one of prebuilt, multistage"


def test_bad_platform_in_env(imdemo: Path) -> None:
    msg = user_error(write_config(imdemo), {"PLATFORMS": "linux/amd64 linux/arm65"})
    assert msg.startswith("unknown platform 'linux/arm65': did you mean linux/arm64?")


# --- schema: unknown keys and wrong types ---------------------------------------------------------

UNKNOWN = [
    ('[image]\nregisty_prefix = "x"\n', "image: unknown key 'registy_prefix'; did you mean 'registry_prefix'?"),
    ('[platfroms]\nbinaries = ["linux/amd64"]\n', "unknown table 'platfroms'; did you mean 'platforms'?"),
    ("[go]\ntrimpth = true\n", "go: unknown key 'trimpth'; did you mean 'trimpath'?"),
    (
        '[[services]]\nname = "api"\npakage = "./cmd/api"\n',
        "services[0]: unknown key 'pakage'; did you mean 'package'?",
    ),
    (
        '[[builder.nodes]]\nname = "n"\nendpont = "tcp://h:1"\n',
        "builder.nodes[0]: unknown key 'endpont'; did you mean 'endpoint'?",
    ),
]


@pytest.mark.parametrize(
    ("body", "want"), UNKNOWN, ids=["image-key", "table", "go-key", "services-key", "builder-node-key"]
)
def test_unknown_key_did_you_mean(imdemo: Path, body: str, want: str) -> None:
    path = write_config(imdemo, body)
    assert user_error(path) == f"{path.resolve()}: {want}"


def test_unknown_key_without_near_match_lists_valid_keys(imdemo: Path) -> None:
    path = write_config(imdemo, '[registry]\nzzz = "x"\n')
    assert user_error(path) == (
        f"{path.resolve()}: registry: unknown key 'zzz'; valid keys: address, embedded, data_dir, insecure, mirrors"
    )


def test_unknown_table_without_near_match_lists_tables(imdemo: Path) -> None:
    path = write_config(imdemo, "[qqqq]\n")
    assert user_error(path).endswith(
        "unknown table 'qqqq'; valid tables: project, services, go, platforms, image, registry, builder, bundle, sign"
    )


WRONG_TYPES = [
    ('[go]\ncgo = "yes"\n', "go.cgo: expected bool, got str 'yes'"),
    ("[go]\njobs = true\n", "go.jobs: expected int, got bool True"),
    ('[go]\njobs = "4"\n', "go.jobs: expected int, got str '4'"),
    ("[go]\nldflags = 5\n", "go.ldflags: expected list or str, got int 5"),
    ("[platforms]\nbinaries = 64\n", "platforms.binaries: expected list or str, got int 64"),
    ('[image]\ntags = "latest"\n', "image.tags: expected list, got str 'latest'"),
    ("[image]\nprovenance = 1\n", "image.provenance: expected bool, got int 1"),
    ('[registry]\nembedded = "true"\n', "registry.embedded: expected bool, got str 'true'"),
]


@pytest.mark.parametrize(
    ("body", "want"),
    WRONG_TYPES,
    ids=["cgo-str", "jobs-bool", "jobs-str", "ldflags-int", "platforms-int", "tags-str", "provenance-int", "embedded"],
)
def test_wrong_type(imdemo: Path, body: str, want: str) -> None:
    path = write_config(imdemo, body)
    assert user_error(path) == f"{path.resolve()}: {want}"


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ('services = "api"\n', "'services' must be an array of tables: [[services]]"),
        ('go = "fast"\n', "'go' must be a table: [go]"),
        ("[builder]\nnodes = [1]\n", "builder.nodes[0] must be a table: [[builder.nodes]]"),
    ],
    ids=["services-string", "go-string", "builder-node-int"],
)
def test_wrong_shape(imdemo: Path, body: str, want: str) -> None:
    # top-level assignments must come before [project]
    path = write_raw(imdemo, body + '\n[project]\nmodule_dir = "examples/imdemo"\n')
    assert user_error(path) == f"{path.resolve()}: {want}"


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ('[go.x]\n"main.V" = 1\n', "go.x.main.V: expected a string, got int"),
        ("[go.env]\nGOFLAGS = false\n", "go.env.GOFLAGS: expected a string, got bool"),
        ("[image.labels]\nteam = 7\n", "image.labels.team: expected a string, got int"),
        ('[go]\ntags = ["netgo", 1]\n', "go.tags: expected strings, got 1"),
        ('[go]\nldflags = ["-s", 2]\n', "go.ldflags: expected strings, got 2"),
        ("[go]\njobs = -1\n", "go.jobs must be >= 0 (0 means twice the number of cores)"),
        ("[image]\ntags = []\n", "image.tags must list at least one tag template"),
        (
            "[image]\ncompression_level = 10\n",
            "image.compression_level = 10: must be a gzip level from 0 (none) to 9 (smallest); "
            "1 is the fastest that compresses",
        ),
        (
            '[image]\ncache_ref = "reg.example/c:v1"\n',
            "image.cache_ref = 'reg.example/c:v1': give a repository without tag or digest, "
            "e.g. registry.example.com/team/app-cache (crossbuild adds one tag per cache)",
        ),
        (
            '[image]\ncache_ref = "reg.example/c@sha256:00"\n',
            "image.cache_ref = 'reg.example/c@sha256:00': give a repository without tag or digest, "
            "e.g. registry.example.com/team/app-cache (crossbuild adds one tag per cache)",
        ),
    ],
    ids=[
        *("x-int", "env-bool", "labels-int", "tags-item", "ldflags-item", "jobs-negative", "tags-empty", "gzip-10"),
        *("cache-tag", "cache-digest"),
    ],
)
def test_bad_values(imdemo: Path, body: str, want: str) -> None:
    assert user_error(write_config(imdemo, body)).endswith(want)


def test_cache_ref_from_config_or_env(imdemo: Path) -> None:
    assert load(write_config(imdemo)).image.cache_ref == ""
    path = write_config(imdemo, '[image]\ncache_ref = "localhost:5000/team/cache"\n')
    assert load(path).image.cache_ref == "localhost:5000/team/cache"  # a registry port is not a tag
    assert load(path, {"CACHE_REF": "reg.example/other"}).image.cache_ref == "reg.example/other"
    assert user_error(path, {"CACHE_REF": "reg.example/other:v2"}) == (
        "CACHE_REF 'reg.example/other:v2': give a repository without tag or digest, "
        "e.g. registry.example.com/team/app-cache (crossbuild adds one tag per cache)"
    )


def test_compression_level_default_and_set(imdemo: Path) -> None:
    assert load(write_config(imdemo)).image.compression_level == 1
    assert load(write_config(imdemo, "[image]\ncompression_level = 9\n")).image.compression_level == 9


def test_ldflags_as_string_is_split(imdemo: Path) -> None:
    cfg = load(write_config(imdemo, '[go]\nldflags = "-s  -w -extldflags=-static"\n'))
    assert cfg.go.ldflags == ("-s", "-w", "-extldflags=-static")


def test_malformed_toml_names_file_and_line(imdemo: Path) -> None:
    path = write_raw(imdemo, '[project]\nmodule_dir = "examples/imdemo"\n\n[image\ntags = ["x"]\n')
    msg = user_error(path)
    assert msg.startswith(f"{path.resolve()}: invalid TOML: ")
    assert "line 4" in msg


def test_malformed_toml_value(imdemo: Path) -> None:
    path = write_raw(imdemo, "[project]\nmodule_dir = examples/imdemo\n")
    msg = user_error(path)
    assert msg.startswith(f"{path.resolve()}: invalid TOML: ")
    assert "line 2" in msg


# --- the module and its services ---------------------------------------------------------------------


def test_missing_module_dir(tmp_path: Path) -> None:
    path = write_config(tmp_path, module_dir="does/not/exist")
    assert user_error(path) == (
        f"{path.resolve()}: project.module_dir {(tmp_path / 'does/not/exist').resolve()} does not exist"
    )


def test_module_dir_without_go_mod(tmp_path: Path) -> None:
    (tmp_path / "notgo" / "cmd" / "x").mkdir(parents=True)
    (tmp_path / "notgo" / "cmd" / "x" / "main.go").write_text("package main\n")
    path = write_config(tmp_path, module_dir="notgo")
    msg = user_error(path)
    assert msg == (
        f"{path.resolve()}: project.module_dir {(tmp_path / 'notgo').resolve()} has no go.mod or go.work; "
        "point it at the Go module (or workspace) root"
    )


def test_services_discovered_from_cmd(imdemo: Path) -> None:
    cfg = load(write_config(imdemo))
    assert cfg.services == tuple(Service(name=n, package=f"./cmd/{n}", image=n) for n in IMDEMO_SERVICES)


def test_discovery_skips_non_main_and_files(imdemo: Path) -> None:
    cmd = imdemo / "examples" / "imdemo" / "cmd"
    (cmd / "lib").mkdir()
    (cmd / "lib" / "lib.go").write_text("package lib\n")
    (cmd / "testonly").mkdir()
    (cmd / "testonly" / "x_test.go").write_text("package main\n")
    (cmd / "README.md").write_text("not a package\n")
    cfg = load(write_config(imdemo))
    assert [s.name for s in cfg.services] == IMDEMO_SERVICES


def test_no_services_anywhere(tmp_path: Path, tiny_module: Path) -> None:
    shutil.rmtree(tiny_module / "cmd")
    path = write_config(tmp_path, module_dir="mod")
    msg = user_error(path)
    assert msg.startswith(
        f"{tiny_module.resolve()}: no main packages below cmd/ or at the module root; list them in {path.resolve()}"
    )


def test_listed_services(imdemo: Path) -> None:
    body = """\
        [[services]]
        name = "push"
        image = "imdemo-push"
        smoke_args = ["version", "--json"]
        mode = "multistage"
        [[services]]
        name = "gateway"
        package = "cmd/msggateway"
    """
    cfg = load(write_config(imdemo, body))
    assert cfg.services == (
        Service(
            name="push", package="./cmd/push", image="imdemo-push", smoke_args=("version", "--json"), mode="multistage"
        ),
        Service(name="gateway", package="./cmd/msggateway", image="gateway"),
    )
    assert cfg.mode_of(cfg.service("push")) == "multistage"
    assert cfg.mode_of(cfg.service("gateway")) == "prebuilt"


def test_listed_service_without_main(imdemo: Path) -> None:
    path = write_config(imdemo, '[[services]]\nname = "common"\npackage = "./pkg/common"\n')
    assert user_error(path) == (
        f"{path.resolve()}: service 'common': ./pkg/common has no 'package main' .go file, so it builds no binary"
    )


def test_listed_service_missing_dir(imdemo: Path) -> None:
    path = write_config(imdemo, '[[services]]\nname = "ghost"\n')
    msg = user_error(path)
    assert msg.startswith(f"{path.resolve()}: service 'ghost': package directory ")
    assert msg.endswith("cmd/ghost does not exist")


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ('[[services]]\npackage = "./cmd/api"\n', "services[0] needs a name"),
        ('[[services]]\nname = "API"\npackage = "./cmd/api"\n', "service name 'API' must be lower-case"),
        ('[[services]]\nname = "api"\n[[services]]\nname = "api"\n', "service listed twice: api"),
        ('[[services]]\nname = "api"\nmode = "docker"\n', "service 'api': mode must be one of prebuilt, multistage"),
        ('[[services]]\nname = "api"\nsmoke_args = ["-v", 2]\n', "services[0].smoke_args: expected strings, got 2"),
    ],
    ids=["no-name", "upper-case", "duplicate", "bad-mode", "smoke-args-int"],
)
def test_bad_service_entries(imdemo: Path, body: str, want: str) -> None:
    assert want in user_error(write_config(imdemo, body))


# --- templates: tags and -X values ------------------------------------------------------------------------


@pytest.fixture
def committed(imdemo: Path, make_git_repo: Callable[[Path], Any]) -> tuple[Path, str]:
    """The imdemo tree as a git repository tagged v1.2.3; returns (root, commit)."""
    repo = make_git_repo(imdemo)
    sha = repo.commit("import imdemo")
    repo.tag("v1.2.3")
    return imdemo, sha


def test_image_tags_from_templates(committed: tuple[Path, str]) -> None:
    root, sha = committed
    # config.toml is untracked, which leaves the tree clean (as `git describe --dirty` sees it)
    path = write_config(root, '[image]\ntags = ["{version}", "{short_commit}", "{service}-{version}", "latest"]\n')
    cfg = load(path)
    assert cfg.version.tree_state == "clean"
    assert cfg.image_tags(cfg.service("api")) == ("v1.2.3", sha[:7], "api-v1.2.3", "latest")


def test_image_tags_dirty_tree(committed: tuple[Path, str]) -> None:
    root, sha = committed
    (root / "examples" / "imdemo" / "go.mod").write_text("module edited\n")
    cfg = load(write_config(root, '[image]\ntags = ["{version}", "{short_commit}-{tree_state}"]\n'))
    assert cfg.image_tags(cfg.service("api")) == ("v1.2.3-dirty", f"{sha[:7]}-dirty")


def test_image_tags_are_made_tag_safe_and_unique(imdemo: Path) -> None:
    path = write_config(imdemo, '[image]\ntags = ["{version}", "v1.0.0-build.7", "latest", "latest"]\n')
    cfg = load(path, version="v1.0.0+build.7")
    assert cfg.image_tags(cfg.service("push")) == ("v1.0.0-build.7", "latest")


def test_image_tags_unknown_field(imdemo: Path) -> None:
    with pytest.raises(UserError) as info:
        load(write_config(imdemo, '[image]\ntags = ["{version}", "{branch}"]\n'))
    assert str(info.value) == (
        "image.tags: bad template '{branch}': use only "
        "{version}, {version_no_v}, {commit}, {short_commit}, {tree_state}, {date}, {date_short}, {timestamp}, "
        "{service}, {project}"
    )


@pytest.mark.parametrize("template", ["{branch}", "{", "{0}", "{version!z}"], ids=["field", "brace", "index", "conv"])
def test_x_template_checked_at_load(imdemo: Path, template: str) -> None:
    path = write_config(imdemo, f'[go.x]\n"main.Version" = "{template}"\n')
    assert user_error(path).startswith(f"go.x.main.Version: bad template '{template}': use only {{version}}")


@pytest.mark.parametrize("template", ["{version.major}", "{version[x]}"], ids=["attribute", "str-index"])
def test_x_template_with_field_access_is_a_user_error(imdemo: Path, template: str) -> None:
    # attribute / item access must be a one-line UserError, not AttributeError / TypeError
    path = write_config(imdemo, f'[go.x]\n"main.Version" = "{template}"\n')
    assert user_error(path).startswith(f"go.x.main.Version: bad template '{template}': use only {{version}}")


def test_x_values_filled_from_git(committed: tuple[Path, str]) -> None:
    root, sha = committed
    shutil.copy(REPO_ROOT / "config.toml", root / "config.toml")  # untracked: the tree stays clean
    cfg = load(root / "config.toml")
    pkg = "github.com/crossbuild-example/imdemo/pkg/version."
    assert cfg.x_values() == {
        pkg + "Version": "v1.2.3",
        pkg + "GitCommit": sha,
        pkg + "BuildDate": EPOCH_DATE,
        pkg + "GitTreeState": "clean",
    }


def test_x_values_use_version_flag_and_commit_date(committed: tuple[Path, str]) -> None:
    root, sha = committed
    shutil.copy(REPO_ROOT / "config.toml", root / "config.toml")
    cfg = config.load(root / "config.toml", Overrides(version="v9.0.0"), {})
    values = cfg.x_values()
    assert values["github.com/crossbuild-example/imdemo/pkg/version.Version"] == "v9.0.0"
    assert values["github.com/crossbuild-example/imdemo/pkg/version.GitCommit"] == sha
    # no SOURCE_DATE_EPOCH: the commit's own date (conftest commits at 1700000000)
    assert values["github.com/crossbuild-example/imdemo/pkg/version.BuildDate"] == EPOCH_DATE


def test_x_values_service_and_project(imdemo: Path) -> None:
    body = """\
        [project]
        name = "demo"
        module_dir = "examples/imdemo"
        [go.x]
        "main.Who" = "{project}/{service}@{version}"
    """
    cfg = load(write_raw(imdemo, body), version="v7")
    assert cfg.x_values(cfg.service("push")) == {"main.Who": "demo/push@v7"}
    assert cfg.x_values() == {"main.Who": "demo/@v7"}


def test_version_date_from_source_date_epoch(imdemo: Path) -> None:
    cfg = load(write_config(imdemo))
    assert cfg.version.date == EPOCH_DATE
    assert cfg.version.commit == "unknown"


# --- image platforms, registry, builder --------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["darwin/arm64", "windows/amd64"], ids=["darwin", "windows"])
def test_image_platforms_in_config_must_be_linux(imdemo: Path, bad: str) -> None:
    path = write_config(imdemo, f'[platforms]\nimages = ["linux/amd64", "{bad}"]\n')
    msg = user_error(path)
    assert msg.startswith(f"{path.resolve()}: platforms.images: {bad} cannot be an image platform")
    assert "Linux kernel" in msg


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("[platforms]\nbinaries = [0]\n", "platforms.binaries"),
        ('[platforms]\nimages = ["linux/amd64", true]\n', "platforms.images"),
        ('[[builder.nodes]]\nname = "arm"\nplatforms = [64]\n', "builder.nodes[0].platforms"),
    ],
    ids=["binaries-int", "images-bool", "node-int"],
)
def test_platform_lists_hold_strings(imdemo: Path, body: str, where: str) -> None:
    """Found by `make fuzz`: a number in a platform list used to raise a TypeError traceback."""
    msg = user_error(write_config(imdemo, body))
    assert f"{where}: expected strings, got" in msg


def test_non_linux_binary_platforms_are_fine(imdemo: Path) -> None:
    cfg = load(write_config(imdemo, '[platforms]\nbinaries = ["darwin/arm64", "windows/amd64"]\n'))
    assert [p.exe_suffix for p in cfg.binary_platforms] == ["", ".exe"]


def test_registry_paths_relative_to_config(imdemo: Path, tmp_path: Path) -> None:
    cfg = load(write_config(imdemo, '[registry]\ndata_dir = "reg"\n'))
    assert cfg.registry.data_dir == imdemo / "reg"
    absolute = tmp_path / "abs-reg"
    cfg = load(write_config(imdemo, f'[registry]\ndata_dir = "{absolute}"\n'))
    assert cfg.registry.data_dir == absolute
    cfg = load(write_config(imdemo))
    assert cfg.registry.data_dir == imdemo / "build" / "registry"


def test_registry_table(imdemo: Path) -> None:
    body = """\
        [registry]
        address = "0.0.0.0:5001"
        embedded = false
        insecure = ["reg.lan:5000"]
        [registry.mirrors]
        "docker.io" = ["https://mirror.example"]
    """
    reg = load(write_config(imdemo, body)).registry
    assert (reg.address, reg.embedded, reg.insecure) == ("0.0.0.0:5001", False, ("reg.lan:5000",))
    assert reg.mirrors == (("docker.io", ("https://mirror.example",)),)


def test_builder_nodes(imdemo: Path) -> None:
    body = """\
        [builder]
        name = "farm"
        driver = "docker-container"
        [[builder.nodes]]
        name = "arm-box"
        endpoint = "tcp://arm:1234"
        platforms = "linux/arm64,linux/arm/v7"
    """
    b = load(write_config(imdemo, body)).builder
    assert (b.name, b.driver, b.endpoint) == ("farm", "docker-container", "")
    assert b.nodes == (
        config.BuilderNode(
            name="arm-box",
            endpoint="tcp://arm:1234",
            platforms=(Platform("linux", "arm64"), Platform("linux", "arm", "v7")),
        ),
    )


@pytest.mark.parametrize(
    ("body", "want"),
    [
        (
            '[builder]\ndriver = "podman"\n',
            "builder.driver must be one of docker-container, remote, kubernetes, docker",
        ),
        ('[builder]\nendpoint = ""\n', "builder.driver = 'remote' needs builder.endpoint"),
        ('[builder]\nname = "My Builder"\n', "builder.name 'My Builder' must be lower-case"),
        ('[[builder.nodes]]\nendpoint = "tcp://h:1"\n', "builder.nodes[0] needs a name"),
    ],
    ids=["driver", "remote-endpoint", "name", "node-name"],
)
def test_bad_builder(imdemo: Path, body: str, want: str) -> None:
    assert want in user_error(write_config(imdemo, body))


# --- frozen, loopback, insecure --------------------------------------------------------------------------------


def test_config_is_frozen(imdemo: Path) -> None:
    cfg = load(write_config(imdemo))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.image.registry_prefix = "evil/x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.services[0].package = "./cmd/evil"  # type: ignore[misc]
    assert isinstance(cfg.services, tuple)
    assert isinstance(cfg.binary_platforms, tuple)


LOOPBACK = [
    ("localhost", True),
    ("localhost:5000", True),
    ("127.0.0.1", True),
    ("127.0.0.1:5000", True),
    ("[::1]", True),
    ("[::1]:5000", True),
    ("registry:5000", False),
    ("10.0.0.1:5000", False),
    ("localhost.example.com:5000", False),
    ("127.0.0.10:5000", True),
    ("docker.io", False),
]


@pytest.mark.parametrize(("host", "want"), LOOPBACK, ids=[h for h, _ in LOOPBACK])
def test_is_loopback(host: str, want: bool) -> None:
    assert is_loopback(host) is want


@pytest.mark.parametrize(
    ("host", "want"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5001", True),
        ("reg.lan:5000", True),
        ("reg.lan", False),
        ("reg.lan:5001", False),
        ("docker.io", False),
    ],
    ids=["loopback-ip", "loopback-name", "listed", "listed-without-port", "other-port", "public"],
)
def test_registry_is_insecure(host: str, want: bool) -> None:
    assert RegistryConfig(insecure=("reg.lan:5000",)).is_insecure(host) is want


# --- issue 12: inputs that used to mean something else ------------------------------------------


@pytest.mark.parametrize("var", ["PLATFORMS", "BINS", "IMAGES"])
@pytest.mark.parametrize("value", [",", " , ,", ",,"], ids=["comma", "spaced", "commas"])
def test_list_variable_that_names_nothing_is_an_error(imdemo: Path, var: str, value: str) -> None:
    """PLATFORMS=',' used to mean the defaults and pushed three platforms."""
    msg = user_error(write_config(imdemo), {var: value})
    assert msg.startswith(f"{var}={value.strip()!r} names nothing")


def test_explicit_empty_services_is_an_error(imdemo: Path) -> None:
    """services = [] used to build and push every discovered service."""
    msg = user_error(write_raw(imdemo, 'services = []\n[project]\nmodule_dir = "examples/imdemo"\n'))
    assert "services = [] lists no service" in msg


@pytest.mark.parametrize(
    ("env", "conf", "where"),
    [
        ({"REGISTRY_PREFIX": "Bad Prefix"}, "", "REGISTRY_PREFIX='Bad Prefix'"),
        ({"REGISTRY_PREFIX": "host:5000/ns:tag"}, "", "REGISTRY_PREFIX='host:5000/ns:tag'"),
        ({}, '[image]\nregistry_prefix = "x@sha256:00"\n', "image.registry_prefix = 'x@sha256:00'"),
    ],
    ids=["space", "tag", "digest-in-config"],
)
def test_bad_registry_prefix_names_the_setting_and_value(
    imdemo: Path, env: dict[str, str], conf: str, where: str
) -> None:
    msg = user_error(write_config(imdemo, conf), env)
    assert where in msg
    assert "/x" not in msg and "crossbuild-name-check" not in msg


@pytest.mark.parametrize("version", ["..", "+", "-"], ids=["dotdot", "plus", "dash"])
def test_version_that_makes_no_tag_is_an_error(imdemo: Path, version: str) -> None:
    """VERSION=.. used to publish only `latest`."""
    msg = user_error(write_config(imdemo), {"VERSION": version})
    assert "has no letters or digits a tag can use" in msg
