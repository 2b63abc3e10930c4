"""The project's one polling and retry helpers: bounded, and saying what they waited for."""

from __future__ import annotations

import itertools

import pytest

from gameday.errors import MaxRetriesExceeded, TimeoutExceeded
from gameday.util.retry import do_with_retry, poll_until, wait_until


def test_poll_until_is_true_as_soon_as_the_predicate_is() -> None:
    calls = itertools.count(1)
    assert poll_until(lambda: next(calls) >= 3, timeout=5.0, interval=0.001)
    assert next(calls) == 4  # asked three times, not a fourth


def test_poll_until_asks_at_least_once_and_gives_up_after_the_timeout() -> None:
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    assert not poll_until(never, timeout=0.0)
    assert asked == [1]


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutExceeded, match="the moon"):
        wait_until("the moon", lambda: False, timeout=0.05, interval=0.01)


def test_do_with_retry_retries_only_allow_listed_errors() -> None:
    tries = itertools.count(1)

    def flaky() -> int:
        n = next(tries)
        if n < 3:
            raise RuntimeError("connection reset by peer")
        return n

    assert do_with_retry("flaky", flaky, allow_list={"connection reset": "a restart"}, attempts=3, sleep=0) == 3

    def broken() -> int:
        raise RuntimeError("syntax error")

    with pytest.raises(RuntimeError, match="syntax error"):  # not on the list: raised at once
        do_with_retry("broken", broken, allow_list={"connection reset": "a restart"}, attempts=3, sleep=0)

    def always_reset() -> int:
        raise RuntimeError("connection reset by peer")

    with pytest.raises(MaxRetriesExceeded):
        do_with_retry("reset", always_reset, allow_list={"connection reset": "a restart"}, attempts=2, sleep=0)
