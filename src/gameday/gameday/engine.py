"""``gameday run PLAN``: the plan's drills in order on one target, through the pytest drills' code path.

Each scenario goes through ``gameday.drill.runner.drill_scenario`` (what ``scenarios/test_drills.py``
calls), on a ``DrillTarget`` like the pytest plugin's. Around it: the target lock, live progress,
guardrails, notifications, the history, the comparison with earlier runs, and the reports.

Halting (SIGTERM/SIGINT, a guardrail, ``max_duration_s``, a ``stop_on`` verdict) never kills a
drill mid-fault: the running Chaos Toolkit experiment gets SIGTERM, which chaoslib turns into an
interruption that still runs the rollbacks (``--rollback-strategy always``); a drill not yet at
its fault is stopped before injecting anything; the drills after it do not start. AWS FIS does the
same with stop conditions ("stops the experiment", then the actions' rollback:
https://docs.aws.amazon.com/fis/latest/userguide/stop-conditions.html).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psutil

from gameday import settings
from gameday.drill.report import VERDICT_ERROR, VERDICT_FAIL, VERDICT_INCONCLUSIVE, VERDICT_PASS, run_layout
from gameday.errors import ConfigError, DrillError, GamedayError
from gameday.gameday.history.store import Measurement
from gameday.gameday.plan import Plan

VERDICT_HALTED = "HALTED"
EXIT_CODES = {VERDICT_PASS: 0, VERDICT_FAIL: 1, VERDICT_ERROR: 4, VERDICT_HALTED: 5, VERDICT_INCONCLUSIVE: 6}
# ERROR > FAIL > HALTED > INCONCLUSIVE > PASS: a breach already measured is not hidden by a halt
ORDER = (VERDICT_ERROR, VERDICT_FAIL, VERDICT_HALTED, VERDICT_INCONCLUSIVE)


class Halted(DrillError):
    """Raised into a drill that had not injected its fault yet when the game day was halted."""


@dataclass
class ScenarioRun:
    scenario: Any
    position: int
    run_dir: Path
    verdict: str = VERDICT_ERROR
    result: Any = None
    error: str | None = None
    halted: str | None = None
    started_at: float | None = None
    duration_s: float | None = None
    measurements: list[Measurement] = field(default_factory=list)


@dataclass
class GamedayRun:
    plan: Plan
    run_id: str
    root: Path
    started_at: float
    target_name: str
    trigger: str = "manual"
    finished_at: float | None = None
    scenarios: list[ScenarioRun] = field(default_factory=list)
    verdict: str = VERDICT_ERROR
    halt_reason: str | None = None
    error: str | None = None
    var_files: list[str] = field(default_factory=list)
    gameday_rev: str | None = None
    terraform_rev: str | None = None
    comparisons: list[Any] = field(default_factory=list)
    previous_run_id: str | None = None
    history_url: str | None = None
    notifications: list[Any] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def overall(scenarios: list[ScenarioRun], halted: bool, error: str | None) -> str:
    verdicts = {s.verdict for s in scenarios}
    if error or (not scenarios and not halted):
        return VERDICT_ERROR
    if halted:
        verdicts.add(VERDICT_HALTED)
    return next((v for v in ORDER if v in verdicts), VERDICT_PASS)


def measurements_of(scenario: Any, result: Any, plan: Plan) -> list[Measurement]:
    """The trend figures of a drill: RTO and write RTO per service, RPO and lost writes, with budgets."""
    if result is None:
        return []
    budgets = {v.name: v.expected for v in result.verdicts}
    out: list[Measurement] = []
    analysis = result.results.analysis
    if analysis is None:
        return out
    for svc, kinds in sorted(analysis.rto.items()):
        for kind, metric in (("read", "rto"), ("write", "write_rto")):
            m = kinds.get(kind)
            if m is None:
                continue
            value = m.rto_s if m.recovered else None
            budget = budgets.get(f"rto.{svc}.{kind}")
            out.append(Measurement(svc, metric, None if value is None else float(value), m.status,
                                   budget if isinstance(budget, int | float) else None,
                                   plan.policy.target(metric, svc, scenario.fault)))
    loss = analysis.data_loss
    if loss is not None:
        for metric, figure, unit in (("rpo", loss.rpo_s, "s"), ("lost_writes", float(loss.lost), "writes")):
            budget = budgets.get("rpo" if metric == "rpo" else "lost_writes")
            out.append(Measurement("*", metric, float(figure), "valid" if loss.valid
                                   else "invalid", budget if isinstance(budget, int | float) else None,
                                   plan.policy.target(metric, "*", scenario.fault) if metric == "rpo" else None, unit))
    return out


class Engine:
    """One game day; ``run()`` returns the finished GamedayRun (reports written, history recorded)."""

    def __init__(self, plan: Plan, *, state_dir: Path | None = None, history_url: str | None = None,
                 reports_dir: Path | None = None, trigger: str = "manual", out: TextIO | None = None,
                 tty: bool | None = None, generate_allure: bool = True) -> None:
        from gameday.gameday.home import default_history_url
        from gameday.gameday.progress import Progress

        self.plan = plan
        self.state_dir = state_dir or plan.state_dir
        self.history_url = history_url or settings.text("GAMEDAY_HISTORY_URL") or plan.history_url \
            or default_history_url()
        self.reports_dir = reports_dir or plan.reports_dir
        self.trigger = trigger
        self.generate_allure = generate_allure
        self.progress = Progress(out, tty=tty, watch=self._watch)
        self.halt_reason: str | None = None
        self.halt_event = threading.Event()
        self.breach_since: dict[str, float] = {}
        self.signals = 0

    # --- halting -----------------------------------------------------------------------------

    def halt(self, reason: str, *, signal_chaos: bool = True) -> None:
        """Stop the game day: the running experiment rolls back, no further drill starts.

        ``signal_chaos=False`` when the experiment got the signal itself (Ctrl-C reaches the whole
        foreground process group): a second one could interrupt its rollback.
        """
        if self.halt_event.is_set():
            return
        self.halt_reason = reason
        self.halt_event.set()
        self.progress.line(f"HALT: {reason}: rolling back the running drill, no further drills start")
        n = _signal_chaos_children(signal.SIGTERM) if signal_chaos else 0
        if n:
            self.progress.line(f"  sent SIGTERM to the running experiment ({n} process): it rolls back")

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1
        if self.signals > 1:
            raise KeyboardInterrupt(f"signal {signum} again: stopping now")
        self.halt(f"{signal.Signals(signum).name} received", signal_chaos=signum != signal.SIGINT)

    def _watch(self, ratios: dict[str, float], phase: str, elapsed: float) -> None:
        g = self.plan.guardrails
        if g.max_duration_s and elapsed > g.max_duration_s:
            self.halt(f"guardrail max_duration_s: the game day ran {elapsed:.0f} s > {g.max_duration_s:g} s")
        if not phase.startswith("fault") or not g.halt_error_ratio:
            self.breach_since.clear()
            return
        now = time.monotonic()
        for svc, ratio in ratios.items():
            rule = g.halt_error_ratio.get(svc) or g.halt_error_ratio.get("*")
            if rule is None:
                continue
            above, for_s = rule
            if ratio <= above:
                self.breach_since.pop(svc, None)
                continue
            since = self.breach_since.setdefault(svc, now)
            if now - since >= for_s:
                self.halt(f"guardrail halt_error_ratio: {svc} error ratio {ratio * 100:.0f}% > {above * 100:g}% "
                          f"for {for_s:g} s")

    @contextmanager
    def _phase(self, name: str, load: Any) -> Iterator[None]:
        from gameday.drill.report import phase as allure_phase
        from gameday.gameday.progress import expected_phase_s

        if name.startswith("fault") and self.halt_event.is_set():
            raise Halted(f"halted before the fault was injected: {self.halt_reason}")
        with allure_phase(name), self.progress.phase(name, expected_phase_s(name, load)):
            yield

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> GamedayRun:
        from gameday import resources
        from gameday.drill.report import new_run_id
        from gameday.gameday.home import gameday_home, git_revision
        from gameday.gameday.lock import TargetLock
        from gameday.gameday.notify import Notifier

        plan = self.plan
        run_id = f"{plan.name}-{new_run_id()}"
        layout = run_layout(self.reports_dir, run_id)
        gd = GamedayRun(plan, run_id, layout.root, time.time(), plan.target_name, self.trigger,
                        history_url=self.history_url, gameday_rev=git_revision(),
                        terraform_rev=git_revision(resources.resource_path("terraform")))
        notifier = Notifier(plan.notify, echo=self.progress.line)
        lock = TargetLock(gameday_home() / "locks", self._lock_key(), plan=plan.name, run_id=run_id)
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} \
            if threading.current_thread() is threading.main_thread() else {}
        for s in old:
            signal.signal(s, self._on_signal)
        target: Any = None
        cleanup: Any = None
        try:
            lock.acquire()
            if lock.took_over:
                self.progress.line(f"took over the lock left by pid {lock.took_over.get('pid')} (not running)")
            self.progress.line(f"game day {plan.name} ({run_id}) on {plan.target_kind} {plan.target_name}, "
                               f"timing {plan.timing}: {len(plan.scenarios)} drills; reports in {layout.root}")
            notifier.emit("start", self._event(gd, "RUNNING"))
            target, cleanup = self._open_target()
            gd.var_files = list(getattr(target.endpoints, "var_files", None) or plan.var_files)
            self._drills(gd, target)
        except GamedayError as exc:
            if isinstance(exc, ConfigError):
                raise
            from gameday.gameday.lock import TargetBusy

            if isinstance(exc, TargetBusy):
                raise
            gd.error = str(exc)
            self.progress.line(f"ERROR: {str(exc).splitlines()[0]}")
        finally:
            self.progress.end()
            if cleanup is not None:
                with contextlib.suppress(Exception):
                    cleanup()
            for s, h in old.items():
                signal.signal(s, h)
            lock.release()
        gd.finished_at = time.time()
        gd.halt_reason = self.halt_reason
        gd.verdict = overall(gd.scenarios, self.halt_event.is_set(), gd.error)
        self._finish(gd, notifier)
        return gd

    def _lock_key(self) -> str:
        plan = self.plan
        if plan.target_kind == "sandbox":
            return f"sandbox-{self._sandbox_state()}"
        return plan.lock_key

    def _sandbox_state(self) -> Path:
        from gameday.gameday.home import gameday_home

        return Path(self.state_dir) if self.state_dir else gameday_home() / "sandboxes" / f"gameday-{self.plan.name}"

    def _open_target(self) -> tuple[Any, Any]:
        """The plan's target as a DrillTarget; a sandbox we start is stopped by the returned cleanup."""
        from gameday.pytest_plugin import DrillTarget, _sandbox_topology

        plan = self.plan
        if plan.target_kind == "aws":
            from gameday.provision.topology import Topology
            from gameday.target import Endpoints

            assert plan.topology is not None
            if not plan.topology.is_file():
                raise ConfigError("topology file not found", file=str(plan.path), field="target.topology",
                                  hint="run 'gameday provision up --target aws' first")
            topo = Topology.load(plan.topology)
            return DrillTarget("aws", plan.timing, None, Endpoints.for_aws(topo), topo,
                               settings.text("GAMEDAY_DB_PASSWORD")), None
        from gameday.sandbox import client
        from gameday.target import Endpoints

        state = self._sandbox_state()
        if client.daemon_pid(state) is not None and (state / "endpoints.json").is_file():
            ep = Endpoints.load(state / "endpoints.json")
            running = client.admin(ep, "/status").get("timing")
            if running and running != plan.timing:
                raise ConfigError(f"the sandbox in {state} runs timing {running!r}, the plan wants {plan.timing!r}",
                                  file=str(plan.path), field="timing",
                                  hint="restart that sandbox with the plan's timing or use another state_dir")
            topo, password = _sandbox_topology(state)
            target = DrillTarget("sandbox", plan.timing, state, ep, topo, password)
            target.used = True  # an earlier game day left it as it left it: reset before the first drill
            self.progress.line(f"using the sandbox running in {state}")
            return target, None
        self.progress.line(f"starting a sandbox in {state} (a few minutes) ...")
        with self.progress.phase("sandbox up"):
            ep = client.up_with_retry(state, timing=plan.timing, routing_mode=plan.routing_mode,
                                      var_files=plan.var_files)
        topo, password = _sandbox_topology(state)
        return DrillTarget("sandbox", plan.timing, state, ep, topo, password), lambda: client.down(state)

    def _drills(self, gd: GamedayRun, target: Any) -> None:
        from gameday.drill.runner import drill_scenario

        plan = self.plan
        estimates = [float(s.load_for(plan.timing).duration_s) + 15.0 for s in plan.scenarios]
        self.progress.begin(estimates)
        for i, scenario in enumerate(plan.scenarios):
            run_dir = gd.root / "drills" / scenario.name
            sr = ScenarioRun(scenario, i, run_dir)
            if self.halt_event.is_set():
                sr.verdict, sr.halted = VERDICT_HALTED, f"not started: {self.halt_reason}"
                gd.scenarios.append(sr)
                continue
            self.progress.start_scenario(i, scenario.name, run_dir)
            load = scenario.load_for(plan.timing)

            def phase(name: str, _load: Any = load) -> Any:
                return self._phase(name, _load)

            sr.started_at = time.time()
            t0 = time.monotonic()
            try:
                sr.result = drill_scenario(scenario, target, run_dir, phase=phase)
                sr.verdict = sr.result.verdict
            except Halted as exc:
                sr.verdict, sr.halted = VERDICT_HALTED, str(exc)
            except KeyboardInterrupt as exc:
                # SIGINT/SIGTERM handled inside the drill (its own handler stops and rolls it back, then
                # raises): the game day halts here, reports and history are still written
                self.halt(f"interrupted: {exc or 'signal'}", signal_chaos=False)
                sr.verdict, sr.halted = VERDICT_HALTED, f"interrupted: {self.halt_reason}"
                target.mark_dirty()
            except (GamedayError, OSError, ValueError, KeyError) as exc:
                sr.error = f"{type(exc).__name__}: {exc}"
                sr.verdict = VERDICT_HALTED if self.halt_event.is_set() else VERDICT_ERROR
                if self.halt_event.is_set():
                    sr.halted = f"interrupted: {self.halt_reason}"
            sr.duration_s = time.monotonic() - t0
            if sr.result is not None and self.halt_event.is_set() and sr.verdict == VERDICT_PASS:
                sr.verdict, sr.halted = VERDICT_HALTED, f"fault cut short: {self.halt_reason}"
            sr.measurements = measurements_of(scenario, sr.result, plan)
            gd.scenarios.append(sr)
            detail = sr.halted or (sr.error.splitlines()[0] if sr.error else None) or _breaches(sr.result)
            self.progress.line(f"[{i + 1}/{len(plan.scenarios)}] {scenario.name}: {sr.verdict}"
                               + (f" ({detail})" if detail else ""))
            if sr.verdict.lower() in plan.guardrails.stop_on:
                self.halt(f"stop condition: {scenario.name} ended {sr.verdict}")

    def _event(self, gd: GamedayRun, verdict: str, reason: str | None = None) -> dict[str, Any]:
        from gameday.gameday.trends import worst

        w = worst(gd.comparisons)
        return {"plan": gd.plan.name, "run_id": gd.run_id, "target": f"{gd.plan.target_kind} {gd.target_name}",
                "timing": gd.plan.timing, "verdict": verdict, "reason": reason,
                "started_at": datetime.fromtimestamp(gd.started_at, tz=UTC).isoformat(),
                "scenarios": [{"scenario": s.scenario.name, "verdict": s.verdict,
                               "detail": s.halted or (s.error or "").split("\n")[0] or _breaches(s.result)}
                              for s in gd.scenarios],
                "worst_regression": w.describe() if w else None,
                "report": str(gd.root / "summary.html")}

    def _finish(self, gd: GamedayRun, notifier: Any) -> None:
        from gameday.gameday.record import record_and_report

        record_and_report(gd, self.history_url, out=self.progress.line, generate_allure=self.generate_allure)
        if gd.verdict == VERDICT_HALTED:
            notifier.emit("halt", self._event(gd, gd.verdict, gd.halt_reason))
        elif gd.verdict in (VERDICT_FAIL, VERDICT_ERROR) or any(c.regression for c in gd.comparisons):
            notifier.emit("breach", self._event(gd, gd.verdict, gd.error.splitlines()[0] if gd.error else None))
        notifier.emit("finish", self._event(gd, gd.verdict, gd.halt_reason))
        gd.notifications = list(notifier.deliveries)
        out = self.progress.out
        out.write(f"game day {gd.plan.name}: {gd.verdict} (exit {gd.exit_code})\n  summary: {gd.root / 'summary.md'}"
                  f"\n  html:    {gd.root / 'summary.html'}\n")
        out.flush()


def _breaches(result: Any) -> str | None:
    if result is None:
        return None
    if result.inconclusive:
        return str(result.inconclusive_message)
    bad = [v.message for v in result.verdicts if not v.passed]
    return "; ".join(bad)[:300] if bad else None


def _signal_chaos_children(sig: int) -> int:
    """Signal our own ``chaostoolkit`` child processes (the running experiment); returns how many."""
    n = 0
    for child in psutil.Process().children():
        try:
            if any("chaostoolkit" in arg for arg in child.cmdline()):
                child.send_signal(sig)  # psutil checks the start time: never a reused pid
                n += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # exited (or a zombie) meanwhile
            continue
    return n


def run_plan(plan: Plan, **kwargs: Any) -> GamedayRun:
    return Engine(plan, **kwargs).run()
