"""The layer trees prebuilt images copy: build/rootfs/<key>/<platform>/<binary>/usr/local/bin/<binary>.

A prebuilt image is its base plus one layer holding the binary. For that layer to be the
same bytes on every run, every entry in it (the binary and the usr/, usr/local/ and
usr/local/bin/ directories COPY creates) needs a fixed time. BuildKit's exporter option
`rewrite-timestamp=true` does that after the fact: it decompresses each layer it exported,
rewrites the times and compresses it again, on every export, cached or not (2.2 s of an
11.5 s export per image measured here under load; the bake of 36 images 37% faster without it).

So crossbuild's prebuilt template copies a tree instead (`COPY ${TARGETPLATFORM}/<binary>/ /`)
whose every entry already carries SOURCE_DATE_EPOCH: the binary as a hard link (no copy; its
time is the binary's, set here too), the directories made here. COPY keeps the source
times, so the layer is reproducible as exported and the exporter rewrites nothing. Images
built from a service's own Dockerfile, an older template or a multistage build keep
rewrite-timestamp (plan.ImageTarget.fixed_times).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from crossbuild import incremental
from crossbuild.config import Config, Service
from crossbuild.gobuild import binary_path, digests_file
from crossbuild.platforms import Platform

INSTALL_DIR = ("usr", "local", "bin")  # where the prebuilt template puts the binary


def root(cfg: Config) -> Path:
    """Where the layer trees are: build/rootfs/<key>/ (the plan names this directory until the
    trees are written, then their keyed directory: `write`)."""
    return cfg.output_dir / "rootfs"


def tree(context: Path, platform: Platform, service: Service) -> Path:
    """What `COPY ${TARGETPLATFORM}/<binary>/ /` copies for one image of one platform."""
    return context / str(platform) / service.binary_name


def key(cfg: Config, platforms: Sequence[Platform], services: Sequence[Service]) -> str:
    """The binaries the trees hold, hashed: the name of their build context."""
    digests = [
        [str(p), s.binary_name, incremental.file_digest(binary_path(cfg.bin_dir, p, s))]
        for p in platforms
        for s in services
    ]
    return incremental.key_of({"binaries": digests})[:16]


def write(cfg: Config, platforms: Sequence[Platform], services: Sequence[Service], prune: bool = True) -> Path:
    """Link each binary into its tree, give every entry the release's time; return the context.

    The context is named after the binaries it holds (build/rootfs/<key>). BuildKit keeps a copy
    of each build context it was sent and, on the next build from the same directory, sends only
    the files whose size or time changed. Here every time is the same, so a rebuilt binary of the
    same size would not be sent at all, and a new file written into its cached directory moves
    that directory's time to now. A directory of its own for every new set of binaries is sent
    whole, with the times set here; the same binaries find the same directory again.

    `prune`: remove the trees of earlier binaries (False while other platforms' trees of this
    run are still being written: crossbuild.earlybake removes them at the end).
    """
    context = root(cfg) / key(cfg, platforms, services)
    if prune:
        remove_others(cfg, {context})
    epoch = cfg.version.epoch
    for platform in platforms:
        for service in services:
            top = tree(context, platform, service)
            shutil.rmtree(top, ignore_errors=True)  # nothing stale: exactly one file per tree
            directory = top.joinpath(*INSTALL_DIR)
            directory.mkdir(parents=True)
            binary = binary_path(cfg.bin_dir, platform, service)
            digest = incremental.file_digest(binary)
            target = directory / service.binary_name
            try:
                os.link(binary, target)
            except OSError:  # another file system, or links not allowed: a copy does the same
                shutil.copy2(binary, target)
            os.utime(target, (epoch, epoch))  # a hard link: the binary in build/bin gets it too
            incremental.same_content(binary, digest)  # its times moved, not its bytes: no new hash next run
            for depth in range(len(INSTALL_DIR), -1, -1):  # usr/local/bin, usr/local, usr, the tree itself
                os.utime(top.joinpath(*INSTALL_DIR[:depth]), (epoch, epoch))
    incremental.save_digests(digests_file(cfg), cfg.bin_dir)
    return context


def remove_others(cfg: Config, keep: set[Path]) -> None:
    """Remove every layer tree but `keep` (those of an earlier set of binaries)."""
    if root(cfg).is_dir():
        for other in root(cfg).iterdir():
            if other not in keep:
                shutil.rmtree(other, ignore_errors=True)
