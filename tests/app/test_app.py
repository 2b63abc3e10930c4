"""The reference service against a real PostgreSQL, over real HTTP, as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from _pg import AppFactory, ThrowawayPg, app_argv

from gameday.util.net import free_port, wait_port
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until

HEADERS = ("X-Gameday-Region", "X-Gameday-Instance", "X-Gameday-Service")


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


def timed(method: str, url: str, body: Any = None) -> tuple[float, int, Any]:
    t = time.monotonic()
    status, _, js = http(method, url, body)
    return time.monotonic() - t, status, js


def test_web_serves_static_items_without_db_and_tags_every_answer(start_app: AppFactory) -> None:
    url = start_app("web", instance="i-web-1", region="eu-central-1")
    for path, want in (("/health", 200), ("/items", 200), ("/nope", 404), ("/stats", 200)):
        status, headers, body = http("GET", url + path)
        assert status == want, (path, body)
        assert headers["X-Gameday-Region"] == "eu-central-1"
        assert headers["X-Gameday-Instance"] == "i-web-1"
        assert headers["X-Gameday-Service"] == "web"
    _, _, items = http("GET", url + "/items")
    assert items["service"] == "web" and [i["id"] for i in items["items"]][:1] == ["home"]
    status, headers, body = http("POST", url + "/records", {"id": "x"})
    assert status == 404 and headers["X-Gameday-Service"] == "web"


def test_orders_write_commits_and_reads_back(start_app: AppFactory, pg: ThrowawayPg) -> None:
    url = start_app("orders", db=pg, instance="i-ord-1")
    status, headers, body = http("GET", url + "/health")
    assert status == 200 and body["db"] == "writer"
    assert all(h in headers for h in HEADERS)

    a, b = f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"
    status, headers, body = http("POST", url + "/records", {"id": a, "payload": {"n": 1}})
    assert (status, body) == (201, {"id": a, "created": True})
    assert headers["X-Gameday-Instance"] == "i-ord-1"
    # 201 means committed: a separate connection sees it immediately.
    assert pg.query("SELECT service, region, payload FROM records WHERE id = %s", (a,)) == [
        ("orders", "eu-south-1", {"n": 1})]
    status, _, body = http("POST", url + "/records", {"id": a, "payload": {"n": 2}})
    assert (status, body["created"]) == (201, False)  # idempotent on duplicate id
    assert http("POST", url + "/records", {"id": b})[0] == 201

    status, _, body = http("GET", url + f"/records?ids={a},{b},missing-{uuid.uuid4().hex}")
    assert status == 200 and body["found"] == sorted([a, b]) and body["source"] == "writer"
    status, _, body = http("GET", url + f"/records?ids={a}&source=reader")
    assert body == {"found": [a], "source": "reader"}
    many = [f"nope-{i}" for i in range(3000)] + [b]  # too long for a query string
    status, _, body = http("POST", url + "/records/query", {"ids": many, "source": "writer"})
    assert (status, body["found"]) == (200, [b])
    _, _, items = http("GET", url + "/items")
    assert {a, b} <= {i["id"] for i in items["items"]}


def test_bad_requests_get_json_400_with_headers(start_app: AppFactory, pg: ThrowawayPg) -> None:
    url = start_app("orders", db=pg)
    for body in ({"payload": {}}, {"id": ""}, {"id": "x", "payload": [1]}):
        status, headers, js = http("POST", url + "/records", body)
        assert status == 400 and "error" in js and headers["X-Gameday-Service"] == "orders"
    req = urllib.request.Request(url + "/records", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400
    assert http("GET", url + "/records?ids=a&source=elsewhere")[0] == 400


def test_password_stays_out_of_argv_logs_and_answers(start_app: AppFactory, pg: ThrowawayPg,
                                                      registry: ProcessRegistry, tmp_path: Path) -> None:
    url = start_app("orders", db=pg, name="good")
    assert http("POST", url + "/records", {"id": f"pw-{uuid.uuid4().hex}"})[0] == 201
    cmdline = Path(f"/proc/{registry.procs['good'].pid}/cmdline").read_bytes()
    assert pg.password.encode() not in cmdline

    bad_pw = "Wr0ng-" + uuid.uuid4().hex
    bad = start_app("orders", db=pg, name="bad", password=bad_pw, extra=["--access-log"])
    status, _, body = http("GET", bad + "/health")
    assert status == 503 and "password authentication failed" in body["detail"]
    status, _, body = http("POST", bad + "/records", {"id": "never"})
    assert status == 503 and bad_pw not in json.dumps(body)
    for log in tmp_path.glob("*.log"):
        text = log.read_text()
        assert bad_pw not in text and pg.password not in text


def test_db_crash_gives_fast_503_then_reconnects(start_app: AppFactory, pg_private: ThrowawayPg) -> None:
    url = start_app("orders", db=pg_private)
    assert http("POST", url + "/records", {"id": "before"})[0] == 201
    pg_private.crash()  # pooled connections are now dead, like after a failover

    took, status, body = timed("GET", url + "/health")
    assert status == 503 and took < 1.5, (took, body)
    took, status, body = timed("POST", url + "/records", {"id": "during"})
    assert status == 503 and took < 1.5 and body["error"] == "database unavailable", (took, body)

    pg_private.start()
    wait_until("orders healthy again", lambda: http("GET", url + "/health")[0] == 200, timeout=10)
    assert http("POST", url + "/records", {"id": "after"})[0] == 201
    assert http("GET", url + "/records?ids=before,during,after")[2]["found"] == ["after", "before"]


def test_frozen_db_answers_within_deadlines(start_app: AppFactory, pg_private: ThrowawayPg) -> None:
    """SIGSTOP: TCP still connects, nothing answers; only client-side deadlines save us."""
    url = start_app("orders", db=pg_private, extra=["--db-statement-timeout", "1", "--health-timeout", "0.8"])
    assert http("POST", url + "/records", {"id": "warm"})[0] == 201
    pg_private.freeze()
    try:
        took, status, _ = timed("GET", url + "/health")
        assert status == 503 and took < 1.3, took
        took, status, body = timed("POST", url + "/records", {"id": "frozen"})
        # connect (1 s) + statement (1 s) + margin: a bounded 503, never a stall.
        assert status == 503 and took < 3.0, (took, body)
    finally:
        pg_private.thaw()
    wait_until("orders healthy after thaw", lambda: http("GET", url + "/health")[0] == 200, timeout=10)
    assert http("POST", url + "/records", {"id": "thawed"})[0] == 201


def test_sigterm_stops_cleanly_and_fast(registry: ProcessRegistry, tmp_path: Path) -> None:
    port = free_port()
    t0 = time.monotonic()
    m = registry.spawn("web", app_argv("web", port), log=tmp_path / "web.log")
    wait_port(port, timeout=10)
    started = time.monotonic() - t0
    assert http("GET", f"http://127.0.0.1:{port}/health")[0] == 200
    os.kill(m.pid, signal.SIGTERM)
    assert m.popen.wait(timeout=5) == 0
    assert started < 3.0, f"startup took {started:.2f} s"
    assert "READY http://127.0.0.1:" in (tmp_path / "web.log").read_text()


def test_db_service_without_writer_is_a_config_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "gameday.app", "--service", "orders", "--region", "r",
                           "--instance-id", "i", "--port", "0"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--db-writer" in proc.stderr


def test_orders_publish_and_catalog_consumes(start_app: AppFactory, pg: ThrowawayPg,
                                             registry: ProcessRegistry, tmp_path: Path) -> None:
    """Real SQS API (moto server as the stand-in): orders publishes per write, catalog drains."""
    import boto3

    port = free_port()
    registry.spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                   log=tmp_path / "moto.log")
    wait_port(port, timeout=30, what="moto server")
    endpoint = f"http://127.0.0.1:{port}"
    sqs = boto3.client("sqs", region_name="eu-south-1", endpoint_url=endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    queue_url = sqs.create_queue(QueueName="gameday-orders")["QueueUrl"]
    q = ["--queue-url", queue_url, "--sqs-endpoint", endpoint]
    orders = start_app("orders", db=pg, name="orders", extra=q)
    catalog = start_app("catalog", db=pg, name="catalog", extra=[*q, "--sqs-wait", "1"])
    ids = [f"msg-{uuid.uuid4().hex}" for _ in range(5)]
    for i in ids:
        assert http("POST", orders + "/records", {"id": i})[0] == 201
    wait_until("catalog consumed 5 messages",
               lambda: http("GET", catalog + "/items")[2].get("consumed", 0) >= 5, timeout=20, interval=0.3)
    assert http("GET", orders + "/stats")[2]["published"] == 5
    status, _, health = http("GET", catalog + "/health")
    assert status == 200 and health["db"] == "reader"
