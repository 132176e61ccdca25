"""GitHub Actions workflows for a crossbuild repository, generated from its Config.

Two shapes, both triggered by a pushed `v*` tag, a published release or by hand:

* single job (`matrix=False`): one x86 runner registers QEMU, creates a
  `docker-container` buildx builder under the name in `[builder] name`, logs
  in, runs `make image.multiarch` (cross-compile, one bake over every image
  platform, verify, move the tags) and `make verify`;
* matrix (`matrix=True`): one job per image platform on a runner of that CPU
  (`ubuntu-24.04` for amd64/386, `ubuntu-24.04-arm` for arm64/arm, the x86
  runner with QEMU for the rest), each pushing its images by digest and
  uploading `<output_dir>/digests/` as artifact `digests-<platform slug>`; a
  final `manifest` job downloads every digest and runs `make manifest` and
  `make verify`.

The text is built from a dict and dumped with PyYAML in a fixed key order, so
the same Config always gives the same bytes. The repository's own
`.github/workflows/multiarch*.yml` are this output for its `config.toml`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from crossbuild import platforms as plat
from crossbuild.config import Config
from crossbuild.errors import UserError
from crossbuild.hosts import is_loopback
from crossbuild.oci import parse_reference
from crossbuild.platforms import Platform

# Actions pinned by major version tag (each known to actionlint's popular-actions data).
ACTIONS = {
    "checkout": "actions/checkout@v6",
    "setup-go": "actions/setup-go@v6",
    "setup-python": "actions/setup-python@v6",
    "setup-qemu": "docker/setup-qemu-action@v4",
    "setup-buildx": "docker/setup-buildx-action@v4",
    "login": "docker/login-action@v4",
    "upload-artifact": "actions/upload-artifact@v7",
    "download-artifact": "actions/download-artifact@v8",
    "cosign": "sigstore/cosign-installer@v3",
}
# The publishing job signs every index keyless: GitHub's OIDC token is the identity (Fulcio certificate,
# Rekor entry), so no key is stored in the repository; the job needs `id-token: write` for that token.
SIGN_PERMISSIONS = {"contents": "read", "id-token": "write"}
PYTHON_VERSION = "3.11"
AMD64_RUNNER = "ubuntu-24.04"
ARM64_RUNNER = "ubuntu-24.04-arm"
ARTIFACT_PREFIX = "digests-"
WORKFLOW_FILES = {False: "multiarch.yml", True: "multiarch-matrix.yml"}
SECRETS = ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")
VARIABLES = ("REGISTRY", "REGISTRY_PREFIX")

# GOARCH -> (runner, QEMU needed). 32-bit arm runs on the arm64 runner with QEMU
# registered as well: not every arm64 server CPU executes AArch32 code natively,
# and BuildKit only offers linux/arm/v7 when something can run it.
_NATIVE: dict[str, tuple[str, bool]] = {
    "amd64": (AMD64_RUNNER, False),
    "386": (AMD64_RUNNER, False),
    "arm64": (ARM64_RUNNER, False),
    "arm": (ARM64_RUNNER, True),
}
# Characters actions/upload-artifact refuses in a name (" : < > | * ? \r \n \ /"), and spaces.
_ARTIFACT_UNSAFE = re.compile(r"[\"':<>|*?\\/\s]+")


def runner_for(platform: Platform) -> tuple[str, bool]:
    """The GitHub-hosted runner label that builds `platform`, and whether it needs QEMU."""
    return _NATIVE.get(platform.arch, (AMD64_RUNNER, True))


def artifact_name(platform: Platform | str) -> str:
    """A per-platform artifact name with the slashes made safe: digests-linux-arm-v7."""
    slug = _ARTIFACT_UNSAFE.sub("-", str(platform)).strip("-")
    if not slug:
        raise UserError(f"platform {platform!r} gives an empty artifact name")
    return ARTIFACT_PREFIX + slug


def matrix_include(platforms: tuple[Platform, ...]) -> list[dict[str, Any]]:
    """The `strategy.matrix.include` entries: one per image platform, in config order."""
    legs: list[dict[str, Any]] = []
    for p in platforms:
        runner, qemu = runner_for(p)
        legs.append({"platform": str(p), "runner": runner, "artifact": artifact_name(p), "qemu": qemu})
    names = [leg["artifact"] for leg in legs]
    if len(set(names)) != len(names):
        raise UserError(f"two platforms give the same artifact name: {', '.join(names)}")
    return legs


def default_path(cfg: Config, matrix: bool) -> Path:
    """Where `invoke ci.github` writes by default: .github/workflows/ next to the config file."""
    return cfg.root / ".github" / "workflows" / WORKFLOW_FILES[matrix]


def _rel(path: Path, repo_root: Path, what: str) -> str:
    try:
        rel = path.resolve().relative_to(repo_root.resolve())
    except ValueError:
        raise UserError(
            f"{what} {path} is outside the repository {repo_root}: the workflow only has the repository's checkout"
        ) from None
    return rel.as_posix() or "."


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p and p != ".")


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line strings as `|` blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(data: dict[str, Any]) -> str:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096, indent=2)
    # PyYAML quotes the key `on` (a YAML 1.1 boolean); GitHub reads the plain key the same way.
    text = re.sub(r"^'on':", "on:", text, flags=re.MULTILINE)
    lines: list[str] = []
    in_jobs = False
    for line in text.splitlines():
        top = not line.startswith(" ")
        job = in_jobs and re.match(r"^  [A-Za-z_][\w-]*:$", line) is not None
        if lines and (top or job) and lines[-1] != "jobs:":
            lines.append("")  # a blank line between top-level sections and between jobs
        if top:
            in_jobs = line == "jobs:"
        lines.append(line)
    return "\n".join(lines) + "\n"


class _Steps:
    """The steps both shapes share, with the repository's paths and names filled in."""

    def __init__(self, cfg: Config, repo_root: Path) -> None:
        self.cfg = cfg
        self.go_mod = _join(_rel(cfg.module_dir, repo_root, "project.module_dir"), "go.mod")
        self.digests = _join(_rel(cfg.output_dir, repo_root, "project.output_dir"), "digests")
        self.workdir = _rel(cfg.root, repo_root, "the config file's directory")
        prefix = cfg.image.registry_prefix
        self.local_prefix = is_loopback(parse_reference(prefix + "/x").registry)
        if self.local_prefix:
            # a loopback registry is of no use on a runner: the repository variables must say where
            self.prefix_expr = "${{ vars.REGISTRY_PREFIX }}"
            self.registry_expr = "${{ vars.REGISTRY }}"
        else:
            registry = parse_reference(prefix + "/x").registry
            self.prefix_expr = f"${{{{ vars.REGISTRY_PREFIX || '{prefix}' }}}}"
            self.registry_expr = f"${{{{ vars.REGISTRY || '{registry}' }}}}"

    def env(self) -> dict[str, str]:
        env = {"REGISTRY_PREFIX": self.prefix_expr}
        if self.cfg.path.name != "config.toml":
            env["CROSSBUILD_CONFIG"] = self.cfg.path.name
        return env

    def check_settings(self) -> dict[str, Any]:
        return {
            "name": "Check the registry settings",
            "run": (
                'if [ -z "$REGISTRY_PREFIX" ]; then\n'
                '  echo "::error::set the repository variable REGISTRY_PREFIX '
                '(e.g. ghcr.io/OWNER/NAME) and REGISTRY (e.g. ghcr.io)"\n'
                "  exit 1\n"
                "fi\n"
            ),
        }

    def checkout(self) -> dict[str, Any]:
        return {
            "name": "Check out the full history (the version comes from git describe)",
            "uses": ACTIONS["checkout"],
            "with": {"fetch-depth": 0},
        }

    def setup_go(self) -> dict[str, Any]:
        return {
            "name": "Set up Go",
            "uses": ACTIONS["setup-go"],
            "with": {
                "go-version": "${{ inputs.go-version }}",
                "go-version-file": self.go_mod,
                "cache-dependency-path": self.go_mod,
            },
        }

    def setup_python(self) -> dict[str, Any]:
        return {"name": "Set up Python", "uses": ACTIONS["setup-python"], "with": {"python-version": PYTHON_VERSION}}

    def qemu(self, condition: str | None = None) -> dict[str, Any]:
        step: dict[str, Any] = {"name": "Set up QEMU (foreign platforms and smoke runs)"}
        if condition:
            step["if"] = condition
        step["uses"] = ACTIONS["setup-qemu"]
        return step

    def buildx(self) -> dict[str, Any]:
        return {
            "name": f"Create the buildx builder '{self.cfg.builder.name}' ([builder] name)",
            "uses": ACTIONS["setup-buildx"],
            "with": {"name": self.cfg.builder.name, "driver": "docker-container"},
        }

    def login(self) -> dict[str, Any]:
        return {
            "name": "Log in to the registry",
            "uses": ACTIONS["login"],
            "with": {
                "registry": self.registry_expr,
                "username": "${{ secrets.REGISTRY_USERNAME }}",
                "password": "${{ secrets.REGISTRY_PASSWORD }}",
            },
        }

    def make(self, target: str, name: str) -> dict[str, Any]:
        return {"name": name, "run": f'make {target} REGISTRY_PREFIX="$REGISTRY_PREFIX"'}

    def cosign(self) -> dict[str, Any]:
        return {"name": "Install cosign (keyless signing of every index)", "uses": ACTIONS["cosign"]}

    def signed(self, step: dict[str, Any]) -> dict[str, Any]:
        """A publishing step that signs keyless (SIGN=keyless overrides [sign])."""
        return {**step, "env": {"SIGN": "keyless"}}

    def head(self) -> list[dict[str, Any]]:
        steps = [self.check_settings()] if self.local_prefix else []
        return [*steps, self.checkout(), self.setup_go(), self.setup_python()]


def _triggers() -> dict[str, Any]:
    return {
        "push": {"tags": ["v*"]},
        "release": {"types": ["published"]},
        "workflow_dispatch": {
            "inputs": {
                "go-version": {
                    "description": "Go version (default: the go line of go.mod)",
                    "required": False,
                    "default": "",
                    "type": "string",
                }
            }
        },
    }


def _header(cfg: Config, matrix: bool, repo_root: Path) -> str:
    config = _rel(cfg.path, repo_root, "the config file")
    shape = (
        "one job per image platform on a runner of that CPU, pushed by digest,\n#   merged by a final manifest job"
        if matrix
        else "every image platform on one x86 runner (QEMU for the smoke runs of foreign images)"
    )
    flag = " --matrix" if matrix else ""
    return (
        f"# Multi-arch images of {cfg.name}: {shape}.\n"
        f"# Generated by crossbuild from {config}; regenerate with `invoke ci.github{flag} --force`.\n"
        f"# Repository secrets: {', '.join(SECRETS)}; variables: {', '.join(VARIABLES)}.\n"
    )


def github_workflow(cfg: Config, matrix: bool, *, repo_root: Path | None = None) -> str:
    """The workflow's YAML text for this Config (same Config, same bytes).

    `repo_root` is the repository the workflow runs in (default: the config
    file's directory); every path in the workflow is relative to it.
    """
    root = repo_root or cfg.root
    plat.require_image_platforms(cfg.image_platforms)
    s = _Steps(cfg, root)
    workflow: dict[str, Any] = {
        "name": f"{cfg.name} multi-arch images" + (" (native runners)" if matrix else ""),
        "on": _triggers(),
        "permissions": {"contents": "read"},
        "concurrency": {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": False},
        "env": s.env(),
    }
    if s.workdir != ".":
        workflow["defaults"] = {"run": {"working-directory": s.workdir}}
    if not matrix:
        workflow["jobs"] = {
            "multiarch": {
                "name": "build, push and verify",
                "runs-on": AMD64_RUNNER,
                "timeout-minutes": 90,
                "permissions": SIGN_PERMISSIONS,
                "steps": [
                    *s.head(),
                    s.qemu(),
                    s.buildx(),
                    s.login(),
                    s.cosign(),
                    s.signed(
                        s.make(
                            "image.multiarch", "Build every platform, push one index per service, sign, move the tags"
                        )
                    ),
                    s.signed(s.make("verify", "Verify the published images and their signatures")),
                ],
            }
        }
        return _header(cfg, matrix, root) + _dump(workflow)
    workflow["jobs"] = {
        "build": {
            "name": "build ${{ matrix.platform }}",
            "runs-on": "${{ matrix.runner }}",
            "timeout-minutes": 60,
            "strategy": {"fail-fast": True, "matrix": {"include": matrix_include(cfg.image_platforms)}},
            "steps": [
                *s.head(),
                s.qemu("matrix.qemu"),
                s.buildx(),
                s.login(),
                {"name": "Install crossbuild", "run": "python -m pip install -e ."},
                {
                    "name": "Push ${{ matrix.platform }} by digest",
                    "env": {"PLATFORM": "${{ matrix.platform }}"},
                    "run": 'invoke image --platform "$PLATFORM" --push-by-digest',
                },
                {
                    "name": "Upload the digests",
                    "uses": ACTIONS["upload-artifact"],
                    "with": {
                        "name": "${{ matrix.artifact }}",
                        "path": s.digests + "/",
                        "if-no-files-found": "error",
                        "retention-days": 1,
                    },
                },
            ],
        },
        "manifest": {
            "name": "merge one index per service",
            "needs": "build",
            "runs-on": AMD64_RUNNER,
            "timeout-minutes": 30,
            "permissions": SIGN_PERMISSIONS,
            "steps": [
                *s.head(),
                s.qemu(),
                s.buildx(),
                s.login(),
                s.cosign(),
                {
                    "name": "Download every platform's digests",
                    "uses": ACTIONS["download-artifact"],
                    "with": {"pattern": ARTIFACT_PREFIX + "*", "path": s.digests, "merge-multiple": True},
                },
                s.signed(
                    s.make(
                        "manifest",
                        "Merge the digests into one index per service, verify each, then move the tags (signed)",
                    )
                ),
            ],
        },
    }
    return _header(cfg, matrix, root) + _dump(workflow)


def _repo_root_of(path: Path, fallback: Path) -> Path:
    """The repository a workflow file belongs to: the parent of .github/workflows/."""
    parent = path.resolve().parent
    if parent.name == "workflows" and parent.parent.name == ".github":
        return parent.parent.parent
    return fallback


def write_workflow(cfg: Config, path: Path, matrix: bool = False, force: bool = False) -> Path:
    """Write the workflow to `path`; an existing file is only replaced with `force`."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory: give the workflow's file name, e.g. {path / WORKFLOW_FILES[matrix]}")
    if path.exists() and not force:
        raise UserError(f"{path} already exists: pass --force to overwrite it, or choose another file")
    text = github_workflow(cfg, matrix, repo_root=_repo_root_of(path, cfg.root))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
