"""Fixtures shared by the integration tests (the helpers behind them are in support/).

* ``project_clone`` (session): ONE ``git clone`` of this repository's committed state, tagged
  ``support.example.TAG``, whose Makefile has created its ``.venv``: the one venv of the session.
* ``clone`` (module): that clone back in its committed state (no untracked files, an empty
  ``build/``) when the module starts, with a REGISTRY_PREFIX of the module's own; what a
  module's tests leave there stays for the next test of the module (module-scoped runs
  such as a ``published`` fixture rely on that).
* ``fresh`` (function): the module's clone with ``build/`` emptied and the test's own
  ``prefix`` as REGISTRY_PREFIX, so a test sees exactly what its own commands produced.
* ``prefix`` (function): a REGISTRY_PREFIX under localhost:5000 no other test uses; local
  docker images under it are untagged afterwards.
* ``local_registry`` (session): the registry answering on 127.0.0.1:5000 (started if need be).

The Go build cache (``go env GOCACHE``) is shared, so only the first build of each
platform compiles the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.clone import Clone, clone_project, unique_prefix
from support.commands import require_tools
from support.registries import LOCAL_API, embedded_registry, registry_healthy
from support.witness import remove_docker_images


def _label(request: pytest.FixtureRequest) -> str:
    """A registry path segment naming the test module: test_bundle_offline -> bundle-offline."""
    return request.module.__name__.removeprefix("test_").replace("_", "-")


@pytest.fixture(scope="session")
def project_clone(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    """The session's tagged clone with its .venv (made by `make build BINS=api` there)."""
    return clone_project(tmp_path_factory.mktemp("crossbuild-clone") / "repo", venv=True)


@pytest.fixture(scope="module")
def clone(project_clone: Clone, request: pytest.FixtureRequest) -> Clone:
    project_clone.restore()
    return project_clone.with_env(REGISTRY_PREFIX=unique_prefix(_label(request)))


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    value = unique_prefix(_label(request))
    yield value
    remove_docker_images(value)


@pytest.fixture
def fresh(clone: Clone, prefix: str) -> Clone:
    clone.reset_build()
    return clone.with_env(REGISTRY_PREFIX=prefix)


@pytest.fixture(scope="session")
def local_registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """http://127.0.0.1:5000, and the tools that read it (skopeo, docker); when nothing answers there,
    the embedded registry is started from a checkout of its own (its data in no test's build/) and
    stopped after the session."""
    require_tools("docker", "skopeo")
    if registry_healthy():
        yield LOCAL_API
        return
    project: Clone = request.getfixturevalue("project_clone")
    home = clone_project(tmp_path_factory.mktemp("local-registry") / "repo", source=project.root)
    with embedded_registry(project.invoke_bin, home) as api:
        yield api
