"""gameday load: steady read probes per service + paced writes, every request journaled as it completes.

Run alone:   locust -f loadtests/locustfile.py --host http://127.0.0.1:PORT --headless -u 1 -r 1 -t 30s
Normally started by ``gameday.load.runner.LoadRunner`` and configured by env:

  GAMEDAY_TARGETS          JSON {"web": "http://127.0.0.1:p1", "orders": ..., "catalog": ...}
                           (unset: one service, GAMEDAY_SERVICE (default web), at --host)
  GAMEDAY_PROBE_RATE       GET /items per second per service (default 20)
  GAMEDAY_WRITE_RATE       POST /records per second per write service (default 10)
  GAMEDAY_WRITE_SERVICES   comma list of services that get writes (default "orders"; "" for none)
  GAMEDAY_RECORDS_DIR      where requests.jsonl, ledger.jsonl and run.json go (default ./gameday-records)
  GAMEDAY_RUN_ID           prefix of every written id (default: time + random)
  GAMEDAY_CONNECT_TIMEOUT  seconds (default 1)      GAMEDAY_READ_TIMEOUT  seconds (default 2)
  GAMEDAY_RECORD           1 (default) / 0: journal requests or not (the benchmark compares both)
  GAMEDAY_MAX_RUN_TIME     safety stop in seconds when no --run-time is given (default 3600)
  GAMEDAY_MAX_INFLIGHT     cap on concurrent requests per user (default rate x timeouts x 1.5)
  GAMEDAY_JOURNAL_MAX_MB   journal segment size before rotation (default 64; rotated segments are
                           named requests.000001.jsonl, then compressed to .gz, or .zst when the
                           zstandard package is installed)
  GAMEDAY_JOURNAL_COMPRESSION  gzip / zstd / none (default: zstd if installed, else gzip)
  GAMEDAY_JOURNAL_FLUSH_S  how often buffered journal lines reach the file (default 0.2 s; always at stop)

Journal and run.json fields: ``gameday.util.journal_schema`` (RequestRecord, WriteRecord, RunInfo).
Without gameday installed (a stock locust image), copy ``src/gameday/util/journal_schema.py``
beside this file: it needs nothing but the standard library.

Pacing: each (service, kind) has one user running a fixed schedule (request k starts at k/rate s)
and each request runs in its own greenlet, so a stalled target does not stretch the schedule:
the time resolution of the probes is 1/rate whatever the target does.

Outcomes: "ok" = 2xx; "failed" = an HTTP error answer, or the connection was refused / not
established in time (the request certainly never reached a server); "unknown" = sent but no
answer (read timeout, reset, dropped connection) -- a write may or may not have been applied.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import gevent
import requests
from gevent.pool import Pool
from locust import HttpUser, events, task
from locust.exception import StopUser
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

try:
    from gameday.util.journal import JournalWriter
except ImportError:  # locust run from a venv without gameday: buffered, no rotation or compression

    class JournalWriter:  # type: ignore[no-redef]
        def __init__(self, path: str | os.PathLike[str], **_: Any) -> None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "ab", buffering=1 << 18)  # noqa: SIM115 - closed in close()

        def write(self, record: dict[str, Any]) -> None:
            if not self._fh.closed:
                self._fh.write((json.dumps(record, separators=(",", ":"), default=str) + "\n").encode())

        def flush(self, *, fsync: bool = False) -> None:
            if not self._fh.closed:
                self._fh.flush()
                if fsync:
                    os.fsync(self._fh.fileno())

        def close(self) -> None:
            if not self._fh.closed:
                self.flush(fsync=True)
                self._fh.close()


try:
    from gameday.util.journal_schema import RequestRecord, RunInfo, WriteRecord
except ImportError:  # no gameday here: the schema file beside this one (locust puts this folder on sys.path)
    try:
        from journal_schema import RequestRecord, RunInfo, WriteRecord  # type: ignore[no-redef]
    except ImportError:
        sys.stderr.write("gameday locustfile: gameday is not installed and journal_schema.py is not beside "
                         "this file; fix: copy src/gameday/util/journal_schema.py next to the locustfile\n")
        raise SystemExit(2) from None


def _fail(message: str) -> None:
    """Bad configuration: one clear line on stderr and a non-zero exit, before any load starts."""
    sys.stderr.write(f"gameday locustfile: {message}\n")
    sys.stderr.flush()
    raise SystemExit(2)


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        _fail(f"{name}={raw!r} is not a number")
    if value < minimum:
        _fail(f"{name}={raw!r} must be >= {minimum}")
    return value


def _load_targets() -> dict[str, str | None]:
    raw = os.environ.get("GAMEDAY_TARGETS", "").strip()
    if not raw:
        return {os.environ.get("GAMEDAY_SERVICE", "web").strip() or "web": None}  # None: use --host
    try:
        targets = json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(f"GAMEDAY_TARGETS is not valid JSON ({exc}): {raw[:200]!r}")
    if not isinstance(targets, dict) or not targets:
        _fail('GAMEDAY_TARGETS must be a non-empty JSON object like {"web": "http://127.0.0.1:8080"}')
    for service, url in targets.items():
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            _fail(f"GAMEDAY_TARGETS[{service!r}] must be an http(s) URL, got {url!r}")
    return {str(k): str(v).rstrip("/") for k, v in targets.items()}


TARGETS = _load_targets()
PROBE_RATE = _env_float("GAMEDAY_PROBE_RATE", 20.0)
WRITE_RATE = _env_float("GAMEDAY_WRITE_RATE", 10.0)
WRITE_SERVICES = [s.strip() for s in os.environ.get("GAMEDAY_WRITE_SERVICES", "orders").split(",")
                  if s.strip()]
CONNECT_TIMEOUT = _env_float("GAMEDAY_CONNECT_TIMEOUT", 1.0, minimum=0.01)
READ_TIMEOUT = _env_float("GAMEDAY_READ_TIMEOUT", 2.0, minimum=0.01)
# Bound on requests in flight per user (default: enough for rate x (connect + read timeout)).
MAX_INFLIGHT = int(_env_float("GAMEDAY_MAX_INFLIGHT", 0.0))
MAX_RUN_TIME = _env_float("GAMEDAY_MAX_RUN_TIME", 3600.0, minimum=1.0)
RECORD = os.environ.get("GAMEDAY_RECORD", "1").strip().lower() not in ("0", "false", "no", "off")
RECORDS_DIR = Path(os.environ.get("GAMEDAY_RECORDS_DIR", "gameday-records"))
FLUSH_S = _env_float("GAMEDAY_JOURNAL_FLUSH_S", 0.2, minimum=0.01)
JOURNAL_MAX_BYTES = int(_env_float("GAMEDAY_JOURNAL_MAX_MB", 64.0) * (1 << 20))
JOURNAL_COMPRESSION = os.environ.get("GAMEDAY_JOURNAL_COMPRESSION", "").strip().lower() or None
if JOURNAL_COMPRESSION not in (None, "gzip", "zstd", "none"):
    _fail(f"GAMEDAY_JOURNAL_COMPRESSION={JOURNAL_COMPRESSION!r} must be gzip, zstd or none")
RUN_ID = (os.environ.get("GAMEDAY_RUN_ID", "").strip()
          or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6])
#: "" in a single locust process; in distributed mode each worker's id (``w1``, ``w2``, ... from the
#: master's worker index, or GAMEDAY_WORKER_ID), in its journal file names and every write id.
WORKER_ID = ""
_standalone = next(iter(TARGETS.values())) is None
for _svc in WRITE_SERVICES:
    if _svc not in TARGETS and not _standalone:
        _fail(f"GAMEDAY_WRITE_SERVICES names {_svc!r}, which has no URL in GAMEDAY_TARGETS "
              f"({sorted(TARGETS)})")
# Bound on concurrent requests per user: every request ends within connect + read timeout.
_MAX_INFLIGHT_FLOOR = 8


class Journal:
    """requests.jsonl + ledger.jsonl, plus the requests still in flight (journaled as unknown at stop).

    Lines are buffered in memory (no syscall per request) and reach the files every FLUSH_S seconds,
    when a buffer fills, and at stop with an fsync, so an orderly stop (run time over, SIGTERM) loses
    nothing and every acknowledged write's ledger line is durable before locust exits. Journals
    rotate at GAMEDAY_JOURNAL_MAX_MB and closed segments are compressed in a background thread.
    """

    def __init__(self, directory: Path, suffix: str = "") -> None:
        opts: dict[str, Any] = {"max_bytes": JOURNAL_MAX_BYTES, "threadsafe": False}
        if JOURNAL_COMPRESSION:
            opts["compression"] = JOURNAL_COMPRESSION
        self.requests = JournalWriter(directory / f"requests{suffix}.jsonl", **opts)
        self.ledger = JournalWriter(directory / f"ledger{suffix}.jsonl", **opts)
        self.inflight: dict[int, dict[str, Any]] = {}
        self._tokens = itertools.count(1)
        self._flusher: Any = None
        self.start_flushing()

    def start_flushing(self) -> None:
        """A greenlet that pushes buffered lines to disk every FLUSH_S (live tails, stop conditions)."""
        def loop() -> None:
            while True:
                gevent.sleep(FLUSH_S)
                self.flush()

        if self._flusher is None:
            self._flusher = gevent.spawn(loop)

    def flush(self, *, fsync: bool = False) -> None:
        self.ledger.flush(fsync=fsync)
        self.requests.flush(fsync=fsync)

    def begin(self, ctx: dict[str, Any]) -> None:
        ctx["token"] = next(self._tokens)
        self.inflight[ctx["token"]] = ctx

    def finish(self, ctx: dict[str, Any], t0: float, t1: float, outcome: str, status: int | None,
               region: str | None, instance: str | None, error: str | None) -> None:
        if self.inflight.pop(ctx.get("token", -1), None) is None and "token" in ctx:
            return  # already journaled (abandoned at stop)
        self.requests.write(RequestRecord(t0, t1, ctx["service"], ctx["kind"], outcome, ctx["endpoint"], status,
                                          region, instance, error).to_dict())
        if ctx["kind"] == "write":
            self.ledger.write(WriteRecord(ctx["id"], ctx["service"], t0, t1, outcome, status, region).to_dict())

    def abandon_inflight(self) -> None:
        now = time.time()
        for ctx in list(self.inflight.values()):
            self.finish(ctx, ctx["t0"], now, "unknown", None, None, None, "still in flight at stop")

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.kill(block=False)
            self._flusher = None
        self.ledger.close()
        self.requests.close()


JOURNAL: Journal | None = None
STOPPING = False
POOLS: list[Pool] = []


def _refused(err: BaseException) -> bool:
    """Whether the connection was never established (so the request was certainly not sent)."""
    seen: set[int] = set()
    todo: list[Any] = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(e, BaseException):
            todo.extend([getattr(e, "reason", None), e.__cause__, e.__context__, *e.args])
    return False


def classify(status: int, err: BaseException | None) -> tuple[str, str | None]:
    """(outcome, error text) from the HTTP status (0 = no answer) and the requests exception."""
    if status:
        return ("ok", None) if 200 <= status < 300 else ("failed", f"HTTP {status}")
    if err is None:
        return "unknown", "no response"
    if isinstance(err, requests.exceptions.ConnectTimeout):
        return "failed", "connect timeout"
    if isinstance(err, requests.exceptions.ConnectionError) and _refused(err):
        return "failed", "connection refused"
    if isinstance(err, requests.exceptions.ReadTimeout):
        return "unknown", "read timeout"
    return "unknown", f"{type(err).__name__}: {err}"[:300]


@events.request.add_listener
def _on_request(request_type: str, name: str, response_time: float, response_length: int,
                response: Any = None, context: dict[str, Any] | None = None,
                exception: BaseException | None = None, start_time: float | None = None,
                **_: Any) -> None:
    ctx = (context or {}).get("gameday")
    if ctx is None or JOURNAL is None:
        return
    t1 = time.time()
    status = int(getattr(response, "status_code", 0) or 0)
    outcome, error = classify(status, getattr(response, "error", None) or exception)
    if outcome == "failed" and status:
        try:
            detail = response.json().get("error") if response.content else None
        except (ValueError, AttributeError):
            detail = None
        if detail:
            error = f"{error}: {str(detail)[:200]}"
    headers = response.headers if status else {}
    JOURNAL.finish(ctx, start_time or ctx["t0"], t1, outcome, status or None,
                   headers.get("X-Gameday-Region"), headers.get("X-Gameday-Instance"), error)


class PacedUser(HttpUser):
    """One fixed-rate schedule of one kind of request against one service."""

    abstract = True
    fixed_count = 1
    service = ""
    kind = "read"
    rate = 1.0
    target_url: str | None = None  # from GAMEDAY_TARGETS; None: --host

    def __init__(self, environment: Any) -> None:
        # locust copies --host onto every user class at start; GAMEDAY_TARGETS must win.
        if self.target_url:
            self.host = self.target_url
        super().__init__(environment)

    def wait_time(self) -> float:
        return 0.0

    def on_start(self) -> None:
        self.cap = MAX_INFLIGHT or max(_MAX_INFLIGHT_FLOOR,
                                       int(self.rate * (CONNECT_TIMEOUT + READ_TIMEOUT) * 1.5) + 2)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.cap, max_retries=0)
        self.client.mount("http://", adapter)
        self.client.mount("https://", adapter)
        self.seq = itertools.count(1)

    @task
    def paced(self) -> None:
        if self.rate <= 0:
            raise StopUser()
        pool = Pool(self.cap)
        POOLS.append(pool)
        period = 1.0 / self.rate
        next_t = time.monotonic()
        while not STOPPING:
            delay = next_t - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
                if STOPPING:
                    break  # stopped while asleep: no request after the drain began
            elif delay < -1.0:
                next_t = time.monotonic()  # starved for > 1 s: resume the schedule, do not burst
            pool.spawn(self.one)  # blocks only if `cap` requests are in flight
            next_t += period
        raise StopUser()

    def one(self) -> None:
        n = next(self.seq)
        ctx: dict[str, Any] = {"service": self.service, "kind": self.kind, "t0": time.time()}
        if self.kind == "write":
            prefix = f"{RUN_ID}-{WORKER_ID}" if WORKER_ID else RUN_ID  # unique across workers
            ctx.update(endpoint="POST /records", id=f"{prefix}-{self.service}-{n:07d}-{uuid.uuid4().hex[:8]}")
        else:
            ctx["endpoint"] = "GET /items"
        if JOURNAL is not None:
            JOURNAL.begin(ctx)
        kwargs: dict[str, Any] = {"name": f"{self.service} {ctx['endpoint']}",
                                  "timeout": (CONNECT_TIMEOUT, READ_TIMEOUT), "context": {"gameday": ctx}}
        try:
            if self.kind == "write":
                self.client.post("/records", json={"id": ctx["id"], "payload": {"run": RUN_ID, "seq": n}},
                                 **kwargs)
            else:
                self.client.get("/items", **kwargs)
        except Exception as exc:  # not a transport error (those are reported by the client): journal it
            if JOURNAL is not None:
                JOURNAL.finish(ctx, ctx["t0"], time.time(), "unknown", None, None, None,
                               f"{type(exc).__name__}: {exc}"[:300])
            raise


def _make_users() -> None:
    """One user class per (service, kind), visible at module level where locust looks for them."""
    for service, url in TARGETS.items():
        plans = [("read", PROBE_RATE)]
        if service in WRITE_SERVICES:
            plans.append(("write", WRITE_RATE))
        for kind, rate in plans:
            if rate <= 0:
                continue
            cls_name = f"{kind.capitalize()}_{''.join(c if c.isalnum() else '_' for c in service)}"
            attrs: dict[str, Any] = {"service": service, "kind": kind, "rate": rate, "__module__": __name__}
            if url is not None:
                attrs["host"] = attrs["target_url"] = url
            globals()[cls_name] = type(cls_name, (PacedUser,), attrs)


_make_users()


def _user_classes() -> list[type[PacedUser]]:
    return [v for v in list(globals().values())
            if isinstance(v, type) and issubclass(v, PacedUser) and v is not PacedUser]


USER_COUNT = len(_user_classes())


@events.init.add_listener
def _check_options(environment: Any, **_: Any) -> None:
    """Bad --host / -u: one line and exit 2 before any request (locust would start and journal failures)."""
    opts = getattr(environment, "parsed_options", None)
    if opts is None:
        return
    host = getattr(opts, "host", None)
    if (host or _standalone) and not str(host or "").startswith(("http://", "https://")):
        _fail(f"--host {host!r} is not an http(s) URL; fix: --host http://127.0.0.1:PORT")
    if _role(environment) == "worker":
        _register_worker(environment)
        return  # the master decides the users
    users = getattr(opts, "num_users", None)
    if users is not None and (int(users) < USER_COUNT or int(users) % USER_COUNT):
        _fail(f"-u/--users {users}: this locustfile runs {USER_COUNT} paced schedule(s), one per (service, kind), "
              f"each by the same number of users; fix: -u {USER_COUNT} or a multiple of it (-u {USER_COUNT * 2}: "
              "two users per schedule, each at GAMEDAY_PROBE_RATE / GAMEDAY_WRITE_RATE)")
    copies = int(users) // USER_COUNT if users is not None else 1
    for cls in _user_classes():
        cls.fixed_count = copies  # locust spreads fixed users over the workers
    if _role(environment) == "master":
        _register_master(environment)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    global JOURNAL, STOPPING, _TEST_STARTED, WORKER_ID
    STOPPING = False
    _TEST_STARTED = time.time()
    role = _role(environment)
    RECORDS_DIR.mkdir(parents=True, exist_ok=True)
    opts = getattr(environment, "parsed_options", None)
    info = RunInfo(
        run_id=RUN_ID, pid=os.getpid(), started=time.time(), role=role, targets=dict(TARGETS),
        probe_rate=PROBE_RATE, write_rate=WRITE_RATE, write_services=list(WRITE_SERVICES),
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, record=RECORD,
        users=int(getattr(opts, "num_users", None) or USER_COUNT), schedules=USER_COUNT, host=environment.host)
    if role == "worker":
        WORKER_ID = os.environ.get("GAMEDAY_WORKER_ID", "").strip() or \
            f"w{int(getattr(environment.runner, 'worker_index', 0)) + 1}"
        suffix = f"-{WORKER_ID}"
        client_id = getattr(environment.runner, "client_id", None)
        info = replace(info, worker_id=WORKER_ID, hostname=socket.gethostname(),
                       client_id=None if client_id is None else str(client_id),
                       journals=[f"requests{suffix}.jsonl", f"ledger{suffix}.jsonl"],
                       write_id_prefix=f"{RUN_ID}-{WORKER_ID}-")
        if RECORD and JOURNAL is None:
            JOURNAL = Journal(RECORDS_DIR, suffix)
        (RECORDS_DIR / f"run{suffix}.json").write_text(json.dumps(info.to_dict(), indent=1))
        environment.runner.send_message("gameday_worker", info.to_dict())  # the master's run.json lists them
    elif role == "master":
        _MASTER_INFO[:] = [replace(info, expected_workers=int(os.environ.get("GAMEDAY_EXPECT_WORKERS", "0") or 0))]
        _write_master_info()
    else:
        if RECORD and JOURNAL is None:
            JOURNAL = Journal(RECORDS_DIR)
        info = replace(info, journals=["requests.jsonl", "ledger.jsonl"], write_id_prefix=f"{RUN_ID}-")
        (RECORDS_DIR / "run.json").write_text(json.dumps(info.to_dict(), indent=1))
    if role != "worker" and (opts is None or not getattr(opts, "run_time", None)):
        def safety_stop() -> None:
            gevent.sleep(MAX_RUN_TIME)
            sys.stderr.write(f"gameday locustfile: GAMEDAY_MAX_RUN_TIME {MAX_RUN_TIME:g} s reached\n")
            if environment.runner is not None:
                environment.runner.quit()

        gevent.spawn(safety_stop)


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any = None, **_: Any) -> None:
    global STOPPING
    STOPPING = True
    if environment is not None and _role(environment) == "master":
        _drain_workers(environment)


# ------------------------------------------------------------------ distributed mode (master + workers)
#
# locust's master stops its workers with "stop"/"quit" messages and, on quit, waits only 0.5 s for
# their last stats; a worker still finishing in-flight requests (up to connect + read timeout)
# would then be missing from the master's CSV/HTML while present in its journal. So before the
# master stops (test_stopping), it asks every worker to stop scheduling, let in-flight requests
# finish, journal them, and send its final stats; it waits (bounded) for every worker's answer.

_MASTER_INFO: list[RunInfo] = []  # the master's run info (one, once the test started)
_DRAINED: set[str] = set()


def _role(environment: Any) -> str:
    from locust.runners import MasterRunner, WorkerRunner

    runner = getattr(environment, "runner", None)
    return "master" if isinstance(runner, MasterRunner) else "worker" if isinstance(runner, WorkerRunner) \
        else "local"


def _write_master_info() -> None:
    tmp = RECORDS_DIR / "run.json.tmp"
    tmp.write_text(json.dumps(_MASTER_INFO[0].to_dict(), indent=1))
    tmp.replace(RECORDS_DIR / "run.json")


def _register_master(environment: Any) -> None:
    def on_worker(msg: Any, **_: Any) -> None:
        if not _MASTER_INFO:
            return
        worker = RunInfo.from_dict(dict(msg.data))
        workers = [w for w in _MASTER_INFO[0].workers if w.worker_id != worker.worker_id]
        _MASTER_INFO[0] = replace(_MASTER_INFO[0], workers=sorted([*workers, worker], key=lambda w: str(w.worker_id)))
        _write_master_info()

    def on_drained(msg: Any, **_: Any) -> None:
        _DRAINED.add(str(msg.node_id))

    environment.runner.register_message("gameday_worker", on_worker)
    environment.runner.register_message("gameday_drained", on_drained)


def _drain_workers(environment: Any) -> None:
    runner = environment.runner
    clients = [c.id for c in runner.clients.all]
    _DRAINED.clear()
    for cid in clients:
        runner.send_message("gameday_drain", None, client_id=cid)
    deadline = time.monotonic() + CONNECT_TIMEOUT + READ_TIMEOUT + 5.0
    while not _DRAINED.issuperset(clients) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    missing = sorted(set(clients) - _DRAINED)
    if missing:
        sys.stderr.write(f"gameday locustfile: workers {missing} did not confirm their final stats in time\n")
    if _MASTER_INFO:
        _MASTER_INFO[0] = replace(_MASTER_INFO[0], stopped=time.time(), workers_drained=sorted(_DRAINED),
                                  workers_missing=missing)
        _write_master_info()


def _register_worker(environment: Any) -> None:
    def on_drain(msg: Any = None, **_: Any) -> None:
        global STOPPING
        STOPPING = True
        _on_test_stop()
        if JOURNAL is not None:
            for writer in (JOURNAL.requests, JOURNAL.ledger):
                getattr(writer, "flush", lambda: None)()
        runner = environment.runner
        send_stats = getattr(runner, "_send_stats", None)
        if send_stats is not None:
            send_stats()  # the last requests' stats, before the master writes its reports
        runner.send_message("gameday_drained", {"worker_id": WORKER_ID})

    environment.runner.register_message("gameday_drain", on_drain)


@events.test_stop.add_listener
def _on_test_stop(**_: Any) -> None:
    """Let in-flight requests finish (bounded by their timeouts) so every sent write is journaled."""
    deadline = time.monotonic() + CONNECT_TIMEOUT + READ_TIMEOUT + 1.0
    for pool in POOLS:
        pool.join(timeout=max(0.0, deadline - time.monotonic()))
    POOLS.clear()
    if JOURNAL is not None:
        JOURNAL.abandon_inflight()
        JOURNAL.flush(fsync=True)  # durable before locust reports the run as stopped


_TEST_STARTED = time.time()


@atexit.register
def _close_journal() -> None:
    """Flush, fsync and close (also at interpreter exit, whatever path locust took to get there)."""
    if JOURNAL is not None:
        JOURNAL.close()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    """On SIGTERM locust skips its HTML report (it writes it only on run-time end or Ctrl-C, and
    Ctrl-C kills whichever request greenlet happens to run). So: drain, then write it here."""
    if environment.runner is not None:
        environment.runner.stop()  # fires test_stop above: in-flight requests finish and are journaled
    _close_journal()
    html = getattr(getattr(environment, "parsed_options", None), "html_file", None)
    if html and not (os.path.exists(html) and os.path.getmtime(html) >= _TEST_STARTED):
        from locust.html import get_html_report

        Path(html).parent.mkdir(parents=True, exist_ok=True)
        Path(html).write_text(get_html_report(environment, show_download_link=False), encoding="utf-8")

