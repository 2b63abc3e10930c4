"""terratest-style retries: only errors on an allow-list are retried, each with a reason."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from gameday.errors import MaxRetriesExceeded, TimeoutExceeded

T = TypeVar("T")


def retryable_reason(message: str, allow_list: Mapping[str, str]) -> str | None:
    """Return the reason of the first allow-list pattern (regex) found in message, else None."""
    for pattern, reason in allow_list.items():
        if re.search(pattern, message):
            return reason
    return None


def do_with_retry(what: str, fn: Callable[[], T], *, allow_list: Mapping[str, str], attempts: int = 3,
                  sleep: float = 1.0, on_retry: Callable[[int, str, BaseException], None] | None = None) -> T:
    """Call fn; retry only when the error text matches allow_list; raise MaxRetriesExceeded at the end."""
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            reason = retryable_reason(str(exc), allow_list)
            if reason is None:
                raise
            last = exc
            if on_retry is not None:
                on_retry(attempt, reason, exc)
            if attempt < attempts:
                time.sleep(sleep)
    assert last is not None
    raise MaxRetriesExceeded(what, attempts, last) from last


def poll_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll predicate until true (True) or the timeout has passed (False); it is asked at least once."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_until(what: str, predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    """Poll predicate until true, or raise TimeoutExceeded naming what was awaited."""
    if not poll_until(predicate, timeout, interval):
        raise TimeoutExceeded(what, timeout)
