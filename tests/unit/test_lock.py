"""crossbuild.lock: one run per output directory, with a real flock held by a second process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossbuild import lock
from crossbuild.errors import UserError

HOLD = """
import sys, time
from pathlib import Path
from crossbuild import lock
with lock.held(Path(sys.argv[1]), "image.multiarch"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@contextlib.contextmanager
def _holder(out: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """A second process holding the lock for `seconds` (killed when the test is done)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out), str(seconds)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        try:
            yield proc
        finally:
            proc.kill()
            proc.wait()


def test_a_second_run_refuses_when_asked_not_to_wait(tmp_path: Path) -> None:
    with (
        _holder(tmp_path / "build", 30) as proc,
        pytest.raises(UserError, match=rf"in use by pid {proc.pid} \(image.multiarch, started"),
        lock.held(tmp_path / "build", "build", environ={"CROSSBUILD_NO_WAIT": "1"}),
    ):
        pytest.fail("the lock was taken twice")


def test_a_second_run_waits_for_the_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with _holder(tmp_path / "build", 1.5) as proc, lock.held(tmp_path / "build", "build", environ={}):
        assert proc.wait(timeout=30) == 0  # the holder finished its sleep: it was not cut short
    assert f"is in use by pid {proc.pid} (image.multiarch" in capsys.readouterr().err


def test_the_lock_goes_with_a_killed_holder(tmp_path: Path) -> None:
    with _holder(tmp_path / "build", 60) as proc:
        proc.kill()
        proc.wait()
        with lock.held(tmp_path / "build", "build", environ={"CROSSBUILD_NO_WAIT": "1"}):
            assert (tmp_path / "build/state/lock").read_text().startswith(f"pid {os.getpid()} (build")
