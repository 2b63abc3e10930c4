"""The service's ``GET /metrics``: Prometheus text format, requests by route/status, database errors."""

from __future__ import annotations

import urllib.error
import urllib.request

from _pg import AppFactory, ThrowawayPg
from prometheus_client.parser import text_string_to_metric_families


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_requests_are_counted_by_route_method_and_status(start_app: AppFactory) -> None:
    url = start_app("web")
    for path in ("/items", "/items", "/health", "/nope", "/wp-login.php"):
        _get(url + path)
    got = _samples(url)
    req = "gameday_http_requests_total"
    assert got[(req, (("method", "GET"), ("route", "/items"), ("status", "200")))] == 2
    assert got[(req, (("method", "GET"), ("route", "/health"), ("status", "200")))] == 1
    # unknown paths share one label value: a scanner cannot grow the series count
    assert got[(req, (("method", "GET"), ("route", "other"), ("status", "404")))] == 2
    assert got[("gameday_service_info", (("service", "web"),))] == 1
    assert got[("gameday_http_request_duration_seconds_count", (("route", "/items"),))] == 2


def test_database_errors_are_counted(start_app: AppFactory, pg_private: ThrowawayPg) -> None:
    url = start_app("orders", db=pg_private)
    assert _get(url + "/items") == 200
    assert _samples(url).get(("gameday_db_errors_total", (("route", "/items"),)), 0.0) == 0
    pg_private.crash()
    assert _get(url + "/items") == 503
    assert _get(url + "/items") == 503
    got = _samples(url)
    assert got[("gameday_db_errors_total", (("route", "/items"),))] == 2
    assert got[("gameday_http_requests_total", (("method", "GET"), ("route", "/items"), ("status", "503")))] == 2
