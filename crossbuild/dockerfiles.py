"""The Dockerfile templates in dockerfiles/, rendered per service.

Exec-form ENTRYPOINT does not expand build arguments, so the service name is
rendered into a per-service copy under build/dockerfiles/ (placeholders
@SERVICE@, @PACKAGE@, @USER@). A service's own Dockerfile is used as it is.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

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


def render(text: str, service: Service, user: str) -> str:
    lines = []
    for line in text.splitlines():
        if "@USER@" in line and not user:
            continue
        lines.append(
            line.replace("@SERVICE@", service.binary_name).replace("@PACKAGE@", service.package).replace("@USER@", user)
        )
    return "\n".join(lines) + "\n"


def dockerfile_for(cfg: Config, service: Service) -> Path:
    """Path of the Dockerfile that builds `service`, rendering templates as needed."""
    own = service.dockerfile or cfg.image.dockerfile
    if own:
        path = (cfg.root / own).resolve()
        if not path.is_file():
            raise UserError(f"{cfg.path}: Dockerfile {path} for service '{service.name}' does not exist")
        return path
    mode = cfg.mode_of(service)
    text = render(template_text(mode, cfg.root), service, cfg.image.user)
    out = cfg.output_dir / "dockerfiles" / f"{service.name}.{mode}.Dockerfile"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.is_file() or out.read_text() != text:
        out.write_text(text)
    return out


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
