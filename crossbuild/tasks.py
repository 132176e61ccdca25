"""The invoke collection: each task turns flags into plain arguments and calls
crossbuild.commands. User errors become one line on stderr and exit 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from invoke import Collection, Exit, task

from crossbuild import commands, output
from crossbuild.config import Overrides
from crossbuild.errors import CommandError, CrossbuildError
from crossbuild.platforms import split_list

F = TypeVar("F", bound=Callable[..., Any])

COMMON_HELP = {
    "config": "config file (default: ./config.toml or $CROSSBUILD_CONFIG)",
    "dry_run": "print the commands without running them",
    "verbose": "echo every command as it runs (also V=1)",
    "platform": "target platform, repeatable or a list: linux/arm64, linux_arm64, 'linux/amd64,linux/arm/v7'",
}


def reported(fn: F) -> F:
    """Turn crossbuild's expected errors into one clear message and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CommandError as exc:
            detail = exc.tail()
            output.fail(f"{exc}\n  command: {' '.join(exc.argv)}" + (f"\n{detail}" if detail else ""))
            raise Exit(code=1) from None
        except CrossbuildError as exc:
            output.fail(str(exc))
            raise Exit(code=1) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def _list(values: list[str] | str | None) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(split_list(values))


def _overrides(platform: list[str] | None = None, services: str | None = None, **kw: Any) -> Overrides:
    return Overrides(platforms=_list(platform), bins=_list(services), **kw)


@task(
    iterable=["platform"],
    help={**COMMON_HELP, "services": "only these services (comma list; also BINS=)", "multiarch": "every configured binary platform"},
)
@reported
def build(
    c: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    multiarch: bool = False,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Cross-compile the Go services (host platform unless --platform/--multiarch/PLATFORMS)."""
    commands.setup_runner(dry_run, verbose)
    cfg = commands.load(config, _overrides(platform, services))
    commands.build(cfg, multiarch=multiarch)


@task(iterable=["platform"], help={**COMMON_HELP, "services": "only these services (comma list; also BINS=)"})
@reported
def build_multiarch(
    c: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Cross-compile every service for every configured binary platform."""
    commands.setup_runner(dry_run, verbose)
    cfg = commands.load(config, _overrides(platform, services))
    commands.build(cfg, multiarch=True)


@task(help={"config": COMMON_HELP["config"]})
@reported
def clean(c: Any, config: str | None = None) -> None:
    """Remove build/ (binaries, images metadata, reports, registry data)."""
    commands.clean(config)


build_ns = Collection("build")
build_ns.add_task(build, name="build", default=True)
build_ns.add_task(build_multiarch, name="multiarch")

ns = Collection()
ns.add_collection(build_ns)
ns.add_task(clean)
