"""Guarded HTTP GETs: only loopback or the configured target URLs, always with a timeout."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gameday.chaos._common import ActivityFailed, json_value

REGION_HEADER = "X-Gameday-Region"


@dataclass(frozen=True)
class Reply:
    """The parts of an HTTP answer the probes look at."""

    status: int
    region: str | None


def service_urls(configuration: Mapping[str, Any] | None) -> dict[str, str]:
    """service -> global URL from configuration ``gameday_service_urls`` (JSON text or mapping)."""
    urls = json_value((configuration or {}).get("gameday_service_urls"), "gameday_service_urls")
    if not urls:
        return {}
    if not isinstance(urls, Mapping):
        raise ActivityFailed("configuration 'gameday_service_urls' must map service name -> URL")
    return {str(k): str(v) for k, v in urls.items()}


def _allowed_origins(configuration: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    cfg = configuration or {}
    urls = list(service_urls(cfg).values())
    regional = json_value(cfg.get("gameday_regional_urls"), "gameday_regional_urls")
    if isinstance(regional, Mapping):
        for per_region in regional.values():
            if isinstance(per_region, Mapping):
                urls.extend(str(u) for u in per_region.values())
    return {(p.scheme, p.netloc) for p in map(urlsplit, urls)}


def resolve_url(url_or_service: str, configuration: Mapping[str, Any] | None) -> str:
    """A service name (from gameday_service_urls) or URL -> URL, refused unless loopback or configured."""
    urls = service_urls(configuration)
    url = urls.get(url_or_service, url_or_service)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActivityFailed(f"{url_or_service!r} is neither a configured service nor an http(s) URL "
                             f"(services: {sorted(urls)})")
    host = parts.hostname
    if not (host in ("localhost", "::1") or host.startswith("127.")
            or (parts.scheme, parts.netloc) in _allowed_origins(configuration)):
        raise ActivityFailed(f"refusing {url}: only loopback or the configured target URLs are probed")
    return url


def health_url(url: str, path: str) -> str:
    """The base URL with path when the URL has none of its own."""
    parts = urlsplit(url)
    if parts.path not in ("", "/") or not path:
        return url
    return url.rstrip("/") + "/" + path.lstrip("/")


def get(url: str, timeout_s: float) -> Reply:
    """GET url; HTTP error statuses are answers, connection problems raise ActivityFailed."""
    req = urllib.request.Request(url, headers={"User-Agent": "gameday-chaos"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read(65536)
            return Reply(int(resp.status), resp.headers.get(REGION_HEADER))
    except urllib.error.HTTPError as exc:
        return Reply(int(exc.code), exc.headers.get(REGION_HEADER) if exc.headers else None)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ActivityFailed(f"GET {url} failed: {reason}") from exc
