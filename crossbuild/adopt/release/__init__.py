"""What a repository's own release setup says about its builds, mapped to config.toml.

Read in this order; the first source that says something about a setting wins:

1. GoReleaser (`.goreleaser.yaml`/`.yml`, also in build/, .github/, scripts/):
   builds (main, binary, ldflags and -X, flags, tags, env, goos/goarch/goarm/
   goamd64, ignore, targets); promu (`.promu.yml`, the Prometheus projects'):
   binaries, ldflags and -X, -tags;
2. make and shell scripts (Makefile, *.mk, scripts/ hack/ build/ *.sh): `-X`
   assignments with the variables they expand, `-tags`, `GOARM`;
3. Go build programs (build.go, magefile.go, helpers|scripts|hack|tools|build
   *.go): build-tag lists and `GOARM=` literals;
4. Dockerfiles: the last stage's EXPOSE, USER, ENTRYPOINT/CMD arguments and
   runtime base (the base is only reported).

Every setting taken is recorded with the file it came from, and everything
that was seen but cannot be mapped is listed, so `init` can say both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossbuild.adopt.release.dockerfiles import find_dockerfiles, read_dockerfile
from crossbuild.adopt.release.goreleaser import find_goreleaser, read_goreleaser, read_promu, split_ldflags
from crossbuild.adopt.release.model import IMAGE_ARCHES, Build, ReleaseSetup, Taken
from crossbuild.adopt.release.scripts import read_go_programs, read_scripts
from crossbuild.adopt.release.templates import goreleaser_template, promu_template, shell_template

__all__ = [
    "IMAGE_ARCHES",
    "Build",
    "ReleaseSetup",
    "Taken",
    "goreleaser_template",
    "promu_template",
    "read",
    "shell_template",
    "split_ldflags",
]


def read(root: Path, module_dir: Path, binaries: Sequence[str], project: str = "app") -> ReleaseSetup:
    """The release setup of the repository at `root` (Go module at `module_dir`); `project`
    names a program whose release gives it no name of its own."""
    setup = ReleaseSetup()
    goreleaser = find_goreleaser(root)
    if goreleaser is not None:
        read_goreleaser(goreleaser, root, module_dir, setup, project)
    if (root / ".promu.yml").is_file():
        read_promu(root / ".promu.yml", root, module_dir, setup)
    read_scripts(root, setup)
    read_go_programs(root, setup)
    names = list(binaries) + [b.name for b in setup.builds]
    dockerfiles = find_dockerfiles(root)
    for path in dockerfiles:
        read_dockerfile(path, root, names, setup)
    if setup.base:
        setup.cannot(
            f"release image base {setup.base}: crossbuild's default static base (CA certificates, zoneinfo, "
            "a nonroot user) is used; set [image] base_image to run on that instead"
        )
    return setup
