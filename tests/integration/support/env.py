"""The environment every command of the integration tests runs in.

The test run may inherit variables that steer crossbuild, make, go, git or Python
(pytest started from `make test PLATFORMS=...`, from a CI job, from an activated
virtualenv). Commands the tests start must see none of them, so a result depends on
the test alone. This is the one list of them; add a variable here, not in a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Variables that would change what crossbuild, make, go, git or a venv's Python do.
LEAKY_ENV = frozenset(
    {
        # crossbuild's own (README, "Variables") and the Makefile's
        *("PLATFORMS", "BINS", "IMAGES", "REGISTRY_PREFIX", "VERSION", "BASE_IMAGE", "GO_IMAGE", "CACHE_REF"),
        *("MODE", "VERIFY", "BAKE_EARLY", "V", "CONFIG", "CROSSBUILD", "CROSSBUILD_CONFIG", "SOURCE_DATE_EPOCH"),
        *(
            "SBOM",
            "SIGN",
            "COSIGN_PASSWORD",
            "SNAPSHOT",
            "FORCE_RELEASE_TAGS",
            "BUNDLE_MAX_SIZE",
            "CROSSBUILD_PROGRESS",
        ),
        "CI",  # CI=true picks the plain progress form even on a terminal (the pty test wants the live one)
        "GITHUB_ACTIONS",  # failures would also print ::error annotations
        "CROSSBUILD_NO_WAIT",  # a second run on one build/ would fail instead of waiting for the lock
        "GITHUB_STEP_SUMMARY",  # verify appends its table there
        # go: the target and how packages resolve (GOCACHE stays: a shared cache only saves time, and
        # bench/run.py, whose cold runs need an empty one, sets its own)
        *("GOOS", "GOARCH", "GOARM", "GOAMD64", "GOARM64", "GOFLAGS", "GOWORK", "CGO_ENABLED"),
        # make started inside make
        *("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"),
        # git pointed at another repository or configuration
        *("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES"),
        *("GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"),
        # an activated virtualenv
        "VIRTUAL_ENV",
    }
)
# Whole families: PYTHONPATH, PYTHONHOME, PYTHONSAFEPATH... would reach into the clone's venv.
LEAKY_PREFIXES = ("PYTHON",)

# 2023-11-14T22:13:20Z: the commit time of the repositories the tests make.
COMMIT_EPOCH = 1_700_000_000


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """os.environ without the variables that would steer a command, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV and not k.startswith(LEAKY_PREFIXES)}
    env.update(extra or {})
    return env


def git_isolation(ceiling: Path, who: str = "Integration Test") -> dict[str, str]:
    """Make git ignore the user's configuration and any repository above `ceiling`, and commit
    as `who` at COMMIT_EPOCH, so repositories a test makes have predictable commits."""
    email = who.lower().replace(" ", ".") + "@example.invalid"
    return {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(ceiling),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": who,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": who,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_AUTHOR_DATE": f"@{COMMIT_EPOCH} +0000",
        "GIT_COMMITTER_DATE": f"@{COMMIT_EPOCH} +0000",
    }
