"""reset() empties state; moto quirk fixes (cross-region RDS replica) hold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gameday.controlplane import ControlPlane


def test_reset_empties_moto_and_ga(cp: ControlPlane, client: Callable[..., Any]) -> None:
    sqs = client("sqs")
    sqs.create_queue(QueueName="q-reset")
    ga = client("globalaccelerator", "us-west-2")
    ga.create_accelerator(Name="reset-me")
    vpcs_before = len(client("ec2").describe_vpcs()["Vpcs"])
    client("ec2").create_vpc(CidrBlock="10.9.0.0/16")
    cp.reset()
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert ga.list_accelerators()["Accelerators"] == []
    assert len(client("ec2").describe_vpcs()["Vpcs"]) == vpcs_before  # only the default VPC is back


def _subnet_group(client: Callable[..., Any], region: str, name: str) -> None:
    ec2 = client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    client("rds", region).create_db_subnet_group(
        DBSubnetGroupName=name, DBSubnetGroupDescription="t", SubnetIds=subnets
    )


def test_cross_region_replica_uses_its_own_region(client: Callable[..., Any]) -> None:
    _subnet_group(client, "eu-south-1", "db-primary")
    _subnet_group(client, "eu-central-1", "db-recovery")  # a name that does not exist in the source region
    rds_p, rds_r = client("rds", "eu-south-1"), client("rds", "eu-central-1")
    primary = rds_p.create_db_instance(
        DBInstanceIdentifier="gd-primary",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="gameday",
        MasterUserPassword="not-a-real-secret",
        DBSubnetGroupName="db-primary",
        MultiAZ=True,
    )["DBInstance"]
    replica = rds_r.create_db_instance_read_replica(
        DBInstanceIdentifier="gd-replica",
        SourceDBInstanceIdentifier=primary["DBInstanceArn"],
        DBInstanceClass="db.t3.micro",
        DBSubnetGroupName="db-recovery",
    )["DBInstance"]
    assert replica["DBSubnetGroup"]["DBSubnetGroupName"] == "db-recovery"
    assert replica["AvailabilityZone"].startswith("eu-central-1")
    assert replica["DbiResourceId"] != primary["DbiResourceId"]
    assert ":eu-central-1:" in replica["DBInstanceArn"]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    described = rds_p.describe_db_instances(DBInstanceIdentifier="gd-primary")["DBInstances"][0]
    assert described["DBSubnetGroup"]["DBSubnetGroupName"] == "db-primary"
    assert described["ReadReplicaDBInstanceIdentifiers"] == [replica["DBInstanceArn"]]
    rds_r.delete_db_instance(DBInstanceIdentifier="gd-replica", SkipFinalSnapshot=True)
    assert (
        rds_p.describe_db_instances(DBInstanceIdentifier="gd-primary")["DBInstances"][0][
            "ReadReplicaDBInstanceIdentifiers"
        ]
        == []
    )
    rds_p.delete_db_instance(DBInstanceIdentifier="gd-primary", SkipFinalSnapshot=True)
    assert rds_r.describe_db_instances()["DBInstances"] == []


def test_create_launch_template_is_idempotent_on_client_token(client: Callable[..., Any]) -> None:
    """An SDK retry (same ClientToken) gets the template it created; a new create of the name still fails."""
    import botocore.exceptions
    import pytest

    ec2 = client("ec2")
    data = {"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    first = ec2.create_launch_template(LaunchTemplateName="lt-retry", LaunchTemplateData=data,
                                       ClientToken="tok-1")["LaunchTemplate"]
    again = ec2.create_launch_template(LaunchTemplateName="lt-retry", LaunchTemplateData=data,
                                       ClientToken="tok-1")["LaunchTemplate"]
    assert again["LaunchTemplateId"] == first["LaunchTemplateId"]
    assert len(ec2.describe_launch_templates(LaunchTemplateNames=["lt-retry"])["LaunchTemplates"]) == 1
    with pytest.raises(botocore.exceptions.ClientError, match="AlreadyExists"):
        ec2.create_launch_template(LaunchTemplateName="lt-retry", LaunchTemplateData=data, ClientToken="tok-2")
