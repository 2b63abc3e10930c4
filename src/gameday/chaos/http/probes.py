"""Steady-state probes through the services' global URLs: healthy? served from which region?"""

from __future__ import annotations

import logging

from chaoslib.types import Configuration, Secrets

from gameday.chaos._common import ActivityFailed
from gameday.chaos.http._client import get, health_url, resolve_url, service_urls

__all__ = [
    "all_services_healthy",
    "service_healthy",
    "services_in_region",
    "serving_region",
    "serving_regions",
]

log = logging.getLogger("chaostoolkit")


def service_healthy(url: str, timeout_s: float = 3.0, path: str = "/health",
                    configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Whether GET <url><path> answers 2xx within timeout_s (url may be a configured service name)."""
    target = health_url(resolve_url(url, configuration), path)
    try:
        reply = get(target, timeout_s)
    except ActivityFailed as exc:
        log.info("service %s unhealthy: %s", url, exc)
        return False
    if not 200 <= reply.status < 300:
        log.info("service %s unhealthy: HTTP %d", url, reply.status)
    return 200 <= reply.status < 300


def all_services_healthy(urls: dict[str, str] | None = None, timeout_s: float = 3.0, path: str = "/health",
                         configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Whether every service (default: gameday_service_urls) is healthy through its global URL."""
    targets = urls if urls is not None else service_urls(configuration)
    if not targets:
        raise ActivityFailed("no services to probe: set configuration 'gameday_service_urls' or pass urls")
    results = {name: service_healthy(url, timeout_s, path, configuration) for name, url in targets.items()}
    return all(results.values())


def serving_region(url: str, timeout_s: float = 3.0, path: str = "/health",
                   configuration: Configuration = None, secrets: Secrets = None) -> str:
    """Region named by the X-Gameday-Region header of a 2xx answer from url (service name or URL)."""
    target = health_url(resolve_url(url, configuration), path)
    reply = get(target, timeout_s)
    if not 200 <= reply.status < 300 or not reply.region:
        raise ActivityFailed(f"{target} answered HTTP {reply.status} without a serving region")
    return reply.region


def serving_regions(urls: dict[str, str] | None = None, timeout_s: float = 3.0, path: str = "/health",
                    configuration: Configuration = None, secrets: Secrets = None) -> dict[str, str | None]:
    """service -> serving region (None when it does not answer 2xx) for every service."""
    targets = urls if urls is not None else service_urls(configuration)
    out: dict[str, str | None] = {}
    for name, url in targets.items():
        try:
            out[name] = serving_region(url, timeout_s, path, configuration)
        except ActivityFailed as exc:
            log.info("service %s: %s", name, exc)
            out[name] = None
    return out


def services_in_region(region: str, exclude: list[str] | None = None, urls: dict[str, str] | None = None,
                       timeout_s: float = 3.0, configuration: Configuration = None,
                       secrets: Secrets = None) -> bool:
    """Whether every service except those in exclude is served from region (blast radius check)."""
    regions = serving_regions(urls, timeout_s, configuration=configuration)
    skip = set(exclude or [])
    return all(r == region for name, r in regions.items() if name not in skip)
