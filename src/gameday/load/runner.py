"""Run ``loadtests/locustfile.py`` headless as a subprocess and collect what it wrote.

locust is never imported here: it monkey-patches the whole process with gevent, which would
break pytest, psycopg and the sandbox threads. We talk to it through argv, env and files.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from gameday import resources, settings
from gameday.errors import ConfigError, LoadError, TimeoutExceeded
from gameday.util.journal_schema import LEDGER, REQUESTS, RUN_INFO, RequestRecord, RunInfo, WriteRecord
from gameday.util.net import LOOPBACK
from gameday.util.procs import ProcessRegistry

__all__ = ["LoadResult", "LoadRunner", "default_locustfile", "read_ledger", "read_requests", "read_run_info"]


def read_requests(path: str | os.PathLike[str]) -> list[RequestRecord]:
    """All request records of a journal in file order, rotated/compressed segments first (a torn last
    line from a crash is skipped); a malformed record raises LoadError naming the file and field."""
    from gameday.analysis.models import load_requests

    try:
        return load_requests(path)
    except ConfigError as exc:
        raise LoadError(f"not a request journal: {exc}") from exc


def read_ledger(path: str | os.PathLike[str]) -> list[WriteRecord]:
    """All write records of a ledger in file order (same sources and errors as :func:`read_requests`)."""
    from gameday.analysis.models import load_ledger

    try:
        return load_ledger(path)
    except ConfigError as exc:
        raise LoadError(f"not a write ledger: {exc}") from exc


def read_run_info(path: str | os.PathLike[str]) -> RunInfo:
    """``run.json`` as the locustfile wrote it."""
    import json

    try:
        return RunInfo.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise LoadError(f"{path}: not a locust run info file: {exc}") from exc


def default_locustfile() -> Path:
    """``GAMEDAY_LOCUSTFILE`` if set, else gameday's own ``loadtests/locustfile.py``."""
    return settings.path("GAMEDAY_LOCUSTFILE") or resources.locustfile()


@dataclass(frozen=True)
class LoadResult:
    """Where a finished (or stopped) locust run left its journals and reports."""

    out_dir: Path
    run_id: str
    requests_path: Path
    ledger_path: Path
    run_info_path: Path
    csv_prefix: Path
    html_path: Path
    log_path: Path
    exit_code: int | None
    forced_kill: bool
    stderr_tail: str
    #: the journals themselves: one pair per worker in distributed mode (``requests-w1.jsonl``, ...)
    requests_files: tuple[Path, ...] = ()
    ledger_files: tuple[Path, ...] = ()

    @property
    def csv_stats_path(self) -> Path:
        return Path(f"{self.csv_prefix}_stats.csv")

    def run_info(self) -> RunInfo:
        return read_run_info(self.run_info_path)

    def requests(self) -> list[RequestRecord]:
        """Every worker's requests as one timeline, in completion order."""
        files = self.requests_files or (self.requests_path,)
        if len(files) == 1:
            return read_requests(files[0])
        return sorted((r for f in files for r in read_requests(f)), key=lambda r: r.t1)

    def ledger(self) -> list[WriteRecord]:
        files = self.ledger_files or (self.ledger_path,)
        if len(files) == 1:
            return read_ledger(files[0])
        return sorted((w for f in files for w in read_ledger(f)), key=lambda w: w.t1)


class LoadRunner:
    """One locust run: probes ``GET /items`` on every target, writes ``POST /records`` to write services.

    ``with LoadRunner(...) as lr: ...`` always stops locust (SIGTERM, so it writes its reports;
    SIGKILL of the process group if it does not exit within ``stop_timeout``).
    """

    def __init__(self, targets: Mapping[str, str], out_dir: str | os.PathLike[str], *,
                 run_time_s: float, probe_rate: float = 20.0, write_rate: float = 10.0,
                 write_services: Sequence[str] = ("orders",), run_id: str | None = None,
                 connect_timeout: float = 1.0, read_timeout: float = 2.0, record: bool = True,
                 locustfile: str | os.PathLike[str] | None = None, registry: ProcessRegistry | None = None,
                 extra_env: Mapping[str, str] | None = None, start_timeout: float = 30.0,
                 stop_timeout: float = 15.0, python: str | None = None, workers: int | None = None,
                 users: int | None = None) -> None:
        if not targets:
            raise ConfigError("no targets", field="targets",
                              hint='pass {"web": "http://127.0.0.1:PORT", ...}')
        for service, url in targets.items():
            if not str(url).startswith(("http://", "https://")):
                raise ConfigError(f"target of {service!r} is not an http(s) URL: {url!r}", field="targets")
        if not run_time_s > 0:
            raise ConfigError("run time must be > 0 s (a load run is always bounded)", field="run_time_s")
        if probe_rate < 0 or write_rate < 0:
            raise ConfigError("rates must be >= 0", field="probe_rate/write_rate")
        self.targets = {str(k): str(v).rstrip("/") for k, v in targets.items()}
        self.out_dir = Path(out_dir).resolve()
        self.run_time_s = float(run_time_s)
        self.probe_rate = float(probe_rate)
        self.write_rate = float(write_rate)
        # Writes only go to services we have a target for (a web-only run simply has none).
        self.write_services = [s for s in write_services if s in self.targets]
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.record = record
        self.locustfile = Path(locustfile) if locustfile else default_locustfile()
        self.registry = registry or ProcessRegistry(self.out_dir)
        self.extra_env = dict(extra_env or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.python = python or sys.executable
        #: one paced user per (service, kind); ``users`` (locust -u) must be a multiple of it
        self.schedules = (len(self.targets) if self.probe_rate > 0 else 0) + (
            len(self.write_services) if self.write_rate > 0 else 0)
        if self.schedules == 0:
            raise ConfigError("nothing to do: probe_rate and write_rate are both 0 (or no write targets)")
        self.users = self.schedules if users is None else int(users)
        if self.users < self.schedules or self.users % self.schedules:
            raise ConfigError(f"users={self.users} is not a multiple of the {self.schedules} paced schedule(s) "
                              "(one per service and kind)", field="users",
                              hint=f"e.g. users={self.schedules * 2}: two users per schedule, each at the rate")
        self.workers = settings.integer("GAMEDAY_LOAD_WORKERS") if workers is None else int(workers)
        if not 0 <= self.workers <= 64:
            raise ConfigError(f"workers={self.workers} is out of range 0..64", field="workers",
                              hint="0 runs one locust process; N runs a master and N workers")
        self.proc_name = f"locust-{self.run_id}"
        self._master_port = 0
        self._started_mono: float | None = None
        self._result: LoadResult | None = None
        self._forced = False

    # -- paths ---------------------------------------------------------------------------------
    @property
    def requests_path(self) -> Path:
        return self.out_dir / f"{REQUESTS}.jsonl"

    @property
    def ledger_path(self) -> Path:
        return self.out_dir / f"{LEDGER}.jsonl"

    @property
    def run_info_path(self) -> Path:
        return self.out_dir / RUN_INFO

    @property
    def log_path(self) -> Path:
        return self.out_dir / "locust.log"

    def argv(self) -> list[str]:
        return [
            self.python, "-m", "locust", "-f", str(self.locustfile), "--headless", "--only-summary",
            "-u", str(self.users), "-r", str(self.users), "--run-time", f"{math.ceil(self.run_time_s)}s",
            "--csv", str(self.out_dir / "locust"), "--html", str(self.out_dir / "locust.html"),
            "--exit-code-on-error", "0",  # failed requests are data in a drill, not a locust error
            *self._master_args(),
        ]

    def _master_args(self) -> list[str]:
        if not self.workers:
            return []
        if not self._master_port:
            from gameday.util.net import free_port

            self._master_port = free_port()
        return ["--master", "--master-bind-host", LOOPBACK, "--master-bind-port", str(self._master_port),
                "--expect-workers", str(self.workers), "--expect-workers-max-wait", f"{self.start_timeout:.0f}"]

    def worker_argv(self) -> list[str]:
        """One worker: same locustfile, connects to the master; its id comes from the master's index."""
        return [self.python, "-m", "locust", "-f", str(self.locustfile), "--worker",
                "--master-host", LOOPBACK, "--master-port", str(self._master_port)]

    def journal_files(self, name: str) -> list[Path]:
        """``requests``/``ledger`` journals of this run: one per worker in distributed mode."""
        return journal_files(self.out_dir, name, self.workers)

    def env(self) -> dict[str, str]:
        import json

        env = dict(os.environ)
        env.update({
            "GAMEDAY_TARGETS": json.dumps(self.targets),
            "GAMEDAY_PROBE_RATE": repr(self.probe_rate),
            "GAMEDAY_WRITE_RATE": repr(self.write_rate),
            "GAMEDAY_WRITE_SERVICES": ",".join(self.write_services),
            "GAMEDAY_RECORDS_DIR": str(self.out_dir),
            "GAMEDAY_RUN_ID": self.run_id,
            "GAMEDAY_CONNECT_TIMEOUT": repr(self.connect_timeout),
            "GAMEDAY_READ_TIMEOUT": repr(self.read_timeout),
            "GAMEDAY_RECORD": "1" if self.record else "0",
            "GAMEDAY_EXPECT_WORKERS": str(self.workers),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        m = self.registry.procs.get(self.proc_name)
        return m is not None and m.alive()

    def start(self) -> None:
        """Start locust and return once it has started its users; LoadError with locust's text if not."""
        if not self.locustfile.is_file():
            raise ConfigError("locustfile not found", file=str(self.locustfile),
                              hint="set GAMEDAY_LOCUSTFILE or pass locustfile=")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.requests_path.exists() and self.requests_path.stat().st_size > 0:
            raise ConfigError("already holds the journal of an earlier run", file=str(self.out_dir),
                              hint="use a fresh out_dir per load run")
        self.run_info_path.unlink(missing_ok=True)
        m = self.registry.spawn(self.proc_name, self.argv(), env=self.env(), cwd=self.out_dir,
                                log=self.log_path)
        for i in range(1, self.workers + 1):
            self.registry.spawn(f"{self.proc_name}-worker{i}", self.worker_argv(), env=self.env(), cwd=self.out_dir,
                                log=self.out_dir / f"locust-worker{i}.log")
        self._started_mono = time.monotonic()
        deadline = self._started_mono + self.start_timeout
        while not self._all_started():
            rc = m.popen.poll()
            if rc is not None:
                self.registry.forget(self.proc_name)
                self._kill_all()
                raise LoadError(f"locust exited during startup (exit code {rc}):\n{self._tail()}")
            if time.monotonic() > deadline:
                self._kill_all()
                raise LoadError(f"locust did not start its users within {self.start_timeout:.0f} s:\n"
                                f"{self._tail()}")
            time.sleep(0.05)

    def _all_started(self) -> bool:
        """run.json is there and (distributed) lists every worker as started."""
        try:
            info = read_run_info(self.run_info_path)
        except LoadError:
            return False  # not written yet (or mid-write)
        return not self.workers or len(info.workers) >= self.workers

    def _worker_names(self) -> list[str]:
        return [f"{self.proc_name}-worker{i}" for i in range(1, self.workers + 1)]

    def _kill_all(self) -> None:
        for name in [self.proc_name, *self._worker_names()]:
            if self.registry.procs.get(name) is not None:
                self.registry.kill(name)

    def check(self) -> None:
        """Raise LoadError if locust died on its own with an error (call while the run should be going)."""
        m = self.registry.procs.get(self.proc_name)
        if m is not None and (rc := m.popen.poll()) is not None and rc != 0:
            raise LoadError(f"locust crashed (exit code {rc}):\n{self._tail()}")

    def wait(self, timeout: float | None = None) -> LoadResult:
        """Wait for the run time to elapse and locust to write its reports; LoadError if it crashed."""
        if self._result is not None:
            return self._result
        m = self.registry.procs.get(self.proc_name)
        if m is None:
            raise LoadError("locust was not started")
        if timeout is None:
            elapsed = time.monotonic() - (self._started_mono or time.monotonic())
            timeout = max(0.0, self.run_time_s - elapsed) + self.connect_timeout + self.read_timeout + 30.0
        try:
            m.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutExceeded(f"locust run {self.run_id}", timeout) from None
        result = self._finish()
        if result.exit_code not in (0, None):
            raise LoadError(f"locust exited with code {result.exit_code}:\n{result.stderr_tail}")
        return result

    def stop(self) -> LoadResult:
        """SIGTERM: the locustfile stops the users, lets in-flight requests finish (journaled), writes
        the HTML report, locust writes the CSVs; SIGKILL of the group after ``stop_timeout``.

        Not SIGINT: locust turns it into a KeyboardInterrupt inside whichever greenlet runs, which
        can kill an in-flight request before it is journaled.
        """
        if self._result is not None:
            return self._result
        m = self.registry.procs.get(self.proc_name)
        if m is None:
            raise LoadError("locust was not started")
        if m.alive():
            self.registry.signal(self.proc_name, signal.SIGTERM)
            try:
                m.popen.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._forced = True
        return self._finish()

    def _finish(self) -> LoadResult:
        m = self.registry.procs.get(self.proc_name)
        rc: int | None = None
        if m is not None:
            if self._forced or m.alive():
                self._forced = True
                self.registry.kill(self.proc_name)  # SIGKILL the group, reap, forget
            else:
                self.registry.forget(self.proc_name)
            rc = m.popen.poll()
        self._reap_workers()
        # distributed: the journals are the directory's per-worker files, which the analysis
        # (gameday.analysis.load_requests / load_ledger of a directory) merges into one timeline
        self._result = LoadResult(
            out_dir=self.out_dir, run_id=self.run_id,
            requests_path=self.out_dir if self.workers else self.requests_path,
            ledger_path=self.out_dir if self.workers else self.ledger_path, run_info_path=self.run_info_path,
            csv_prefix=self.out_dir / "locust",
            html_path=self.out_dir / "locust.html", log_path=self.log_path, exit_code=rc,
            forced_kill=self._forced, stderr_tail=self._tail(),
            requests_files=tuple(self.journal_files(REQUESTS)), ledger_files=tuple(self.journal_files(LEDGER)))
        return self._result

    def _reap_workers(self) -> None:
        """Workers quit when the master tells them; any still running after stop_timeout are killed."""
        deadline = time.monotonic() + self.stop_timeout
        for name in self._worker_names():
            w = self.registry.procs.get(name)
            if w is None:
                continue
            try:
                w.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                self.registry.forget(name)
            except subprocess.TimeoutExpired:
                self._forced = True
                self.registry.kill(name)

    def _tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no locust output)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(no locust output)"

    @property
    def result(self) -> LoadResult | None:
        return self._result

    def __enter__(self) -> LoadRunner:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.registry.procs.get(self.proc_name) is not None or self._result is None:
            try:
                self.stop()
            except LoadError:
                if exc_type is None:
                    raise


def journal_files(out_dir: Path, name: str, workers: int) -> list[Path]:
    """``<name>.jsonl``, or with ``workers`` the per-worker ``<name>-<id>.jsonl`` present so far."""
    if not workers:
        return [out_dir / f"{name}.jsonl"]
    head = re.compile(rf"^{re.escape(name)}-[A-Za-z0-9_]+\.jsonl$")  # not the rotated segments
    return sorted((p for p in out_dir.glob(f"{name}-*.jsonl") if head.match(p.name)),
                  key=lambda p: (len(p.name), p.name))
