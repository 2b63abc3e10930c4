"""Replay undo-log entries through the AWS API, sweep gameday's FIS experiments, check steady state.

Every undo is idempotent (stopping a stopped experiment, setting sizes or dials they already
have), so replaying an entry twice, or one a rollback already undid, is harmless.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.errors import GamedayError
from gameday.safety import undolog
from gameday.safety.undolog import Entry
from gameday.util.retry import poll_until

GA_API_REGION = "us-west-2"
ROUTE53_API_REGION = "us-east-1"
FIS_ACTIVE = ("pending", "initiating", "running")
FAULT_TAG = "gameday:fault"
#: AWS: "You can't convert a standalone DB instance back into a read replica" -- the promotion of
#: region-outage is undone by re-seeding a replica (the sandbox's reset does exactly that).
#: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html
RESEED_RUNBOOK = ("the promoted replica is a standalone primary now and AWS cannot demote it: fence the old "
                  "primary (no writes), then re-create the cross-region read replica from the new primary "
                  "(CreateDBInstanceReadReplica) or restore the reference stack")


class ReplayError(GamedayError):
    """An undo could not be carried out."""


@dataclass
class Target:
    """What replay talks to: boto3 env (endpoint, credentials, region) and, for a sandbox, its files."""

    kind: str                       # sandbox | aws
    regions: tuple[str, str]        # primary, recovery
    aws_env: dict[str, str]
    endpoints: Any = None           # gameday.target.Endpoints
    state_dir: Path | None = None
    password: str | None = None
    db_user: str = "gameday"
    db_name: str = "gameday"
    reseed_pending: list[str] = field(default_factory=list)

    def client(self, service: str, region: str | None = None) -> Any:
        import boto3

        env = self.aws_env
        kw: dict[str, Any] = {"region_name": region or self.regions[0]}
        if env.get("AWS_ENDPOINT_URL"):
            kw["endpoint_url"] = env["AWS_ENDPOINT_URL"]
        if env.get("AWS_ACCESS_KEY_ID"):
            kw["aws_access_key_id"] = env["AWS_ACCESS_KEY_ID"]
            kw["aws_secret_access_key"] = env.get("AWS_SECRET_ACCESS_KEY", "")
        return boto3.client(service, **kw)  # type: ignore[call-overload]

    @classmethod
    def sandbox(cls, state_dir: Path, endpoints: Any = None) -> Target:
        from gameday.target import Endpoints

        ep = endpoints or Endpoints.load(Path(state_dir) / "endpoints.json")
        password, user, name = None, "gameday", "gameday"
        try:
            password = json.loads((Path(state_dir) / "secrets.json").read_text()).get("db_password")
            topo = json.loads((Path(state_dir) / "topology.json").read_text())
            user = topo.get("database", {}).get("username", user)
            name = topo.get("database", {}).get("db_name", name)
        except (OSError, ValueError):
            pass
        return cls("sandbox", ep.regions(), ep.aws_env(), ep, Path(state_dir), password, user, name)


# --- one undo ------------------------------------------------------------------------------------

def _fis_stop(t: Target, u: dict[str, Any]) -> str:
    fis = t.client("fis", u.get("region"))
    ids = [u["experiment_id"]] if u.get("experiment_id") else []
    if not ids:  # killed between StartExperiment and the entry's update: find it by its tags
        for s in fis.list_experiments(maxResults=100).get("experiments", []):
            tags = s.get("tags") or {}
            if tags.get(FAULT_TAG) == u.get("fault") and tags.get("gameday:region") == u.get("region"):
                ids.append(s["id"])
    stopped = []
    for exp_id in ids:
        try:
            state = fis.get_experiment(id=exp_id)["experiment"].get("state", {}).get("status")
        except Exception:
            continue
        if state in FIS_ACTIVE:
            fis.stop_experiment(id=exp_id)
            stopped.append(exp_id)
    return f"StopExperiment {', '.join(stopped)}" if stopped else "FIS experiment already ended"


def _asg_sizes(t: Target, u: dict[str, Any]) -> str:
    asg = t.client("autoscaling", u.get("region"))
    asg.update_auto_scaling_group(AutoScalingGroupName=u["asg_name"], MinSize=int(u["min_size"]),
                                  MaxSize=int(u["max_size"]), DesiredCapacity=int(u["desired_capacity"]))
    # set_desired_capacity's remembered sizes are spent once restored
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[u["asg_name"]]).get("AutoScalingGroups", [])
    stale = [tg["Key"] for g in groups for tg in g.get("Tags", [])
             if tg["Key"] in ("gameday:previous-desired-capacity", "gameday:previous-min-size")]
    if stale:
        asg.delete_tags(Tags=[{"ResourceId": u["asg_name"], "ResourceType": "auto-scaling-group", "Key": k}
                              for k in stale])
    return (f"UpdateAutoScalingGroup {u['asg_name']} min {u['min_size']} max {u['max_size']} "
            f"desired {u['desired_capacity']}")


def _ga_dial(t: Target, u: dict[str, Any]) -> str:
    ga = t.client("globalaccelerator", GA_API_REGION)
    ga.update_endpoint_group(EndpointGroupArn=u["endpoint_group_arn"],
                             TrafficDialPercentage=float(u["traffic_dial_percentage"]))
    return f"UpdateEndpointGroup {u['endpoint_group_arn']} dial {float(u['traffic_dial_percentage']):g}"


def _r53(t: Target, u: dict[str, Any]) -> str:
    t.client("route53", ROUTE53_API_REGION).update_health_check(HealthCheckId=u["health_check_id"],
                                                                Inverted=bool(u.get("inverted", False)))
    return f"UpdateHealthCheck {u['health_check_id']} inverted={bool(u.get('inverted', False))}"


def _rds_available(t: Target, u: dict[str, Any], timeout_s: float = 180.0) -> str:
    rds = t.client("rds", u.get("region"))
    status = "?"

    def available() -> bool:
        nonlocal status
        insts = rds.describe_db_instances(DBInstanceIdentifier=u["db_instance_identifier"])["DBInstances"]
        status = insts[0].get("DBInstanceStatus", "?") if insts else "missing"
        return status == "available"

    if poll_until(available, timeout_s, interval=1.0):
        return f"DBInstance {u['db_instance_identifier']} available"
    raise ReplayError(f"DB instance {u['db_instance_identifier']} still {status!r} after {timeout_s:.0f} s")


def _reseed(t: Target, u: dict[str, Any]) -> str:
    t.reseed_pending.append(str(u.get("db_instance_identifier")))
    if t.kind == "sandbox":
        return "re-seed of the replica: done by the sandbox reset (last step)"
    raise ReplayError(f"{u.get('db_instance_identifier')}: {RESEED_RUNBOOK}")


def _db_recover(t: Target, u: dict[str, Any]) -> str:
    if t.kind == "sandbox":
        return "database recovery: checked by the sandbox reset (last step)"
    return "database recovers by itself (RDS failover / crash recovery)"


UNDO: dict[str, Callable[[Target, dict[str, Any]], str]] = {
    "fis_stop": _fis_stop, "asg_sizes": _asg_sizes, "ga_dial": _ga_dial, "r53_health_check": _r53,
    "rds_available": _rds_available, "reseed": _reseed, "db_recover": _db_recover,
}


@dataclass
class Undone:
    entry: Entry
    message: str
    ok: bool


def replay(entries: Iterable[Entry], target: Target, by: str, extra_paths: Iterable[Path] = ()) -> list[Undone]:
    """Undo open entries, newest first; each success closes the entry where it was read (and extra_paths)."""
    done: list[Undone] = []
    extra = list(extra_paths)
    for e in sorted((e for e in entries if e.open), key=lambda e: e.t, reverse=True):
        fn = UNDO.get(str(e.undo.get("kind")))
        if fn is None:
            done.append(Undone(e, f"no undo for kind {e.undo.get('kind')!r}", False))
            continue
        try:
            msg = fn(target, e.undo)
            ok = True
        except Exception as exc:
            msg, ok = f"{type(exc).__name__}: {exc}", False
        done.append(Undone(e, msg, ok))
        if ok:
            paths = {Path(e.source), *extra} if e.source else set(extra)
            with contextlib.suppress(undolog.UndoLogError):
                undolog.close(e.id, by, paths)
    return done


def sweep_fis(target: Target) -> list[str]:
    """Stop every running FIS experiment gameday started (tag gameday:fault) in the target's regions."""
    stopped = []
    for region in target.regions:
        fis = target.client("fis", region)
        token: str | None = None
        for _ in range(50):  # bounded pagination
            kw: dict[str, Any] = {"maxResults": 100, **({"nextToken": token} if token else {})}
            page = fis.list_experiments(**kw)
            for s in page.get("experiments", []):
                if FAULT_TAG in (s.get("tags") or {}) and s.get("state", {}).get("status") in FIS_ACTIVE:
                    fis.stop_experiment(id=s["id"])
                    stopped.append(f"{region}:{s['id']}")
            token = page.get("nextToken")
            if not token:
                break
    return stopped


def running_fis(target: Target) -> list[str]:
    out = []
    for region in target.regions:
        for s in target.client("fis", region).list_experiments(maxResults=100).get("experiments", []):
            if s.get("state", {}).get("status") in FIS_ACTIVE:
                out.append(f"{region}:{s['id']}")
    return out


# --- steady state --------------------------------------------------------------------------------

def writable_nodes(target: Target, status: dict[str, Any]) -> list[str]:
    """Database nodes that accept a write transaction, asked over SQL (not the daemon's opinion)."""
    import psycopg

    out = []
    for node in status.get("database", []):
        port = node.get("port")
        if not port:
            continue
        try:
            with psycopg.connect(host="127.0.0.1", port=int(port), user=target.db_user, dbname=target.db_name,
                                 password=target.password or "", connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and row[0] is False:
                    out.append(f"{node.get('name')}@{node.get('region')}:{port}")
        except Exception:
            continue
    return out


def check_steady(target: Target, timeout_s: float = 60.0) -> list[str]:
    """Problems left (empty = steady): frozen regions, routing off primary, not exactly one writable
    primary, FIS experiments running, a service unhealthy through its global URL."""
    from gameday.drill.runner import steady_state

    problems: list[str] = []
    fis = running_fis(target)
    if fis:
        problems.append(f"FIS experiments still running: {', '.join(fis)}")
    if target.kind == "sandbox":
        from gameday.sandbox import client

        st = client.admin(target.endpoints, "/status")
        if st.get("frozen_regions"):
            problems.append(f"frozen regions: {', '.join(st['frozen_regions'])}")
        off = {s: r for s, r in (st.get("routing") or {}).items() if r != target.regions[0]}
        if off:
            problems.append(f"not served from the primary region: {off}")
        writers = writable_nodes(target, st)
        if len(writers) != 1:
            problems.append(f"{len(writers)} writable database primaries (want exactly 1): {writers}")
    try:
        steady_state(target.endpoints, timeout=timeout_s)
    except GamedayError as exc:
        problems.append(str(exc))
    return problems
