"""`invoke setup` creates and bootstraps builders from config, idempotently, checked with `docker buildx`."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from support.clone import Clone

pytestmark = [pytest.mark.integration, pytest.mark.docker]

SOCKET = "unix:///run/crossbuild-buildkitd.sock"


def _inspect(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "buildx", "inspect", name], capture_output=True, text=True, check=False)


@pytest.fixture
def builder_name() -> Iterator[str]:
    name = f"cb-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["docker", "buildx", "rm", name], capture_output=True, check=False)


def _config(clone: Clone, builder: str, extra: str = "") -> str:
    text = (clone.root / "config.toml").read_text()
    text = text.replace('name = "crossbuild"\ndriver', f'name = "{builder}"\ndriver')
    path = clone.root / f"{builder}.toml"
    path.write_text(text + extra)
    return str(path)


def test_setup_creates_a_remote_builder_with_an_appended_node_idempotently(clone: Clone, builder_name: str) -> None:
    assert _inspect(builder_name).returncode != 0
    # buildx refuses two nodes with one endpoint string: reach the same buildkitd through a symlink
    link = clone.root / f"{builder_name}.sock"
    link.symlink_to(SOCKET.removeprefix("unix://"))
    extra = (
        f'\n[[builder.nodes]]\nname = "{builder_name}-arm"\nendpoint = "unix://{link}"\nplatforms = ["linux/arm64"]\n'
    )
    config = _config(clone, builder_name, extra)

    first = clone.invoke("setup", "--config", config)
    assert first.returncode == 0, clone.describe(first)
    assert f"created builder '{builder_name}'" in first.stdout
    info = _inspect(builder_name)
    assert info.returncode == 0, info.stderr
    assert "Driver:        remote" in info.stdout or "remote" in info.stdout.split("Nodes:")[0]
    assert f"{builder_name}-arm" in info.stdout, info.stdout
    assert info.stdout.count("Status:           running") == 2, info.stdout

    second = clone.invoke("setup", "--config", config)
    assert second.returncode == 0, clone.describe(second)
    assert "created builder" not in second.stdout
    assert "QEMU binfmt: not needed" in second.stdout


def test_setup_refuses_a_builder_whose_driver_differs(clone: Clone, builder_name: str) -> None:
    subprocess.run(
        ["docker", "buildx", "create", "--name", builder_name, "--driver", "remote", SOCKET],
        check=True,
        capture_output=True,
    )
    config = _config(clone, builder_name).replace(".toml", "-k8s.toml")
    text = (clone.root / f"{builder_name}.toml").read_text().replace('driver = "remote"', 'driver = "kubernetes"')
    text = text.replace(f'endpoint = "{SOCKET}"\n', "")  # the kubernetes driver takes no endpoint
    (clone.root / f"{builder_name}-k8s.toml").write_text(text)
    proc = clone.invoke("setup", "--config", config)
    assert proc.returncode == 1, clone.describe(proc)
    assert f"builder '{builder_name}' exists with driver remote, config says kubernetes" in proc.stderr
    assert "Traceback" not in proc.stderr
