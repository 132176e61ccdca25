"""Tests for verify's scheduling: the callback loop's timers and the order of the smoke pulls.

No daemon: the pulls go to a stand-in that records the order it is asked in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import pytest

from crossbuild.daemon import Daemon
from crossbuild.platforms import Platform
from crossbuild.verify import _Loop, _Pulls

AMD64, ARM64 = Platform("linux", "amd64"), Platform("linux", "arm64")


class _Recorder:
    """What _Pulls needs of a Daemon: ensure(ref, platform), here only remembered, one at a time."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = threading.Event()

    def ensure(self, ref: str, platform: Platform) -> None:
        self.gate.wait(5)
        self.order.append(ref)


def test_pulls_a_probe_waits_for_go_first_and_no_more_than_the_limit_at_once() -> None:
    recorder = _Recorder()
    loop = _Loop()
    done: list[str] = []
    with ThreadPoolExecutor(4) as pool:
        pulls = _Pulls(loop, pool, cast(Daemon, recorder), limit=1)

        def then(ref: str) -> Callable[[Future[Any]], None]:
            def record(future: Future[Any]) -> None:
                future.result()
                done.append(ref)

            return record

        pulls.add(False, "api-arm64", ARM64, then("api-arm64"))  # starts at once: nothing is running
        pulls.add(False, "push-arm64", ARM64, then("push-arm64"))
        pulls.add(True, "push-amd64", AMD64, then("push-amd64"))
        pulls.add(True, "msg-amd64", AMD64, then("msg-amd64"))
        assert pulls.running == 1 and len(pulls.waiting) == 3
        recorder.gate.set()
        loop.run()
    assert recorder.order == ["api-arm64", "push-amd64", "msg-amd64", "push-arm64"]
    assert done == recorder.order
    assert pulls.running == 0 and not pulls.waiting


def test_a_timer_fires_while_work_is_pending_and_is_dropped_after() -> None:
    loop = _Loop()
    fired: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        loop.submit(pool, lambda f: f.result(), time.sleep, 0.3)
        loop.later(0.05, lambda: fired.append("early"))
        loop.later(30, lambda: fired.append("late"))
        started = time.monotonic()
        loop.run()
    assert fired == ["early"]
    assert time.monotonic() - started < 5, "the loop waited for a timer with no work pending"
    assert loop.timers == []


def test_a_worker_bug_surfaces_from_the_loop() -> None:
    loop = _Loop()

    def boom() -> None:
        raise RuntimeError("bug")

    def then(future: Future[Any]) -> None:
        future.result()

    with ThreadPoolExecutor(1) as pool:
        loop.submit(pool, then, boom)
        with pytest.raises(RuntimeError, match=r"^bug$"):
            loop.run()
