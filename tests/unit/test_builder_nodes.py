"""Multi-node builders: [[builder.nodes]] in config, the exact `buildx create` argument lists
(kubernetes included, which cannot run here), what setup changes on a builder that exists,
`buildx inspect` parsing, and the registry error a node's push is mapped to.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crossbuild import builder, buildx, config
from crossbuild.config import BuilderConfig, BuilderNode, NodeOptions, Overrides
from crossbuild.errors import CommandError, UserError
from crossbuild.platforms import Platform

pytestmark = pytest.mark.usefixtures("git_isolated")

ARM64 = Platform("linux", "arm64")
AMD64 = Platform("linux", "amd64")
ARMV7 = Platform("linux", "arm", "v7")


def load(root: Path, body: str) -> config.Config:
    path = root / "config.toml"
    path.write_text('[project]\nmodule_dir = "mod"\n' + textwrap.dedent(body))
    return config.load(path, Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1"})


def user_error(root: Path, body: str) -> str:
    with pytest.raises(UserError) as info:
        load(root, body)
    return str(info.value)


# --- config ------------------------------------------------------------------------------------


def test_three_nodes_with_tls_on_the_tcp_one(tmp_path: Path, tiny_module: Path) -> None:
    b = load(
        tmp_path,
        """\
        [builder]
        name = "farm"
        endpoint = "unix:///run/amd.sock"
        platforms = ["linux/amd64"]
        [[builder.nodes]]
        name = "farm-arm64"
        endpoint = "unix:///run/arm.sock"
        platforms = "linux/arm64"
        [[builder.nodes]]
        name = "farm-armv7"
        endpoint = "tcp://10.0.0.7:1234"
        platforms = ["linux/arm/v7"]
        cacert = "certs/ca.pem"
        cert = "certs/client.pem"
        key = "/etc/bk/client.key"
        servername = "armv7.lan"
        """,
    ).builder
    assert [(n.name, n.endpoint, n.platforms) for n in b.all_nodes] == [
        ("farm0", "unix:///run/amd.sock", (AMD64,)),
        ("farm-arm64", "unix:///run/arm.sock", (ARM64,)),
        ("farm-armv7", "tcp://10.0.0.7:1234", (ARMV7,)),
    ]
    tls = b.nodes[1].options
    assert (tls.cacert, tls.cert, tls.key, tls.servername) == (
        str(tmp_path / "certs" / "ca.pem"),  # relative to the config file, absolute as buildx wants
        str(tmp_path / "certs" / "client.pem"),
        "/etc/bk/client.key",
        "armv7.lan",
    )
    assert b.nodes[0].options == NodeOptions()
    assert not b.managed


def test_kubernetes_settings(tmp_path: Path, tiny_module: Path) -> None:
    b = load(
        tmp_path,
        """\
        [builder]
        name = "k8s"
        driver = "kubernetes"
        platforms = ["linux/amd64"]
        namespace = "ci"
        replicas = 2
        [[builder.nodes]]
        name = "k8s-arm64"
        platforms = ["linux/arm64", "linux/arm/v7"]
        namespace = "ci"
        rootless = true
        nodeselector = {"kubernetes.io/arch" = "arm64", "pool" = "build"}
        """,
    ).builder
    assert b.options == NodeOptions(namespace="ci", replicas=2)
    assert b.nodes[0].options == NodeOptions(
        namespace="ci", rootless=True, nodeselector=(("kubernetes.io/arch", "arm64"), ("pool", "build"))
    )
    assert b.managed


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ("[builder]\nplatform = []\n", "builder: unknown key 'platform'; did you mean 'platforms'?"),
        ('[[builder.nodes]]\nname = "n"\nendpoint = "tcp://h:1"\ncacerts = "x"\n', "did you mean 'cacert'?"),
        (
            '[[builder.nodes]]\nname = "n"\nendpoint = "tcp://h:1"\ndriver = "kubernetes"\n',
            "builder.nodes[0].driver = 'kubernetes' but builder.driver = 'remote'",
        ),
        ('[[builder.nodes]]\nname = "n"\n', "builder.nodes[0] needs an endpoint for the remote driver"),
        (
            '[builder]\nplatforms = ["linux/arm64"]\n[[builder.nodes]]\nname = "n"\nendpoint = "tcp://h:1"\n'
            'platforms = ["aarch64"]\n',
            "linux/arm64 is pinned on nodes 'crossbuild0' and 'n'",
        ),
        (
            '[[builder.nodes]]\nname = "crossbuild0"\nendpoint = "tcp://h:1"\n',
            "builder node 'crossbuild0' is named twice",
        ),
        (
            '[[builder.nodes]]\nname = "n"\nendpoint = "unix:///run/crossbuild-buildkitd.sock"\n',
            "share the endpoint unix:///run/crossbuild-buildkitd.sock",
        ),
        (
            '[[builder.nodes]]\nname = "n"\nendpoint = "unix:///x.sock"\ncacert = "ca.pem"\n',
            "builder.nodes[0].cacert: TLS files apply to a remote driver's tcp:// endpoint only",
        ),
        (
            '[[builder.nodes]]\nname = "n"\nendpoint = "tcp://h:1"\ncert = "c.pem"\nkey = "k.pem"\n',
            "TLS needs cacert",
        ),
        (
            '[[builder.nodes]]\nname = "n"\nendpoint = "tcp://h:1"\ncacert = "ca.pem"\ncert = "c.pem"\n',
            "give cert and key together",
        ),
        ('[builder]\nnamespace = "ci"\n', "builder.namespace applies to the kubernetes driver only"),
        ('[builder]\ndriver = "kubernetes"\nreplicas = 0\n', "builder.replicas must be at least 1"),
        (
            '[builder]\ndriver = "kubernetes"\nnamespace = "a"\ndriver_opts = {namespace = "b"}\n',
            "namespace is given twice",
        ),
        (
            '[builder]\ndriver = "kubernetes"\n[[builder.nodes]]\nname = "n"\nendpoint = "tcp://h:1"\n',
            "the kubernetes driver takes no endpoint",
        ),
        ('[builder]\ndriver = "docker"\n[[builder.nodes]]\nname = "n"\n', "the docker driver has one node"),
        ('[builder]\nplatforms = ["darwin/arm64"]\n', "darwin/arm64 cannot be an image platform"),
        ('[[builder.nodes]]\nname = "Arm Box"\nendpoint = "tcp://h:1"\n', "builder.nodes[0].name 'Arm Box'"),
    ],
    ids=[
        "typo",
        "node-typo",
        "node-driver",
        "remote-endpoint",
        "pinned-twice",
        "name-twice",
        "endpoint-twice",
        "tls-on-unix",
        "tls-without-ca",
        "cert-without-key",
        "k8s-key-on-remote",
        "replicas",
        "key-and-driver-opt",
        "k8s-endpoint",
        "docker-nodes",
        "darwin-pin",
        "node-name",
    ],
)
def test_bad_nodes_are_one_line(tmp_path: Path, tiny_module: Path, body: str, want: str) -> None:
    message = user_error(tmp_path, body)
    assert want in message
    assert "\n" not in message


# --- buildx create argument lists --------------------------------------------------------------


def _argv(b: BuilderConfig, node: BuilderNode, append: bool, conf: Path | None = None) -> list[str]:
    return buildx.create_argv(
        name=b.name,
        driver=b.driver,
        endpoint=node.endpoint,
        driver_opt=builder.driver_opt_args(builder.node_driver_opts(b.driver, node)),
        buildkitd_config=conf,
        platform=[str(p) for p in node.platforms],
        node=node.name,
        append=append,
    )


def test_kubernetes_argv_per_arch_node_pool(tmp_path: Path, tiny_module: Path) -> None:
    b = load(
        tmp_path,
        """\
        [builder]
        name = "k8s"
        driver = "kubernetes"
        platforms = ["linux/amd64"]
        namespace = "ci"
        replicas = 2
        [[builder.nodes]]
        name = "k8s-arm"
        platforms = ["linux/arm64", "linux/arm/v7"]
        namespace = "ci"
        rootless = true
        driver_opts = {image = "moby/buildkit:v0.32.2-rootless"}
        [[builder.nodes]]
        name = "k8s-any"
        platforms = ["linux/s390x"]
        nodeselector = {"kubernetes.io/arch" = "s390x", "pool" = "big,iron"}
        """,
    ).builder
    conf = tmp_path / "build" / "buildkitd.toml"
    first, arm, anyone = b.all_nodes
    assert _argv(b, first, append=False, conf=conf) == [
        *("docker", "buildx", "create", "--name", "k8s", "--driver", "kubernetes"),
        *("--driver-opt", "namespace=ci", "--driver-opt", "replicas=2"),
        *("--driver-opt", "nodeselector=kubernetes.io/arch=amd64"),  # the pins' arch: the amd64 pool
        *("--buildkitd-config", str(conf), "--platform", "linux/amd64", "--node", "k8s0"),
    ]
    assert _argv(b, arm, append=True, conf=conf) == [
        *("docker", "buildx", "create", "--name", "k8s", "--driver", "kubernetes"),
        *("--driver-opt", "image=moby/buildkit:v0.32.2-rootless", "--driver-opt", "namespace=ci"),
        *("--driver-opt", "nodeselector=kubernetes.io/arch=arm64", "--driver-opt", "rootless=true"),
        *("--buildkitd-config", str(conf), "--platform", "linux/arm64,linux/arm/v7", "--node", "k8s-arm", "--append"),
    ]
    # a selector with a comma is one CSV field, quoted, as buildx parses --driver-opt
    assert _argv(b, anyone, append=True)[7:9] == [
        "--driver-opt",
        '"nodeselector=kubernetes.io/arch=s390x,pool=big,iron"',
    ]


def test_mixed_arch_kubernetes_node_gets_no_guessed_selector() -> None:
    node = BuilderNode("mixed", "", (AMD64, ARM64))
    assert builder.node_driver_opts("kubernetes", node) == {}


def test_remote_tcp_node_argv_carries_the_tls_files(tmp_path: Path, tiny_module: Path) -> None:
    b = load(
        tmp_path,
        """\
        [[builder.nodes]]
        name = "armv7"
        endpoint = "tcp://127.0.0.1:9999"
        platforms = ["linux/arm/v7"]
        cacert = "/c/ca.pem"
        cert = "/c/client.pem"
        key = "/c/client.key"
        """,
    ).builder
    assert _argv(b, b.nodes[0], append=True) == [
        *("docker", "buildx", "create", "--name", "crossbuild", "--driver", "remote"),
        *(
            "--driver-opt",
            "cacert=/c/ca.pem",
            "--driver-opt",
            "cert=/c/client.pem",
            "--driver-opt",
            "key=/c/client.key",
        ),
        *("--platform", "linux/arm/v7", "--node", "armv7", "--append", "tcp://127.0.0.1:9999"),
    ]


def test_buildkitd_toml_of_a_managed_builder(tmp_path: Path, tiny_module: Path) -> None:
    cfg = load(
        tmp_path,
        """\
        [registry]
        address = "127.0.0.1:5000"
        insecure = ["10.1.2.3:5000"]
        mirrors = {"docker.io" = ["mirror.lan:5000"]}
        [builder]
        driver = "docker-container"
        """,
    )
    assert builder.buildkitd_toml(cfg) == (
        "# written by crossbuild from config.toml [registry]\n"
        '[registry."10.1.2.3:5000"]\n  http = true\n  insecure = true\n'
        '[registry."127.0.0.1:5000"]\n  http = true\n  insecure = true\n'
        '[registry."localhost:5000"]\n  http = true\n  insecure = true\n'
        '[registry."docker.io"]\n  mirrors = ["mirror.lan:5000"]\n'
    )


def test_buildkitd_toml_gives_a_host_with_mirrors_one_table(tmp_path: Path, tiny_module: Path) -> None:
    import tomllib

    cfg = load(tmp_path, '[registry]\ninsecure = ["reg.lan:5000"]\nmirrors = {"reg.lan:5000" = ["m.lan"]}\n')
    parsed = tomllib.loads(builder.buildkitd_toml(cfg))  # a table defined twice would not parse
    assert parsed["registry"]["reg.lan:5000"] == {"http": True, "insecure": True, "mirrors": ["m.lan"]}


# --- setup on a builder that exists -------------------------------------------------------------

FARM = BuilderConfig(
    name="farm",
    endpoint="unix:///a.sock",
    platforms=(AMD64,),
    nodes=(BuilderNode("farm-arm", "unix:///b.sock", (ARM64,)),),
)


def _have(*nodes: buildx.NodeInfo) -> buildx.BuilderInfo:
    return buildx.BuilderInfo("farm", "remote", "running", (), nodes)


def _node(name: str, endpoint: str, pinned: tuple[str, ...], **kw: object) -> buildx.NodeInfo:
    return buildx.NodeInfo(name, endpoint, "running", "", pinned, pinned, **kw)  # type: ignore[arg-type]


def _argvs(steps: list[builder.Step]) -> list[list[str]]:
    return [list(s.argv[2:]) for s in steps]  # without "docker buildx"


def test_plan_for_a_missing_builder_creates_node_0_then_appends() -> None:
    steps, notes = builder.plan_builder(FARM, None, None, None, prune=False)
    assert _argvs(steps) == [
        [
            "create",
            "--name",
            "farm",
            "--driver",
            "remote",
            "--platform",
            "linux/amd64",
            "--node",
            "farm0",
            "unix:///a.sock",
        ],
        [
            *("create", "--name", "farm", "--driver", "remote", "--platform", "linux/arm64"),
            *("--node", "farm-arm", "--append", "unix:///b.sock"),
        ],
    ]
    assert [s.says for s in steps] == ["created builder 'farm' (remote)", "appended node 'farm-arm' (linux/arm64)"]
    assert notes == []


def test_plan_for_a_builder_that_matches_is_empty() -> None:
    have = _have(
        _node("farm0", "unix:///a.sock", ("linux/amd64",)), _node("farm-arm", "unix:///b.sock", ("linux/arm64",))
    )
    assert builder.plan_builder(FARM, have, None, None, prune=False) == ([], [])


def test_plan_changes_a_node_in_place_and_appends_a_new_one() -> None:
    have = _have(_node("farm0", "unix:///old.sock", ("linux/amd64", "linux/arm64")))
    steps, _ = builder.plan_builder(FARM, have, None, None, prune=False)
    assert _argvs(steps) == [
        [
            "create",
            "--name",
            "farm",
            "--driver",
            "remote",
            "--platform",
            "linux/amd64",
            "--node",
            "farm0",
            "unix:///a.sock",
        ],
        [
            *("create", "--name", "farm", "--driver", "remote", "--platform", "linux/arm64"),
            *("--node", "farm-arm", "--append", "unix:///b.sock"),
        ],
    ]
    assert steps[0].says == (
        "updated node 'farm0': endpoint unix:///old.sock -> unix:///a.sock; pins linux/amd64,linux/arm64 -> linux/amd64"
    )


def test_plan_clears_a_pin_by_taking_the_node_out_and_in() -> None:
    unpinned = BuilderConfig(name="farm", endpoint="unix:///a.sock", nodes=(BuilderNode("farm-arm", "unix:///b.sock"),))
    have = _have(_node("farm0", "unix:///a.sock", ()), _node("farm-arm", "unix:///b.sock", ("linux/arm64",)))
    steps, _ = builder.plan_builder(unpinned, have, None, None, prune=False)
    assert _argvs(steps) == [
        ["create", "--name", "farm", "--node", "farm-arm", "--leave"],
        ["create", "--name", "farm", "--driver", "remote", "--node", "farm-arm", "--append", "unix:///b.sock"],
    ]


def test_plan_keeps_a_stray_node_unless_pruning() -> None:
    have = _have(
        _node("farm0", "unix:///a.sock", ("linux/amd64",)),
        _node("farm-arm", "unix:///b.sock", ("linux/arm64",)),
        _node("old", "unix:///c.sock", ()),
    )
    steps, notes = builder.plan_builder(FARM, have, None, None, prune=False)
    assert steps == []
    assert notes == ["node 'old' (unix:///c.sock) is not in config.toml; kept (`invoke setup --prune` removes it)"]
    steps, notes = builder.plan_builder(FARM, have, None, None, prune=True)
    assert _argvs(steps) == [["create", "--name", "farm", "--node", "old", "--leave"]]
    assert notes == []


def test_plan_refuses_a_new_node_on_a_stray_nodes_endpoint() -> None:
    have = _have(_node("farm0", "unix:///a.sock", ("linux/amd64",)), _node("old-arm", "unix:///b.sock", ()))
    with pytest.raises(UserError, match=r"node 'old-arm' of builder 'farm' already uses unix:///b\.sock"):
        builder.plan_builder(FARM, have, None, None, prune=False)
    steps, _ = builder.plan_builder(FARM, have, None, None, prune=True)
    assert [s.argv[-1] for s in steps] == ["--leave", "unix:///b.sock"]  # out first, then the new node in


def _container_builder(stored: str) -> buildx.BuilderInfo:
    node = buildx.NodeInfo("dc0", "default", "running", files=(("buildkitd.toml", stored),))
    return buildx.BuilderInfo("dc", "docker-container", "running", (), (node,))


def test_plan_rewrites_a_managed_nodes_buildkitd_toml(tmp_path: Path) -> None:
    b = BuilderConfig(name="dc", driver="docker-container", endpoint="")
    conf = tmp_path / "buildkitd.toml"
    text = '# written by crossbuild\n[registry."a:5000"]\n  http = true\n  insecure = true\n'
    steps, _ = builder.plan_builder(b, _container_builder('[registry."a:5000"]\nhttp = true'), conf, text, prune=False)
    assert _argvs(steps) == [
        ["create", "--name", "dc", "--driver", "docker-container", "--buildkitd-config", str(conf), "--node", "dc0"]
    ]
    assert steps[0].restart
    # buildx keeps the file re-marshalled (no comments, its own layout): the same settings are no change
    stored = '[registry]\n[registry."a:5000"]\ninsecure = true\nhttp = true'
    assert builder.plan_builder(b, _container_builder(stored), conf, text, prune=False) == ([], [])


# --- buildx inspect ------------------------------------------------------------------------------

INSPECT = """\
Name:          farm
Driver:        remote
Last Activity: 2026-12-06 23:26:54 +0000 UTC

Nodes:
Name:             farm0
Endpoint:         unix:///run/amd.sock
Status:           running
BuildKit version: v0.32.2
Platforms:        linux/amd64*, linux/arm64, linux/arm/v7
Labels:
 org.mobyproject.buildkit.worker.executor:         oci
GC Policy rule#0:
 All:            false
 Filters:        type==source.local

Name:             farm-armv7
Endpoint:         tcp://127.0.0.1:9999
Driver Options:   cert="/c/client.pem" key="/c/client.key" cacert="/c/ca \\"x\\".pem"
Status:           inactive
Platforms:        linux/arm/v7*

Name:             dc0
Endpoint:         default
Status:           running
Platforms:        linux/amd64
File#buildkitd.toml:
 > [registry."10.1.2.3:5000"]
 >   http = true
 >
"""


def test_parse_inspect_per_node() -> None:
    info = buildx.parse_inspect(INSPECT)
    assert (info.name, info.driver, info.status) == ("farm", "remote", "running")
    assert info.node_names == ("farm0", "farm-armv7", "dc0")
    first, armv7, dc = info.nodes
    assert (first.endpoint, first.pinned, first.platforms) == (
        "unix:///run/amd.sock",
        ("linux/amd64",),
        ("linux/amd64", "linux/arm64", "linux/arm/v7"),
    )
    assert first.running and not armv7.running
    assert armv7.driver_opts == (("cacert", '/c/ca "x".pem'), ("cert", "/c/client.pem"), ("key", "/c/client.key"))
    assert dc.file("buildkitd.toml") == '[registry."10.1.2.3:5000"]\n  http = true'
    assert info.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")


# --- a node that cannot push -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "host", "plain"),
    [
        (
            'ERROR: failed to push 10.9.8.7:5000/t/api: failed to do request: Head "https://10.9.8.7:5000/v2/t/api/'
            'blobs/sha256:ab": http: server gave HTTP response to HTTPS client',
            "10.9.8.7:5000",
            True,
        ),
        (
            'ERROR: failed to do request: Head "https://reg.lan/v2/x/manifests/y": tls: failed to verify certificate: '
            "x509: certificate signed by unknown authority",
            "reg.lan",
            False,
        ),
    ],
    ids=["plain-http", "untrusted"],
)
def test_push_errors_become_registry_refused(stderr: str, host: str, plain: bool) -> None:
    refused = buildx._refused(CommandError(["docker", "buildx", "bake"], 1, "#12 pushing\n" + stderr))
    assert refused is not None
    assert (refused.host, refused.plain_http) == (host, plain)


def test_other_build_errors_stay_command_errors() -> None:
    assert buildx._refused(CommandError(["docker", "buildx", "bake"], 1, "ERROR: process go build exit 1")) is None


def test_registry_stanza() -> None:
    assert builder.registry_stanza("10.9.8.7:5000") == '[registry."10.9.8.7:5000"]\n  http = true\n  insecure = true'
    assert builder.registry_stanza("reg.lan", plain_http=False) == '[registry."reg.lan"]\n  insecure = true'


# --- the build cache of a multi-node builder -------------------------------------------------------


def test_each_node_exports_its_own_platforms_cache(tmp_path: Path, tiny_module: Path) -> None:
    """One cache tag per platform, exported by a cache-only target buildx sends to that platform's
    node: with one tag, the nodes would overwrite each other's export."""
    from crossbuild import bake, plan

    for name in ("a", "b"):
        (tiny_module / "cmd" / name).mkdir(parents=True)
        (tiny_module / "cmd" / name / "main.go").write_text("package main\n\nfunc main() {}\n")
    cfg = load(
        tmp_path,
        """\
        [image]
        mode = "multistage"
        cache_ref = "reg.example/team/cache"
        [builder]
        platforms = ["linux/amd64"]
        [[builder.nodes]]
        name = "arm"
        endpoint = "tcp://arm:1234"
        platforms = ["linux/arm64"]
        [[services]]
        name = "a"
        [[services]]
        name = "b"
        """,
    )
    targets = plan.plan(cfg, [AMD64, ARM64], list(cfg.services)).targets
    body = bake.definition(cfg, targets, lambda t: ["type=image"], with_tags=False, index=True)
    amd, arm = "reg.example/team/cache:shared-linux-amd64", "reg.example/team/cache:shared-linux-arm64"
    assert body["group"]["default"]["targets"] == ["a", "b", "_cache-shared-linux-amd64", "_cache-shared-linux-arm64"]
    for service in ("a", "b"):
        assert body["target"][service]["cache-from"] == [f"type=registry,ref={amd}", f"type=registry,ref={arm}"]
        assert "cache-to" not in body["target"][service]
    exporter = body["target"]["_cache-shared-linux-arm64"]
    assert exporter["platforms"] == ["linux/arm64"]
    assert exporter["output"] == ["type=cacheonly"]
    assert exporter["cache-to"] == [f"type=registry,ref={arm},mode=max"]
    assert exporter["cache-from"] == [f"type=registry,ref={arm}"]
    # the same Dockerfile and arguments as the image using the cache, so the steps are shared
    assert (exporter["dockerfile"], exporter["args"]) == (
        body["target"]["a"]["dockerfile"],
        body["target"]["a"]["args"],
    )


def test_a_running_kubernetes_builder_shows_pods_and_setup_changes_nothing(tmp_path: Path) -> None:
    """buildx shows one node per pod once they run; they fold back into the configured deployments."""
    b = BuilderConfig(
        name="k8s",
        driver="kubernetes",
        endpoint="",
        platforms=(AMD64,),
        nodes=(BuilderNode("k8s-arm", "", (ARM64,), options=NodeOptions(namespace="ci")),),
    )
    pods = buildx.BuilderInfo(
        "k8s",
        "kubernetes",
        "running",
        (),
        (
            buildx.NodeInfo("k8s0-5d8f7c9b6-abcde", "", "running", "", ("linux/amd64",), ("linux/amd64",)),
            buildx.NodeInfo("k8s0-5d8f7c9b6-fghij", "", "running", "", ("linux/amd64",), ("linux/amd64",)),
            buildx.NodeInfo("k8s-arm-7f6d5c4b3-xyz12", "", "running", "", ("linux/arm64",), ("linux/arm64",)),
        ),
    )
    conf = tmp_path / "buildkitd.toml"
    assert builder.plan_builder(b, pods, conf, "x\n", prune=True) == ([], [])
    only_one = buildx.BuilderInfo("k8s", "kubernetes", "running", (), pods.nodes[:2])
    steps, _ = builder.plan_builder(b, only_one, conf, "x\n", prune=True)
    assert [s.says for s in steps] == ["appended node 'k8s-arm' (linux/arm64)"]


def test_missing_tls_files_are_named_before_buildx_runs(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    node = BuilderNode(
        "armv7",
        "tcp://h:1",
        options=NodeOptions(cacert=str(tmp_path / "ca.pem"), cert=str(tmp_path / "client.pem"), key="/k"),
    )
    with pytest.raises(UserError) as info:
        builder.check_tls_files(BuilderConfig(nodes=(node,)))
    assert str(info.value) == (
        f"builder node 'armv7': cert {tmp_path / 'client.pem'} not found; fix the path in config.toml"
    )
