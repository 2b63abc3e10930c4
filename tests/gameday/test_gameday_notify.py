"""Webhooks against a real HTTP receiver on 127.0.0.1: Slack-shaped body, retries with backoff, never fatal."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gameday.gameday.notify import Notifier, send
from gameday.gameday.plan import Webhook
from gameday.util.net import LOOPBACK, free_port


class Receiver:
    """Answers the first ``fail_first`` POSTs with 503, then 200; records bodies and arrival times."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first = fail_first
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                outer.times.append(time.monotonic())
                code = outer.status if len(outer.bodies) <= outer.fail_first else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail_first=2) as r:
        yield r


EVENT = {"event": "finish", "plan": "weekly", "target": "sandbox sandbox", "verdict": "FAIL", "run_id": "r1",
         "scenarios": [{"scenario": "region-outage", "verdict": "FAIL", "detail": "orders read RTO 9 s > 6 s"}],
         "worst_regression": "region-outage orders write RTO: 9 s, previous 4 s (+125 %)",
         "report": "reports/runs/r1/summary.html"}


def test_retries_with_backoff_then_delivers(receiver: Receiver) -> None:
    hook = Webhook(url=receiver.url, retries=3, backoff_s=0.2, timeout_s=2)
    d = send(hook, EVENT)
    assert d.delivered and d.attempts == 3
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 0.2 s, then 0.4 s: exponential
    body = receiver.bodies[-1]
    assert "FAIL" in body["text"] and "weekly" in body["text"]
    text = json.dumps(body["blocks"])
    assert "region-outage" in text and "Worst regression" in text and "summary.html" in text


def test_json_format_carries_the_event() -> None:
    with Receiver() as r:
        assert send(Webhook(url=r.url, format="json"), EVENT).delivered
        assert r.bodies[0]["verdict"] == "FAIL" and r.bodies[0]["scenarios"][0]["scenario"] == "region-outage"


def test_client_error_is_not_retried() -> None:
    with Receiver(fail_first=5, status=400) as r:
        d = send(Webhook(url=r.url, retries=3, backoff_s=0.05), EVENT)
        assert not d.delivered and d.attempts == 1 and len(r.bodies) == 1 and "400" in d.detail


def test_unreachable_receiver_never_raises() -> None:
    port = free_port()  # nothing listens there
    lines: list[str] = []
    hook = Webhook(url=f"http://{LOOPBACK}:{port}/x", retries=2, backoff_s=0.05, timeout_s=1)
    n = Notifier([hook], echo=lines.append)
    n.emit("finish", EVENT)
    assert len(n.deliveries) == 1 and not n.deliveries[0].delivered and n.deliveries[0].attempts == 3
    assert lines and "the game day goes on" in lines[0] and str(port) in lines[0]


def test_only_subscribed_events_and_unset_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    with Receiver() as r:
        n = Notifier([Webhook(url=r.url, on=("halt",)), Webhook(url="${NO_SUCH_HOOK}")])
        n.emit("start", {**EVENT, "event": "start"})
        assert r.bodies == []
        n.emit("halt", {**EVENT, "verdict": "HALTED", "reason": "SIGTERM received"})
        assert len(r.bodies) == 1 and "HALTED" in r.bodies[0]["text"]
        unset = [d for d in n.deliveries if not d.delivered]
        assert unset and "NO_SUCH_HOOK" in unset[0].detail
