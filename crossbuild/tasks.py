"""The invoke collection: each task turns flags into a Session and plain arguments
and calls crossbuild.commands. User errors become one line on stderr and exit 1.

invoke hands every task a Context as its first argument; crossbuild's tasks take it
as `_ctx` and leave it unused (the Session carries what a task needs).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.exceptions import Exit
from invoke.parser.argument import Argument
from invoke.program import Program
from invoke.tasks import Task, task

from crossbuild import commands, errors, output
from crossbuild.config import Overrides
from crossbuild.errors import CommandError, CrossbuildError
from crossbuild.platforms import parse_platforms, split_list
from crossbuild.session import make_runner

COMMON_HELP = {
    "config": "config file (default: ./config.toml or $CROSSBUILD_CONFIG)",
    "dry_run": "print the commands without running them",
    "verbose": "echo every command as it runs (also V=1)",
    "platform": "target platform, repeatable or a list: linux/arm64, linux_arm64, 'linux/amd64,linux/arm/v7'",
    "services": "only these services, a comma list (also BINS= / IMAGES=)",
}


def reported(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn crossbuild's expected errors into one clear message and a non-zero exit."""

    title = "crossbuild " + fn.__name__.replace("_", ".").replace("go.image", "go-image")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CommandError as exc:
            detail = exc.tail()
            output.fail(f"{exc}\n  command: {' '.join(exc.argv)}" + (f"\n{detail}" if detail else ""))
            output.annotate_error(f"{exc}" + (f"\n{detail}" if detail else ""), title=title)
            raise Exit(code=1) from None
        except CrossbuildError as exc:
            output.fail(str(exc))
            output.annotate_error(str(exc), title=title)
            raise Exit(code=1) from None
        except OSError as exc:  # a path the user controls: read-only, full, missing, not permitted
            output.fail(errors.describe_os_error(exc))
            output.annotate_error(errors.describe_os_error(exc), title=title)
            raise Exit(code=1) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper


class CrossbuildTask(Task[Any]):
    """A Task whose `--config` also answers to `-f` (when the task has no other -f).

    Every flag typed after a task name must reach that task: one it lacks falls through to
    invoke's own parser, where `-f`/`--config` load the file as *invoke's* configuration and die
    with a traceback on a .toml. So each task has a `config` parameter, and -f means the same as
    it does to invoke: the configuration file.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._help_text = dict(self.help)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        self.help = dict(self._help_text)  # invoke pops each text as it reads it: help printed twice needs it again
        args = super().get_arguments(ignore_unknown_help)
        taken = {name for arg in args for name in arg.names}
        for arg in args:
            if arg.name == "config" and "f" not in taken:
                arg.names = (*arg.names, "f")
        return args


def _task_name(body: Callable[..., Any]) -> str:
    """The dotted name `body` is registered under in `ns` (for its help)."""
    for name in ns.task_names:
        if ns[name].body is body:
            return name
    return body.__name__


def _print_help(name: str) -> None:
    """What `invoke --help NAME` prints, from invoke's own help formatter."""
    binary = Path(sys.argv[0]).name or "invoke"
    Program(namespace=ns, binary=binary, name=binary).run([binary, "--help", name], exit=False)


def _positional_guard(fn: Callable[..., Any], positional: Sequence[str]) -> Callable[..., Any]:
    """invoke hands a missing positional argument the next word, even `--help` or a flag the task
    lacks: `--help`/`-h` there shows the help; any other flag-like word is refused in one line."""

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for param in positional:
            value = kwargs.get(param)
            if not isinstance(value, str) or not value.startswith("-"):
                continue
            name = _task_name(guarded)
            if value in ("-h", "--help"):
                _print_help(name)
                return None
            output.fail(
                f"{param.upper()} {value!r} looks like a flag, and {name} has no such option "
                f"(`invoke --help {name}` lists them); write ./{value} for a path that starts with '-'"
            )
            raise Exit(code=1)
        return fn(*args, **kwargs)

    return guarded


def cbtask(
    *, iterable: Sequence[str] = (), positional: Sequence[str] | None = None, **help_text: str
) -> Callable[[Callable[..., Any]], Task[Any]]:
    """@task with error reporting and the shared flag help filled in from the signature."""

    def decorate(fn: Callable[..., Any]) -> Task[Any]:
        params = inspect.signature(fn).parameters
        if "config" not in params:
            raise TypeError(f"task {fn.__name__} needs a `config` parameter (see CrossbuildTask)")
        helps = {k: v for k, v in COMMON_HELP.items() if k in params}
        helps.update(help_text)
        body = _positional_guard(reported(fn), positional or ())
        made: Task[Any] = task(iterable=list(iterable), positional=positional, help=helps, klass=CrossbuildTask)(body)
        return made

    return decorate


def _no_config(config: str | None, task_name: str, why: str) -> None:
    """For tasks that read no config file: --config is accepted by the parser, then refused in one line."""
    if config is not None:
        raise CrossbuildError(f"{task_name} reads no config file ({why}): drop --config {config}")


def _list(values: list[str] | str | None, flag: str) -> tuple[str, ...] | None:
    """A list flag: None when not given; an error when given but naming nothing (--platform ',')."""
    if not values:
        return None
    items = tuple(split_list(values))
    if not items:
        raise CrossbuildError(
            f"{flag} {values!r} names nothing; give a list such as linux/amd64,linux/arm64 or api,push"
        )
    return items


def _oci(output_kind: str | None) -> bool:
    if output_kind is None:
        return False
    if output_kind != "oci":
        raise CrossbuildError(f"--output {output_kind}: only 'oci' is supported (OCI layout tarballs in build/oci/)")
    return True


# --- build ----------------------------------------------------------------------


@cbtask(iterable=["platform"], multiarch="every configured binary platform")
def build(
    _ctx: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    multiarch: bool = False,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Cross-compile the Go services (host platform unless --platform/--multiarch/PLATFORMS)."""
    overrides = Overrides(platforms=_list(platform, "--platform"), bins=_list(services, "--services"))
    session = commands.open(config, overrides, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "build"):
        commands.build(session, multiarch=multiarch)


@cbtask(iterable=["platform"])
def build_multiarch(
    _ctx: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Cross-compile every service for every configured binary platform."""
    overrides = Overrides(platforms=_list(platform, "--platform"), bins=_list(services, "--services"))
    session = commands.open(config, overrides, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "build.multiarch"):
        commands.build(session, multiarch=True)


# --- images ---------------------------------------------------------------------


@cbtask(
    iterable=["platform"],
    load="load the image (one platform) into the local docker daemon",
    push_by_digest="push each platform by digest and record it under build/digests/ (CI matrix)",
    output="'oci': write OCI layout tarballs under build/oci/ instead of pushing",
)
def image(
    _ctx: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    load: bool = False,
    push_by_digest: bool = False,
    output: str | None = None,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Build images for one platform (host by default): --load, --push-by-digest or --output oci."""
    overrides = Overrides(platforms=_list(platform, "--platform"), images=_list(services, "--services"))
    session = commands.open(config, overrides, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "image"):
        commands.image(session, load=load, push_by_digest=push_by_digest, oci=_oci(output))


@cbtask(
    iterable=["platform"],
    output="'oci': write OCI layout tarballs under build/oci/ instead of pushing",
    check_reproducible="build every image twice (the second without cache) and compare the digests; tags nothing",
    snapshot="move no release-only tag ([image] release_tags); tag each platform's image <tag>-<os>-<arch> too",
    force_release_tags="move release-only tags (latest) even for a version from a dirty tree",
)
def image_multiarch(
    _ctx: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    output: str | None = None,
    check_reproducible: bool = False,
    snapshot: bool = False,
    force_release_tags: bool = False,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Build every image platform, push one index per service, verify it, then move the tags."""
    overrides = Overrides(
        platforms=_list(platform, "--platform"),
        images=_list(services, "--services"),
        snapshot=snapshot or None,
        force_release_tags=force_release_tags or None,
    )
    session = commands.open(config, overrides, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "image.multiarch"):
        commands.image_multiarch(session, oci=_oci(output), check_reproducible=check_reproducible)


@cbtask(
    legacy="merge per-arch repositories svc-<arch>:tag (OpenIM style) instead of build/digests/",
    force_release_tags="move release-only tags (latest) even for a version from a dirty tree",
)
def manifest(
    _ctx: Any,
    services: str | None = None,
    legacy: bool = False,
    force_release_tags: bool = False,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Merge per-arch digests into one index per service, then move the tags."""
    overrides = Overrides(images=_list(services, "--services"), force_release_tags=force_release_tags or None)
    session = commands.open(config, overrides, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "manifest"):
        commands.merge_manifests(session, legacy=legacy)


@cbtask(iterable=["platform"], prune="remove builder nodes config.toml no longer lists")
def setup(
    _ctx: Any,
    platform: list[str] | None = None,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
    prune: bool = False,
) -> None:
    """Check docker and buildx, register QEMU where needed, create or update and bootstrap the builder."""
    overrides = Overrides(platforms=_list(platform, "--platform"))
    commands.setup(commands.open(config, overrides, dry_run=dry_run, verbose=verbose), prune=prune)


@cbtask()
def registry_up(_ctx: Any, config: str | None = None) -> None:
    """Start the embedded local registry (data under build/registry)."""
    commands.registry_up(commands.open(config))


@cbtask()
def registry_down(_ctx: Any, config: str | None = None) -> None:
    """Stop the embedded local registry."""
    commands.registry_down(commands.open(config))


@cbtask(ref="image reference (default: [image] go_image / GO_IMAGE)")
def go_image(
    _ctx: Any, ref: str | None = None, config: str | None = None, dry_run: bool = False, verbose: bool = False
) -> None:
    """Build the offline Go builder image from the host toolchain and push it."""
    session = commands.open(config, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "go-image"):
        commands.go_image(session, ref)


# --- checks ---------------------------------------------------------------------


@cbtask(
    iterable=["platform", "image"],
    image="an image to verify, repeatable (default: every service image of this version)",
    no_smoke="skip the smoke runs (registry checks only)",
    timeout="smoke run timeout in seconds",
)
def verify(
    _ctx: Any,
    image: list[str] | None = None,
    platform: list[str] | None = None,
    services: str | None = None,
    no_smoke: bool = False,
    timeout: float = 30.0,
    config: str | None = None,
    verbose: bool = False,
) -> None:
    """Verify images: platforms, configs, binaries read from the layers, smoke runs."""
    overrides = Overrides(platforms=_list(platform, "--platform"), images=_list(services, "--services"))
    session = commands.open(config, overrides, verbose=verbose)
    with commands.exclusive(session, "verify"):
        commands.verify(session, refs=list(image or []), smoke=not no_smoke, timeout=timeout)


@cbtask(iterable=["platform"])
def doctor(_ctx: Any, platform: list[str] | None = None, config: str | None = None, verbose: bool = False) -> None:
    """Check docker, buildx, the builder, QEMU, Go, the registry and disk; print the fix for each problem."""
    overrides = Overrides(platforms=_list(platform, "--platform"))
    commands.run_doctor(commands.open(config, overrides, verbose=verbose))


@cbtask(
    iterable=["platform", "image"],
    compose="a docker compose file whose images to audit",
    image="an image reference to audit (repeatable)",
    platform="required platforms (default: [platforms] images)",
    json="also write the result as JSON to this file ('-' for stdout)",
    env_file="variables for the compose file's ${VAR}s (default: .env next to it; the environment wins)",
)
def audit(
    _ctx: Any,
    compose: str | None = None,
    image: list[str] | None = None,
    platform: list[str] | None = None,
    json: str | None = None,
    env_file: str | None = None,
    config: str | None = None,
    verbose: bool = False,
) -> None:
    """Audit third-party images for missing architectures (compose file or --image)."""
    session = commands.open(config, verbose=verbose)
    plats = list(parse_platforms(platform)) if platform else None
    commands.run_audit(session, compose, list(image or []), plats, json, env_file=env_file)


@cbtask()
def clean(_ctx: Any, config: str | None = None, dry_run: bool = False, verbose: bool = False) -> None:
    """Remove what crossbuild wrote into the output directory (binaries, Dockerfiles, reports, state)."""
    session = commands.open(config, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "clean"):
        commands.clean(session)


@cbtask(
    iterable=["file"],
    positional=["files"],
    files="Kubernetes or compose files, a comma or space separated list (also --file, repeatable)",
    file="one more file (repeatable)",
    third_party="also pin every other image to the digest its tag names now",
    output="write each resolved file into this directory (default: stdout)",
)
def resolve(
    _ctx: Any,
    files: str | None = None,
    file: list[str] | None = None,
    third_party: bool = False,
    output: str | None = None,
    config: str | None = None,
    verbose: bool = False,
) -> None:
    """Pin this project's images in Kubernetes YAML and compose files to the digests last published. FILES"""
    paths = [*(split_list(files) if files else []), *(file or [])]
    commands.resolve(commands.open(config, verbose=verbose), paths, third_party=third_party, out_dir=output)


# --- CI -------------------------------------------------------------------------


@cbtask(
    matrix="one job per image platform on a native runner, pushed by digest, merged by a manifest job",
    path="the workflow file (default: .github/workflows/multiarch[-matrix].yml next to the config; '-' prints it)",
    force="overwrite an existing workflow file",
)
def ci_github(
    _ctx: Any, matrix: bool = False, path: str | None = None, force: bool = False, config: str | None = None
) -> None:
    """Write a GitHub Actions workflow that builds, pushes and verifies the multi-arch images."""
    commands.ci_github(commands.open(config), matrix=matrix, path=path, force=force)


@cbtask(
    positional=["directory"],
    directory="the Go repository to set up: the directory with go.mod, e.g. .",
    force="overwrite files that exist and differ",
    config="not used: init writes config.toml and reads none",
)
def init(
    _ctx: Any, directory: str | None = None, force: bool = False, config: str | None = None, verbose: bool = False
) -> None:
    """Adopt crossbuild in an existing Go repository: config.toml, and a Makefile or crossbuild.mk."""
    _no_config(config, "init", "it writes config.toml into DIRECTORY")
    commands.init(directory or ".", force=force, verbose=verbose)


# --- offline bundles --------------------------------------------------------------


@cbtask(
    iterable=["platform", "image"],
    platform="bundle platform, repeatable or a list; one archive each (default: [platforms] images)",
    image="a third-party image to include besides [bundle] images, e.g. localhost:5000/redis:7 (repeatable)",
)
def bundle(
    _ctx: Any,
    platform: list[str] | None = None,
    services: str | None = None,
    image: list[str] | None = None,
    config: str | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Offline image bundles for air-gapped servers: build/bundles/<project>-<version>-<platform>.tar.gz."""
    overrides = Overrides(platforms=_list(platform, "--platform"), images=_list(services, "--services"))
    session = commands.open(config, overrides, dry_run=dry_run, verbose=verbose)
    with commands.exclusive(session, "bundle"):
        commands.bundle_create(session, extra_images=list(image or []))


@cbtask(
    positional=["archive"],
    iterable=["allow_unsigned"],
    archive="a bundle .tar.gz made by `invoke bundle`",
    registry="push into this registry (HOST:PORT), digests kept; default: load into the local docker daemon",
    insecure="speak HTTPS to --registry without checking its certificate (self-signed); not plain HTTP",
    plain_http="speak plain HTTP to --registry (no TLS at all); loopback registries always use plain HTTP",
    max_size="most the bundle may declare, e.g. 20GiB (default: twice the archive's size + 64 MiB; "
    "also BUNDLE_MAX_SIZE)",
    config="not used: bundle.load reads no config file, only the archive",
    deploy_dir="where the bundle's deployment files go, pointing at the imported images "
    "(default: ./<bundle name>-deploy)",
    key="a cosign public key (cosign.pub): every image must be signed with it, checked offline before importing",
    allow_unsigned="a third-party image of the bundle that need not be signed with --key (repeatable)",
)
def bundle_load(
    _ctx: Any,
    archive: str,
    registry: str | None = None,
    insecure: bool = False,
    plain_http: bool = False,
    max_size: str | None = None,
    deploy_dir: str | None = None,
    config: str | None = None,
    key: str | None = None,
    allow_unsigned: list[str] | None = None,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Verify every size, checksum (and with --key every signature) of a bundle, then push it to --registry or
    load it into docker. ARCHIVE"""
    _no_config(config, "bundle.load", "it runs where only the archive is; give --registry HOST:PORT to push")
    run = make_runner(dry_run, verbose)
    commands.bundle_load(
        run,
        archive,
        registry,
        insecure=insecure,
        plain_http=plain_http,
        max_size=max_size,
        deploy_dir=deploy_dir,
        key=key,
        allow_unsigned=allow_unsigned or [],
    )


build_ns = Collection("build")
build_ns.add_task(build, name="build", default=True)
build_ns.add_task(build_multiarch, name="multiarch")

image_ns = Collection("image")
image_ns.add_task(image, name="image", default=True)
image_ns.add_task(image_multiarch, name="multiarch")

registry_ns = Collection("registry")
registry_ns.add_task(registry_up, name="up")
registry_ns.add_task(registry_down, name="down")

ns = Collection()
ns.add_collection(build_ns)
ns.add_collection(image_ns)
ns.add_collection(registry_ns)
bundle_ns = Collection("bundle")
bundle_ns.add_task(bundle, name="create", default=True)
bundle_ns.add_task(bundle_load, name="load")
ns.add_collection(bundle_ns)
for _task in (manifest, setup, verify, doctor, audit, resolve, clean, init):
    ns.add_task(_task)
ns.add_task(go_image, name="go-image")

ci_ns = Collection("ci")
ci_ns.add_task(ci_github, name="github")
ns.add_collection(ci_ns)
