"""Tests for crossbuild.dockerfiles: template rendering and the emulation check."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossbuild import config, dockerfiles
from crossbuild.config import Overrides, Service
from crossbuild.dockerfiles import render, runs_target_code
from crossbuild.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "dockerfiles"
PACKAGED = REPO_ROOT / "crossbuild" / "templates"

API = Service(name="api", package="./cmd/api", image="api")
RPC = Service(name="rpc-user", package="./cmd/rpc-user", image="imdemo-rpc")


# --- render ------------------------------------------------------------------------------------


def test_render_replaces_placeholders() -> None:
    text = "COPY --from=b /out/@SERVICE@ /bin/@SERVICE@\nRUN go build -o x @PACKAGE@\nUSER @USER@\n"
    assert render(text, RPC, "1000:1000") == (
        "COPY --from=b /out/rpc-user /bin/rpc-user\nRUN go build -o x ./cmd/rpc-user\nUSER 1000:1000\n"
    )


def test_render_drops_user_line_when_user_empty() -> None:
    text = 'FROM scratch\nUSER @USER@\nENTRYPOINT ["/@SERVICE@"]'
    assert render(text, API, "") == 'FROM scratch\nENTRYPOINT ["/api"]\n'


def test_render_keeps_lines_without_placeholders_verbatim() -> None:
    text = "# comment with USER in it\nARG X=1\n\nFROM ${X}\n"
    assert render(text, API, "") == text


def test_render_always_ends_with_one_newline() -> None:
    assert render("FROM scratch", API, "u") == "FROM scratch\n"
    assert render("FROM scratch\n", API, "u") == "FROM scratch\n"


def test_render_uses_binary_name_not_image_name() -> None:
    # RPC's image is "imdemo-rpc", but the binary (and so the COPY/ENTRYPOINT path) is the service name
    assert render("@SERVICE@", RPC, "") == "rpc-user\n"


@pytest.mark.parametrize("directory", [SHIPPED, PACKAGED], ids=["dockerfiles", "package-templates"])
def test_render_shipped_prebuilt(directory: Path) -> None:
    out = render((directory / "prebuilt.Dockerfile").read_text(), API, "65532:65532")
    assert "@SERVICE@" not in out
    assert "@USER@" not in out
    lines = out.splitlines()
    assert "COPY ${TARGETPLATFORM}/api/ /" in lines  # the context is build/rootfs: one tree per binary
    assert dockerfiles.copies_tree(out)
    assert "USER 65532:65532" in lines
    assert lines[-1] == 'ENTRYPOINT ["/usr/local/bin/api"]'  # no CMD, no EXPOSE: their lines are left out
    assert not [line for line in lines if line.startswith(("EXPOSE", "CMD"))]


@pytest.mark.parametrize("directory", [SHIPPED, PACKAGED], ids=["dockerfiles", "package-templates"])
def test_render_expose_and_cmd(directory: Path) -> None:
    svc = Service(name="api", package="./cmd/api", image="api", cmd=("serve", "--addr", ":8080"))
    lines = render((directory / "prebuilt.Dockerfile").read_text(), svc, "", expose=("8080", "53/udp")).splitlines()
    assert "EXPOSE 8080 53/udp" in lines
    assert lines[-1] == 'CMD ["serve", "--addr", ":8080"]'
    assert not [line for line in lines if line.startswith("USER")]


def test_uses_bin_context() -> None:
    assert dockerfiles.uses_bin_context((SHIPPED / "prebuilt.Dockerfile").read_text())
    assert not dockerfiles.uses_bin_context("ARG BIN_DIR=build/bin\nCOPY ${BIN_DIR}/${TARGETPLATFORM}/x /x\n")


@pytest.mark.parametrize(
    ("line", "tree"),
    [
        ("COPY ${TARGETPLATFORM}/api/ /", True),
        ("COPY  ${TARGETPLATFORM}/api/   /  ", True),
        ("COPY ${TARGETPLATFORM}/api /usr/local/bin/api", False),  # the template before crossbuild.rootfs
        ("COPY ${TARGETPLATFORM}/api/ /srv/", False),  # somewhere else: its directories are not the tree's
        ("COPY ${TARGETPLATFORM}/a/b/ /", False),
        ("# COPY ${TARGETPLATFORM}/api/ /", False),
    ],
)
def test_copies_tree(line: str, tree: bool) -> None:
    assert dockerfiles.copies_tree(f"FROM scratch\nARG TARGETPLATFORM\n{line}\n") is tree


@pytest.mark.parametrize("directory", [SHIPPED, PACKAGED], ids=["dockerfiles", "package-templates"])
def test_render_shipped_multistage(directory: Path) -> None:
    out = render((directory / "multistage.Dockerfile").read_text(), RPC, "")
    assert "@SERVICE@" not in out
    assert "@PACKAGE@" not in out
    assert "@USER@" not in out
    assert "      -o /out/rpc-user ./cmd/rpc-user" in out.splitlines()
    assert "COPY --from=builder /out/rpc-user /usr/local/bin/rpc-user" in out.splitlines()
    assert not [line for line in out.splitlines() if line.startswith("USER")]


# --- runs_target_code -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        SHIPPED / "prebuilt.Dockerfile",
        SHIPPED / "multistage.Dockerfile",
        PACKAGED / "prebuilt.Dockerfile",
        PACKAGED / "multistage.Dockerfile",
    ],
    ids=["prebuilt", "multistage", "package-prebuilt", "package-multistage"],
)
def test_shipped_templates_need_no_emulation(path: Path) -> None:
    assert runs_target_code(path.read_text()) is False


def test_go_builder_dockerfile_runs_target_code() -> None:
    # FROM scratch + RUN busybox: the RUN executes target-architecture code
    assert runs_target_code((SHIPPED / "go-builder.Dockerfile").read_text()) is True


CASES = [
    ("FROM alpine\nRUN apk add curl\n", True),
    ("FROM alpine AS base\nrun echo lower-case\n", True),
    ("FROM --platform=$BUILDPLATFORM golang AS b\nRUN go build\nFROM scratch\nCOPY --from=b /x /x\n", False),
    ("FROM --platform=${BUILDPLATFORM} golang AS b\nRUN go build\nFROM scratch\nCOPY --from=b /x /x\n", False),
    ("FROM --platform=$BUILDPLATFORM golang AS b\nRUN go build\nFROM alpine\nRUN apk add tzdata\n", True),
    ("FROM alpine\nRUN echo target\nFROM --platform=$BUILDPLATFORM golang\nRUN go build\n", True),
    ("FROM --platform=$TARGETPLATFORM alpine\nRUN true\n", True),
    ("FROM alpine\n# RUN commented out\nCOPY x /x\n", False),
    ('FROM alpine\nCOPY x /x\nENTRYPOINT ["/x"]\n', False),
    ("RUN before any FROM\n", False),
    ("", False),
]


@pytest.mark.parametrize(
    ("text", "want"),
    CASES,
    ids=[
        "single-stage-run",
        "lower-case-run",
        "pinned-builder-only",
        "pinned-builder-braces",
        "final-stage-run",
        "first-stage-run",
        "target-platform",
        "commented-run",
        "no-run",
        "run-before-from",
        "empty",
    ],
)
def test_runs_target_code(text: str, want: bool) -> None:
    assert runs_target_code(text) is want


# --- template_path and dockerfile_for -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["prebuilt", "multistage"])
def test_template_path_falls_back_to_package(tmp_path: Path, mode: str) -> None:
    assert dockerfiles.template_path(mode, tmp_path) == PACKAGED / f"{mode}.Dockerfile"


def test_template_path_prefers_project_copy(tmp_path: Path) -> None:
    local = tmp_path / "dockerfiles" / "prebuilt.Dockerfile"
    local.parent.mkdir()
    local.write_text("FROM scratch\nCOPY @SERVICE@ /\n")
    assert dockerfiles.template_path("prebuilt", tmp_path) == local
    assert dockerfiles.template_text("prebuilt", tmp_path) == "FROM scratch\nCOPY @SERVICE@ /\n"
    assert dockerfiles.template_path("multistage", tmp_path) == PACKAGED / "multistage.Dockerfile"


def _load(root: Path, body: str = "") -> config.Config:
    cfg_path = root / "config.toml"
    cfg_path.write_text('[project]\nmodule_dir = "mod"\n' + body)
    return config.load(cfg_path, Overrides(), {"SOURCE_DATE_EPOCH": "0", "VERSION": "v1"})


@pytest.mark.usefixtures("git_isolated")
def test_dockerfile_for_renders_into_output_dir(tmp_path: Path, tiny_module: Path) -> None:
    local = tmp_path / "dockerfiles" / "prebuilt.Dockerfile"
    local.parent.mkdir()
    local.write_text("FROM scratch\nCOPY @SERVICE@ /@SERVICE@\nUSER @USER@\n")
    cfg = _load(tmp_path, '[image]\nuser = "1:1"\n')
    out = dockerfiles.dockerfile_for(cfg, cfg.service("x"))
    assert out.path == tmp_path / "build" / "dockerfiles" / "x.prebuilt.Dockerfile"
    assert out.text == "FROM scratch\nCOPY x /x\nUSER 1:1\n"
    assert not out.path.exists()  # planning writes nothing; the render stage does
    dockerfiles.write(out.path, out.text)
    assert out.path.read_text() == "FROM scratch\nCOPY x /x\nUSER 1:1\n"


@pytest.mark.usefixtures("git_isolated")
def test_dockerfile_for_uses_service_mode(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _load(tmp_path, '[[services]]\nname = "x"\nmode = "multistage"\n')
    out = dockerfiles.dockerfile_for(cfg, cfg.service("x"))
    assert out.path.name == "x.multistage.Dockerfile"
    assert "-o /out/x ./cmd/x" in out.text


@pytest.mark.usefixtures("git_isolated")
def test_dockerfile_for_own_dockerfile_used_as_is(tmp_path: Path, tiny_module: Path) -> None:
    own = tmp_path / "Dockerfile.x"
    own.write_text("FROM scratch\nCOPY @SERVICE@ /\n")
    cfg = _load(tmp_path, '[[services]]\nname = "x"\ndockerfile = "Dockerfile.x"\n')
    assert dockerfiles.dockerfile_for(cfg, cfg.service("x")).path == own.resolve()
    assert own.read_text() == "FROM scratch\nCOPY @SERVICE@ /\n"
    assert not (tmp_path / "build").exists()


@pytest.mark.usefixtures("git_isolated")
def test_dockerfile_for_missing_own_dockerfile(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _load(tmp_path, '[image]\ndockerfile = "nope.Dockerfile"\n')
    with pytest.raises(UserError) as info:
        dockerfiles.dockerfile_for(cfg, cfg.service("x"))
    assert str(info.value) == (
        f"{cfg.path}: Dockerfile {(tmp_path / 'nope.Dockerfile').resolve()} for service 'x' does not exist"
    )


# --- one shared builder stage in multistage mode ---------------------------------------------------


def _multi(root: Path, body: str = "") -> config.Config:
    for name in ("a", "b", "c"):
        (root / "mod" / "cmd" / name).mkdir(parents=True, exist_ok=True)
        (root / "mod" / "cmd" / name / "main.go").write_text("package main\n\nfunc main() {}\n")
    services = "".join(f'[[services]]\nname = "{n}"\n' for n in ("a", "b", "c"))
    return _load(root, '[image]\nmode = "multistage"\n' + body + services)


def _builder_stage(rendered: dockerfiles.Rendered) -> str:
    text = rendered.text
    return text[text.index("FROM --platform") : text.index("FROM ${BASE_IMAGE}")]


def test_render_packages_and_output() -> None:
    text = "RUN go build -o /out/@OUTPUT@ @PACKAGES@\nCOPY --from=b /out/@SERVICE@ /\n# own: @PACKAGE@\n"
    assert render(text, RPC, "", ["./cmd/api", "./cmd/rpc-user"], "") == (
        "RUN go build -o /out/ ./cmd/api ./cmd/rpc-user\nCOPY --from=b /out/rpc-user /\n# own: ./cmd/rpc-user\n"
    )


@pytest.mark.usefixtures("git_isolated")
def test_multistage_services_share_one_identical_builder_stage(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _multi(tmp_path)
    everyone = list(cfg.services)
    paths = [dockerfiles.dockerfile_for(cfg, s, dockerfiles.shared_builder(cfg, everyone)) for s in everyone]
    stages = {_builder_stage(p) for p in paths}
    assert len(stages) == 1  # byte for byte: BuildKit builds it once per platform
    (stage,) = stages
    assert "-o /out/ ./cmd/a ./cmd/b ./cmd/c\n" in stage
    assert "COPY --from=builder /out/b /usr/local/bin/b" in paths[1].text


@pytest.mark.usefixtures("git_isolated")
def test_multistage_service_specific_x_value_builds_alone(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _multi(tmp_path, '[go.x]\n"main.name" = "{service}"\n')
    out = dockerfiles.dockerfile_for(cfg, cfg.service("a"), dockerfiles.shared_builder(cfg, cfg.services))
    assert "-o /out/a ./cmd/a\n" in out.text


@pytest.mark.usefixtures("git_isolated")
def test_multistage_renamed_service_builds_alone(tmp_path: Path, tiny_module: Path) -> None:
    cfg = _multi(tmp_path, '[[services]]\nname = "gw"\npackage = "./cmd/a"\n')
    shared = dockerfiles.shared_builder(cfg, cfg.services)
    gw = dockerfiles.dockerfile_for(cfg, cfg.service("gw"), shared)
    assert "-o /out/gw ./cmd/a\n" in gw.text
    # ./cmd/a is named twice (a and gw), so a is built on its own too
    assert "-o /out/a ./cmd/a\n" in dockerfiles.dockerfile_for(cfg, cfg.service("a"), shared).text
    assert "-o /out/ ./cmd/b ./cmd/c\n" in dockerfiles.dockerfile_for(cfg, cfg.service("b"), shared).text


@pytest.mark.usefixtures("git_isolated")
def test_bake_exports_the_shared_builder_cache_once(tmp_path: Path, tiny_module: Path) -> None:
    from crossbuild import bake as bake_mod
    from crossbuild import plan
    from crossbuild.platforms import parse_platform

    cfg = _multi(tmp_path, '[[services]]\nname = "gw"\npackage = "./cmd/a"\n')
    targets = plan.plan(cfg, [parse_platform("linux/arm64")], list(cfg.services)).targets
    bake = bake_mod.definition(cfg, targets, lambda t: [], with_tags=False, index=True)["target"]
    shared = tmp_path / "build" / "cache" / "buildkit" / "shared"
    assert bake["b"]["cache-to"] == [f"type=local,dest={shared},mode=max"]  # b is the first sharing service
    assert "cache-to" not in bake["c"]
    assert bake["gw"]["cache-to"] == [f"type=local,dest={shared.parent / 'gw'},mode=max"]
    assert "cache-from" not in bake["c"]  # nothing exported yet
    (shared / "index.json").parent.mkdir(parents=True)
    (shared / "index.json").write_text("{}")
    bake = bake_mod.definition(cfg, targets, lambda t: [], with_tags=False, index=True)["target"]
    assert bake["b"]["cache-from"] == bake["c"]["cache-from"] == [f"type=local,src={shared}"]


@pytest.mark.usefixtures("git_isolated")
def test_bake_uses_the_registry_cache_when_cache_ref_is_set(tmp_path: Path, tiny_module: Path) -> None:
    from crossbuild import bake as bake_mod
    from crossbuild import plan
    from crossbuild.platforms import parse_platform

    cfg = _multi(tmp_path, 'cache_ref = "registry.example/team/cache/"\n')
    targets = plan.plan(cfg, [parse_platform("linux/arm64")], list(cfg.services)).targets
    bake = bake_mod.definition(cfg, targets, lambda t: [], with_tags=False, index=True)["target"]
    ref = "registry.example/team/cache:shared"
    assert bake["a"]["cache-to"] == [f"type=registry,ref={ref},mode=max"]
    assert [bake[n]["cache-from"] for n in ("a", "b", "c")] == [[f"type=registry,ref={ref}"]] * 3
    assert "cache-to" not in bake["b"] and "cache-to" not in bake["c"]
