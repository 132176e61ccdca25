"""crossbuild.oci.transport's pure parts: the retry policy, which answers are retried, and how a
body cut short is told from a short body. No HTTP here: the tries are scripted callables and the
clock is fake, so every delay and every give-up point is exact. The real registry and a resetting
proxy exercise the same code in tests/integration/test_registry_client.py."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from crossbuild.oci.transport import NoAnswer, Response, RetryPolicy, Transport, retry_after, retryable_status

# --- the policy --------------------------------------------------------------------------------

DELAYS = [
    (RetryPolicy(), [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]),
    (RetryPolicy(first_delay=0.1, factor=3.0, max_delay=1.0), [0.1, 0.3, 0.9, 1.0]),
    (RetryPolicy(first_delay=2.0, factor=1.0), [2.0, 2.0, 2.0]),
]


@pytest.mark.parametrize(("policy", "want"), DELAYS, ids=["default", "capped", "constant"])
def test_delays_grow_exponentially_up_to_the_cap(policy: RetryPolicy, want: list[float]) -> None:
    assert [policy.delay(tries) for tries in range(1, len(want) + 1)] == pytest.approx(want)


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_delay=8.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=600.0) == 8.0
    assert policy.delay(2, retry_after=None) == 1.0


NEXT = [
    ("first-retry", 1, 0.0, 0.5),
    ("third-retry", 3, 1.5, 2.0),
    ("count-spent", 4, 0.0, None),
    ("budget-spent", 2, 59.5, None),
    ("budget-just-fits", 2, 59.0, 1.0),
]


@pytest.mark.parametrize(("tries", "elapsed", "want"), [row[1:] for row in NEXT], ids=[row[0] for row in NEXT])
def test_next_delay_is_bounded_in_count_and_time(tries: int, elapsed: float, want: float | None) -> None:
    assert RetryPolicy(attempts=4, budget=60.0).next_delay(tries, elapsed) == want


@pytest.mark.parametrize(
    ("status", "want"),
    [(500, True), (502, True), (503, True), (504, True), (599, True), (501, False), (505, False), (404, False),
     (429, False), (200, False)],
    ids=str,
)  # fmt: skip
def test_retryable_status(status: int, want: bool) -> None:
    assert retryable_status(status) is want


@pytest.mark.parametrize(
    ("value", "want"), [("7", 7.0), (" 12 ", 12.0), ("", None), ("Fri, 31 Dec 1999 23:59:59 GMT", None), ("-1", None)],
    ids=["seconds", "spaces", "empty", "http-date", "negative"],
)  # fmt: skip
def test_retry_after_header(value: str, want: float | None) -> None:
    assert retry_after(value) == want


# --- tries against a script ------------------------------------------------------------------------

Step = int | NoAnswer  # a status to answer with, or the failure to raise


class Clock:
    """A clock that only moves when the transport sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def scripted(steps: list[Step], calls: list[int]) -> Callable[[], Response]:
    def attempt() -> Response:
        calls.append(1)
        step = steps[min(len(calls), len(steps)) - 1]
        if isinstance(step, NoAnswer):
            raise step
        headers = {"retry-after": ["2"]} if step == 503 else {}
        return Response(step, headers)

    return attempt


def run(method: str, body: object, steps: list[Step], policy: RetryPolicy | None = None) -> tuple[object, int, Clock]:
    clock = Clock()
    transport = Transport(retry=policy or RetryPolicy(), sleep=clock.sleep, clock=lambda: clock.now)
    calls: list[int] = []
    try:
        result: object = transport.with_retries(method, body, scripted(steps, calls))  # type: ignore[arg-type]
    except NoAnswer as exc:
        result = exc
    return result, len(calls), clock


RESET = NoAnswer("Connection reset by peer", reset=True)
REFUSED = NoAnswer("Connection refused")

CASES = [
    ("get-reset-then-ok", "GET", None, [RESET, RESET, 200], 200, 3, [0.5, 1.0]),
    ("get-502-then-ok", "GET", None, [502, 200], 200, 2, [0.5]),
    ("get-503-honours-retry-after", "GET", None, [503, 200], 200, 2, [2.0]),
    ("head-always-reset", "HEAD", None, [RESET], RESET, 4, [0.5, 1.0, 2.0]),
    ("put-bytes-5xx-gives-last-answer", "PUT", b"{}", [500], 500, 4, [0.5, 1.0, 2.0]),
    ("refused-is-not-retried", "GET", None, [REFUSED, 200], REFUSED, 1, []),
    ("404-is-not-retried", "GET", None, [404, 200], 404, 1, []),
    ("501-is-not-retried", "GET", None, [501, 200], 501, 1, []),
    ("post-is-not-retried", "POST", b"", [RESET, 202], RESET, 1, []),
    ("patch-is-not-retried", "PATCH", None, [502, 202], 502, 1, []),
    ("streamed-body-is-not-retried", "PUT", io.BytesIO(b"x"), [RESET, 201], RESET, 1, []),
]


@pytest.mark.parametrize(
    ("method", "body", "steps", "want", "tries", "slept"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_with_retries(
    method: str, body: object, steps: list[Step], want: object, tries: int, slept: list[float]
) -> None:
    result, calls, clock = run(method, body, steps)
    assert (result.status if isinstance(result, Response) else result) == want
    assert calls == tries
    assert clock.slept == slept


def test_the_time_budget_stops_retries_before_the_count_does() -> None:
    policy = RetryPolicy(attempts=10, first_delay=4.0, factor=2.0, max_delay=100.0, budget=20.0)
    result, calls, clock = run("GET", None, [RESET], policy)
    assert result is RESET
    assert clock.slept == [4.0, 8.0]  # a third wait (16 s) would end after 28 s, past the 20 s budget
    assert calls == 3
    assert clock.now <= policy.budget


# --- bodies cut short -----------------------------------------------------------------------------------


def test_a_body_shorter_than_its_content_length_is_no_answer_not_a_short_read() -> None:
    resp = Response(200, {}, b"", io.BytesIO(b"abc"), 5)
    assert resp.read(2) == b"ab"
    assert resp.read(2) == b"c"
    with pytest.raises(NoAnswer, match="2 bytes of the body unsent") as info:
        resp.read(2)
    assert info.value.reset


def test_a_complete_body_ends_with_empty_reads() -> None:
    resp = Response(200, {}, b"", io.BytesIO(b"abc"), 3)
    assert resp.read(10) == b"abc"
    assert resp.read(10) == b""


def test_a_reset_while_reading_is_a_reset() -> None:
    class Resetting(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError(104, "Connection reset by peer")

    resp = Response(200, {}, b"", Resetting(), 10)
    with pytest.raises(NoAnswer, match="Connection reset by peer") as info:
        resp.read(4)
    assert info.value.reset
