"""The load journals' schema: request records, write records and run info (standard library only).

The locustfile writes these, the load runner and the analysis read them; this module is the one
definition of their fields. It imports nothing from gameday, so the locustfile can use it on a
machine without gameday installed (a stock locust image) with this file copied beside it.

* ``requests.jsonl``: one :class:`RequestRecord` per line, written as the request completed.
* ``ledger.jsonl``: one :class:`WriteRecord` per write attempt (also in ``requests.jsonl``).
* ``run.json``: one :class:`RunInfo` (in distributed mode the master's, listing its ``workers``;
  each worker also writes ``run-<worker>.json``).

Outcomes: ``ok`` = 2xx; ``failed`` = an HTTP error answer, or the connection was refused / not
established (certainly not applied); ``unknown`` = sent but no answer (timeout, reset): a write may
or may not have been applied. ``status``/``region``/``instance`` are None when no answer came.
Timestamps are wall-clock seconds (``time.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

Outcome = Literal["ok", "failed", "unknown"]
Kind = Literal["read", "write"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "failed", "unknown")
KINDS: tuple[Kind, ...] = ("read", "write")
REQUESTS = "requests"  # journal stems: requests.jsonl, requests-w1.jsonl, requests.000001.jsonl.gz ...
LEDGER = "ledger"
RUN_INFO = "run.json"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it completed."""

    t0: float
    t1: float
    service: str
    kind: Kind
    outcome: Outcome
    endpoint: str | None = None
    status: int | None = None
    region: str | None = None
    instance: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def latency_s(self) -> float:
        return self.t1 - self.t0

    def to_dict(self) -> dict[str, Any]:
        """The journal line."""
        return {"t0": self.t0, "t1": self.t1, "service": self.service, "kind": self.kind,
                "outcome": self.outcome, "endpoint": self.endpoint, "status": self.status,
                "region": self.region, "instance": self.instance, "error": self.error}


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One write attempt: the client-generated unique ``id`` and what the client learnt about it;
    ``t1`` is the acknowledgement time when ``ok``."""

    id: str
    service: str
    t0: float
    t1: float
    outcome: Outcome
    status: int | None = None
    region: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The journal line."""
        return {"id": self.id, "service": self.service, "t0": self.t0, "t1": self.t1, "outcome": self.outcome,
                "status": self.status, "region": self.region}


@dataclass(frozen=True)
class RunInfo:
    """``run.json``: what one locust process (local, master or worker) was asked to do."""

    run_id: str
    pid: int
    started: float
    role: str  # "local" | "master" | "worker"
    targets: dict[str, str | None]
    probe_rate: float
    write_rate: float
    write_services: list[str]
    connect_timeout: float
    read_timeout: float
    record: bool
    users: int
    schedules: int
    host: str | None = None
    journals: list[str] = field(default_factory=list)
    write_id_prefix: str | None = None
    # a worker
    worker_id: str | None = None
    hostname: str | None = None
    client_id: str | None = None
    # the master
    expected_workers: int | None = None
    workers: list[RunInfo] = field(default_factory=list)
    stopped: float | None = None
    workers_drained: list[str] = field(default_factory=list)
    workers_missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["workers"] = [w.to_dict() for w in self.workers]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        """From ``run.json`` (unknown keys, from a newer locustfile, are ignored)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["workers"] = [cls.from_dict(w) for w in data.get("workers") or []]
        return cls(**kw)
