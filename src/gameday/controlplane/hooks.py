"""Hooks on control-plane API calls: observe (after) or replace (override) moto's answer.

The sandbox controller and fault injectors need to react to, or fake, individual AWS calls
without patching moto; hooks are the one seam for that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Signing names (SigV4 credential scope) and botocore names that differ from the boto3 client name.
SERVICE_ALIASES: dict[str, str] = {
    "monitoring": "cloudwatch",
    "elasticloadbalancingv2": "elbv2",
    "email": "ses",
    "states": "stepfunctions",
    "execute-api": "apigateway",
    "events": "events",
    "globalaccelerator": "globalaccelerator",
}


def normalize_service(name: str) -> str:
    """Boto3 client name for a signing or client name (``monitoring`` -> ``cloudwatch``)."""
    low = name.lower()
    return SERVICE_ALIASES.get(low, low)


@dataclass(frozen=True)
class ApiCall:
    """One API call as the control plane saw it; ``status`` is 0 while an override decides."""

    service: str
    action: str
    region: str
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 0


Response = tuple[int, list[tuple[str, str]] | dict[str, str], bytes | str]
AfterFn = Callable[[ApiCall], None]
OverrideFn = Callable[[ApiCall], "Response | None"]


class Hooks:
    """Registry of hook functions keyed by (service, action); ``"*"`` matches any action."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._after: dict[tuple[str, str], list[AfterFn]] = {}
        self._override: dict[tuple[str, str], list[OverrideFn]] = {}

    def after(self, service: str, action: str, fn: AfterFn) -> AfterFn:
        """Run fn(call) after the call was answered (before the answer is sent back)."""
        with self._lock:
            self._after.setdefault((normalize_service(service), action), []).append(fn)
        return fn

    def override(self, service: str, action: str, fn: OverrideFn) -> OverrideFn:
        """fn(call) may return (status, headers, body) to answer instead of moto; None lets moto answer."""
        with self._lock:
            self._override.setdefault((normalize_service(service), action), []).append(fn)
        return fn

    def remove(self, fn: Callable[..., Any]) -> None:
        """Unregister fn wherever it was registered."""
        with self._lock:
            for table in (self._after, self._override):
                for fns in table.values():
                    while fn in fns:
                        fns.remove(fn)

    def clear(self) -> None:
        with self._lock:
            self._after.clear()
            self._override.clear()

    def _lookup(self, table: dict[tuple[str, str], list[Any]], call: ApiCall) -> list[Any]:
        with self._lock:
            return [*table.get((call.service, call.action), ()), *table.get((call.service, "*"), ())]

    def has_any(self) -> bool:
        with self._lock:
            return any(self._after.values()) or any(self._override.values())

    def run_override(self, call: ApiCall) -> Response | None:
        """First non-None override answer wins; a raising hook is logged and skipped."""
        for fn in self._lookup(self._override, call):
            try:
                result = fn(call)
            except Exception:
                log.exception("override hook %r failed on %s.%s", fn, call.service, call.action)
                continue
            if result is not None:
                return result
        return None

    def run_after(self, call: ApiCall) -> None:
        for fn in self._lookup(self._after, call):
            try:
                fn(call)
            except Exception:
                log.exception("after hook %r failed on %s.%s", fn, call.service, call.action)
