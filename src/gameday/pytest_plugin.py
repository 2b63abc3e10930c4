"""gameday's pytest plugin: the ``drill`` marker, target options and sandbox fixtures.

Registered through the ``pytest11`` entry point. Each pytest-xdist worker gets its own
sandbox (own state dir, own ports), so ``pytest -m drill -n 2`` runs drills in parallel;
against real AWS drills are serialised.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gameday import settings
from gameday.provision.topology import ROUTING_MODES

TARGETS = ("sandbox", "aws")
TIMINGS = ("fast", "aws")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gameday", "gameday chaos / DR drills")
    group.addoption("--target", choices=TARGETS, default=settings.get_raw("GAMEDAY_TARGET"),
                    help="where drills run: the local sandbox (default) or real AWS")
    group.addoption("--timing", choices=TIMINGS, default=settings.get_raw("GAMEDAY_TIMING"),
                    help="sandbox timing profile: fast (scaled down) or aws (AWS's documented defaults)")
    group.addoption("--routing-mode", choices=ROUTING_MODES,
                    default=settings.get_raw("GAMEDAY_ROUTING_MODE"),
                    help="sandbox routing between regions: Global Accelerator (default) or Route 53 failover records")
    group.addoption("--scenario", action="append", default=[], metavar="NAME",
                    help="run only this scenario (repeatable); default: all in scenarios/")
    group.addoption("--gameday-reports", default=None, metavar="DIR",
                    help="where per-run report folders go (default: reports/runs)")
    group.addoption("--reuse-sandbox", default=settings.get_raw("GAMEDAY_REUSE_SANDBOX"), metavar="STATE_DIR",
                    help="use the sandbox already running in STATE_DIR (from 'gameday sandbox up') and leave it "
                         "running; default: a fresh sandbox per worker")
    group.addoption("--aws-topology", default=None, metavar="FILE",
                    help="with --target aws: the Topology JSON written by 'gameday provision up --target aws'")
    group.addoption("--dry-run", action="store_true", default=False,
                    help="print what each drill's experiment would touch (read-only describe calls), run nothing")
    group.addoption("--confirm-account", default=None, metavar="ACCOUNT",
                    help="with --target aws: confirm destructive drills against this account id (no prompt in "
                         "pytest); the gameday config's allow-lists still apply")
    group.addoption("--sandbox-var-file", action="append", default=None, metavar="FILE",
                    help="terraform .tfvars applied to the drill sandboxes (repeatable, e.g. "
                         "provision/terraform/examples/single-az.tfvars); default: $GAMEDAY_SANDBOX_VAR_FILES "
                         f"({os.pathsep!r}-separated)")
    group.addoption("--load-workers", type=int, default=None, metavar="N",
                    help="run each drill's locust as a master and N workers on 127.0.0.1 (default: "
                         "$GAMEDAY_LOAD_WORKERS, else 0: one locust process)")


ENV_SANDBOX_VAR_FILES = "GAMEDAY_SANDBOX_VAR_FILES"


def sandbox_var_files(config: pytest.Config) -> tuple[str, ...]:
    """The drill sandboxes' var files: --sandbox-var-file, else $GAMEDAY_SANDBOX_VAR_FILES; absolute."""
    given = config.getoption("--sandbox-var-file")
    if given is None:
        given = settings.paths(ENV_SANDBOX_VAR_FILES)
    return tuple(str(Path(p).expanduser().absolute()) for p in given)


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def _restore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "drill: a chaos / DR drill against a target (sandbox or AWS); slow")
    workers = config.getoption("--load-workers", None)
    if workers is not None:
        if not 0 <= workers <= 64:
            raise pytest.UsageError(f"--load-workers {workers}: must be 0..64 (0: one locust process)")
        os.environ["GAMEDAY_LOAD_WORKERS"] = str(workers)  # read by every LoadRunner (and xdist workers)
    # SIGTERM (CI timeouts, `timeout`, `kill`) would end pytest without fixture teardown, leaving
    # sandboxes, control planes and PostgreSQL behind; as an interrupt, teardown runs as on Ctrl-C.
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        config.add_cleanup(_restore_sigterm)
    config.addinivalue_line("markers", "sandbox: needs a running sandbox (the gameday_sandbox fixture)")
    # argparse checks choices on the command line only: a bad GAMEDAY_* default must fail here too
    for opt, env, allowed in (("--target", "GAMEDAY_TARGET", TARGETS), ("--timing", "GAMEDAY_TIMING", TIMINGS),
                              ("--routing-mode", "GAMEDAY_ROUTING_MODE", ROUTING_MODES)):
        if config.getoption(opt) not in allowed:
            raise pytest.UsageError(f"{opt} (or {env}) is {config.getoption(opt)!r}: use one of {', '.join(allowed)}")
    _check_sandbox_var_files(config)
    reuse = config.getoption("--reuse-sandbox")
    if reuse and not (Path(reuse) / "endpoints.json").is_file():
        raise pytest.UsageError(f"--reuse-sandbox (or GAMEDAY_REUSE_SANDBOX) {reuse}: no running sandbox there "
                                "(no endpoints.json); start one with 'gameday sandbox up --state-dir DIR'")
    if config.getoption("--confirm-account"):
        from gameday.guard.guardrails import ENV_CONFIRM

        os.environ[ENV_CONFIRM] = str(config.getoption("--confirm-account"))
    target = config.getoption("--target")
    workers = getattr(config.option, "numprocesses", None)
    if target == "aws":
        if workers not in (None, 0, 1) and _selects_drills(config):
            raise pytest.UsageError(
                "drills against real AWS are serialised: drop -n/--numprocesses (or use -n 0) with --target aws")
        if not config.getoption("--aws-topology"):
            raise pytest.UsageError(
                "--target aws needs --aws-topology FILE: run 'gameday provision up --target aws' first, "
                "it writes that file")


def _check_sandbox_var_files(config: pytest.Config) -> None:
    """Bad var files fail the session at once (a UsageError), not every drill after a sandbox start."""
    files = sandbox_var_files(config)
    if not files:
        return
    if config.getoption("--target") != "sandbox":
        raise pytest.UsageError("--sandbox-var-file (or GAMEDAY_SANDBOX_VAR_FILES) needs --target sandbox; "
                                "on AWS pass var files to 'gameday provision up --target aws --var-file'")
    if config.getoption("--reuse-sandbox"):
        raise pytest.UsageError("--sandbox-var-file does not apply to --reuse-sandbox: start that sandbox with "
                                "'gameday sandbox up --var-file FILE'")
    from gameday.errors import ConfigError
    from gameday.provision.sandbox import check_sandbox_vars

    try:
        check_sandbox_vars(files)
    except ConfigError as exc:
        raise pytest.UsageError(f"--sandbox-var-file (or {ENV_SANDBOX_VAR_FILES}): {exc}") from exc


def _selects_drills(config: pytest.Config) -> bool:
    expr = config.getoption("-m") or ""
    return "not drill" not in expr


# Every test that brings up a sandbox (marker ``sandbox`` or ``drill``) runs in one xdist group:
# under ``--dist loadgroup`` they share one worker, so at most one sandbox is busy at a time
# while the other workers run the harness's own tests. Two busy sandboxes on two cores starve
# each other's health checks and failovers (drills turn INCONCLUSIVE or, worse, slow).
SANDBOX_LANE = "gameday-sandbox-lane"


@pytest.hookimpl(tryfirst=True)  # before xdist turns xdist_group markers into scheduling scopes
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("sandbox") is not None or item.get_closest_marker("drill") is not None:
            item.add_marker(pytest.mark.xdist_group(SANDBOX_LANE))
    _select_scenarios(config, items)


def _select_scenarios(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = set(config.getoption("--scenario"))
    if not wanted:
        return
    known = {getattr(n, "name", n) for item in items if item.get_closest_marker("drill") is not None
             for n in [getattr(getattr(item, "callspec", None), "params", {}).get("scenario")] if n is not None}
    if known and wanted - known:
        raise pytest.UsageError(f"--scenario {', '.join(sorted(wanted - known))}: no such scenario; "
                                f"use one of: {', '.join(sorted(known))}")
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("scenario") if callspec is not None else None
        if item.get_closest_marker("drill") is None or (name is not None and getattr(name, "name", name) in wanted):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def worker_id_of(request: pytest.FixtureRequest) -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


@pytest.fixture(scope="session")
def gameday_reports_dir(request: pytest.FixtureRequest) -> Path:
    opt = request.config.getoption("--gameday-reports")
    root = Path(opt) if opt else Path(str(request.config.rootpath)) / "reports" / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def gameday_sandbox(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A running sandbox for this worker (own state dir and ports), torn down at the end, always."""
    from gameday.sandbox import client

    if request.config.getoption("--target") != "sandbox":
        pytest.skip("needs --target sandbox")
    reuse = request.config.getoption("--reuse-sandbox")
    if reuse:
        from gameday.target import Endpoints

        yield Endpoints.load(Path(reuse) / "endpoints.json")
        return
    worker = worker_id_of(request)
    base = Path(tempfile.mkdtemp(prefix=f"gameday-{worker}-"))
    state = base / "sandbox"
    timing = request.config.getoption("--timing")
    try:
        endpoints = client.up_with_retry(state, timing=timing, routing_mode=request.config.getoption("--routing-mode"),
                                         var_files=sandbox_var_files(request.config))
        yield endpoints
    finally:
        teardown_sandbox(state, base)


def teardown_sandbox(state: Path, base: Path) -> None:
    """Stop a fixture's sandbox and remove its temp folder; runs from ``finally`` (failures, Ctrl-C, SIGTERM)."""
    import shutil

    from gameday.sandbox import client

    try:
        client.down(state)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def gameday_topology(request: pytest.FixtureRequest, gameday_sandbox: Any) -> Any:
    """The Topology the sandbox's Terraform apply produced (secrets redacted in its repr)."""
    from gameday.provision.topology import Topology

    return Topology.load(Path(gameday_sandbox.state_dir) / "topology.json")


class DrillTarget:
    """The target drills of this worker share: restored to steady state between drills."""

    def __init__(self, kind: str, timing: str, state: Path | None, endpoints: Any, topology: Any,
                 password: str | None) -> None:
        self.kind = kind
        self.timing = timing
        self.state = state
        self.endpoints = endpoints
        self.topology = topology
        self.password = password
        self.dirty = False
        self.used = False
        self.dry_run = False  # --dry-run: preview each drill's experiment, run nothing

    def preview(self, scenario: Any) -> str:
        """What the scenario's experiment would touch on this target, resolved read-only (``--dry-run``)."""
        from gameday.drill.runner import chaos_env
        from gameday.guard.hooks import guard_experiment
        from gameday.guard.plan import format_plan

        env = chaos_env(self.endpoints, self.topology, self.password, dict(scenario.experiment_config))
        if self.kind == "aws":
            env = {**os.environ, **{k: v for k, v in env.items() if not k.startswith("AWS_")}}
        plan = guard_experiment(scenario.experiment_path, env, target=self.kind, dry_run=True) or []
        return format_plan(plan, f"drill {scenario.name} ({scenario.experiment}) on {self.kind}")

    def mark_dirty(self) -> None:
        self.dirty = True

    def ensure_steady(self) -> None:
        """Before a drill: reset the sandbox (or rebuild it when reset fails) and check steady state."""
        from gameday.drill.runner import steady_state

        if self.kind == "sandbox" and self.used:
            from gameday.errors import GamedayError
            from gameday.sandbox import client

            try:
                client.admin(self.endpoints, "/reset", method="POST")
                self.dirty = False
            except GamedayError:
                self.dirty = True
            if self.dirty:
                assert self.state is not None
                client.down(self.state)
                self.endpoints = client.up_with_retry(self.state, timing=self.timing,
                                                      routing_mode=self.topology.routing_mode,
                                                      var_files=tuple(getattr(self.endpoints, "var_files", ())))
                self.topology, self.password = _sandbox_topology(self.state)
                self.dirty = False
        self.used = True
        steady_state(self.endpoints)


def _sandbox_topology(state: Path) -> tuple[Any, str | None]:
    import json

    from gameday.provision.topology import Topology

    topo = Topology.load(state / "topology.json")
    secret = state / "secrets.json"
    password = json.loads(secret.read_text()).get("db_password") if secret.exists() else None
    return topo, password


@pytest.fixture(scope="session")
def gameday_target(request: pytest.FixtureRequest) -> Iterator[DrillTarget]:
    """Sandbox per worker (own ports and state), or the AWS target from --aws-topology."""
    kind = request.config.getoption("--target")
    timing = request.config.getoption("--timing")
    if kind == "aws":
        from gameday.provision.topology import Topology
        from gameday.target import Endpoints

        topo = Topology.load(request.config.getoption("--aws-topology"))
        from gameday.guard.config import load_config
        from gameday.guard.guardrails import NO_IMDS, preflight

        # before any drill: credentials, STS identity and regions on the config's allow-lists
        env = {**os.environ, **NO_IMDS}
        preflight(load_config(required=True), env, [topo.primary_region, topo.recovery_region],  # type: ignore[arg-type]
                  "drills --target aws")
        target = DrillTarget("aws", timing, None, Endpoints.for_aws(topo), topo, settings.text("GAMEDAY_DB_PASSWORD"))
        target.dry_run = bool(request.config.getoption("--dry-run"))
        yield target
        return
    sandbox = request.getfixturevalue("gameday_sandbox")
    state = Path(sandbox.state_dir)
    topo, password = _sandbox_topology(state)
    target = DrillTarget("sandbox", timing, state, sandbox, topo, password)
    target.dry_run = bool(request.config.getoption("--dry-run"))
    yield target


class DrillRun:
    """One test session's report folder: allure side files and the run summary."""

    def __init__(self, layout: Any, target: str, timing: str) -> None:
        self.layout = layout
        self.root = layout.root
        self.target = target
        self.timing = timing
        self.results: list[Any] = []

    def record(self, scenario: Any, result: Any, error: str | None, seconds: float, target: DrillTarget) -> None:
        from gameday.drill.report import ScenarioResult, write_summary

        measurements: dict[str, Any] = {}
        if result is not None:
            measurements = {"fault_start": result.fault_start, "chaos": result.chaos_status}
        self.results.append(ScenarioResult(
            scenario=scenario.name, fault=scenario.fault, verdicts=tuple(result.verdicts) if result else (),
            error=error, target=target.kind, timing=target.timing, duration_s=round(seconds, 1),
            measurements=measurements, inconclusive=getattr(result, "inconclusive_message", None),
            halted=getattr(result, "halted_message", None)))
        secrets = (target.password,) if target.password else ()
        meta: dict[str, Any] = {"target": self.target, "timing": self.timing}
        var_files = list(getattr(target.endpoints, "var_files", None) or [])
        if var_files:
            meta["sandbox_var_files"] = var_files  # which Terraform variant the drills judged
        write_summary(self.root, self.results, meta=meta, secrets=secrets)


@pytest.fixture(scope="session")
def gameday_run(request: pytest.FixtureRequest, gameday_reports_dir: Path) -> DrillRun:
    from gameday.drill.report import run_layout, write_categories, write_environment_properties

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    layout = run_layout(gameday_reports_dir, None)
    if worker:
        layout = run_layout(gameday_reports_dir, f"{layout.run_id}-{worker}")
    target = request.config.getoption("--target")
    timing = request.config.getoption("--timing")
    alluredir = request.config.getoption("allure_report_dir", None) if _has_allure(request) else None
    props = {"target": target, "timing": timing, "worker": worker or "master"}
    var_files = sandbox_var_files(request.config)
    if var_files:
        props["sandbox_var_files"] = ", ".join(var_files)
    for d in filter(None, [alluredir, layout.allure_results]):
        write_categories(d)
        write_environment_properties(d, props)
    return DrillRun(layout, target, timing)


def _has_allure(request: pytest.FixtureRequest) -> bool:
    try:
        request.config.getoption("allure_report_dir")
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------ broken sandboxes (mutation tests)


class VariantSandbox:
    """A sandbox started with ``--variant`` breakages and/or the user's var files; runs unchanged scenarios.

    For mutation tests: the user's scenario files (their SLOs as written) against a sandbox whose
    Terraform or emulation was broken on purpose must FAIL with the matching SLO verdict.
    """

    def __init__(self, state: Path, endpoints: Any, runs: Path, scenarios_dir: Path,
                 variants: tuple[str, ...] = (), var_files: tuple[str, ...] = ()) -> None:
        self.state = state
        self.endpoints = endpoints
        self.runs = runs
        self.scenarios_dir = scenarios_dir
        self.variants = variants
        self.var_files = var_files
        self.topology, self.password = _sandbox_topology(state)
        self.drills = 0

    def status(self) -> dict[str, Any]:
        from gameday.sandbox import client

        result: dict[str, Any] = client.admin(self.endpoints, "/status")
        return result

    def drill(self, name: str, **experiment_config: Any) -> Any:
        """Run the scenario ``name`` (its SLOs as written) and return the DrillResult."""
        import dataclasses

        from gameday.drill.runner import run_drill
        from gameday.drill.scenario import find_scenario
        from gameday.sandbox import client

        scenario = find_scenario(name, self.scenarios_dir)
        if experiment_config:
            scenario = dataclasses.replace(
                scenario, experiment_config={**scenario.experiment_config, **experiment_config})
        if self.drills:
            client.admin(self.endpoints, "/reset", method="POST")  # back to steady state, like DrillTarget
        self.drills += 1
        result = run_drill(scenario, self.endpoints, self.topology, self.runs / f"{self.drills:02d}-{name}",
                           timing="fast", password=self.password)
        skip_if_inconclusive(result)
        return result


def skip_if_inconclusive(result: Any) -> None:
    """Skip (with the starvation figure) a test whose drill ran on a starved host: it proved nothing either way."""
    if result.inconclusive:  # a starved host can fake a breach as well as hide one: judge nothing
        pytest.skip(result.inconclusive_message or "INCONCLUSIVE")


def variant_sandbox(request: pytest.FixtureRequest, runs: Path, scenarios_dir: Path, *,
                    variants: tuple[str, ...] = (), var_files: tuple[str, ...] = ()) -> Iterator[VariantSandbox]:
    """Fixture body: a fresh broken sandbox (fast timing), always torn down; skips unless --target sandbox."""
    from gameday.sandbox import client

    if request.config.getoption("--target") != "sandbox":
        pytest.skip("mutation tests break a local sandbox on purpose: needs --target sandbox")
    base = Path(tempfile.mkdtemp(prefix="gameday-variant-"))
    state = base / "sandbox"
    try:
        endpoints = client.up_with_retry(state, timing="fast", variants=variants, var_files=var_files)
        yield VariantSandbox(state, endpoints, runs, scenarios_dir, variants, tuple(endpoints.var_files))
    finally:
        teardown_sandbox(state, base)


def slo_verdict(result: Any, name: str) -> Any:
    """The SLO verdict ``name`` of a DrillResult (assertion error listing the others if absent)."""
    by_name = {v.name: v for v in result.verdicts}
    assert name in by_name, f"{result.scenario}: no SLO verdict {name!r}; got {sorted(by_name)}"
    return by_name[name]


def verdict_table(result: Any) -> str:
    return "\n".join(f"  {'PASS' if v.passed else 'FAIL'} {v.name}: {v.message}" for v in result.verdicts)


def assert_breach(result: Any, name: str, *any_of: str) -> Any:
    """The verdict ``name`` failed, and its message contains one of ``any_of``."""
    v = slo_verdict(result, name)
    assert not v.passed, f"{result.scenario}: {name} passed against a broken sandbox: {v.message}\n" \
                         f"{verdict_table(result)}"
    assert any(text in v.message for text in any_of), \
        f"{result.scenario}: {name} failed, but not with {any_of}: {v.message}\n{verdict_table(result)}"
    return v


def assert_held(result: Any, name: str) -> None:
    """The verdict ``name`` passed: the breakage stayed attributable to what it broke."""
    v = slo_verdict(result, name)
    assert v.passed, f"{result.scenario}: {name} should be untouched by this variant: {v.message}\n" \
                     f"{verdict_table(result)}"
