"""Game-day plans: ``gamedays/<name>.yaml`` = a target, the drills in order, a schedule, a policy.

Checked like scenario files (``gameday.drill.scenario``'s strict YAML loader and schema-error
wording): JSON Schema first (``plan.schema.json``), then what a schema cannot say (the cron
expression parses, the time zone exists, every scenario exists, ``policy`` references have a
policy to refer to). Every problem is one ``ConfigError`` naming the file and the field.

Relative paths in a plan (var files, state dir, topology) are relative to the folder that holds
``gamedays/`` (the repository root for the shipped plans), like scenario experiment paths.

The recovery policy follows AWS Resilience Hub's resiliency policies: RTO and RPO targets per
disruption type ("AZ", "Hardware", "Region", "Software": "Defines the RTO and RPO targets for
Availability Zone disruption", https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/
aws-properties-resiliencehub-resiliencypolicy-policymap.html), here also per service.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gameday import resources as gameday_resources
from gameday.drill.scenario import ANY_SERVICE, Scenario, Slos, find_scenario
from gameday.drill.scenario_file import StrictLoader, schema_error, show
from gameday.errors import ConfigError

DISRUPTIONS = ("software", "hardware", "az", "region")
# Which Resilience Hub disruption type a scenario's fault is: a lost instance or database host is
# hardware, a whole service failing is software, an AZ or a region (or the link between regions) is itself.
FAULT_DISRUPTION = {"instance": "hardware", "database": "hardware", "service": "software", "az": "az",
                    "region": "region", "network": "region"}
POLICY = "policy"
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class Policy:
    """RTO/RPO targets (seconds) per service (``*`` = any), optionally per disruption type."""

    name: str = "recovery policy"
    rto_s: Mapping[str, float] = field(default_factory=dict)
    rpo_s: Mapping[str, float] = field(default_factory=dict)
    by_disruption: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def target(self, metric: str, service: str, fault: str | None = None) -> float | None:
        """The policy's RTO (``rto``/``write_rto``) or RPO (``rpo``) target, or None when it sets none."""
        key = "rpo_s" if metric == "rpo" else "rto_s" if metric in ("rto", "write_rto") else None
        if key is None:
            return None
        part = self.by_disruption.get(FAULT_DISRUPTION.get(fault or "", ""), {})
        for table in (part.get(key) or {}, getattr(self, key)):
            if service in table:
                return float(table[service])
            if ANY_SERVICE in table:
                return float(table[ANY_SERVICE])
        return None

    @property
    def empty(self) -> bool:
        return not (self.rto_s or self.rpo_s or self.by_disruption)


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str = "UTC"
    missed: str = "skip"             # skip | run_once
    starting_deadline_s: float = 3600.0


@dataclass(frozen=True)
class Webhook:
    url: str                         # may be ${ENV}: resolved when sending, never logged
    format: str = "slack"
    on: tuple[str, ...] = ("start", "finish", "breach", "halt")
    retries: int = 3
    timeout_s: float = 5.0
    backoff_s: float = 1.0


@dataclass(frozen=True)
class Guardrails:
    """Stop conditions: halt the game day (the running drill rolls back) when one trips."""

    stop_on: tuple[str, ...] = ()                              # fail | error | inconclusive
    max_duration_s: float | None = None
    halt_error_ratio: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # svc -> (above, for_s)


@dataclass(frozen=True)
class Compare:
    last_n: int = 5
    regression_pct: float = 25.0
    min_delta_s: float = 0.5


@dataclass(frozen=True)
class Plan:
    """One parsed plan file; ``scenarios`` are loaded and already carry the plan's overrides."""

    name: str
    path: Path
    description: str
    target_kind: str
    target_name: str
    state_dir: Path | None
    topology: Path | None
    timing: str
    routing_mode: str
    var_files: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    schedule: Schedule | None
    policy: Policy
    guardrails: Guardrails
    compare: Compare
    notify: tuple[Webhook, ...]
    history_url: str | None
    reports_dir: Path

    @property
    def lock_key(self) -> str:
        """What two game days must not share at once: the target they drill."""
        where = self.state_dir or self.topology or self.target_name
        return f"{self.target_kind}-{where}"


@cache
def plan_schema() -> dict[str, Any]:
    text = resources.files("gameday.gameday").joinpath("plan.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def resolve_env(value: str, *, file: str | None = None, field_name: str | None = None) -> str:
    """``${NAME}`` -> the environment variable's value (secrets such as webhook URLs stay out of files)."""
    m = _ENV_REF.match(value)
    if not m:
        return value
    got = os.environ.get(m.group(1))
    if not got:
        raise ConfigError(f"environment variable {m.group(1)} is not set", file=file, field=field_name,
                          hint=f"export {m.group(1)}=... or write the value in the plan")
    return got


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("plan file not found", file=str(path), hint="plans live in gamedays/<name>.yaml") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read plan file: {exc.strerror}", file=str(path)) from exc
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}", file=str(path),
                          hint="fix the YAML syntax (indentation, ':' after keys, quotes)") from exc


def _validate(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"a plan file must be a YAML mapping, got {show(data)}", file=str(path),
                          hint="start the file with 'name: ...', see gamedays/weekly.yaml")
    errors = list(jsonschema.Draft202012Validator(plan_schema()).iter_errors(data))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        assert best is not None
        raise schema_error(best, path)
    return data


def _check_cron(raw: Mapping[str, Any], path: Path) -> Schedule:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from croniter import croniter

    cron = str(raw["cron"]).strip()
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ConfigError(f"{cron!r} is not a five-field cron expression", file=str(path), field="schedule.cron",
                          hint="minute hour day-of-month month day-of-week, e.g. '0 6 * * 1' (Mondays 06:00)")
    tz = str(raw.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {tz!r}", file=str(path), field="schedule.timezone",
                          hint="an IANA name such as UTC, Europe/Rome, America/New_York") from exc
    return Schedule(cron=cron, timezone=tz, missed=str(raw.get("missed", "skip")),
                    starting_deadline_s=float(raw.get("starting_deadline_s", 3600.0)))


def _policy(raw: Mapping[str, Any] | None) -> Policy:
    raw = raw or {}
    by = {d: {k: dict(v) for k, v in part.items()} for d, part in (raw.get("by_disruption") or {}).items()}
    return Policy(name=str(raw.get("name", "recovery policy")), rto_s=dict(raw.get("rto_s") or {}),
                  rpo_s=dict(raw.get("rpo_s") or {}), by_disruption=by)


def _apply_entry(scenario: Scenario, entry: Mapping[str, Any], plan: dict[str, Any], policy: Policy,
                 path: Path, index: int) -> Scenario:
    """The plan's overrides for one scenario: load lengths, experiment config, budgets from the policy."""
    timing, mode = plan["timing"], plan["routing_mode"]
    where = f"scenarios.{index}"
    if entry.get("load"):
        base = scenario.load_for(timing)
        load = dataclasses.replace(base, **{k: float(v) for k, v in entry["load"].items()})
        scenario = dataclasses.replace(scenario, load_by_timing={**scenario.load_by_timing, timing: load})
    if entry.get("experiment_config"):
        declared = json.loads(scenario.experiment_path.read_text(encoding="utf-8")).get("configuration") or {}
        for key in entry["experiment_config"]:
            if key not in declared:
                raise ConfigError(f"'{key}' is not a configuration key of {scenario.experiment_path.name}",
                                  file=str(path), field=f"{where}.experiment_config.{key}",
                                  hint=f"use one of: {', '.join(sorted(declared)) or '(it declares none)'}")
        scenario = dataclasses.replace(scenario, experiment_config={**scenario.experiment_config,
                                                                    **entry["experiment_config"]})
    over = entry.get("slos") or {}
    if not over:
        return scenario
    slos = scenario.slos_for(timing, mode)
    basis = dict(slos.basis)
    changes: dict[str, Any] = {}

    def value(v: Any, metric: str, service: str, fld: str) -> float:
        if v != POLICY:
            return float(v)
        got = policy.target(metric, service, scenario.fault)
        if got is None:
            raise ConfigError(f"'policy' but the plan's policy sets no {metric.upper().replace('WRITE_', '')} "
                              f"target for {service}", file=str(path), field=fld,
                              hint="add policy.rto_s / policy.rpo_s for this service (or '*'), or give seconds")
        return got

    for key, metric in (("rto_s", "rto"), ("write_rto_s", "write_rto")):
        if key in over:
            table = {svc: value(v, metric, svc, f"{where}.slos.{key}.{svc}") for svc, v in over[key].items()}
            changes[key] = table
            for svc, v in over[key].items():
                basis.pop(f"{key}.{svc}", None)
                if v == POLICY:
                    basis[f"{key}.{svc}"] = f"{policy.name} target {table[svc]:g} s"
    if "max_rpo_s" in over:
        changes["max_rpo_s"] = value(over["max_rpo_s"], "rpo", ANY_SERVICE, f"{where}.slos.max_rpo_s")
    new: Slos = dataclasses.replace(slos, basis=basis, **changes)
    return dataclasses.replace(scenario, slos_by_timing={**scenario.slos_by_timing, timing: new},
                               slos_by_routing={**scenario.slos_by_routing, (timing, mode): new})


def _abs(value: str | None, root: Path) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (root / p)


def load_plan(path: str | os.PathLike[str], *, scenarios_dir: str | os.PathLike[str] | None = None) -> Plan:
    """Parse and check a plan file; raises ConfigError naming the file and field of the first problem."""
    p = Path(path)
    data = _validate(_read(p), p)
    if p.stem != data["name"]:
        raise ConfigError(f"name {data['name']!r} differs from the file name {p.stem!r}", file=str(p), field="name",
                          hint=f"rename the file to {data['name']}.yaml or set name: {p.stem}")
    root = p.resolve().parent.parent
    data.setdefault("timing", "fast")
    data.setdefault("routing_mode", "global_accelerator")
    target = data["target"]
    kind = target["kind"]
    if kind == "aws" and not target.get("topology"):
        raise ConfigError("an aws target needs its topology file", file=str(p), field="target.topology",
                          hint="the JSON written by 'gameday provision up --target aws'")
    if kind == "sandbox" and target.get("topology"):
        raise ConfigError("topology is for aws targets (a sandbox writes its own)", file=str(p),
                          field="target.topology", hint="remove it, or set target.kind: aws")
    if kind == "aws" and data.get("var_files"):
        raise ConfigError("var_files apply to a sandbox; an AWS target was provisioned with its own",
                          file=str(p), field="var_files",
                          hint="pass them to 'gameday provision up --target aws --var-file'")
    var_files = tuple(str(_abs(v, root)) for v in data.get("var_files") or ())
    for i, vf in enumerate(var_files):
        if not Path(vf).is_file():
            raise ConfigError(f"terraform var file {vf} does not exist", file=str(p), field=f"var_files.{i}",
                              hint="paths are relative to the folder holding gamedays/")
    policy = _policy(data.get("policy"))
    sdir = Path(scenarios_dir) if scenarios_dir else (root / "scenarios" if (root / "scenarios").is_dir()
                                                      else gameday_resources.scenarios_dir())
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["scenarios"]):
        entry = {"name": entry} if isinstance(entry, str) else entry
        name = entry["name"]
        if name in seen:
            raise ConfigError(f"scenario {name!r} is listed twice", file=str(p), field=f"scenarios.{i}",
                              hint="each drill once per game day")
        seen.add(name)
        try:
            sc = find_scenario(name, sdir)
        except ConfigError as exc:
            raise ConfigError(f"no scenario named {name!r}", file=str(p), field=f"scenarios.{i}",
                              hint=exc.hint or "see scenarios/") from exc
        if not sc.runs_on(kind):
            raise ConfigError(f"scenario {name!r} runs only on {', '.join(sc.targets)}", file=str(p),
                              field=f"scenarios.{i}", hint=f"remove it from a {kind} plan")
        scenarios.append(_apply_entry(sc, entry, data, policy, p, i))
    guard = data.get("guardrails") or {}
    cmp_ = data.get("compare") or {}
    hooks = tuple(Webhook(url=h["url"], format=h.get("format", "slack"),
                          on=tuple(h.get("events") or Webhook.on), retries=int(h.get("retries", 3)),
                          timeout_s=float(h.get("timeout_s", 5.0)), backoff_s=float(h.get("backoff_s", 1.0)))
                  for h in data.get("notify") or ())
    return Plan(
        name=data["name"], path=p.resolve(), description=str(data.get("description", "")).strip(),
        target_kind=kind, target_name=str(target.get("name", kind)),
        state_dir=_abs(target.get("state_dir"), root), topology=_abs(target.get("topology"), root),
        timing=data["timing"], routing_mode=data["routing_mode"], var_files=var_files,
        scenarios=tuple(scenarios),
        schedule=_check_cron(data["schedule"], p) if data.get("schedule") else None,
        policy=policy,
        guardrails=Guardrails(stop_on=tuple(guard.get("stop_on") or ()),
                              max_duration_s=guard.get("max_duration_s"),
                              halt_error_ratio={s: (float(v["above"]), float(v["for_s"]))
                                                for s, v in (guard.get("halt_error_ratio") or {}).items()}),
        compare=Compare(last_n=int(cmp_.get("last_n", 5)), regression_pct=float(cmp_.get("regression_pct", 25.0)),
                        min_delta_s=float(cmp_.get("min_delta_s", 0.5))),
        notify=hooks,
        history_url=(data.get("history") or {}).get("url"),
        reports_dir=_abs(data.get("reports_dir"), root) or (Path.cwd() / "reports" / "runs"),
    )
