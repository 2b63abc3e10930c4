"""Aurora global database state transitions that moto lacks, on moto's own RDS objects (the state of record).

moto stores DB clusters and global clusters but has no FailoverGlobalCluster or SwitchoverGlobalCluster,
does not promote a cluster detached by RemoveFromGlobalCluster (and only finds the global cluster when the
call is made in us-east-1, its storage region), and gives a secondary cluster a writer instance. Each
transition here follows the RDS API reference; where AWS is vague, the stricter reading is taken (a refusal
rather than an acceptance). Errors are ``AuroraError`` with AWS's error code; the transport (responses.py)
turns them into RDS error documents. Every accepted transition is appended to ``events()``, for the data
plane that will act on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

#: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverDBCluster.html (errors);
#: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverGlobalCluster.html;
#: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverGlobalCluster.html;
#: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RemoveFromGlobalCluster.html
CLUSTER_NOT_FOUND = "DBClusterNotFoundFault"
GLOBAL_NOT_FOUND = "GlobalClusterNotFoundFault"
CLUSTER_STATE = "InvalidDBClusterStateFault"
GLOBAL_STATE = "InvalidGlobalClusterStateFault"
INSTANCE_STATE = "InvalidDBInstanceState"
PARAM_VALUE = "InvalidParameterValue"
PARAM_COMBINATION = "InvalidParameterCombination"


class AuroraError(Exception):
    """An AWS-shaped refusal: ``code`` is the RDS error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ClusterEvent:
    """One accepted transition. ``kind``: failover-db-cluster, failover-global-cluster, switchover-global-cluster,
    remove-from-global-cluster. ``source``/``target`` are cluster ARNs (instance ids for failover-db-cluster)."""

    kind: str
    cluster: str
    source: str
    target: str
    data_loss_allowed: bool
    at: float


@dataclass(frozen=True)
class EndpointTargets:
    """Which instances a cluster's two built-in endpoints reach now."""

    writer: str | None
    readers: tuple[str, ...]


_lock = threading.Lock()
_events: list[ClusterEvent] = []


def events() -> list[ClusterEvent]:
    with _lock:
        return list(_events)


def reset() -> None:
    with _lock:
        _events.clear()


def _record(kind: str, cluster: str, source: str, target: str, data_loss: bool = False) -> None:
    with _lock:
        _events.append(ClusterEvent(kind, cluster, source, target, data_loss, time.time()))


# ------------------------------------------------------------------ lookups


def _rds(account: str) -> Any:
    from moto.rds.models import rds_backends

    return rds_backends[account]


def find_cluster(account: str, region: str, ref: str) -> Any:
    """A DB cluster by identifier (in ``region``) or by ARN (in the ARN's region)."""
    if ref.startswith("arn:"):
        parts = ref.split(":")
        if len(parts) < 7 or parts[5] != "cluster":
            raise AuroraError(CLUSTER_NOT_FOUND, f"DBCluster {ref} not found.")
        region, ident = parts[3], parts[6]
    else:
        ident = ref
    clusters = _rds(account)[region].clusters
    cluster = clusters.get(ident) or clusters.get(ident.lower())
    if cluster is None:
        raise AuroraError(CLUSTER_NOT_FOUND, f"DBCluster {ref} not found.")
    return cluster


def find_global(account: str, ident: str) -> Any:
    """The global cluster wherever moto stored it (CreateGlobalCluster keeps it in one region's backend)."""
    key = ident.split(":")[-1].lower() if ident.startswith("arn:") else ident.lower()
    backends = _rds(account)
    for region in backends:
        found = backends[region].global_clusters.get(key)
        if found is not None:
            return found
    raise AuroraError(GLOBAL_NOT_FOUND, f"Global cluster {ident} not found.")


def is_secondary(cluster: Any) -> bool:
    """A read-only member of a global database (moto marks the primary member ``is_writer``)."""
    return bool(getattr(cluster, "global_cluster_identifier", None)) and not bool(cluster.is_writer)


def instances(cluster: Any) -> list[Any]:
    """The cluster's DB instances, in promotion order: lowest tier first, then identifier."""
    return sorted(cluster._members, key=lambda i: (int(i.promotion_tier), i.db_instance_identifier))


def writer_instance(cluster: Any) -> Any | None:
    return next((i for i in instances(cluster) if i.is_cluster_writer), None)


def endpoint_targets(cluster: Any) -> EndpointTargets:
    """The cluster (writer) endpoint reaches the writer; the reader endpoint the readers, or the writer if
    there is no reader ("If the cluster contains only a primary DB instance and no Aurora Replicas, the reader
    endpoint connects to the primary DB instance",
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Endpoints.Reader.html). A secondary
    cluster has no writer: its cluster endpoint reaches nothing until it is promoted."""
    writer = writer_instance(cluster)
    readers = tuple(i.db_instance_identifier for i in instances(cluster) if not i.is_cluster_writer)
    w = writer.db_instance_identifier if writer is not None else None
    if not readers and w is not None:
        readers = (w,)
    return EndpointTargets(writer=w, readers=readers)


def sync_roles(cluster: Any) -> None:
    """A secondary's instances are all readers; any other cluster with instances has exactly one writer,
    the first in promotion order when none is (Aurora promotes "the Aurora Replica with the highest priority",
    i.e. the lowest tier: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.AuroraHighAvailability.html)."""
    members = instances(cluster)
    if is_secondary(cluster):
        for inst in members:
            inst.is_cluster_writer = False
        return
    if members and not any(i.is_cluster_writer for i in members):
        members[0].is_cluster_writer = True


def _available(cluster: Any, what: str) -> None:
    status = cluster.status
    if status != "available":
        raise AuroraError(CLUSTER_STATE, f"DB cluster {cluster.db_cluster_identifier} is {status}, "
                                         f"not available: cannot {what}.")


# -------------------------------------------------------------- transitions


def failover_db_cluster(account: str, region: str, ident: str, target: str | None) -> Any:
    """FailoverDBCluster: "promotes one of the Aurora Replicas (read-only instances) in the DB cluster to be
    the primary DB instance (the cluster writer)"; the old writer becomes a reader. A secondary cluster of a
    global database has no writer to fail over from, so it is refused."""
    cluster = find_cluster(account, region, ident)
    if is_secondary(cluster):
        raise AuroraError(CLUSTER_STATE, f"DB cluster {cluster.db_cluster_identifier} is a secondary cluster of "
                                         "a global database: it has no writer to fail over.")
    _available(cluster, "fail over")
    sync_roles(cluster)
    members = instances(cluster)
    if len(members) < 2:
        raise AuroraError(CLUSTER_STATE, f"Database cluster:{cluster.db_cluster_identifier} should have at least "
                                         "two database instances for failover")
    old = writer_instance(cluster)
    if target:
        chosen = next((i for i in members if i.db_instance_identifier == target.lower()), None)
        if chosen is None:
            raise AuroraError(PARAM_VALUE, f"Cannot find target instance: {target} in DB cluster "
                                           f"{cluster.db_cluster_identifier}")
        if chosen is old:
            raise AuroraError(INSTANCE_STATE, f"DB instance {target} is already the writer of "
                                              f"{cluster.db_cluster_identifier}.")
    else:
        chosen = next(i for i in members if i is not old)
    if chosen.status != "available":
        raise AuroraError(INSTANCE_STATE, f"Instance {chosen.db_instance_identifier} should be in valid state "
                                          "for failover.")
    if old is not None:
        old.is_cluster_writer = False
    chosen.is_cluster_writer = True
    _record("failover-db-cluster", cluster.db_cluster_arn, old.db_instance_identifier if old else "",
            chosen.db_instance_identifier)
    return cluster


def _global_members(glob: Any) -> tuple[Any, list[Any]]:
    primary = next((m for m in glob.members if m.is_writer), None)
    if primary is None:
        raise AuroraError(GLOBAL_STATE, f"Global cluster {glob.global_cluster_identifier} has no primary cluster.")
    return primary, [m for m in glob.members if m is not primary]


def _promote_secondary(account: str, region: str, glob_ident: str, target_ref: str, what: str) -> tuple[Any, Any, Any]:
    glob = find_global(account, glob_ident)
    if glob.status != "available":
        raise AuroraError(GLOBAL_STATE, f"Global cluster {glob.global_cluster_identifier} is {glob.status}.")
    target = find_cluster(account, region, target_ref)
    primary, secondaries = _global_members(glob)
    if target is primary:
        raise AuroraError(CLUSTER_STATE, f"DB cluster {target.db_cluster_identifier} is already the primary "
                                         f"cluster of {glob.global_cluster_identifier}.")
    if target not in secondaries:
        raise AuroraError(PARAM_VALUE, f"DB cluster {target_ref} is not a secondary cluster of global cluster "
                                       f"{glob.global_cluster_identifier}.")
    _available(target, what)
    if not instances(target):
        # a headless secondary has no instance to become the writer
        raise AuroraError(CLUSTER_STATE, f"DB cluster {target.db_cluster_identifier} has no DB instance to "
                                         "promote.")
    return glob, primary, target


def _swap_primary(glob: Any, old: Any, new: Any) -> None:
    old.is_writer = False
    new.is_writer = True
    new.global_cluster_identifier = new.global_cluster_identifier or glob.global_cluster_identifier
    old.global_cluster_identifier = old.global_cluster_identifier or glob.global_cluster_identifier
    sync_roles(old)
    sync_roles(new)


def switchover_global_cluster(account: str, region: str, glob_ident: str, target_ref: str) -> Any:
    """SwitchoverGlobalCluster: the target "assume[s] full read/write capabilities" and the current primary is
    demoted "to a secondary (read-only) cluster"; "All secondary clusters are synchronized with the primary at
    the beginning of the process", so every member must be available (the stricter reading)."""
    glob, primary, target = _promote_secondary(account, region, glob_ident, target_ref, "switch over")
    for member in glob.members:
        _available(member, "switch over the global database")
        if member.engine_version != primary.engine_version:
            raise AuroraError(GLOBAL_STATE, f"DB cluster {member.db_cluster_identifier} runs engine version "
                                            f"{member.engine_version}, the primary {primary.engine_version}.")
    _swap_primary(glob, primary, target)
    _record("switchover-global-cluster", glob.global_cluster_arn, primary.db_cluster_arn, target.db_cluster_arn)
    return glob


def failover_global_cluster(account: str, region: str, glob_ident: str, target_ref: str,
                            allow_data_loss: bool | None, switchover: bool | None) -> Any:
    """FailoverGlobalCluster: AllowDataLoss fails over (writes not yet replicated to the target are lost, the
    old primary stops being writable and stays as a read-only secondary); without it, a switchover. The two
    parameters "Can't be specified together" (refused whenever both are present)."""
    if allow_data_loss is not None and switchover is not None:
        raise AuroraError(PARAM_COMBINATION, "AllowDataLoss can't be specified together with Switchover.")
    if not allow_data_loss:
        return switchover_global_cluster(account, region, glob_ident, target_ref)
    glob, primary, target = _promote_secondary(account, region, glob_ident, target_ref, "fail over")
    _swap_primary(glob, primary, target)
    _record("failover-global-cluster", glob.global_cluster_arn, primary.db_cluster_arn, target.db_cluster_arn,
            data_loss=True)
    return glob


def remove_from_global_cluster(account: str, region: str, glob_ident: str, cluster_arn: str) -> Any:
    """RemoveFromGlobalCluster: "The cluster becomes a standalone cluster with read-write capability instead of
    being read-only" (detach-and-promote). ``DbClusterIdentifier`` is the cluster's ARN, as documented. The
    primary can leave only as the last member ("leaving the primary to last",
    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-detaching.html)."""
    glob = find_global(account, glob_ident)
    if not cluster_arn.startswith("arn:"):
        raise AuroraError(CLUSTER_NOT_FOUND, f"DbClusterIdentifier must be the ARN of the DB cluster, got "
                                             f"{cluster_arn!r}.")
    cluster = find_cluster(account, region, cluster_arn)
    if cluster not in glob.members:
        raise AuroraError(PARAM_VALUE, f"The specified DB cluster {cluster_arn} is not found in global cluster "
                                       f"{glob.global_cluster_identifier}.")
    if cluster.is_writer and len(glob.members) > 1:
        raise AuroraError(GLOBAL_STATE, f"DB cluster {cluster.db_cluster_identifier} is the primary cluster of "
                                        f"{glob.global_cluster_identifier}: remove the secondary clusters first.")
    glob.members.remove(cluster)
    cluster.is_writer = False
    cluster.global_cluster_identifier = None
    sync_roles(cluster)
    _record("remove-from-global-cluster", glob.global_cluster_arn, cluster.db_cluster_arn, cluster.db_cluster_arn)
    return glob


# ---------------------------------------------------------------------- tags


def _plain_tags(tags: Any) -> list[dict[str, str]]:
    return [{"Key": str(t["Key"]), "Value": str(t.get("Value") or "")} for t in (tags or [])]


def global_tags(account: str, arn: str) -> list[dict[str, str]]:
    """Tags of a global cluster (its ARN has no region: ``arn:aws:rds::ACCOUNT:global-cluster:ID``)."""
    return list(getattr(find_global(account, arn), "gameday_tags", []))


def tag_global(account: str, arn: str, tags: Any) -> None:
    glob = find_global(account, arn)
    new = {t["Key"]: t for t in _plain_tags(tags)}
    kept = [t for t in getattr(glob, "gameday_tags", []) if t["Key"] not in new]
    glob.gameday_tags = kept + list(new.values())


def untag_global(account: str, arn: str, keys: Any) -> None:
    glob = find_global(account, arn)
    drop = {str(k) for k in (keys or [])}
    glob.gameday_tags = [t for t in getattr(glob, "gameday_tags", []) if t["Key"] not in drop]
