"""The image plan: services x platforms x tags, computed once and written nowhere.

One ImageTarget per service: its repository and tags, the rendered Dockerfile (the
text; the render stage writes it), the build context and arguments, the labels and
its BuildKit cache. `content_key` says what decides the pushed index, so the
decide stage can tell what is unchanged without building anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crossbuild import dockerfiles, gobuild, incremental, rootfs
from crossbuild.config import Config, Service, fill_template
from crossbuild.platforms import Platform


def bake_name(service: Service) -> str:
    """The service's bake target name (letters, digits, _ and -)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", service.name)


@dataclass(frozen=True)
class ImageTarget:
    service: Service
    repository: str  # registry/prefix/name, no tag
    tags: tuple[str, ...]
    platforms: tuple[Platform, ...]
    dockerfile: Path  # where the Dockerfile is (crossbuild's are written there by the render stage)
    context: Path
    args: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...] = ()  # OCI annotations of the index and each manifest
    # BuildKit cache of a multistage build: "shared" for the shared builder stage, else
    # the service's own; "" = none (prebuilt images are two COPY steps, cheaper than
    # the cache round trip)
    cache_name: str = ""
    dockerfile_text: str = ""
    rendered: bool = True  # crossbuild renders it from a template (False: the user's own file)
    # its layers are reproducible as built (it copies a crossbuild.rootfs tree): no rewrite-timestamp
    fixed_times: bool = False
    # a target cut down to some of the service's platforms (crossbuild.earlybake): its bake target
    # is named after them, <service>-<os>-<arch>[-...], and its index is a part of the service's
    part: bool = False

    @property
    def bake_name(self) -> str:
        name = bake_name(self.service)
        return "-".join([name, *(p.slug for p in self.platforms)]) if self.part else name

    def refs(self) -> list[str]:
        return [f"{self.repository}:{t}" for t in self.tags]

    def reads_base_image(self) -> bool:
        return "BASE_IMAGE" in self.dockerfile_text

    def runs_target_code(self) -> bool:
        return dockerfiles.runs_target_code(self.dockerfile_text)


@dataclass(frozen=True)
class ImagePlan:
    targets: tuple[ImageTarget, ...]
    tree: str = field(default="", compare=False)  # the module's tree hash, when a multistage target needs it

    def prebuilt_services(self, cfg: Config) -> list[Service]:
        """The services whose images copy a host-built binary (they need the compile stage)."""
        return [t.service for t in self.targets if cfg.mode_of(t.service) == "prebuilt" and not t.service.dockerfile]

    def multistage(self, cfg: Config) -> list[ImageTarget]:
        return [t for t in self.targets if cfg.mode_of(t.service) == "multistage"]


def _templated(cfg: Config, service: Service, table: tuple[tuple[str, str], ...], where: str) -> dict[str, str]:
    values = cfg.template_values(service)
    return {key: fill_template(value, values, f"{where}.{key}") for key, value in table}


def _standard_keys(cfg: Config, service: Service) -> dict[str, str]:
    """The image-spec keys (annotations.md) every image carries, as labels and as annotations."""
    values = {
        "org.opencontainers.image.title": service.name,
        "org.opencontainers.image.version": cfg.version.version,
        "org.opencontainers.image.revision": cfg.version.commit,
        "org.opencontainers.image.created": cfg.version.date,
    }
    if cfg.source:
        values["org.opencontainers.image.source"] = cfg.source
    return values


def labels(cfg: Config, service: Service) -> dict[str, str]:
    """OCI annotation keys as labels (image-spec annotations.md); [image] labels filled like tags."""
    values = _standard_keys(cfg, service)
    values.update(_templated(cfg, service, cfg.image.labels, "image.labels"))
    return values


def oci_annotations(cfg: Config, service: Service) -> dict[str, str]:
    """The OCI annotations of the index and of each platform's manifest (image-spec annotations.md):
    registries that show a description for a multi-arch image read the index's, not the config's labels.
    [image] annotations adds or overrides, filled like tags."""
    values = _standard_keys(cfg, service)
    if cfg.description:
        values["org.opencontainers.image.description"] = cfg.description
    values.update(_templated(cfg, service, cfg.image.annotations, "image.annotations"))
    return values


def build_args(cfg: Config, service: Service, base_image: str | None = None) -> dict[str, str]:
    """The --build-arg values of one service's image.

    `base_image` is the runtime base the build really uses: the static base that
    base.ensure built, pinned by digest (so the digest is in the content key).
    Without it BASE_IMAGE is [image] base_image as configured, which is all that
    callers that only read repositories and tags (setup, doctor, manifest) need.
    """
    # SOURCE_DATE_EPOCH fixes the image config's timestamps (BuildKit docs, "build reproducibility");
    # with rewrite-timestamp=true on the exporter it also clamps file mtimes in the layers.
    args = {"BASE_IMAGE": base_image or cfg.image.base_image, "SOURCE_DATE_EPOCH": str(cfg.version.epoch)}
    if cfg.mode_of(service) == "multistage":
        args.update(
            GO_IMAGE=cfg.image.go_image,
            LDFLAGS=gobuild.ldflags(cfg, service),
            GO_TAGS=",".join(cfg.go.tags),
            CGO_ENABLED="1" if cfg.go.cgo else "0",
            TRIMPATH="-trimpath" if cfg.go.trimpath else "",
        )
    return args


def _prebuilt_context(cfg: Config, text: str, own: bool) -> tuple[Path, dict[str, str]]:
    """(context, extra build args) of a prebuilt image.

    crossbuild's template builds from its layer trees (crossbuild.rootfs), an older one from
    the binary directory itself, so nothing in the repository (a deny-all .dockerignore)
    can hide the binaries and the image does not depend on where output_dir is. A service's
    own Dockerfile, or an older template that copies ${BIN_DIR}/..., keeps the repository
    root and gets BIN_DIR.
    """
    if not own and dockerfiles.copies_tree(text):
        return rootfs.root(cfg), {}
    if not own and dockerfiles.uses_bin_context(text):
        return cfg.bin_dir, {}
    return cfg.root, {"BIN_DIR": os.path.relpath(cfg.bin_dir.resolve(), cfg.root.resolve())}


def plan(
    cfg: Config, platforms: Sequence[Platform], services: Sequence[Service], base_image: str | None = None
) -> ImagePlan:
    """One target per service; `base_image` as in build_args (required to build with the static base).

    Pure: the Dockerfiles are rendered in memory; nothing is written.
    """
    targets = []
    shared = dockerfiles.shared_builder(cfg, services)
    for s in services:
        mode = cfg.mode_of(s)
        rendered = dockerfiles.dockerfile_for(cfg, s, shared)
        args = build_args(cfg, s, base_image)
        if mode == "multistage":
            context = cfg.module_dir
        else:
            context, extra = _prebuilt_context(cfg, rendered.text, not rendered.rendered)
            args.update(extra)
        targets.append(
            ImageTarget(
                service=s,
                repository=cfg.image_ref(s),
                tags=cfg.image_tags(s),
                platforms=tuple(platforms),
                dockerfile=rendered.path,
                context=context,
                args=tuple(args.items()),
                labels=tuple(labels(cfg, s).items()),
                annotations=tuple(oci_annotations(cfg, s).items()),
                cache_name=("shared" if s in shared else bake_name(s)) if mode == "multistage" else "",
                dockerfile_text=rendered.text,
                rendered=rendered.rendered,
                fixed_times=mode == "prebuilt" and context == rootfs.root(cfg),
            )
        )
    return ImagePlan(tuple(targets))


def layer_options(cfg: Config, t: ImageTarget) -> str:
    """How every output writes a target's layers: gzip at [image] compression_level, file times
    at SOURCE_DATE_EPOCH (rewritten by BuildKit unless the target's tree carries them already)."""
    times = "" if t.fixed_times else "rewrite-timestamp=true,"
    return f"{times}compression=gzip,compression-level={cfg.image.compression_level}"


def push_output(cfg: Config, t: ImageTarget) -> str:
    """The exporter that pushes one image by digest only."""
    return f"type=image,name={t.repository},push-by-digest=true,name-canonical=true,push=true,{layer_options(cfg, t)}"


def content_key(cfg: Config, t: ImageTarget, tree: str = "") -> str:
    """Everything that decides the pushed index's content, hashed.

    `tree`: the module's tree hash (computed once per run by the caller for multistage targets).
    """
    return incremental.key_of({**frame(cfg, t), "inputs": key_inputs(cfg, t, tree)})


def frame_key(cfg: Config, t: ImageTarget) -> str:
    """The content key without its inputs: what decides the index besides the binaries (known
    before they are built, so a platform's images can start as soon as its binaries exist)."""
    return incremental.key_of(frame(cfg, t))


def frame(cfg: Config, t: ImageTarget) -> dict[str, object]:
    return {
        "repository": t.repository,
        "platforms": [str(p) for p in t.platforms],
        "dockerfile": t.dockerfile_text,
        "args": dict(t.args),
        "labels": dict(t.labels),
        "annotations": dict(t.annotations),
        "provenance": cfg.image.provenance,
        "output": [push_output(cfg, t)],  # compression level, timestamps
        # the attached SBOM changes the index; a new signer must sign it again
        "sbom": cfg.image.sbom_format if cfg.image.sbom else "",
        "signer": cfg.sign.signer,
    }


def key_inputs(cfg: Config, t: ImageTarget, tree: str = "") -> dict[str, str]:
    """What the images are built from: the module's tree (multistage), else each platform's binary digest."""
    if cfg.mode_of(t.service) == "multistage":
        return {"tree": tree or incremental.tree_hash(cfg.module_dir, exclude=[cfg.output_dir])}
    inputs = {}
    for p in t.platforms:
        path = gobuild.binary_path(cfg.bin_dir, p, t.service)
        inputs[str(p)] = incremental.file_digest(path) if path.is_file() else "missing"
    return inputs


def leg_config(cfg: Config, service: Service) -> str:
    """A digest of everything but the platform and the version that decides a service's image.

    CI matrix legs record it with their digest; `manifest` merges only legs that agree.
    The static base is compared as configured, not as resolved: native runners build
    it from their own host packages.
    """
    go = cfg.go_for(service)
    return incremental.key_of(
        {
            "repository": cfg.image_ref(service),
            "package": service.package,
            "cmd": list(service.cmd),
            "dockerfile": service.dockerfile or cfg.image.dockerfile,
            "mode": cfg.mode_of(service),
            "image": [
                cfg.image.base_image,
                cfg.image.user,
                list(cfg.image.labels),
                list(cfg.image.expose),
                list(cfg.image.annotations),
                cfg.description,
            ],
            "compression": cfg.image.compression_level,
            "provenance": cfg.image.provenance,
            "go": [list(go.ldflags), list(go.x), list(go.tags), go.cgo, go.trimpath, list(go.env)],
        }
    )[:16]
