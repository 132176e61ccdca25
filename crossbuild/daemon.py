"""The one door to the docker daemon's API: pull images, run and kill smoke containers, remove images.

Smoke runs use the docker SDK rather than the CLI: an exit code, the logs
and a hard kill after a timeout are plain API calls with nothing to parse.
Every call is echoed under V=1 as the docker CLI line that does the same
(runner.echo), so the door stays one door and a user can replay what ran.

A Daemon remembers which image references it pulled; `release` removes
exactly those, by reference (`docker rmi repo@sha256:…`), never by image ID,
so an image that was there before, or that shares layers or an ID with a
pulled one, keeps every name it had.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker
import docker.errors
import requests

from crossbuild import output, runner
from crossbuild.errors import UserError
from crossbuild.platforms import Platform, normalise_platform
from crossbuild.smoke import Run

CONNECT_TIMEOUT = 60  # seconds for one API call (a pull streams without a limit)
KILL_GRACE = 30.0  # seconds to wait for a killed container to be reaped
LOG_TAIL = 200  # lines of a container's output kept (a server may log without end)
POLL = 0.1  # seconds between looks at a stop request while a container runs
RELEASE_PARALLEL = 8  # images removed at once by release()


class DaemonError(UserError):
    """The docker daemon refused or failed a call; the message is the daemon's own, on one line."""


class DaemonUnavailable(DaemonError):
    """No docker daemon answers (not running, no permission on the socket, DOCKER_HOST wrong)."""


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc)
    return " ".join(text.split())


class Daemon:
    """One connection to the docker daemon, shared by threads, that tracks what it pulled."""

    def __init__(self, api: docker.APIClient, platform: Platform) -> None:
        self.api = api
        self.platform = platform  # the daemon's own os/arch: what runs without emulation
        self._lock = threading.Lock()
        self._ref_locks: dict[str, threading.Lock] = {}
        self._pulled: dict[str, bool] = {}  # reference -> whether this Daemon pulled it

    @classmethod
    def connect(cls, *, parallel: int = 8) -> Daemon:
        """Connect and learn the daemon's platform; DaemonUnavailable when nothing answers."""
        runner.echo(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"])
        try:
            # A waiting container holds one connection: room for every worker plus pulls and removals.
            client = docker.from_env(timeout=CONNECT_TIMEOUT, max_pool_size=2 * parallel + 4)
            info = client.api.version()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DaemonUnavailable(f"no docker daemon: {_reason(exc)}") from exc
        return cls(client.api, normalise_platform(str(info.get("Os", "linux")), str(info.get("Arch", ""))))

    def close(self) -> None:
        self.api.close()

    # --- images ---------------------------------------------------------------------------

    def has_image(self, ref: str) -> bool:
        runner.echo(["docker", "image", "inspect", "--format", "{{.Id}}", ref])
        try:
            self.api.inspect_image(ref)  # type: ignore[no-untyped-call]  # types-docker leaves it untyped
        except docker.errors.ImageNotFound:
            return False
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DaemonError(f"docker image inspect {ref}: {_reason(exc)}") from exc
        return True

    def pull(self, ref: str, platform: Platform) -> None:
        """Pull `repo@sha256:…` for `platform`; DaemonError with the daemon's reason when it fails."""
        runner.echo(["docker", "pull", "--quiet", "--platform", str(platform), ref])
        repository, _, digest = ref.partition("@")
        try:
            for event in self.api.pull(repository, tag=digest, platform=str(platform), stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    raise DaemonError(f"docker pull {ref}: {_reason(Exception(event['error']))}")
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DaemonError(f"docker pull {ref}: {_reason(exc)}") from exc

    def ensure(self, ref: str, platform: Platform) -> None:
        """Make `ref` present, pulling it only when it is not there yet; safe from many threads."""
        with self._lock:
            lock = self._ref_locks.setdefault(ref, threading.Lock())
        with lock:
            if ref in self._pulled:
                return
            if self.has_image(ref):
                self._pulled[ref] = False
                return
            self.pull(ref, platform)
            self._pulled[ref] = True

    def remove_image(self, ref: str) -> None:
        """Remove one reference (the image goes only when no other name keeps it)."""
        runner.echo(["docker", "rmi", ref])
        try:
            self.api.remove_image(ref)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DaemonError(f"docker rmi {ref}: {_reason(exc)}") from exc

    def release(self) -> list[str]:
        """Remove every reference this Daemon pulled; the problems, one line each (none: all gone)."""
        with self._lock:
            mine = [ref for ref, pulled in self._pulled.items() if pulled]
            self._pulled = {ref: pulled for ref, pulled in self._pulled.items() if not pulled}

        def remove(ref: str) -> str:
            try:
                self.remove_image(ref)
            except DaemonError as exc:
                return str(exc)
            return ""

        # one API call each, the daemon's work: side by side, as many as the connection pool allows
        with ThreadPoolExecutor(max(1, min(RELEASE_PARALLEL, len(mine))), thread_name_prefix="rmi") as pool:
            problems = [problem for problem in pool.map(remove, mine) if problem]
        return problems

    # --- containers -----------------------------------------------------------------------

    def run(
        self,
        ref: str,
        args: Sequence[str],
        platform: Platform,
        timeout: float,
        stop: threading.Event | None = None,
    ) -> Run:
        """Run `ref args` with no network; kill it after `timeout` seconds, or as soon as `stop` is set.

        The container is always removed. A container that cannot start
        (exec format error, missing entrypoint) comes back with `error`, one
        killed at the timeout with no exit code, one stopped early as cancelled.
        """
        args = tuple(args)
        if stop is not None and stop.is_set():
            return Run(args, cancelled=True)
        runner.echo(["docker", "run", "--rm", "--network", "none", "--platform", str(platform), ref, *args])
        try:
            container = self.api.create_container(
                ref,
                command=list(args),
                platform=str(platform),
                host_config=self.api.create_host_config(network_mode="none"),
            )["Id"]
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            return Run(args, error=f"cannot create the container: {_reason(exc)}")
        try:
            return self._start_and_wait(container, args, timeout, stop)
        finally:
            self._remove_container(container)

    def _remove_container(self, container: str) -> None:
        """Remove a smoke container (the --rm of the echoed `docker run`); a leftover is reported, not fatal."""
        try:
            self.api.remove_container(container, force=True)
        except docker.errors.NotFound:
            return  # already gone
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            output.warn(f"could not remove smoke container {container[:12]}: {_reason(exc)}")

    def _start_and_wait(
        self, container: str, args: tuple[str, ...], timeout: float, stop: threading.Event | None
    ) -> Run:
        try:
            self.api.start(container)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            return Run(args, error=_reason(exc))
        started = time.monotonic()
        ended = threading.Event()
        status: dict[str, Any] = {}

        def wait() -> None:
            # No HTTP timeout: the daemon answers when the container stops (on its own or killed).
            try:
                status.update(self.api.wait(container, timeout=None))
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                status["wait_error"] = _reason(exc)
            ended.set()

        threading.Thread(target=wait, name=f"wait-{container[:12]}", daemon=True).start()
        deadline = started + timeout
        cancelled = False
        while not ended.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if stop is not None and stop.is_set():
                cancelled = True
                break
            ended.wait(min(POLL, left) if stop is not None else left)
        seconds = time.monotonic() - started
        killed = False
        if not ended.is_set():
            runner.echo(["docker", "kill", container[:12]])
            try:
                self.api.kill(container)
                killed = True
            except docker.errors.APIError:
                pass  # it exited between the deadline and the kill: the wait says how
            ended.wait(KILL_GRACE)
        try:
            logs = self.api.logs(container, stdout=True, stderr=True, tail=LOG_TAIL)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            logs = f"(no logs: {_reason(exc)})".encode()
        text = logs.decode("utf-8", errors="replace") if isinstance(logs, bytes) else str(logs)
        if killed:
            return Run(args, None, text, seconds, cancelled=cancelled)
        if "wait_error" in status or not ended.is_set():
            reason = status.get("wait_error", f"no exit status {KILL_GRACE:g}s after the kill")
            return Run(args, None, text, seconds, error=f"lost the container: {reason}")
        return Run(args, int(status.get("StatusCode", -1)), text, seconds)
