"""One drill, end to end: steady state, load, experiment, read-back, analysis, SLO verdicts.

Each phase is an allure step; everything a run produces (timeline, ledger, chaos journal,
locust reports, plot, summary) lands in the run's folder as it happens.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gameday import resources, settings
from gameday.drill.results import ChaosRun, DrillResults, LoadInfo
from gameday.drill.slo import SloVerdict
from gameday.drill.starvation import Starvation
from gameday.errors import DrillError
from gameday.target import Endpoints
from gameday.util.redact import redact

if TYPE_CHECKING:
    from gameday.analysis.models import Request
    from gameday.drill.scenario import LoadProfile, Scenario, Slos
    from gameday.provision.topology import Topology
    from gameday.safety.guard import Trip
    from gameday.safety.harness import DrillSafety

#: a drill phase as a context manager (allure steps in pytest, progress lines in ``gameday run``)
Phase = Callable[[str], AbstractContextManager[object]]

READBACK_BATCH = 200


def experiments_dir() -> Path:
    """``GAMEDAY_EXPERIMENTS_DIR`` if set, else gameday's own experiments folder."""
    return settings.path("GAMEDAY_EXPERIMENTS_DIR") or resources.experiments_dir()


@dataclass
class DrillResult:
    """What a drill measured and how each SLO fared; ``verdict`` is PASS, FAIL or INCONCLUSIVE.

    INCONCLUSIVE (the host was starved during the fault, ``starvation``) overrides what the SLOs
    said: a stalled host can both fake an outage and hide one.
    """

    scenario: str
    run_dir: Path
    fault_start: float
    fault_end: float | None
    results: DrillResults
    verdicts: list[SloVerdict] = field(default_factory=list)
    chaos_status: str = "unknown"
    starvation: Starvation | None = None
    halted: Trip | None = None  # a stop condition stopped the method (verdict HALTED)

    @property
    def passed(self) -> bool:
        return self.halted is None and all(v.passed for v in self.verdicts)

    @property
    def halted_message(self) -> str | None:
        """``HALTED: stop condition ... tripped: <figure>`` (a failed test: the system broke a guard)."""
        return None if self.halted is None else f"HALTED: {self.halted.message()}; rollbacks ran"

    @property
    def inconclusive(self) -> bool:
        return self.starvation is not None and bool(self.starvation.starved)

    @property
    def inconclusive_message(self) -> str | None:
        """``INCONCLUSIVE: host starved: ...`` (the pytest skip reason, allure's Infrastructure category)."""
        if self.starvation is None or not self.starvation.starved:
            return None
        from gameday.drill.starvation import INCONCLUSIVE_PREFIX

        return f"{INCONCLUSIVE_PREFIX} {self.starvation.message}"

    @property
    def verdict(self) -> str:
        if self.halted is not None:
            return "HALTED"
        if self.inconclusive:
            return "INCONCLUSIVE"
        return "PASS" if self.passed else "FAIL"

    def breaches(self) -> list[SloVerdict]:
        return [v for v in self.verdicts if not v.passed]


def http_ok(url: str, timeout: float = 2.0) -> tuple[bool, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300, {k.lower(): v for k, v in resp.headers.items()}
    except (urllib.error.URLError, OSError):
        return False, {}


def steady_state(endpoints: Endpoints, timeout: float = 60.0) -> dict[str, str]:
    """Every service healthy through its global URL and served from the primary region."""
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        last = {}
        for svc, url in endpoints.services.items():
            ok, headers = http_ok(url.rstrip("/") + "/health")
            last[svc] = headers.get("x-gameday-region", "") if ok else "unhealthy"
        if all(r == endpoints.primary_region for r in last.values()):
            return last
        time.sleep(0.2)
    raise DrillError(f"steady state not reached within {timeout:.0f} s: {last}")


def groups_settled(endpoints: Endpoints, topology: Topology, timeout: float = 60.0) -> None:
    """Every Auto Scaling group at its desired capacity, every member InService and Healthy.

    A drill must start from the steady state: an instance still Pending or Terminating from an
    earlier drill (or replaced by its group's health checks) would be picked as a victim or would
    absorb traffic, and the drill would measure the leftovers instead of the fault.
    """
    import boto3

    from gameday.target import SANDBOX_CREDENTIALS

    kw: dict[str, Any] = {}
    if endpoints.aws_endpoint_url:  # the sandbox's control plane; real AWS uses the normal chain
        kw = {"endpoint_url": endpoints.aws_endpoint_url,
              "aws_access_key_id": SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
              "aws_secret_access_key": SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    by_region: dict[str, list[str]] = {}
    for svc in topology.services.values():
        for region, sr in svc.regions.items():
            by_region.setdefault(region, []).append(sr.asg_name)
    if not by_region:
        return
    clients = {r: boto3.client("autoscaling", region_name=r, **kw) for r in by_region}
    deadline = time.monotonic() + timeout
    unsettled: list[str] = []
    while True:
        unsettled = []
        for region, names in by_region.items():
            for g in clients[region].describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]:
                ready = [i for i in g["Instances"]
                         if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"]
                if len(ready) != g["DesiredCapacity"] or len(g["Instances"]) != len(ready):
                    states = sorted(f"{i['InstanceId']} {i['LifecycleState']}/{i['HealthStatus']}"
                                    for i in g["Instances"])
                    unsettled.append(f"{g['AutoScalingGroupName']} (desired {g['DesiredCapacity']}: {states})")
        if not unsettled or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if unsettled:
        raise DrillError(f"Auto Scaling groups not settled within {timeout:.0f} s: {'; '.join(unsettled)}")


def chaos_env(endpoints: Endpoints, topology: Topology, password: str | None,
              extra: dict[str, Any]) -> dict[str, str]:
    """Environment that fills the experiments' configuration (see experiments/README.md)."""
    from gameday.chaos.config import experiment_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(endpoints.aws_env())
    env.update(experiment_env(endpoints, topology, extra))
    if password:
        env["GAMEDAY_DB_PASSWORD"] = password
    return env


def run_experiment(name: str, run_dir: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """``chaos run`` as a subprocess; returns the journal. Its log and journal go to the run dir."""
    path = experiments_dir() / f"{name}.json"
    if not path.exists():
        raise DrillError(f"experiment file {path} not found")
    from gameday.guard.hooks import guard_experiment

    guard_experiment(path, env)  # real AWS (or a sandbox whose config asks): allow-lists, scope, blast radius
    journal = run_dir / "chaos-journal.json"
    log = run_dir / "chaos.log"
    argv = [sys.executable, "-m", "chaostoolkit", "--log-file", str(log), "run", "--journal-path", str(journal),
            "--rollback-strategy", "always", str(path)]
    from gameday.safety.harness import chaos_subprocess

    # own session, undo-log control, interrupt -> its rollbacks (gameday.safety.harness)
    chaos_subprocess(argv, env, run_dir, timeout, cwd=str(resources.data_root()))
    try:
        data: dict[str, Any] = json.loads(journal.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        tail = (run_dir / "chaos-stdout.log").read_text(errors="replace")[-3000:]
        raise DrillError(f"chaos run {name} wrote no journal:\n{tail}") from exc
    return data


def steady_state_unmet(journal: dict[str, Any]) -> str | None:
    """The probe whose failure stopped the experiment before its method ran, if that happened."""
    before = (journal.get("steady_states") or {}).get("before") or {}
    if before.get("steady_state_met") is not False:
        return None
    failed = [p.get("activity", {}).get("name", "?") for p in before.get("probes", [])
              if not p.get("tolerance_met", True)]
    return ", ".join(failed) or "the steady-state hypothesis"


def _nothing_injected(scenario: Scenario, endpoints: Endpoints, run_dir: Path, load: LoadProfile,
                         write_services: list[str], requests_path: Path, timing: str, topology: Topology | None,
                         unmet: str | None, not_injected: str | None = None) -> DrillResult:
    """No fault was injected: the target was not in steady state before it, or the fault action failed.

    On a starved host that is the host's doing, not the system's: INCONCLUSIVE, with the figure,
    judged over the whole load window (there was no real fault window). Otherwise a harness error:
    a drill against a system that was already broken, or that was never broken, measures nothing.
    """
    from gameday.analysis import load_requests

    requests = load_requests(requests_path)
    start = min((r.t0 for r in requests), default=time.time())
    slos = scenario.slos_for(timing, topology.routing_mode if topology is not None else None)
    starvation = _assess_host(slos, endpoints, requests, start, load, write_services)
    if starvation.starved:
        results = DrillResults(host=starvation, steady_state_unmet=unmet, not_injected=not_injected)
        write_results(run_dir, results)
        return DrillResult(scenario.name, run_dir, start, None, results, [], "not started", starvation)
    if not_injected is not None:
        raise DrillError(not_injected)
    raise DrillError(f"the target was not in steady state before the fault ({unmet} failed), so the "
                     f"experiment injected nothing; see {run_dir / 'chaos.log'}")


def fault_window(journal: dict[str, Any]) -> tuple[float, float | None]:
    """Fault start = start of the method's first action; end = end of the last rollback (if any)."""
    def ts(text: str) -> float:
        if not text:
            return 0.0
        d = datetime.fromisoformat(text)
        return (d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp()  # chaostoolkit writes UTC

    runs = [r for r in journal.get("run", []) if r.get("activity", {}).get("type") == "action"]
    if not runs:
        raise DrillError("the experiment's method ran no action: nothing was injected")
    start = ts(runs[0]["start"])
    rollbacks = journal.get("rollbacks", [])
    end = ts(rollbacks[-1]["end"]) if rollbacks and rollbacks[-1].get("end") else None
    return start, end


def injection_failure(journal: dict[str, Any]) -> str | None:
    """Why the fault was not (fully) injected: a method action (not a ``wait_*``) failed; else None.

    Chaos Toolkit carries on past a failed action and still reports the run "completed", so a
    fault that was never injected would otherwise be judged as a system that survived it. Waits
    (``wait_*``) may fail: a system that does not recover in time is an SLO breach, not ours.
    """
    for r in journal.get("run", []):
        act = r.get("activity", {})
        func = str(act.get("provider", {}).get("func", ""))
        if act.get("type") == "action" and r.get("status") == "failed" and not func.startswith("wait_"):
            exc = r.get("exception") or [""]
            why = str(exc[-1]).strip().splitlines()
            return (f"the experiment's action {act.get('name')!r} ({func}) failed, so the fault "
                    f"was not (fully) injected: {why[-1] if why else 'see chaos.log'}")
    return None


def check_injected(journal: dict[str, Any]) -> None:
    """Raise DrillError when the fault was not (fully) injected (see ``injection_failure``)."""
    why = injection_failure(journal)
    if why is not None:
        raise DrillError(why)


def read_back(url: str, ids: list[str], timeout: float = 5.0, attempts: int = 20) -> set[str]:
    """Which of ids the surviving primary holds, through the service's read-back endpoint."""
    present: set[str] = set()
    for i in range(0, len(ids), READBACK_BATCH):
        body = json.dumps({"ids": ids[i:i + READBACK_BATCH]}).encode()
        last: Exception | None = None
        for _ in range(attempts):
            req = urllib.request.Request(f"{url.rstrip('/')}/records/query", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    present.update(json.loads(resp.read())["found"])
                    last = None
                    break
            except (urllib.error.URLError, OSError, KeyError, json.JSONDecodeError) as exc:
                last = exc
                time.sleep(0.5)
        if last is not None:
            raise DrillError(f"read-back from {url} failed: {last}") from last
    return present


def run_drill(scenario: Scenario, endpoints: Endpoints, topology: Topology, run_dir: Path, *,
              timing: str = "fast", password: str | None = None, phase: Phase | None = None) -> DrillResult:
    """Run one scenario against a target; raises DrillError for harness failures, never for SLOs.

    Whatever ends it (normal exit, error, SIGINT/SIGTERM, a stop condition), the injected faults
    are undone and steady state is checked (``gameday.safety.harness.DrillSafety``).
    """
    from gameday.safety.harness import DrillSafety

    run_dir.mkdir(parents=True, exist_ok=True)
    with DrillSafety(run_dir, endpoints, password=password) as safety:
        return _run_drill(scenario, endpoints, topology, run_dir, timing, password, phase, safety)


def _run_drill(scenario: Scenario, endpoints: Endpoints, topology: Topology, run_dir: Path, timing: str,
               password: str | None, phase: Phase | None, safety: DrillSafety) -> DrillResult:
    from contextlib import nullcontext

    from gameday.analysis.report import summarise
    from gameday.drill.slo import evaluate
    from gameday.load.runner import LoadRunner

    step: Phase = phase or (lambda name: nullcontext())
    run_dir.mkdir(parents=True, exist_ok=True)
    load = scenario.load_for(timing)
    with step("steady state"):
        steady_state(endpoints)
        groups_settled(endpoints, topology, timeout=600.0 if timing == "aws" else 60.0)
    runner = LoadRunner(endpoints.services, run_dir / "load", probe_rate=load.probe_rate,
                        write_rate=load.write_rate, run_time_s=load.duration_s)
    journal: dict[str, Any] = {}
    with step("load"):
        runner.start()
    try:
        time.sleep(load.warmup_s)
        with step(f"fault: {scenario.experiment}"):
            extra = dict(scenario.experiment_config)
            # the experiment's own waits must end well inside the load window, so a system that never
            # recovers fails its SLOs instead of timing the chaos run out (a harness error)
            extra.setdefault("gameday_timeout_s", round(max(10.0, (load.duration_s - load.warmup_s) / 3), 1))
            env = chaos_env(endpoints, topology, password, extra)
            safety.watch(scenario.stop_conditions, lambda: runner.journal_files("requests"))
            journal = run_experiment(scenario.experiment, run_dir, env, timeout=load.duration_s)
        with step("recovery"):
            time.sleep(load.settle_s if safety.halted is None else 0.0)
    finally:
        load_result = runner.stop()
    if safety.halted is not None:
        from gameday.safety.harness import halted_result

        return halted_result(scenario, run_dir, journal, safety)
    unmet = steady_state_unmet(journal)
    if unmet is not None:
        return _nothing_injected(scenario, endpoints, run_dir, load, runner.write_services,
                                    load_result.requests_path, timing, topology, unmet)
    fault_start, fault_end = fault_window(journal)
    not_injected = injection_failure(journal)
    if not_injected is not None:  # on a starved host INCONCLUSIVE, else a harness error
        return _nothing_injected(scenario, endpoints, run_dir, load, runner.write_services,
                                    load_result.requests_path, timing, topology, None, not_injected)
    with step("verification"):
        from gameday.analysis import load_ledger, load_requests

        requests = load_requests(load_result.requests_path)
        ledger = load_ledger(load_result.ledger_path)
        acked = sorted({w.id for w in ledger})
        readback_region = getattr(scenario, "readback_region", "primary")
        region = endpoints.recovery_region if readback_region == "recovery" else endpoints.primary_region
        service = next(iter(runner.write_services), "orders")
        present = read_back(endpoints.regional[service][region], acked) if acked else set()
        analysis = summarise(requests, ledger, present, fault_start, fault_end, endpoints.primary_region)
        routing_mode = topology.routing_mode
        verdicts = evaluate(scenario, analysis, timing=timing, routing_mode=routing_mode,
                            regions={"primary": endpoints.primary_region, "recovery": endpoints.recovery_region},
                            write_services=runner.write_services)
        starvation = _assess_host(scenario.slos_for(timing, routing_mode), endpoints, requests, fault_start,
                                  load, runner.write_services)
        results = DrillResults(analysis=analysis, chaos=ChaosRun.from_journal(journal),
                               load=LoadInfo(tuple(runner.write_services), load.probe_rate, load.write_rate),
                               host=starvation)
        from gameday.analysis.plot import plot_timeline

        plot_timeline(requests, run_dir / "timeline.png", fault_start=fault_start, fault_end=fault_end,
                      title=f"{scenario.name}: success ratio and serving region")
    result = DrillResult(scenario.name, run_dir, fault_start, fault_end, results, verdicts,
                         str(journal.get("status")), starvation)
    write_results(run_dir, results)
    return result


def write_results(run_dir: Path, results: DrillResults) -> None:
    """``results.json``: the one serialisation of a drill's results (see gameday.drill.results)."""
    (run_dir / "results.json").write_text(json.dumps(redact(results.to_dict()), indent=2, default=str))


@dataclass
class DrillOutcome:
    """One scenario's drill as its callers record it: the result, or the harness error, and how long."""

    scenario: Scenario
    result: DrillResult | None
    error: str | None
    started_at: float   # wall clock
    duration_s: float


class DrillTargetLike(Protocol):
    """What a drill needs of its target (``gameday.pytest_plugin.DrillTarget``)."""

    timing: str
    password: str | None

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def topology(self) -> Topology: ...

    def ensure_steady(self) -> None: ...

    def mark_dirty(self) -> None: ...


def drill_scenario(scenario: Scenario, target: DrillTargetLike, run_dir: Path, *, phase: Phase | None = None,
                   on_done: Callable[[DrillOutcome], None] | None = None) -> DrillResult:
    """The per-scenario flow of ``pytest -m drill`` and ``gameday run`` alike (one code path).

    ``target`` is a ``gameday.pytest_plugin.DrillTarget`` (kind, timing, endpoints, topology,
    password, ``ensure_steady()``, ``mark_dirty()``): restored to steady state first, marked
    dirty when the drill breaks so the next one rebuilds it. ``on_done(DrillOutcome)`` runs
    whatever happened (the run summary records errors too); harness errors are re-raised.
    """
    from contextlib import nullcontext

    step: Phase = phase or (lambda name: nullcontext())
    started, t0 = time.time(), time.monotonic()
    result: DrillResult | None = None
    error: str | None = None
    try:
        with step("provision"):
            target.ensure_steady()
        result = run_drill(scenario, target.endpoints, target.topology, run_dir, timing=target.timing,
                           password=target.password, phase=phase)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        target.mark_dirty()
        raise
    finally:
        if on_done is not None:
            on_done(DrillOutcome(scenario, result, error, started, time.monotonic() - t0))
    return result


def _assess_host(slos: Slos, endpoints: Endpoints, requests: list[Request], fault_start: float,
                 load: LoadProfile, write_services: list[str]) -> Starvation:
    """Did the host keep up from the fault to the end of the load? (sandbox events + locust schedule)"""
    from gameday.drill.starvation import assess

    rates = {(s, "read"): load.probe_rate for s in endpoints.services}
    rates.update({(s, "write"): load.write_rate for s in write_services})
    end = max((r.t0 for r in requests), default=fault_start)
    return assess(slos, fault_start, end, events_path=endpoints.events_path, requests=requests, rates=rates)
