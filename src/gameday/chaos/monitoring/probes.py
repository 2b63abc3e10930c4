"""Probes on a region's Prometheus: an instant PromQL query, and which alerts are firing."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos._common import ActivityFailed, json_value

__all__ = ["alerts_firing", "query"]

log = logging.getLogger("chaostoolkit")

TIMEOUT_S = 5.0


def prometheus_url(region: str, configuration: Mapping[str, Any] | None) -> str:
    """The region's Prometheus base URL from configuration ``gameday_prometheus_urls`` (region -> URL)."""
    urls = json_value((configuration or {}).get("gameday_prometheus_urls"), "gameday_prometheus_urls")
    if not isinstance(urls, Mapping) or region not in urls:
        known = sorted(urls) if isinstance(urls, Mapping) else []
        raise ActivityFailed(f"no Prometheus for region {region!r}: set configuration 'gameday_prometheus_urls' "
                             f"(region -> URL; known regions: {known})")
    return str(urls[region]).rstrip("/")


def _api(region: str, path: str, params: Mapping[str, str], configuration: Configuration) -> Any:
    url = f"{prometheus_url(region, configuration)}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, headers={"User-Agent": "gameday-chaos"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise ActivityFailed(f"Prometheus of {region}: {path} answered HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ActivityFailed(f"Prometheus of {region} unreachable ({url}): {getattr(exc, 'reason', exc)}") from exc
    if body.get("status") != "success":
        raise ActivityFailed(f"Prometheus of {region}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(promql: str, region: str, configuration: Configuration = None,
          secrets: Secrets = None) -> list[dict[str, Any]]:
    """Instant PromQL query on the region's Prometheus: a list of {"labels": {...}, "value": float}."""
    data = _api(region, "/api/v1/query", {"query": promql}, configuration)
    if data.get("resultType") in ("scalar", "string"):
        return [{"labels": {}, "value": float(data["result"][1])}]
    return [{"labels": dict(r.get("metric", {})), "value": float(r["value"][1])} for r in data.get("result", [])]


def alerts_firing(region: str, configuration: Configuration = None,
                  secrets: Secrets = None) -> list[dict[str, Any]]:
    """The alerts firing now on the region's Prometheus: name, labels, activeAt (pending ones left out)."""
    data = _api(region, "/api/v1/alerts", {}, configuration)
    return [{"name": a["labels"].get("alertname", ""), "labels": dict(a["labels"]), "active_at": a.get("activeAt")}
            for a in data.get("alerts", []) if a.get("state") == "firing"]
