"""SQS side of the services: orders publishes one message per accepted write, catalog consumes.

Both run in background threads so a slow or absent queue never delays an HTTP answer; boto3 is
imported inside those threads (it costs ~0.5 s, and most instances never need it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
from typing import Any

log = logging.getLogger("gameday.app.messaging")


def _sqs_client(region: str, endpoint: str | None, read_timeout: float) -> Any:
    import boto3  # lazy: see module docstring
    from botocore.config import Config

    kwargs: dict[str, Any] = {}
    host = (endpoint or "").split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0]
    if endpoint and host in ("127.0.0.1", "localhost") and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # The local control plane accepts any credentials; real AWS uses the instance profile.
        kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    cfg = Config(connect_timeout=1, read_timeout=read_timeout,
                 retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("sqs", region_name=region, endpoint_url=endpoint, config=cfg, **kwargs)


class Publisher:
    """Bounded in-memory queue drained by one thread; failures and drops are counted, never raised."""

    def __init__(self, queue_url: str, region: str, endpoint: str | None, maxsize: int = 1000) -> None:
        self.queue_url = queue_url
        self.region = region
        self.endpoint = endpoint
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name="sqs-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def publish(self, body: dict[str, Any]) -> None:
        try:
            self._q.put_nowait(body)
        except queue.Full:
            self.dropped += 1

    def _loop(self) -> None:
        client = None
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                break
            try:
                if client is None:
                    client = _sqs_client(self.region, self.endpoint, read_timeout=5)
                client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(item))
                self.sent += 1
            except Exception as exc:
                self.failed += 1
                log.debug("publish failed: %s", exc)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(None)
        if self._thread.is_alive():
            self._thread.join(timeout)


class Consumer:
    """Long-poll loop (bounded wait) that deletes what it receives and counts it."""

    def __init__(self, queue_url: str, region: str, endpoint: str | None, wait_s: int = 2) -> None:
        self.queue_url = queue_url
        self.region = region
        self.endpoint = endpoint
        self.wait_s = wait_s
        self._stop = threading.Event()
        self.consumed = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._loop, name="sqs-consumer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        client = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = _sqs_client(self.region, self.endpoint, read_timeout=self.wait_s + 5)
                resp = client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=self.wait_s)
                msgs = resp.get("Messages", [])
                if msgs:
                    client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
                    self.consumed += len(msgs)
            except Exception as exc:
                self.errors += 1
                log.debug("consume failed: %s", exc)
                self._stop.wait(1.0)

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.wait_s + 6 if timeout is None else timeout)
