"""The Dockerfile templates in dockerfiles/, rendered per service.

Exec-form ENTRYPOINT does not expand build arguments, so the service name is
rendered into a per-service copy under build/dockerfiles/. Placeholders:
@SERVICE@ (binary name), @USER@, @EXPOSE@ ([image] expose), @CMD@ (the service's
`cmd`, exec form), and for the Go build @PACKAGES@ (every package the
builder stage compiles) and @OUTPUT@ (`` for `-o /out/` when it builds several,
else the binary name); @PACKAGE@ (the service's own package) is kept for older
project templates. A service's own Dockerfile is used as it is.

In multistage mode the services that one `go build` can compile together get the
same builder stage, byte for byte, so BuildKit builds it once per platform and
every image copies its binary out of it (instead of one Go build per service).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from crossbuild import gobuild
from crossbuild.config import Config, Service
from crossbuild.errors import UserError

TEMPLATES = ("prebuilt", "multistage")


def template_path(mode: str, root: Path) -> Path:
    """The project's dockerfiles/<mode>.Dockerfile, else the copy shipped in the package."""
    local = root / "dockerfiles" / f"{mode}.Dockerfile"
    if local.is_file():
        return local
    return Path(str(resources.files("crossbuild").joinpath("templates", f"{mode}.Dockerfile")))


def template_text(mode: str, root: Path) -> str:
    return template_path(mode, root).read_text()


def render(
    text: str,
    service: Service,
    user: str,
    packages: Sequence[str] | None = None,
    output: str | None = None,
    expose: Sequence[str] = (),
) -> str:
    """The template with the service's values; a line whose optional placeholder is empty is left out."""
    values = {
        "@PACKAGES@": " ".join(packages if packages is not None else [service.package]),
        "@PACKAGE@": service.package,
        "@OUTPUT@": output if output is not None else service.binary_name,
        "@SERVICE@": service.binary_name,
        "@USER@": user,
        "@EXPOSE@": " ".join(expose),
        # exec form: JSON is what the Dockerfile reference specifies for CMD ["a", "b"]
        "@CMD@": json.dumps(list(service.cmd)) if service.cmd else "",
    }
    optional = ("@USER@", "@EXPOSE@", "@CMD@")
    lines = []
    for line in text.splitlines():
        if any(p in line and not values[p] for p in optional):
            continue
        rendered = line
        for placeholder, value in values.items():  # @PACKAGES@ before @PACKAGE@
            rendered = rendered.replace(placeholder, value)
        lines.append(rendered)
    return "\n".join(lines) + "\n"


def shared_builder(cfg: Config, services: Sequence[Service]) -> list[Service]:
    """The multistage services, of those built together, that share one builder stage."""
    if cfg.image.dockerfile:
        return []
    templated = [s for s in services if cfg.mode_of(s) == "multistage" and not s.dockerfile]
    return gobuild.shared_and_single(cfg, templated)[0]


@dataclass(frozen=True)
class Rendered:
    path: Path  # the user's own Dockerfile, or where crossbuild writes the rendered template
    text: str
    rendered: bool  # crossbuild rendered it (the render stage writes it to `path`)


def dockerfile_for(cfg: Config, service: Service, shared: Sequence[Service] = ()) -> Rendered:
    """The Dockerfile that builds `service`: its own, or the mode's template rendered (in memory).

    `shared` (from shared_builder) compile together in one builder stage.
    """
    own = service.dockerfile or cfg.image.dockerfile
    if own:
        path = (cfg.root / own).resolve()
        if not path.is_file():
            raise UserError(f"{cfg.path}: Dockerfile {path} for service '{service.name}' does not exist")
        return Rendered(path, path.read_text(), rendered=False)
    mode = cfg.mode_of(service)
    packages, output = None, None
    if mode == "multistage" and service in shared:
        packages, output = [s.package for s in shared], ""
    text = render(template_text(mode, cfg.root), service, cfg.image.user, packages, output, cfg.image.expose)
    return Rendered(cfg.output_dir / "dockerfiles" / f"{service.name}.{mode}.Dockerfile", text, rendered=True)


def write(path: Path, text: str) -> None:
    """Write a rendered Dockerfile, leaving an unchanged one (and its mtime) alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


_FROM = re.compile(r"^\s*FROM\s+(?P<rest>.+)$", re.IGNORECASE)
_RUN = re.compile(r"^\s*RUN\s", re.IGNORECASE)


def runs_target_code(text: str) -> bool:
    """True when some stage not pinned to $BUILDPLATFORM has a RUN step.

    Such a step executes target-architecture code and needs QEMU binfmt
    handlers on the build host for every foreign platform.
    """
    native = True
    for line in text.splitlines():
        m = _FROM.match(line)
        if m:
            native = "--platform=$BUILDPLATFORM" in m.group("rest").replace("${BUILDPLATFORM}", "$BUILDPLATFORM")
        elif _RUN.match(line) and not native:
            return True
    return False


_COPIES_TREE = re.compile(r"^COPY\s+\$\{TARGETPLATFORM\}/[^/\s]+/\s+/\s*$", re.MULTILINE)


def copies_tree(text: str) -> bool:
    """A prebuilt Dockerfile copies its binary's whole layer tree (`COPY ${TARGETPLATFORM}/<binary>/ /`)
    from build/rootfs, whose entries carry fixed times already (crossbuild.rootfs)."""
    return bool(_COPIES_TREE.search(text))


def uses_bin_context(text: str) -> bool:
    """A prebuilt Dockerfile copies from crossbuild's binary directory as its context.

    Older project templates (`COPY ${BIN_DIR}/${TARGETPLATFORM}/...`) expect the
    repository root as context and the BIN_DIR build argument instead.
    """
    return "BIN_DIR" not in text
