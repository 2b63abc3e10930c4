"""Resolve what each activity of an experiment would touch, through read-only describe calls.

Like the target preview of AWS FIS ("a target preview ... to verify that the targets are the
ones you expect before you start the experiment", https://docs.aws.amazon.com/fis/latest/userguide/
experiment-preview.html): the same resolution feeds ``--dry-run`` and the guardrails' scope and
blast-radius checks. Nothing here calls an API that changes anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError

READ_ONLY = "read-only"
RESTORES = "restores"
DESTRUCTIVE = "destructive"


@dataclass
class Resource:
    kind: str
    id: str
    region: str
    tags: dict[str, str] = field(default_factory=dict)
    group: str | None = None      # the ASG an instance belongs to


@dataclass
class PlannedAction:
    """One activity of the experiment, resolved: what it touches, how, and what undoes it."""

    section: str
    name: str
    func: str
    effect: str
    how: str
    regions: set[str] = field(default_factory=set)
    resources: list[Resource] = field(default_factory=list)
    touched: int = 0                                             # resources that change (a random pick of them)
    group_share: dict[str, tuple[int, int]] = field(default_factory=dict)   # group -> (touched, size)
    undone_by: str = "-"
    unresolved: str | None = None

    def line(self) -> str:
        where = ",".join(sorted(self.regions)) or "-"
        head = f"[{self.section}] {self.name} ({self.func}) {self.effect} in {where}: {self.how}"
        rows = [head]
        for r in self.resources:
            rows.append(f"    {r.kind} {r.id} ({r.region}{', group ' + r.group if r.group else ''})")
        for g, (n, size) in sorted(self.group_share.items()):
            rows.append(f"    share of {g}: {n} of {size} ({100.0 * n / size if size else 0:.0f} %)")
        if self.unresolved:
            rows.append(f"    UNRESOLVED: {self.unresolved}")
        if self.effect == DESTRUCTIVE:
            rows.append(f"    undone by: {self.undone_by}")
        return "\n".join(rows)


# ------------------------------------------------------------------ experiment file


def load_experiment(path: Path) -> dict[str, Any]:
    """The experiment JSON, checked enough that every bad file is a one-line ConfigError."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("experiment file not found", file=name,
                          hint="use a name from experiments/ (e.g. instance-termination) or an existing path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the experiment file ({exc})", file=name,
                          hint="make it a readable UTF-8 JSON file") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=name,
                          hint="fix the JSON syntax (commas, quotes, brackets)") from exc
    if not isinstance(data, dict):
        raise ConfigError("an experiment must be a JSON object", file=name, hint="see experiments/README.md")
    for key in ("title", "method"):
        if key not in data:
            raise ConfigError("required field is missing", file=name, field=key,
                              hint="see experiments/README.md for the shape of an experiment")
    if not isinstance(data["method"], list) or not data["method"]:
        raise ConfigError("must be a non-empty list of activities", file=name, field="method",
                          hint="add at least one action")
    for section in ("method", "rollbacks"):
        acts = data.get(section, [])
        if not isinstance(acts, list):
            raise ConfigError("must be a list of activities", file=name, field=section, hint="use [...]")
        for i, act in enumerate(acts):
            where = f"{section}[{i}]"
            if not isinstance(act, dict):
                raise ConfigError("an activity must be an object", file=name, field=where,
                                  hint='{"type": "action", "name": ..., "provider": {...}}')
            if act.get("type") not in ("action", "probe"):
                raise ConfigError(f"type is {act.get('type')!r}", file=name, field=f"{where}.type",
                                  hint="use \"action\" or \"probe\"")
            if not act.get("name"):
                raise ConfigError("required field is missing", file=name, field=f"{where}.name",
                                  hint="give every activity a name")
            prov = act.get("provider")
            if not isinstance(prov, dict) or prov.get("type") != "python" or not prov.get("module") \
                    or not prov.get("func"):
                raise ConfigError("needs a python provider with module and func", file=name,
                                  field=f"{where}.provider",
                                  hint='{"type": "python", "module": "chaosaws.asg.actions", "func": ...}')
    return data


def configuration_values(experiment: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The experiment's configuration as ``chaos run`` would fill it from ``env``."""
    out: dict[str, Any] = {}
    for key, spec in (experiment.get("configuration") or {}).items():
        if not isinstance(spec, dict):
            out[key] = spec
            continue
        if spec.get("type") != "env":
            continue
        raw = env.get(str(spec.get("key")), spec.get("default"))
        if raw is None:
            continue
        kind = spec.get("env_var_type")
        try:
            out[key] = json.loads(raw) if kind == "json" else float(raw) if kind == "float" else raw
        except (ValueError, TypeError):
            out[key] = raw
    return out


_REF = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(value: Any, cfg: Mapping[str, Any]) -> Any:
    """``${key}`` references replaced as chaoslib does: a whole-string reference keeps the value's type."""
    if isinstance(value, str):
        m = _REF.fullmatch(value)
        if m and m.group(1) in cfg:
            return cfg[m.group(1)]
        return _REF.sub(lambda mm: str(cfg.get(mm.group(1), mm.group(0))), value)
    if isinstance(value, list):
        return [substitute(v, cfg) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, cfg) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ resolution


Client = Callable[[str, str], Any]   # (service, region) -> boto3 client


def _tags(items: Any) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in items or [] if "Key" in t}


def _groups(c: Any, names: list[str]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for i in range(0, len(names), 50):
        groups += c.describe_auto_scaling_groups(AutoScalingGroupNames=names[i:i + 50]).get("AutoScalingGroups", [])
    return groups


def _instances(c: Any, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(50):  # bounded pagination
        page = c.describe_instances(**kw, **({"NextToken": token} if token else {}))
        for res in page.get("Reservations", []):
            out += res.get("Instances", [])
        token = page.get("NextToken")
        if not token:
            break
    return out


def _instance_resources(insts: list[dict[str, Any]], region: str) -> list[Resource]:
    res = []
    for i in insts:
        tags = _tags(i.get("Tags"))
        res.append(Resource("ec2:instance", i["InstanceId"], region, tags, tags.get("aws:autoscaling:groupName")))
    return res


def _terminate_random(a: PlannedAction, args: dict[str, Any], region: str, client: Client) -> None:
    asg, ec2 = client("autoscaling", region), client("ec2", region)
    names = [str(n) for n in args.get("asg_names") or []]
    if not names:
        a.unresolved = "only asg_names targets can be previewed (tags= is not)"
        return
    for g in _groups(asg, names):
        inservice = [i for i in g.get("Instances", []) if i.get("LifecycleState") == "InService"]
        if args.get("az"):
            inservice = [i for i in inservice if i.get("AvailabilityZone") == args["az"]]
            n = len(inservice)
        elif args.get("instance_percent"):
            n = int(len(inservice) * float(args["instance_percent"]) / 100)
        else:
            n = int(args.get("instance_count") or 0)
        ids = [i["InstanceId"] for i in inservice]
        insts = _instances(ec2, InstanceIds=ids) if ids else []
        a.resources += _instance_resources(insts, region)
        a.group_share[g["AutoScalingGroupName"]] = (min(n, len(inservice)), len(g.get("Instances", [])))
        a.touched += min(n, len(inservice))
    a.how = f"terminate {a.touched} random InService instance(s) among the {len(a.resources)} listed"


def _terminate_instances(a: PlannedAction, args: dict[str, Any], region: str, client: Client) -> None:
    ec2 = client("ec2", region)
    filters = list(args.get("filters") or [])
    if args.get("az"):
        filters.append({"Name": "availability-zone", "Values": [str(args["az"])]})
    kw: dict[str, Any] = {"Filters": filters} if filters else {}
    if args.get("instance_ids"):
        kw["InstanceIds"] = list(args["instance_ids"])
    if not kw:
        a.unresolved = "no instance_ids, az or filters: chaosaws would refuse"
        return
    insts = [i for i in _instances(ec2, **kw) if i.get("State", {}).get("Name") in ("pending", "running")]
    a.resources = _instance_resources(insts, region)
    a.touched = len(a.resources)
    groups = sorted({r.group for r in a.resources if r.group})
    sizes = {g["AutoScalingGroupName"]: len(g.get("Instances", [])) for g in _groups(client("autoscaling", region),
                                                                                     groups)} if groups else {}
    for g in groups:
        a.group_share[g] = (sum(1 for r in a.resources if r.group == g), sizes.get(g, 0))
    a.how = f"terminate all {a.touched} matching instance(s)"


def _db(a: PlannedAction, args: dict[str, Any], region: str, client: Client, how: str) -> None:
    ident = str(args.get("db_instance_identifier", ""))
    rds = client("rds", region)
    dbs = rds.describe_db_instances(DBInstanceIdentifier=ident).get("DBInstances", [])
    for d in dbs:
        tags = _tags(d.get("TagList")) or _tags(rds.list_tags_for_resource(ResourceName=d["DBInstanceArn"])
                                                .get("TagList"))
        a.resources.append(Resource("rds:db-instance", d["DBInstanceIdentifier"], region, tags))
    a.touched = len(a.resources)
    a.how = how


def _asg_capacity(a: PlannedAction, args: dict[str, Any], region: str, client: Client) -> None:
    name = str(args.get("asg_name", ""))
    for g in _groups(client("autoscaling", region), [name]):
        want = int(args.get("desired_capacity", 0))
        have = int(g["DesiredCapacity"])
        a.resources.append(Resource("autoscaling:group", name, region, _tags(g.get("Tags"))))
        a.group_share[name] = (max(0, have - want), len(g.get("Instances", [])) or have)
        a.touched = max(0, have - want)
        a.how = f"set desired capacity {have} -> {want} (MinSize lowered if needed; old sizes kept in tags)"


def _subnets(a: PlannedAction, args: dict[str, Any], region: str, client: Client, how: str) -> None:
    tags = args.get("subnet_tags") or {"gameday:region": region}
    ec2 = client("ec2", region)
    if args.get("subnet_arns"):
        ids = [str(x).rsplit("/", 1)[-1] for x in args["subnet_arns"]]
        subnets = ec2.describe_subnets(SubnetIds=ids).get("Subnets", [])
    else:
        subnets = ec2.describe_subnets(Filters=[{"Name": f"tag:{k}", "Values": [str(v)]}
                                                for k, v in tags.items()]).get("Subnets", [])
    a.resources = [Resource("ec2:subnet", s["SubnetId"], region, _tags(s.get("Tags"))) for s in subnets]
    a.touched = len(a.resources)
    a.how = how


#: func -> (effect, resolver or None); a mutating activity missing here cannot be previewed (refused on AWS).
def _resolvers() -> dict[str, tuple[str, Callable[..., None] | None]]:
    return {
        "chaosaws.asg.actions.terminate_random_instances": (DESTRUCTIVE, _terminate_random),
        "chaosaws.ec2.actions.terminate_instances": (DESTRUCTIVE, _terminate_instances),
        "chaosaws.rds.actions.reboot_db_instance": (DESTRUCTIVE, lambda a, args, r, c: _db(
            a, args, r, c, "reboot" + (" with Multi-AZ failover" if args.get("force_failover") else ""))),
        "gameday.chaos.database.actions.promote_read_replica": (DESTRUCTIVE, lambda a, args, r, c: _db(
            a, args, r, c, "promote the read replica to a standalone primary (one-way)")),
        "gameday.chaos.autoscaling.actions.set_desired_capacity": (DESTRUCTIVE, _asg_capacity),
        "gameday.chaos.region.actions.region_outage": (DESTRUCTIVE, lambda a, args, r, c: _subnets(
            a, args, r, c, "FIS aws:network:disrupt-connectivity (scope all) on these subnets")),
        "gameday.chaos.region.actions.cut_inter_region_link": (DESTRUCTIVE, lambda a, args, r, c: _subnets(
            a, args, r, c, f"FIS route-table-disrupt-cross-region-connectivity to {args.get('other_region')}")),
        "gameday.chaos.region.actions.restore_region": (RESTORES, None),
        "gameday.chaos.region.actions.heal_inter_region_link": (RESTORES, None),
        "gameday.chaos.autoscaling.actions.restore_desired_capacity": (RESTORES, None),
        "gameday.chaos.database.actions.write_heartbeat": (READ_ONLY, None),  # one row in its own table
    }


#: How each fault is undone when the experiment has no rollback for it.
SELF_HEALING = {
    "chaosaws.asg.actions.terminate_random_instances": "none needed: the ASG launches replacements",
    "chaosaws.ec2.actions.terminate_instances": "none needed: the ASG launches replacements",
    "chaosaws.rds.actions.reboot_db_instance": "none: RDS completes the reboot/failover itself",
    "gameday.chaos.database.actions.promote_read_replica": "NONE: a promoted replica cannot be made a replica "
                                                           "again (rebuild it)",
    "gameday.chaos.sandbox.actions.crash_primary_db": "none: the database restarts (or fails over) itself",
}
UNDO = {"gameday.chaos.region.actions.region_outage": "gameday.chaos.region.actions.restore_region",
        "gameday.chaos.region.actions.cut_inter_region_link": "gameday.chaos.region.actions.heal_inter_region_link",
        "gameday.chaos.autoscaling.actions.set_desired_capacity":
            "gameday.chaos.autoscaling.actions.restore_desired_capacity"}


def _undone_by(func: str, later: list[tuple[str, str, str]]) -> str:
    want = UNDO.get(func)
    hits = [f"{sec} '{name}'" for sec, name, f in later if want and f == want]
    if hits:
        return ", ".join(hits)
    if want:
        return f"NOTHING in this experiment ({want.rsplit('.', 1)[-1]} is missing)"
    return SELF_HEALING.get(func, "unknown")


def preview(experiment: Mapping[str, Any], env: Mapping[str, str], client: Client) -> list[PlannedAction]:
    """Every activity of method then rollbacks, resolved with read-only calls through ``client``."""
    cfg = configuration_values(experiment, env)
    default_region = str(cfg.get("aws_region") or env.get("AWS_REGION") or "")
    resolvers = _resolvers()
    acts = [("method", a) for a in experiment.get("method", [])] + \
           [("rollbacks", a) for a in experiment.get("rollbacks", [])]
    funcs = [(sec, str(a.get("name")), f"{a['provider'].get('module')}.{a['provider'].get('func')}")
             for sec, a in acts]
    plan: list[PlannedAction] = []
    for i, (sec, act) in enumerate(acts):
        prov = act["provider"]
        func = f"{prov.get('module')}.{prov.get('func')}"
        args = substitute(dict(prov.get("arguments") or {}), cfg)
        region = str(args.get("region") or default_region)
        short = str(prov.get("func"))
        if act.get("type") == "probe" or short.startswith("wait_"):
            plan.append(PlannedAction(sec, str(act["name"]), func, READ_ONLY, "reads only"))
            continue
        effect, resolver = resolvers.get(func, (DESTRUCTIVE, None))
        a = PlannedAction(sec, str(act["name"]), func, effect, "changes something", {region} if region else set())
        if func == "gameday.chaos.sandbox.actions.crash_primary_db":
            a.how = f"SIGKILL the PostgreSQL primary behind {args.get('endpoint', 'writer')} (sandbox only)"
            a.resources = [Resource("sandbox:postgres-primary", str(args.get("endpoint", "writer")), region)]
            a.touched = 1
        elif resolver is not None:
            try:
                resolver(a, args, region, client)
            except Exception as exc:  # a describe call that fails leaves the action unresolved (refused)
                a.unresolved = f"describe failed: {exc}"
        elif effect == RESTORES:
            a.how = "restores what an earlier fault changed"
        elif effect == READ_ONLY:
            a.how = "writes a heartbeat row (data only, no AWS change)"
        else:
            a.unresolved = f"gameday cannot preview {func}"
        if effect == DESTRUCTIVE:
            a.undone_by = _undone_by(func, funcs[i + 1:])
        plan.append(a)
    return plan


def format_plan(plan: list[PlannedAction], title: str) -> str:
    lines = [f"dry run of {title}: nothing is changed"]
    lines += [a.line() for a in plan]
    n = sum(1 for a in plan if a.effect == DESTRUCTIVE)
    lines.append(f"{n} destructive action(s), {sum(a.touched for a in plan if a.effect == DESTRUCTIVE)} "
                 "resource(s) would change")
    return "\n".join(lines)

