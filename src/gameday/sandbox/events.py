"""Ground truth: every state change the sandbox makes, appended as it happens.

Measurements (RTO, routing switches, lost writes) are checked against this file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gameday.util.jsonl import JsonlWriter, now_pair, read_jsonl

# The kinds of event the sandbox writes; analysis and tests rely on these names.
EVENT_KINDS = frozenset({
    "instance_started", "instance_killed", "instance_stopped",
    "instance_in_service", "instance_unhealthy", "instance_terminated",  # Auto Scaling lifecycle (asg.py)
    "target_registered", "target_deregistered", "target_healthy", "target_unhealthy",
    "router_switched", "traffic_dial_changed", "endpoint_weight_changed", "route53_health_check_changed",
    "dns_answer_followed",
    "db_promoted", "db_failover_started", "db_failover_done", "db_rejoined", "db_crashed", "db_replica_promoted",
    "db_crash_detected", "db_recovery_started", "db_recovered", "db_instance_status",
    "region_down", "region_up", "link_cut", "link_healed", "link_delay",
    "sandbox_up", "sandbox_down", "fault_injected",
    "sandbox_lateness",  # one per second: how late the daemon's threads wake (gameday.sandbox.lateness)
})


class EventLog:
    """Append-only JSON-lines ground-truth log (wall-clock ``ts`` and monotonic ``mono``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._w = JsonlWriter(self.path)

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; add it to EVENT_KINDS")
        rec = {"kind": kind, **now_pair(), **fields}
        self._w.write(rec)
        return rec

    def close(self) -> None:
        self._w.close()


def read_events(path: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    """All events (optionally of one kind) in file order."""
    return [e for e in read_jsonl(path) if kind is None or e.get("kind") == kind]
