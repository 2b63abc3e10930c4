"""Drill scenarios: ``scenarios/*.yaml`` = a Chaos Toolkit experiment + a load profile + SLOs.

Files are checked against ``schema.json`` (JSON Schema) and then for what a schema cannot
say (the experiment file exists, the name matches the file). Every problem becomes a
``ConfigError`` naming the file, the field path (``slos.rto_s.orders``) and the fix, because
the person reading it is editing YAML, not Python.

Timing profiles (``fast`` for the sandbox, ``aws`` for real AWS) override whole keys:
``slos_by_timing.aws.rto_s`` replaces ``slos.rto_s`` for the ``aws`` profile (no deep merge,
so a budget never silently mixes two profiles).

A budget may be a derivation instead of seconds (``{derive: alb_target_detection, margin_s: 1}``,
see ``gameday.drill.derive``): it is computed from the reference Terraform's settings for each
timing profile and routing mode when the file is loaded, and keeps its formula for the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from gameday.drill.scenario_file import read_yaml, schema_error, show
from gameday.errors import ConfigError
from gameday.safety.guard import StopCondition, parse_conditions

TIMINGS = ("fast", "aws")
TARGETS = ("sandbox", "aws")
FAULT_TYPES = ("instance", "az", "database", "service", "region", "network")
REGION_ROLES = ("primary", "recovery")
ANY_SERVICE = "*"

DEFAULT_PROBE_RATE = 20.0
DEFAULT_WRITE_RATE = 10.0
DEFAULT_WARMUP_S = 5.0
DEFAULT_DURATION_S = 120.0
DEFAULT_SETTLE_S = 10.0


@dataclass(frozen=True)
class LoadProfile:
    """Load run around the experiment: rates per service, and the phases' lengths."""

    probe_rate: float = DEFAULT_PROBE_RATE
    write_rate: float = DEFAULT_WRITE_RATE
    warmup_s: float = DEFAULT_WARMUP_S
    duration_s: float = DEFAULT_DURATION_S
    settle_s: float = DEFAULT_SETTLE_S


@dataclass(frozen=True)
class Unaffected:
    """Services the fault must not touch, and the error ratio they may still show."""

    services: tuple[str, ...]
    max_error_ratio: float


@dataclass(frozen=True)
class Slos:
    """What the drill must show; ``None``/empty means "not checked"."""

    rto_s: Mapping[str, float] = field(default_factory=dict)
    write_rto_s: Mapping[str, float] = field(default_factory=dict)
    max_lost_writes: int | None = 0
    max_rpo_s: float | None = None
    end_region: Mapping[str, str] = field(default_factory=dict)
    during_region: Mapping[str, str] = field(default_factory=dict)
    unaffected: Unaffected | None = None
    must_switch: tuple[str, ...] = ()
    max_replica_lag_s: float | None = None
    # "rto_s.<service>" / "write_rto_s.<service>" -> formula of a derived budget
    basis: Mapping[str, str] = field(default_factory=dict)

    def budget_basis(self, kind: str, service: str) -> str | None:
        """Formula of the read/write budget in force for a service, when it was derived."""
        own_write = kind == "write" and _per_service(self.write_rto_s, service) is not None
        table, source = ("write_rto_s", self.write_rto_s) if own_write else ("rto_s", self.rto_s)
        key = service if service in source else ANY_SERVICE
        return self.basis.get(f"{table}.{key}")

    def read_budget(self, service: str) -> float | None:
        """Read RTO budget of a service: its own entry, else ``*``, else None (not checked)."""
        budget: float | None = _per_service(self.rto_s, service)
        return budget

    def write_budget(self, service: str) -> float | None:
        """Write RTO budget: from ``write_rto_s`` (service, then ``*``), else the read budget."""
        budget: float | None = _per_service(self.write_rto_s, service)
        return budget if budget is not None else self.read_budget(service)

    def expected_end_region(self, service: str) -> str | None:
        region: str | None = _per_service(self.end_region, service)
        return region

    def expected_during_region(self, service: str) -> str | None:
        region: str | None = _per_service(self.during_region, service)
        return region


@dataclass(frozen=True)
class Scenario:
    """One parsed scenario file; use ``slos_for``/``load_for`` with the run's timing profile."""

    name: str
    description: str
    experiment: str          # experiment name: experiments/<experiment>.json
    experiment_path: Path
    fault: str
    load: LoadProfile
    slos: Slos
    experiment_config: Mapping[str, Any] = field(default_factory=dict)
    slos_by_timing: Mapping[str, Slos] = field(default_factory=dict)
    load_by_timing: Mapping[str, LoadProfile] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    targets: tuple[str, ...] = TARGETS
    path: Path | None = None
    # (timing, routing mode) -> SLOs, for routing modes whose derived budgets differ from the default's
    slos_by_routing: Mapping[tuple[str, str], Slos] = field(default_factory=dict)
    stop_conditions: tuple[StopCondition, ...] = ()  # judged live during the method

    def runs_on(self, target: str) -> bool:
        """Whether the drill applies to a target (a sandbox-only fault cannot be injected in AWS)."""
        return target in self.targets

    def slos_for(self, timing: str, routing_mode: str | None = None) -> Slos:
        """SLOs for a timing profile (``fast`` or ``aws``): the override if any, else the base.

        ``routing_mode`` (``route53``) picks budgets derived for that mode's global routing.
        """
        _check_timing(timing, self.path)
        if routing_mode and (timing, routing_mode) in self.slos_by_routing:
            return self.slos_by_routing[(timing, routing_mode)]
        return self.slos_by_timing.get(timing, self.slos)

    def load_for(self, timing: str) -> LoadProfile:
        _check_timing(timing, self.path)
        return self.load_by_timing.get(timing, self.load)


def _per_service(table: Mapping[str, Any], service: str) -> Any:
    if service in table:
        return table[service]
    return table.get(ANY_SERVICE)


def _check_timing(timing: str, path: Path | None) -> None:
    if timing not in TIMINGS:
        raise ConfigError(f"unknown timing profile {timing!r}", file=str(path) if path else None,
                          hint=f"use one of: {', '.join(TIMINGS)}")


@cache
def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (shipped as package data)."""
    text = resources.files("gameday.drill").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _validate(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"a scenario file must be a YAML mapping, got {show(data)}", file=str(path),
                          hint="start the file with 'name: ...', see scenarios/README.md")
    validator = jsonschema.Draft202012Validator(scenario_schema())
    errors = list(validator.iter_errors(data))
    if errors:
        # One error, the one jsonschema ranks most relevant: fixing files one error at a time
        # is easier to follow than a wall of messages.
        best = jsonschema.exceptions.best_match(errors)
        assert best is not None
        raise schema_error(best, path)
    return data


# --- building -----------------------------------------------------------------------------------

def _load_profile(raw: Mapping[str, Any] | None, base: LoadProfile | None = None) -> LoadProfile:
    base = base or LoadProfile()
    raw = raw or {}
    return LoadProfile(
        probe_rate=float(raw.get("probe_rate", base.probe_rate)),
        write_rate=float(raw.get("write_rate", base.write_rate)),
        warmup_s=float(raw.get("warmup_s", base.warmup_s)),
        duration_s=float(raw.get("duration_s", base.duration_s)),
        settle_s=float(raw.get("settle_s", base.settle_s)),
    )


def _budgets(raw: Mapping[str, Any], key: str, timing: str, routing_mode: str, path: Path | None,
             prefix: str, basis: dict[str, str]) -> dict[str, float]:
    """Seconds per service; a derivation is computed for this timing and routing mode."""
    from gameday.drill.derive import derive

    out: dict[str, float] = {}
    for service, value in (raw.get(key) or {}).items():
        if isinstance(value, Mapping):
            budget = derive(value, timing, routing_mode=routing_mode, file=str(path) if path else None,
                            field=f"{prefix}.{key}.{service}")
            out[service] = budget.seconds
            basis[f"{key}.{service}"] = budget.formula
        else:
            out[service] = float(value)
    return out


def _has_derivation(raw: Mapping[str, Any]) -> bool:
    return any(isinstance(v, Mapping) for key in ("rto_s", "write_rto_s") for v in (raw.get(key) or {}).values())


def _slos(raw: Mapping[str, Any], timing: str = "fast", routing_mode: str = "global_accelerator",
          path: Path | None = None, prefix: str = "slos") -> Slos:
    unaffected = raw.get("unaffected")
    basis: dict[str, str] = {}
    return Slos(
        rto_s=_budgets(raw, "rto_s", timing, routing_mode, path, prefix, basis),
        write_rto_s=_budgets(raw, "write_rto_s", timing, routing_mode, path, prefix, basis),
        max_lost_writes=raw.get("max_lost_writes", 0),
        max_rpo_s=None if raw.get("max_rpo_s") is None else float(raw["max_rpo_s"]),
        end_region=dict(raw.get("end_region") or {}),
        during_region=dict(raw.get("during_region") or {}),
        unaffected=Unaffected(tuple(unaffected["services"]), float(unaffected["max_error_ratio"]))
        if unaffected else None,
        must_switch=tuple(raw.get("must_switch") or ()),
        max_replica_lag_s=None if raw.get("max_replica_lag_s") is None else float(raw["max_replica_lag_s"]),
        basis=basis,
    )


def _check_semantics(scenario: Scenario, path: Path, prefix_by_timing: Mapping[str, str]) -> None:
    """Rules a JSON Schema cannot express; each names the field to change."""
    if scenario.name != path.stem:
        raise ConfigError(f"name {scenario.name!r} differs from the file name {path.stem!r}", file=str(path),
                          field="name", hint=f"set name: {path.stem} (drills are selected by file name)")
    for timing, load in [("", scenario.load), *scenario.load_by_timing.items()]:
        where = f"load_by_timing.{timing}" if timing else "load"
        if load.warmup_s + load.settle_s >= load.duration_s:
            raise ConfigError(
                f"duration_s {load.duration_s:g} leaves no time for the experiment after warmup_s "
                f"{load.warmup_s:g} and settle_s {load.settle_s:g}", file=str(path),
                field=f"{where}.duration_s",
                hint="raise duration_s above warmup_s + settle_s + the experiment's own length")
    for timing, slos in [("", scenario.slos), *scenario.slos_by_timing.items()]:
        prefix = prefix_by_timing.get(timing, "slos")
        if slos.unaffected:
            both = sorted(set(slos.unaffected.services) & set(slos.must_switch))
            if both:
                raise ConfigError(f"service {both[0]!r} is both unaffected and must_switch", file=str(path),
                                  field=f"{prefix}.unaffected.services",
                                  hint="a service either switches region or is left alone: "
                                       "remove it from one list")


def experiment_name(value: str) -> str:
    """``experiments/region-outage.json``, ``region-outage.json``, ``region-outage`` -> ``region-outage``."""
    name = value.removeprefix("experiments/")
    return name.removesuffix(".json")


def _check_experiment(path: Path, config: Mapping[str, Any], scenario_file: Path) -> None:
    """The experiment exists, is JSON, and knows every ``experiment_config`` key we pass it."""
    if not path.is_file():
        known = sorted(f.stem for f in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise ConfigError(f"experiment file {path} does not exist", file=str(scenario_file),
                          field="experiment", hint=f"use one of: {', '.join(known)}" if known
                          else "name an existing file of experiments/")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"experiment {path} is not valid JSON: {exc}", file=str(scenario_file),
                          field="experiment", hint="fix the experiment file (chaos validate <file>)") from exc
    declared = doc.get("configuration") if isinstance(doc, dict) else None
    if not isinstance(declared, dict):
        declared = {}
    for key in config:
        if key not in declared:
            raise ConfigError(f"'{key}' is not a configuration key of {path.name}",
                              file=str(scenario_file), field=f"experiment_config.{key}",
                              hint=f"use one of: {', '.join(sorted(declared)) or '(it declares none)'}")


def load_scenario(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
                  check_experiment: bool = True) -> Scenario:
    """Parse and validate one scenario file.

    ``root`` is the repository root that ``experiment`` is relative to (default: the parent
    of the scenario's folder, i.e. the repo for ``scenarios/x.yaml``).
    """
    p = Path(path)
    data = _validate(read_yaml(p), p)
    base_root = Path(root) if root is not None else p.resolve().parent.parent
    experiment = experiment_name(data["experiment"])
    experiment_path = (base_root / "experiments" / f"{experiment}.json").resolve()
    if check_experiment:
        _check_experiment(experiment_path, dict(data.get("experiment_config") or {}), p)
    base_load = _load_profile(data.get("load"))
    base_slos_raw: Mapping[str, Any] = data["slos"]
    overrides: Mapping[str, Any] = data.get("slos_by_timing") or {}
    raw_by_timing = {t: {**base_slos_raw, **overrides.get(t, {})} for t in TIMINGS}
    # a timing gets its own SLOs when a file overrides them or when a budget is derived (per profile)
    own = [t for t in TIMINGS if t in overrides or _has_derivation(raw_by_timing[t])]

    def where(t: str, raw: Mapping[str, Any], key: str) -> str:
        return f"slos_by_timing.{t}" if t in overrides and key in overrides[t] else "slos"

    def build(t: str, mode: str = "global_accelerator") -> Slos:
        raw = raw_by_timing[t]
        keys = [k for k in ("rto_s", "write_rto_s") if k in raw]
        prefix = where(t, raw, keys[0]) if keys else "slos"
        return _slos(raw, t, mode, p, prefix)

    from gameday.drill.derive import ROUTING_MODES

    base_slos = _slos(base_slos_raw, "fast", path=p)
    by_timing = {t: build(t) for t in own}
    by_routing = {(t, m): s for t in TIMINGS for m in ROUTING_MODES[1:]
                  if (s := build(t, m)) != by_timing.get(t, base_slos)}
    scenario = Scenario(
        name=data["name"],
        description=data["description"].strip(),
        experiment=experiment,
        experiment_path=experiment_path,
        fault=data["fault"],
        load=base_load,
        slos=base_slos,
        experiment_config=dict(data.get("experiment_config") or {}),
        slos_by_timing=by_timing,
        slos_by_routing=by_routing,
        load_by_timing={t: _load_profile(over, base_load)
                        for t, over in (data.get("load_by_timing") or {}).items()},
        tags=tuple(data.get("tags") or ()),
        targets=tuple(data.get("targets") or TARGETS),
        path=p,
        stop_conditions=parse_conditions(data.get("stop_conditions"), str(p)),
    )
    _check_semantics(scenario, p, {t: f"slos_by_timing.{t}" for t in overrides})
    return scenario


def load_all(directory: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None,
             check_experiment: bool = True) -> list[Scenario]:
    """Every ``*.yaml`` scenario of a folder, sorted by name; the first bad file raises."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError("scenario folder not found", file=str(d),
                          hint="pass the repository's scenarios/ folder")
    files = sorted([*d.glob("*.yaml"), *d.glob("*.yml")])
    if not files:
        raise ConfigError("no scenario files (*.yaml) in this folder", file=str(d))
    return [load_scenario(f, root=root, check_experiment=check_experiment) for f in files]


def find_scenario(name: str, directory: str | os.PathLike[str], **kwargs: Any) -> Scenario:
    """The scenario called ``name`` in ``directory`` (``--scenario region-outage``)."""
    d = Path(directory)
    for ext in (".yaml", ".yml"):
        candidate = d / f"{name}{ext}"
        if candidate.is_file():
            return load_scenario(candidate, **kwargs)
    known = sorted(f.stem for f in [*d.glob("*.yaml"), *d.glob("*.yml")])
    raise ConfigError(f"no scenario named {name!r}", file=str(d), field="--scenario",
                      hint=f"use one of: {', '.join(known) or '(none found)'}")
