"""HTTP side of the reference service: stdlib ThreadingHTTPServer, JSON in and out.

Endpoints: ``GET /health``, ``GET /items``, ``POST /records``, ``GET /records?ids=a,b[&source=reader]``,
``POST /records/query`` (``{"ids": [...], "source": ...}``, for large read-backs), ``GET /stats``,
``GET /metrics`` (Prometheus text format, see gameday.app.metrics).
Every answer (errors included) carries X-Gameday-Region/-Instance/-Service so the load generator
can tell which region and instance served it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from gameday.app.config import AppConfig, parse_config
from gameday.app.metrics import CONTENT_TYPE, AppMetrics, route_label
from gameday.errors import GamedayError

if TYPE_CHECKING:
    from gameday.app.db import RecordStore
    from gameday.app.messaging import Consumer, Publisher

log = logging.getLogger("gameday.app")

MAX_BODY = 1 << 20
MAX_IDS = 5000
STATIC_ITEMS = [
    {"id": "home", "title": "Home"},
    {"id": "catalog", "title": "Browse the catalog"},
    {"id": "orders", "title": "Your orders"},
]


class App:
    """State shared by all request threads: config, DB store, queue workers, counters."""

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg
        self.started = time.time()
        self.store: RecordStore | None = None
        self.db_failing_since: float | None = None
        self.publisher: Publisher | None = None
        self.consumer: Consumer | None = None
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.metrics = AppMetrics(cfg.service)
        if cfg.needs_db:
            self.store = self._make_store()
        if cfg.queue_url and cfg.service == "orders":
            from gameday.app.messaging import Publisher

            self.publisher = Publisher(cfg.queue_url, cfg.region, cfg.sqs_endpoint)
        if cfg.queue_url and cfg.service == "catalog":
            from gameday.app.messaging import Consumer

            self.consumer = Consumer(cfg.queue_url, cfg.region, cfg.sqs_endpoint, wait_s=cfg.sqs_wait_s)

    def _make_store(self) -> RecordStore:
        from gameday.app.db import PgEndpoint, RecordStore  # lazy: web never pays for psycopg

        cfg = self.cfg
        assert cfg.db_writer is not None and cfg.db_reader is not None

        def ep(addr: Any, role: str) -> PgEndpoint:
            return PgEndpoint(addr, dbname=cfg.db_name, user=cfg.db_user, password=cfg.db_password,
                              app_name=f"gameday-{cfg.service}-{cfg.instance_id}-{role}"[:63],
                              connect_timeout=cfg.db_connect_timeout,
                              statement_timeout=cfg.db_statement_timeout)

        writer = ep(cfg.db_writer, "writer")
        reader = writer if cfg.db_reader == cfg.db_writer else ep(cfg.db_reader, "reader")
        return RecordStore(writer, reader)

    def start(self) -> None:
        if self.publisher:
            self.publisher.start()
        if self.consumer:
            self.consumer.start()

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + n

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self.counters)
        out["uptime_s"] = round(time.time() - self.started, 3)
        if self.store:
            out["db_connects"] = self.store.writer.connects + (
                self.store.reader.connects if self.store.reader is not self.store.writer else 0)
        if self.publisher:
            out.update(published=self.publisher.sent, publish_failed=self.publisher.failed,
                       publish_dropped=self.publisher.dropped)
        if self.consumer:
            out.update(consumed=self.consumer.consumed, consume_errors=self.consumer.errors)
        return out

    def close(self) -> None:
        if self.consumer:
            self.consumer.stop()
        if self.publisher:
            self.publisher.stop()
        if self.store:
            self.store.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: locust reuses connections
    server_version = "gameday-app"

    def version_string(self) -> str:
        return self.server_version
    timeout = 30  # idle keep-alive connections release their thread
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    @property
    def app(self) -> App:
        app: App = self.server.app  # type: ignore[attr-defined]
        return app

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: dict[str, Any]) -> None:
        self._send_bytes(status, json.dumps(body, separators=(",", ":"), default=str).encode(), "application/json")

    def _send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        cfg = self.app.cfg
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Gameday-Region", cfg.region)
        self.send_header("X-Gameday-Instance", cfg.instance_id)
        self.send_header("X-Gameday-Service", cfg.service)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.app.count(f"http_{status}")
        started = getattr(self, "_started", None)
        self.app.metrics.observe(route_label(urlsplit(self.path).path), self.command, status,
                                 time.monotonic() - started if started is not None else 0.0)

    def _unavailable(self, exc: Exception) -> None:
        self.app.count("db_errors")
        self.app.metrics.db_errors.labels(route=route_label(urlsplit(self.path).path)).inc()
        self._send(503, {"error": "database unavailable", "detail": str(exc)[:300]})

    def log_message(self, format: str, *args: Any) -> None:
        if self.app.cfg.access_log:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests get JSON and our headers too."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send(code, {"error": message or "bad request"})

    # -- routes --------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self._started = time.monotonic()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/health":
            self._health()
        elif url.path == "/items":
            self._items()
        elif url.path == "/records":
            self._find(query)
        elif url.path == "/stats":
            self._send(200, self.app.stats())
        elif url.path == "/metrics":
            self._send_bytes(200, self.app.metrics.render(), CONTENT_TYPE)
        else:
            self._send(404, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:
        self._started = time.monotonic()
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._send(413, {"error": f"body larger than {MAX_BODY} bytes"})
            return
        raw = self.rfile.read(length) if length else b""
        if url.path not in ("/records", "/records/query"):
            self._send(404, {"error": f"no route {url.path}"})
            return
        try:
            body = json.loads(raw or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._send(400, {"error": "body is not JSON"})
            return
        if url.path == "/records/query":
            # Read-back of many ids at once (a GET query string is capped at 64 KiB by http.server).
            ids = body.get("ids") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                self._send(400, {"error": 'expected JSON {"ids": [string, ...], "source": "writer"}'})
                return
            self._find({"ids": [",".join(ids)], "source": [str(body.get("source", "writer"))]})
            return
        rec_id = body.get("id") if isinstance(body, dict) else None
        payload = body.get("payload", {}) if isinstance(body, dict) else None
        if not isinstance(rec_id, str) or not rec_id or len(rec_id) > 200:
            self._send(400, {"error": 'expected JSON {"id": non-empty string (<=200 chars), "payload": {}}'})
            return
        if not isinstance(payload, dict):
            self._send(400, {"error": "payload must be a JSON object"})
            return
        self._insert(rec_id, payload)

    def _health(self) -> None:
        app = self.app
        body: dict[str, Any] = {"status": "ok", "service": app.cfg.service, "region": app.cfg.region,
                                "instance": app.cfg.instance_id}
        if app.store is not None:
            from gameday.app.db import DbUnavailable

            try:
                app.store.ping(app.cfg.health_target, app.cfg.health_timeout)
                app.db_failing_since = None
            except DbUnavailable as exc:
                now = time.monotonic()
                if app.db_failing_since is None:
                    app.db_failing_since = now
                # a database failover shorter than the grace must not pull every instance out of the ALB
                if now - app.db_failing_since >= app.cfg.health_db_grace:
                    app.count("health_failed")
                    app.metrics.health_failed.inc()
                    self._send(503, {**body, "status": "unhealthy", "detail": str(exc)[:300]})
                    return
                body["db_degraded_s"] = round(now - app.db_failing_since, 3)
            body["db"] = app.cfg.health_target
        self._send(200, body)

    def _items(self) -> None:
        app = self.app
        if app.store is None:
            self._send(200, {"service": app.cfg.service, "items": STATIC_ITEMS})
            return
        from gameday.app.db import DbUnavailable

        try:
            items = app.store.recent()
        except DbUnavailable as exc:
            self._unavailable(exc)
            return
        body: dict[str, Any] = {"service": app.cfg.service, "items": items}
        if app.consumer is not None:
            body["consumed"] = app.consumer.consumed
        self._send(200, body)

    def _insert(self, rec_id: str, payload: dict[str, Any]) -> None:
        app = self.app
        if app.store is None:
            self._send(404, {"error": f"service {app.cfg.service!r} keeps no records"})
            return
        from gameday.app.db import DbUnavailable

        try:
            created = app.store.insert(rec_id, app.cfg.service, app.cfg.region, payload)
        except DbUnavailable as exc:
            app.count("writes_failed")
            self._unavailable(exc)
            return
        app.count("writes_ok")
        if app.publisher is not None and created:
            app.publisher.publish({"id": rec_id, "service": app.cfg.service, "region": app.cfg.region})
        self._send(201, {"id": rec_id, "created": created})

    def _find(self, query: dict[str, list[str]]) -> None:
        app = self.app
        if app.store is None:
            self._send(404, {"error": f"service {app.cfg.service!r} keeps no records"})
            return
        ids = [i for part in query.get("ids", []) for i in part.split(",") if i]
        source = (query.get("source") or ["writer"])[0]
        if source not in ("writer", "reader"):
            self._send(400, {"error": "source must be writer or reader"})
            return
        if len(ids) > MAX_IDS:
            self._send(400, {"error": f"at most {MAX_IDS} ids per request"})
            return
        from gameday.app.db import DbUnavailable

        try:
            found = app.store.find(ids, source=source) if ids else []
        except DbUnavailable as exc:
            self._unavailable(exc)
            return
        self._send(200, {"found": found, "source": source})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: App) -> None:
        self.app = app
        super().__init__((app.cfg.bind, app.cfg.port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


def serve(cfg: AppConfig) -> int:
    """Run until SIGTERM/SIGINT; print ``READY http://host:port`` once listening."""
    app = App(cfg)
    server = Server(app)
    port = server.server_address[1]

    def on_signal(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.start()
    print(f"READY http://{cfg.bind}:{port} service={cfg.service} region={cfg.region} "
          f"instance={cfg.instance_id}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = parse_config(argv)
    except GamedayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        return serve(cfg)
    except OSError as exc:
        print(f"error: cannot listen on {cfg.bind}:{cfg.port}: {exc}", file=sys.stderr)
        return 1
