"""Aurora global database transitions through the control plane with boto3, as AWS documents them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gameday.controlplane.aurora import models

PRIMARY, RECOVERY = "eu-south-1", "eu-central-1"
ACCOUNT = "123456789012"
GLOBAL = "gd-global"
P, S = "gd-primary", "gd-secondary"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture()
def aurora(client: Callable[..., Any]) -> dict[str, Any]:
    """A global database: primary (writer + reader) in PRIMARY, secondary (two readers) in RECOVERY."""
    rp, rs = client("rds", PRIMARY), client("rds", RECOVERY)
    rp.create_global_cluster(GlobalClusterIdentifier=GLOBAL, Engine="aurora-postgresql", EngineVersion="16.4")
    rp.create_db_cluster(DBClusterIdentifier=P, Engine="aurora-postgresql", EngineVersion="16.4",
                         GlobalClusterIdentifier=GLOBAL, MasterUsername="gameday",
                         MasterUserPassword="sandbox-only-pw", DatabaseName="gameday")
    for i, tier in ((1, 0), (2, 1)):
        rp.create_db_instance(DBInstanceIdentifier=f"{P}-{i}", DBClusterIdentifier=P, Engine="aurora-postgresql",
                              DBInstanceClass="db.r6g.large", PromotionTier=tier)
    rs.create_db_cluster(DBClusterIdentifier=S, Engine="aurora-postgresql", EngineVersion="16.4",
                         GlobalClusterIdentifier=GLOBAL)
    for i in (1, 2):
        rs.create_db_instance(DBInstanceIdentifier=f"{S}-{i}", DBClusterIdentifier=S, Engine="aurora-postgresql",
                              DBInstanceClass="db.r6g.large", PromotionTier=i - 1)
    clusters = {}
    for rds, ident in ((rp, P), (rs, S)):
        clusters[ident] = rds.describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]  # past "creating"
    return {"rp": rp, "rs": rs, "p_arn": clusters[P]["DBClusterArn"], "s_arn": clusters[S]["DBClusterArn"]}


def _writers(rds: Any, ident: str) -> list[str]:
    members = rds.describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]["DBClusterMembers"]
    return sorted(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])


def _global_writer(rds: Any) -> list[str]:
    glob = rds.describe_global_clusters(GlobalClusterIdentifier=GLOBAL)["GlobalClusters"][0]
    return [m["DBClusterArn"] for m in glob["GlobalClusterMembers"] if m["IsWriter"]]


def _targets(region: str, ident: str) -> models.EndpointTargets:
    return models.endpoint_targets(models.find_cluster(ACCOUNT, region, ident))


def test_the_primary_has_one_writer_and_the_secondary_none(aurora: dict[str, Any]) -> None:
    assert _writers(aurora["rp"], P) == [f"{P}-1"]
    assert _writers(aurora["rs"], S) == []
    assert _global_writer(aurora["rp"]) == [aurora["p_arn"]]
    assert _targets(PRIMARY, P) == models.EndpointTargets(f"{P}-1", (f"{P}-2",))
    assert _targets(RECOVERY, S) == models.EndpointTargets(None, (f"{S}-1", f"{S}-2"))


def test_failover_db_cluster_moves_the_writer_and_both_endpoints_follow(aurora: dict[str, Any]) -> None:
    rp = aurora["rp"]
    before = rp.describe_db_clusters(DBClusterIdentifier=P)["DBClusters"][0]
    answer = rp.failover_db_cluster(DBClusterIdentifier=P)["DBCluster"]
    assert {m["DBInstanceIdentifier"] for m in answer["DBClusterMembers"] if m["IsClusterWriter"]} == {f"{P}-2"}
    assert _writers(rp, P) == [f"{P}-2"]
    after = rp.describe_db_clusters(DBClusterIdentifier=P)["DBClusters"][0]
    # the endpoints keep their names; what they reach changes
    assert (after["Endpoint"], after["ReaderEndpoint"]) == (before["Endpoint"], before["ReaderEndpoint"])
    assert _targets(PRIMARY, P) == models.EndpointTargets(f"{P}-2", (f"{P}-1",))
    rp.failover_db_cluster(DBClusterIdentifier=P, TargetDBInstanceIdentifier=f"{P}-1")
    assert _writers(rp, P) == [f"{P}-1"]
    kinds = [(e.kind, e.source, e.target) for e in models.events()]
    assert kinds == [("failover-db-cluster", f"{P}-1", f"{P}-2"), ("failover-db-cluster", f"{P}-2", f"{P}-1")]


def test_failover_db_cluster_refusals(aurora: dict[str, Any]) -> None:
    rp, rs = aurora["rp"], aurora["rs"]
    with pytest.raises(ClientError) as ei:
        rp.failover_db_cluster(DBClusterIdentifier=P, TargetDBInstanceIdentifier=f"{P}-1")  # already the writer
    assert _code(ei) == models.INSTANCE_STATE
    with pytest.raises(ClientError) as ei:
        rp.failover_db_cluster(DBClusterIdentifier=P, TargetDBInstanceIdentifier=f"{S}-1")
    assert _code(ei) == models.PARAM_VALUE
    with pytest.raises(ClientError) as ei:
        rs.failover_db_cluster(DBClusterIdentifier=S)  # a secondary has no writer
    assert _code(ei) == models.CLUSTER_STATE
    with pytest.raises(ClientError) as ei:
        rp.failover_db_cluster(DBClusterIdentifier="nosuch")
    assert _code(ei) == models.CLUSTER_NOT_FOUND and ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    rp.delete_db_instance(DBInstanceIdentifier=f"{P}-2")
    with pytest.raises(ClientError) as ei:
        rp.failover_db_cluster(DBClusterIdentifier=P)  # no reader left to promote
    assert _code(ei) == models.CLUSTER_STATE
    assert _writers(rp, P) == [f"{P}-1"] and models.events() == []


def _assert_roles_swapped(aurora: dict[str, Any]) -> None:
    rp, rs = aurora["rp"], aurora["rs"]
    assert _global_writer(rs) == [aurora["s_arn"]]
    assert _writers(rs, S) == [f"{S}-1"], "the promoted secondary has a writer (lowest promotion tier)"
    assert _writers(rp, P) == [], "the demoted primary is read-only"
    assert _targets(PRIMARY, P) == models.EndpointTargets(None, (f"{P}-1", f"{P}-2"))


def test_switchover_makes_the_secondary_primary_without_data_loss(aurora: dict[str, Any]) -> None:
    # called in the secondary's region, where it is in AWS (moto keeps the global cluster elsewhere)
    answer = aurora["rs"].switchover_global_cluster(GlobalClusterIdentifier=GLOBAL,
                                                    TargetDbClusterIdentifier=aurora["s_arn"])["GlobalCluster"]
    assert [m["DBClusterArn"] for m in answer["GlobalClusterMembers"] if m["IsWriter"]] == [aurora["s_arn"]]
    _assert_roles_swapped(aurora)
    (event,) = models.events()
    assert (event.kind, event.source, event.target, event.data_loss_allowed) == (
        "switchover-global-cluster", aurora["p_arn"], aurora["s_arn"], False)
    # and back ("to fall back to the original primary")
    aurora["rp"].switchover_global_cluster(GlobalClusterIdentifier=GLOBAL, TargetDbClusterIdentifier=aurora["p_arn"])
    assert _global_writer(aurora["rp"]) == [aurora["p_arn"]] and _writers(aurora["rs"], S) == []
    assert _writers(aurora["rp"], P) == [f"{P}-1"]


def test_failover_global_cluster_with_and_without_data_loss(aurora: dict[str, Any]) -> None:
    rs = aurora["rs"]
    rs.failover_global_cluster(GlobalClusterIdentifier=GLOBAL, TargetDbClusterIdentifier=aurora["s_arn"],
                               AllowDataLoss=True)
    _assert_roles_swapped(aurora)
    assert [(e.kind, e.data_loss_allowed) for e in models.events()] == [("failover-global-cluster", True)]
    # without AllowDataLoss the operation "defaults to a switchover"
    aurora["rp"].failover_global_cluster(GlobalClusterIdentifier=GLOBAL, TargetDbClusterIdentifier=aurora["p_arn"])
    assert _global_writer(rs) == [aurora["p_arn"]]
    assert [(e.kind, e.data_loss_allowed) for e in models.events()][-1] == ("switchover-global-cluster", False)


def test_global_refusals(aurora: dict[str, Any]) -> None:
    rs = aurora["rs"]
    with pytest.raises(ClientError) as ei:
        rs.failover_global_cluster(GlobalClusterIdentifier=GLOBAL, TargetDbClusterIdentifier=aurora["s_arn"],
                                   AllowDataLoss=True, Switchover=True)
    assert _code(ei) == models.PARAM_COMBINATION
    with pytest.raises(ClientError) as ei:
        rs.switchover_global_cluster(GlobalClusterIdentifier=GLOBAL, TargetDbClusterIdentifier=aurora["p_arn"])
    assert _code(ei) == models.CLUSTER_STATE  # already the primary
    with pytest.raises(ClientError) as ei:
        rs.switchover_global_cluster(GlobalClusterIdentifier="nosuch", TargetDbClusterIdentifier=aurora["s_arn"])
    assert _code(ei) == models.GLOBAL_NOT_FOUND and ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    for i in (1, 2):
        rs.delete_db_instance(DBInstanceIdentifier=f"{S}-{i}")
    with pytest.raises(ClientError) as ei:
        rs.failover_global_cluster(GlobalClusterIdentifier=GLOBAL, TargetDbClusterIdentifier=aurora["s_arn"],
                                   AllowDataLoss=True)
    assert _code(ei) == models.CLUSTER_STATE  # a headless secondary has no instance to promote
    assert _global_writer(rs) == [aurora["p_arn"]] and models.events() == []


def test_remove_from_global_cluster_detaches_and_promotes(aurora: dict[str, Any]) -> None:
    rp, rs = aurora["rp"], aurora["rs"]
    with pytest.raises(ClientError) as ei:
        rs.remove_from_global_cluster(GlobalClusterIdentifier=GLOBAL, DbClusterIdentifier=S)  # not an ARN
    assert _code(ei) == models.CLUSTER_NOT_FOUND
    with pytest.raises(ClientError) as ei:
        rp.remove_from_global_cluster(GlobalClusterIdentifier=GLOBAL, DbClusterIdentifier=aurora["p_arn"])
    assert _code(ei) == models.GLOBAL_STATE  # the primary leaves last
    answer = rs.remove_from_global_cluster(GlobalClusterIdentifier=GLOBAL,
                                           DbClusterIdentifier=aurora["s_arn"])["GlobalCluster"]
    assert [m["DBClusterArn"] for m in answer["GlobalClusterMembers"]] == [aurora["p_arn"]]
    standalone = rs.describe_db_clusters(DBClusterIdentifier=S)["DBClusters"][0]
    assert not standalone.get("GlobalClusterIdentifier")
    assert _writers(rs, S) == [f"{S}-1"], "a detached cluster is writable"
    assert _targets(RECOVERY, S) == models.EndpointTargets(f"{S}-1", (f"{S}-2",))
    assert _writers(rp, P) == [f"{P}-1"], "the primary is untouched"
    with pytest.raises(ClientError) as ei:
        rs.remove_from_global_cluster(GlobalClusterIdentifier=GLOBAL, DbClusterIdentifier=aurora["s_arn"])
    assert _code(ei) == models.PARAM_VALUE  # no longer a member
    assert [e.kind for e in models.events()] == ["remove-from-global-cluster"]
    rp.remove_from_global_cluster(GlobalClusterIdentifier=GLOBAL, DbClusterIdentifier=aurora["p_arn"])
    assert rp.describe_global_clusters(GlobalClusterIdentifier=GLOBAL)["GlobalClusters"][0][
        "GlobalClusterMembers"] == []


def test_terraform_reads_back_what_it_wrote(aurora: dict[str, Any]) -> None:
    """DatabaseName of the global cluster is kept; a provisioned cluster has no ScalingConfigurationInfo
    (either gap made terraform plan a change, the first a replacement, after every apply)."""
    rp = aurora["rp"]
    rp.create_global_cluster(GlobalClusterIdentifier="gd-named", Engine="aurora-postgresql", DatabaseName="gameday")
    glob = rp.describe_global_clusters(GlobalClusterIdentifier="gd-named")["GlobalClusters"][0]
    assert glob["DatabaseName"] == "gameday"
    cluster = rp.describe_db_clusters(DBClusterIdentifier=P)["DBClusters"][0]
    assert "ScalingConfigurationInfo" not in cluster
    with pytest.raises(ClientError) as ei:
        rp.describe_global_clusters(GlobalClusterIdentifier="nosuch")
    assert _code(ei) == models.GLOBAL_NOT_FOUND
    assert len(rp.describe_global_clusters()["GlobalClusters"]) == 2


def test_global_cluster_tags(aurora: dict[str, Any]) -> None:
    rp = aurora["rp"]
    rp.create_global_cluster(GlobalClusterIdentifier="gd-tagged", Engine="aurora-postgresql",
                             Tags=[{"Key": "gameday:stack", "Value": "gameday"}])
    arn = rp.describe_global_clusters(GlobalClusterIdentifier="gd-tagged")["GlobalClusters"][0]["GlobalClusterArn"]
    assert rp.list_tags_for_resource(ResourceName=arn)["TagList"] == [{"Key": "gameday:stack", "Value": "gameday"}]
    rp.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "owner", "Value": "sre"},
                                                    {"Key": "gameday:stack", "Value": "other"}])
    assert sorted((t["Key"], t["Value"]) for t in rp.list_tags_for_resource(ResourceName=arn)["TagList"]) == [
        ("gameday:stack", "other"), ("owner", "sre")]
    rp.remove_tags_from_resource(ResourceName=arn, TagKeys=["owner"])
    assert [t["Key"] for t in rp.list_tags_for_resource(ResourceName=arn)["TagList"]] == ["gameday:stack"]
    # other resources' tags are still moto's
    rp.add_tags_to_resource(ResourceName=aurora["p_arn"], Tags=[{"Key": "k", "Value": "v"}])
    assert rp.list_tags_for_resource(ResourceName=aurora["p_arn"])["TagList"] == [{"Key": "k", "Value": "v"}]
