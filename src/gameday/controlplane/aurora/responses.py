"""RDS query-protocol transport of the Aurora transitions: moto's RDSResponse gains or replaces the actions.

moto dispatches ``Action=X`` to ``RDSResponse.x``; the methods here read the request parameters, call
``models`` and let moto's own serializer render the DBCluster / GlobalCluster (so DescribeDBClusters and the
answer agree field for field). ``AuroraError`` becomes an RDS error document with AWS's code and status.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gameday.controlplane.aurora import models

_patch_lock = threading.Lock()
_installed = False

#: the actions answered here (the sandbox's own hooks may still observe them)
ACTIONS = ("FailoverDBCluster", "FailoverGlobalCluster", "SwitchoverGlobalCluster", "RemoveFromGlobalCluster")


def _flag(value: Any) -> bool | None:
    """A query-protocol boolean: absent is None (the API tells "not specified" from "false")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    return str(value).lower() == "true"


def _required(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if value in (None, ""):
        raise models.AuroraError("MissingParameter", f"The request must contain the parameter {key}")
    return str(value)


def _as_client_error(exc: models.AuroraError) -> Exception:
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(exc.code, exc.message)


def install() -> None:
    """Patch moto's RDSResponse (class-level, idempotent; survives moto resets)."""
    global _installed
    with _patch_lock:
        if _installed:
            return
        from moto.core.responses import ActionResult, EmptyResult
        from moto.rds.models import DBCluster
        from moto.rds.responses import RDSResponse

        def action(fn: Callable[[RDSResponse, dict[str, Any]], dict[str, Any]]) -> Callable[[RDSResponse], Any]:
            def run(self: RDSResponse) -> Any:
                try:
                    return ActionResult(fn(self, self.params))
                except models.AuroraError as exc:
                    raise _as_client_error(exc) from exc

            return run

        def failover_db_cluster(self: RDSResponse, p: dict[str, Any]) -> dict[str, Any]:
            cluster = models.failover_db_cluster(self.current_account, self.region,
                                                 _required(p, "DBClusterIdentifier"),
                                                 p.get("TargetDBInstanceIdentifier"))
            return {"DBCluster": cluster}

        def failover_global_cluster(self: RDSResponse, p: dict[str, Any]) -> dict[str, Any]:
            glob = models.failover_global_cluster(self.current_account, self.region,
                                                  _required(p, "GlobalClusterIdentifier"),
                                                  _required(p, "TargetDbClusterIdentifier"),
                                                  _flag(p.get("AllowDataLoss")), _flag(p.get("Switchover")))
            return {"GlobalCluster": glob}

        def switchover_global_cluster(self: RDSResponse, p: dict[str, Any]) -> dict[str, Any]:
            glob = models.switchover_global_cluster(self.current_account, self.region,
                                                    _required(p, "GlobalClusterIdentifier"),
                                                    _required(p, "TargetDbClusterIdentifier"))
            return {"GlobalCluster": glob}

        def remove_from_global_cluster(self: RDSResponse, p: dict[str, Any]) -> dict[str, Any]:
            glob = models.remove_from_global_cluster(self.current_account, self.region,
                                                     _required(p, "GlobalClusterIdentifier"),
                                                     _required(p, "DbClusterIdentifier"))
            return {"GlobalCluster": glob}

        for name, fn in (("failover_db_cluster", failover_db_cluster),
                         ("failover_global_cluster", failover_global_cluster),
                         ("switchover_global_cluster", switchover_global_cluster),
                         ("remove_from_global_cluster", remove_from_global_cluster)):
            setattr(RDSResponse, name, action(fn))

        # moto drops CreateGlobalCluster's DatabaseName: terraform then plans to replace the global cluster on
        # every run (database_name forces replacement), and the replacement fails on a non-empty global cluster.
        original_create_global = RDSResponse.create_global_cluster

        def create_global_cluster(self: RDSResponse) -> Any:
            result = original_create_global(self)
            glob = models.find_global(self.current_account, str(self.params["GlobalClusterIdentifier"]))
            if self.params.get("DatabaseName"):
                glob.database_name = self.params["DatabaseName"]
            models.tag_global(self.current_account, glob.global_cluster_arn, self.params.get("Tags"))
            return result

        RDSResponse.create_global_cluster = create_global_cluster  # type: ignore[method-assign]

        # moto rejects a global cluster's ARN (it has no region) in the tagging calls, and ignores the Tags of
        # CreateGlobalCluster: the provider's default tags then fail every apply after the first.
        def on_global_arn(name: str, handle: Callable[[RDSResponse, str], Any]) -> None:
            original = getattr(RDSResponse, name)

            def run(self: RDSResponse) -> Any:
                arn = str(self.params.get("ResourceName") or "")
                if ":global-cluster:" not in arn:
                    return original(self)
                try:
                    return handle(self, arn)
                except models.AuroraError as exc:
                    raise _as_client_error(exc) from exc

            setattr(RDSResponse, name, run)

        def list_tags(self: RDSResponse, arn: str) -> Any:
            return ActionResult({"TagList": models.global_tags(self.current_account, arn)})

        def add_tags(self: RDSResponse, arn: str) -> Any:
            models.tag_global(self.current_account, arn, self.params.get("Tags"))
            return EmptyResult()

        def remove_tags(self: RDSResponse, arn: str) -> Any:
            models.untag_global(self.current_account, arn, self.params.get("TagKeys"))
            return EmptyResult()

        on_global_arn("list_tags_for_resource", list_tags)
        on_global_arn("add_tags_to_resource", add_tags)
        on_global_arn("remove_tags_from_resource", remove_tags)

        # moto ignores DescribeGlobalClusters' GlobalClusterIdentifier and lists every global cluster.
        original_describe_global = RDSResponse.describe_global_clusters

        def describe_global_clusters(self: RDSResponse) -> Any:
            ident = self.params.get("GlobalClusterIdentifier")
            if not ident:
                return original_describe_global(self)
            try:
                return ActionResult({"GlobalClusters": [models.find_global(self.current_account, str(ident))]})
            except models.AuroraError as exc:
                raise _as_client_error(exc) from exc

        RDSResponse.describe_global_clusters = describe_global_clusters  # type: ignore[method-assign]

        # moto answers a provisioned cluster with an all-null ScalingConfigurationInfo, which terraform reads as a
        # scaling_configuration block that the configuration lacks (a diff on every plan); AWS sends none.
        original_scaling: Any = DBCluster.scaling_configuration_info

        def scaling_configuration_info(self: DBCluster) -> dict[str, Any] | None:
            if not self.scaling_configuration:
                return None
            return original_scaling.fget(self)

        DBCluster.scaling_configuration_info = property(scaling_configuration_info)  # type: ignore[assignment]

        # moto names a writer in every cluster with instances; a global database's secondary has none.
        original_designate = DBCluster.designate_writer

        def designate_writer(self: DBCluster) -> None:
            if models.is_secondary(self):
                models.sync_roles(self)
                return
            original_designate(self)

        DBCluster.designate_writer = designate_writer  # type: ignore[method-assign]
        _installed = True
