"""Bounded waits on where traffic is served from (failover / failback through the global URL)."""

from __future__ import annotations

import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos._common import ActivityFailed
from gameday.chaos.http._client import get, health_url, resolve_url, service_urls

__all__ = ["wait_for_all_in_region", "wait_for_region"]


def wait_for_region(url: str, region: str, timeout_s: float = 120.0, consecutive: int = 3,
                    interval_s: float = 0.5, path: str = "/health", configuration: Configuration = None,
                    secrets: Secrets = None) -> dict[str, Any]:
    """Poll url until `consecutive` 2xx answers in a row come from region (bounded by timeout_s)."""
    target = health_url(resolve_url(url, configuration), path)
    start = time.monotonic()
    deadline = start + timeout_s
    streak, last = 0, "no answer yet"
    while True:
        try:
            reply = get(target, min(3.0, max(0.5, timeout_s)))
            ok = 200 <= reply.status < 300 and reply.region == region
            last = f"HTTP {reply.status} from {reply.region}"
        except ActivityFailed as exc:
            ok, last = False, str(exc)
        streak = streak + 1 if ok else 0
        if streak >= max(1, consecutive):
            return {"url": url, "region": region, "waited_s": round(time.monotonic() - start, 3)}
        if time.monotonic() >= deadline:
            raise ActivityFailed(f"{url} not served from {region} within {timeout_s:.1f} s (last: {last})")
        time.sleep(interval_s)


def wait_for_all_in_region(region: str, urls: dict[str, str] | None = None, exclude: list[str] | None = None,
                           timeout_s: float = 120.0, configuration: Configuration = None,
                           secrets: Secrets = None) -> dict[str, Any]:
    """wait_for_region for every service (default: gameday_service_urls) sharing one time budget."""
    targets = urls if urls is not None else service_urls(configuration)
    if not targets:
        raise ActivityFailed("no services: set configuration 'gameday_service_urls' or pass urls")
    deadline = time.monotonic() + timeout_s
    out: dict[str, Any] = {}
    for name, url in targets.items():
        if name in (exclude or []):
            continue
        left = max(0.5, deadline - time.monotonic())
        out[name] = wait_for_region(url, region, left, configuration=configuration)["waited_s"]
    return out
