"""Webhook notifications: start, finish, breach, halt. A failed notification never fails a game day.

Each webhook gets a JSON POST: a Slack-compatible body by default (``text`` plus ``blocks`` of
``mrkdwn`` sections, what Slack incoming webhooks take), or the plain event document
(``format: json``). Connection errors, 5xx and 429 are retried with exponential backoff
(``backoff_s`` x 2^attempt, capped, honouring a short ``Retry-After``); 4xx other than 429 is not
retried. The URL is a secret (a Slack webhook URL is a credential): messages name only its host.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gameday.errors import ConfigError
from gameday.gameday.plan import Webhook, resolve_env

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0
EMOJI = {"PASS": ":white_check_mark:", "FAIL": ":x:", "HALTED": ":octagonal_sign:", "ERROR": ":warning:",
         "INCONCLUSIVE": ":grey_question:", "RUNNING": ":arrow_forward:"}


@dataclass(frozen=True)
class Delivery:
    """What happened to one notification (for the run's log and the tests)."""

    host: str
    event: str
    delivered: bool
    attempts: int
    detail: str


def _host(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).netloc or "?"
    except ValueError:
        return "?"


def slack_body(event: Mapping[str, Any]) -> dict[str, Any]:
    """Slack incoming-webhook payload: a fallback ``text`` and a few ``mrkdwn`` blocks."""
    verdict = str(event.get("verdict", "RUNNING"))
    kind = event["event"]
    head = f"{EMOJI.get(verdict, '')} game day *{event['plan']}* on {event['target']}: " + (
        "started" if kind == "start" else f"*{verdict}*" + (f" ({event['reason']})" if event.get("reason") else ""))
    lines = [f"- {s['scenario']}: {s['verdict']}" + (f" ({s['detail']})" if s.get("detail") else "")
             for s in event.get("scenarios", [])]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}})
    if event.get("worst_regression"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                    "text": f"Worst regression: {event['worst_regression']}"}})
    if event.get("report"):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Report: {event['report']}"}]})
    return {"text": head, "blocks": blocks}


def send(hook: Webhook, event: Mapping[str, Any], *, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST one event to one webhook with retries; never raises."""
    kind = str(event.get("event"))
    try:
        url = resolve_env(hook.url, field_name="notify.url")
    except ConfigError as exc:
        return Delivery("?", kind, False, 0, str(exc).splitlines()[0])
    host = _host(url)
    body = json.dumps(slack_body(event) if hook.format == "slack" else dict(event), default=str).encode()
    attempts = 0
    detail = ""
    for attempt in range(hook.retries + 1):
        attempts = attempt + 1
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "gameday"})
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(req, timeout=hook.timeout_s) as resp:
                return Delivery(host, kind, True, attempts, f"HTTP {resp.status}")
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break  # the receiver refused this body: sending it again will not help
            ra = exc.headers.get("Retry-After") if exc.headers else None
            retry_after = float(ra) if ra and ra.strip().isdigit() else None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < hook.retries:
            wait = min(MAX_BACKOFF_S, hook.backoff_s * (2 ** attempt))
            sleep(min(MAX_BACKOFF_S, max(wait, retry_after or 0.0)))
    log.info("notification %s to %s failed after %d attempts: %s", kind, host, attempts, detail)
    return Delivery(host, kind, False, attempts, detail)


class Notifier:
    """Sends each event to the webhooks subscribed to it; remembers every delivery."""

    def __init__(self, hooks: Sequence[Webhook], *, echo: Callable[[str], None] | None = None) -> None:
        self.hooks = list(hooks)
        self.echo = echo
        self.deliveries: list[Delivery] = []

    def emit(self, kind: str, event: Mapping[str, Any]) -> None:
        for hook in self.hooks:
            if kind not in hook.on:
                continue
            try:
                d = send(hook, {**event, "event": kind})
            except Exception as exc:  # a notification must never fail the game day
                d = Delivery(_host(hook.url), kind, False, 0, f"{type(exc).__name__}: {exc}")
            self.deliveries.append(d)
            if self.echo and not d.delivered:
                self.echo(f"notification '{kind}' to {d.host} failed after {d.attempts} attempt(s): {d.detail} "
                          "(the game day goes on)")
