"""`invoke doctor` on this machine (docker, buildx, BuildKit, QEMU, Go, registry, disk), in a clone.

The machine is the one `make tools` set up, so every check must be ok; then one
thing at a time is made wrong through a config copy or REGISTRY_PREFIX and the
doctor must fail naming it and its fix.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from support.clone import Clone
from support.commands import describe, plain
from support.registries import port_is_closed

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.usefixtures("local_registry")]

UNREACHABLE = "127.0.0.1:5999"


def ok_lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> detail of every `ok <name>: <detail>` line."""
    found = {}
    for line in plain(proc.stdout).splitlines():
        match = re.match(r"^\s*ok (?P<name>.+?): (?P<detail>.*)$", line)
        if match:
            found[match["name"]] = match["detail"]
    return found


def test_everything_ok_on_this_machine(clone: Clone) -> None:
    proc = clone.invoke("doctor")
    assert proc.returncode == 0, describe(proc)
    ok = ok_lines(proc)
    for name in ("docker client", "docker daemon", "buildx", "builder crossbuild", "binfmt arm64", "go", "disk"):
        assert name in ok, f"no ok line for {name}\n{describe(proc)}"
    assert "running" in ok["builder crossbuild"], describe(proc)
    for platform in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert platform in ok["builder crossbuild"], describe(proc)
    assert "qemu-aarch64" in ok["binfmt arm64"], describe(proc)
    assert re.match(r"go1\.\d+", ok["go"]), describe(proc)
    assert ok.get("registry localhost:5000") == "answers over HTTP", describe(proc)
    assert re.match(r"\d+(\.\d+)? GiB free", ok["disk"]), describe(proc)
    assert "error" not in plain(proc.stderr), describe(proc)


def test_missing_builder_is_named_with_its_fix(clone: Clone) -> None:
    config = clone.config_copy("doctor-no-builder.toml", 'name = "crossbuild"\n', 'name = "no-such-builder"\n')
    proc = clone.invoke("doctor", "--config", str(config))
    text = plain(proc.stdout + proc.stderr)
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in text, describe(proc)
    assert re.search(r"builder no-such-builder: does not exist", text), describe(proc)
    assert "make setup" in text, describe(proc)
    assert "builder no-such-builder" not in ok_lines(proc), describe(proc)
    # the other checks still ran and passed
    assert {"docker client", "buildx", "go"} <= set(ok_lines(proc)), describe(proc)


def test_unreachable_registry_is_named(clone: Clone) -> None:
    assert port_is_closed("127.0.0.1", 5999), f"something listens on {UNREACHABLE}; this test needs nothing there"
    proc = clone.invoke("doctor", env={"REGISTRY_PREFIX": f"{UNREACHABLE}/x"})
    text = plain(proc.stdout + proc.stderr)
    assert proc.returncode != 0, describe(proc)
    assert "Traceback" not in text, describe(proc)
    assert re.search(rf"registry {re.escape(UNREACHABLE)}.*not reachable", text), describe(proc)
    assert f"registry {UNREACHABLE}" not in ok_lines(proc), describe(proc)
    assert port_is_closed("127.0.0.1", 5999), f"doctor started something on {UNREACHABLE}"
