"""The service's Prometheus metrics (``GET /metrics``): requests by route and status, database errors.

One registry per App (not prometheus_client's global one), so several Apps in one process (tests)
keep separate counts. Routes are the service's fixed paths; anything else counts as ``other``, so a
scanner cannot blow up the label space.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ROUTES = frozenset({"/health", "/items", "/records", "/records/query", "/stats", "/metrics"})
#: The classic text format, which Prometheus 2.x parses (newer clients default to a later version string).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def route_label(path: str) -> str:
    """The route label of a request path (``other`` for unknown paths)."""
    return path if path in ROUTES else "other"


class AppMetrics:
    """Counters the request handler feeds; ``render`` gives the text exposition format."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gameday_http_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("gameday_http_request_duration_seconds", "Time to answer a request, by route",
                                 ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
        self.db_errors = Counter("gameday_db_errors", "Requests that failed because the database was unavailable",
                                 ["route"], registry=self.registry)
        self.health_failed = Counter("gameday_health_failed",
                                     "Health checks answered 503 (database unavailable beyond the grace)",
                                     registry=self.registry)
        info = Gauge("gameday_service_info", "Always 1: which service this process serves", ["service"],
                     registry=self.registry)
        info.labels(service=service).set(1)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "ROUTES", "AppMetrics", "route_label"]
