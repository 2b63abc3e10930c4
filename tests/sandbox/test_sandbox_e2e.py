"""The sandbox end to end: AWS API calls (boto3, chaostoolkit-aws) that take real effect.

Each test drives the running sandbox through the control plane and watches real HTTP
traffic and real PostgreSQL; each restores the steady state before it ends.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from gameday.sandbox import client
from gameday.sandbox.events import read_events
from gameday.target import Endpoints
from gameday.util.retry import wait_until

pytestmark = pytest.mark.sandbox


@dataclass
class Probe:
    """A bounded request loop on loopback recording (start, end, status, region, instance)."""

    url: str
    rate: float = 40.0
    records: list[tuple[float, float, int, str, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self, max_s: float) -> None:
        deadline = time.monotonic() + max_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            t0 = time.time()
            status, region, inst = 0, "", ""
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    status = resp.status
                    region = resp.headers.get("X-Gameday-Region", "")
                    inst = resp.headers.get("X-Gameday-Instance", "")
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            self.records.append((t0, time.time(), status, region, inst))
            time.sleep(max(0.0, 1.0 / self.rate - (time.time() - t0)))

    def start(self, max_s: float = 120.0) -> Probe:
        self._thread = threading.Thread(target=self._run, args=(max_s,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Probe:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        return self

    def failures(self, since: float = 0.0) -> list[tuple[float, float, int, str, str]]:
        return [r for r in self.records if r[0] >= since and not 200 <= r[2] < 300]

    def regions(self, since: float = 0.0, until: float = float("inf")) -> set[str]:
        return {r[3] for r in self.records if since <= r[0] <= until and 200 <= r[2] < 300}


@dataclass
class Writer:
    """A write loop through a service: every acknowledged id is remembered."""

    url: str
    acked: list[tuple[str, float]] = field(default_factory=list)
    attempted: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self, max_s: float) -> None:
        deadline = time.monotonic() + max_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            rid = f"e2e-{uuid.uuid4().hex[:12]}"
            self.attempted.append(rid)
            req = urllib.request.Request(self.url + "/records", data=json.dumps({"id": rid}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=3) as resp:
                    if resp.status == 201:
                        self.acked.append((rid, time.time()))
            except OSError:
                pass
            time.sleep(0.02)

    def start(self, max_s: float = 120.0) -> Writer:
        self._thread = threading.Thread(target=self._run, args=(max_s,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Writer:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        return self


def present(url: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), 200):
        body = json.dumps({"ids": ids[i:i + 200]}).encode()
        req = urllib.request.Request(url + "/records/query", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            found.update(json.loads(resp.read())["found"])
    return found


@pytest.fixture
def sandbox(gameday_sandbox: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoints]:
    """The worker's sandbox, pointed at by boto3/chaosaws, reset to steady state afterwards."""
    for k, v in gameday_sandbox.aws_env().items():
        monkeypatch.setenv(k, v)
    yield gameday_sandbox
    client.admin(gameday_sandbox, "/reset", method="POST")


def topology(ep: Endpoints) -> dict[str, Any]:
    return json.loads((Path(str(ep.state_dir)) / "topology.json").read_text())


def boto(ep: Endpoints, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=ep.aws_endpoint_url,
                        aws_access_key_id="test", aws_secret_access_key="test")


def routed_region(url: str) -> str:
    """The region answering through the global endpoint now ('' while nothing answers)."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=3) as resp:
            return str(resp.headers.get("X-Gameday-Region"))
    except OSError:
        return ""


def test_each_service_answers_from_the_primary_region(sandbox: Endpoints) -> None:
    for svc, url in sandbox.services.items():
        with urllib.request.urlopen(url + "/items", timeout=3) as resp:
            assert resp.status == 200
            assert resp.headers["X-Gameday-Region"] == sandbox.primary_region, svc
            assert resp.headers["X-Gameday-Service"] == svc
            assert resp.headers["X-Gameday-Instance"].startswith("i-")


def test_terminated_instance_fails_only_until_detected_and_is_replaced(sandbox: Endpoints) -> None:
    from chaosaws.asg.probes import desired_equals_healthy
    from chaosaws.ec2.actions import terminate_instances

    region = sandbox.primary_region
    topo = topology(sandbox)
    asg_name = topo["services"]["web"]["regions"][region]["asg_name"]
    tg_arn = topo["services"]["web"]["regions"][region]["target_group_arn"]
    asg = boto(sandbox, "autoscaling", region)
    before = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]["Instances"]]
    probe = Probe(sandbox.regional["web"][region] + "/items").start()
    time.sleep(1.0)
    victim = before[0]
    t_fault = time.time()
    terminate_instances(instance_ids=[victim], configuration={"aws_region": region})
    elb = boto(sandbox, "elbv2", region)
    conf = {"aws_region": region}
    # the stock chaostoolkit-aws probe is not vacuous: the group is short of healthy instances
    # until the replacement really serves (Pending until its target passed the ALB's checks)
    assert not desired_equals_healthy([asg_name], configuration=conf)

    def serving_replacements() -> set[str]:
        desc = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
        return {d["Target"]["Id"] for d in desc if d["TargetHealth"]["State"] == "healthy"} - set(before)

    def probe_says_healthy() -> bool:
        if not desired_equals_healthy([asg_name], configuration=conf):
            assert not {victim} & {i["InstanceId"] for i in asg.describe_auto_scaling_groups(
                AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]["Instances"]
                if i["LifecycleState"] == "InService" and i["HealthStatus"] == "Healthy"}
            return False
        return True

    wait_until("desired_equals_healthy after the replacement", probe_says_healthy, timeout=60)
    assert serving_replacements(), "desired_equals_healthy was true before the replacement served"
    t_new = time.time()
    time.sleep(1.0)
    probe.stop()
    served_by = {r[4] for r in probe.records if r[0] > t_new}
    assert served_by - set(before), "the replacement instance served no request through the ALB"
    # a request in flight on the killed instance may fail, but only within HAProxy's detection window
    # (unhealthy threshold x interval + timeout, as the timing profile scales the target group's settings)
    from gameday.sandbox.timing import get_profile

    tg = elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
    timing = get_profile("fast")
    window = (tg["UnhealthyThresholdCount"] * timing.interval(tg["HealthCheckIntervalSeconds"])
              + timing.timeout(tg["HealthCheckTimeoutSeconds"]) + 0.2)
    late = [r for r in probe.failures(since=t_fault) if r[0] > t_fault + window]
    assert late == [], f"failed requests after the {window:.2f} s detection window: {late}"
    kills = [e for e in read_events(str(sandbox.events_path), "instance_killed") if e["instance"] == victim]
    assert kills and kills[0]["ts"] >= t_fault - 0.01


@pytest.mark.parametrize("how", ["reboot-with-failover", "sigkill-primary"])
def test_database_failover_loses_no_acknowledged_write(sandbox: Endpoints, how: str) -> None:
    from chaosaws.rds.actions import reboot_db_instance

    from gameday.chaos.sandbox.actions import crash_primary_db

    region = sandbox.primary_region
    db = topology(sandbox)["database"]
    orders = sandbox.regional["orders"][region]
    primary_before = [n["name"] for n in client.admin(sandbox, "/status")["database"] if n["role"] == "primary"]
    writer = Writer(orders).start()
    time.sleep(1.5)
    t_fault = time.time()
    if how == "reboot-with-failover":
        reboot_db_instance(db_instance_identifier=db["primary_identifier"], force_failover=True,
                           configuration={"aws_region": region})
    else:
        secret = json.loads((Path(str(sandbox.state_dir)) / "secrets.json").read_text())
        crash_primary_db(configuration={"gameday_db_writer": sandbox.db_writer[region],
                                        "gameday_db_name": db["db_name"], "gameday_db_user": db["username"]},
                         secrets={"gameday": {"db_password": secret["db_password"]}})
    wait_until("a failover to finish", lambda: bool(read_events(str(sandbox.events_path), "db_failover_done")
                                                    and read_events(str(sandbox.events_path),
                                                                    "db_failover_done")[-1]["ts"] > t_fault),
               timeout=60)
    wait_until("writes to resume", lambda: any(t > time.time() - 1 for _, t in writer.acked[-5:]), timeout=30)
    time.sleep(1.0)
    writer.stop()
    acked = [rid for rid, _ in writer.acked]
    after = [rid for rid, t in writer.acked if t > t_fault]
    assert after, "no write was acknowledged after the failover"
    lost = set(acked) - present(orders, acked)
    assert lost == set(), f"{len(lost)} acknowledged writes lost"
    st = client.admin(sandbox, "/status")
    primary_after = [n["name"] for n in st["database"] if n["role"] == "primary"]
    assert len(primary_after) == 1 and primary_after != primary_before, (primary_before, primary_after)


def test_service_failover_moves_only_that_service(sandbox: Endpoints) -> None:
    region, recovery = sandbox.primary_region, sandbox.recovery_region
    topo = topology(sandbox)
    asg_name = topo["services"]["orders"]["regions"][region]["asg_name"]
    asg = boto(sandbox, "autoscaling", region)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]
    probes = {s: Probe(url + "/items", rate=20).start() for s, url in sandbox.services.items()}
    time.sleep(1.0)
    t_fault = time.time()
    # every orders instance in the primary region goes away and the group stays empty
    asg.update_auto_scaling_group(AutoScalingGroupName=asg_name, MinSize=0, DesiredCapacity=0)
    try:
        wait_until("orders to move to the recovery region",
                   lambda: routed_region(sandbox.services["orders"]) == recovery, timeout=30)
        t_moved = time.time()
        time.sleep(1.0)
        assert routed_region(sandbox.services["web"]) == region
        assert routed_region(sandbox.services["catalog"]) == region
    finally:
        asg.update_auto_scaling_group(AutoScalingGroupName=asg_name, MinSize=group["MinSize"],
                                      DesiredCapacity=group["DesiredCapacity"])
    t_heal = time.time()
    wait_until("orders to come back to the primary region",
               lambda: routed_region(sandbox.services["orders"]) == region, timeout=60)
    t_back = time.time()
    time.sleep(0.5)
    for p in probes.values():
        p.stop()
    assert probes["orders"].regions(t_moved, t_heal) == {recovery}
    for s in ("web", "catalog"):
        assert probes[s].regions(t_fault) == {region}, s
        assert probes[s].failures(t_fault) == [], s
    switched = [e for e in read_events(str(sandbox.events_path), "router_switched") if e["ts"] >= t_fault]
    assert {e["service"] for e in switched} == {"orders"}
    assert [e["to_region"] for e in switched if e["to_region"]][:2] == [recovery, region]
    assert t_back > t_heal


def test_region_outage_and_replica_promotion(sandbox: Endpoints) -> None:
    from gameday.chaos.region.actions import region_outage, restore_region

    region, recovery = sandbox.primary_region, sandbox.recovery_region
    db = topology(sandbox)["database"]
    writer = Writer(sandbox.services["orders"]).start(max_s=90)
    time.sleep(2.0)
    t_fault = time.time()
    region_outage(region=region, configuration={"aws_region": region})
    try:
        # reads move at once: health follows each region's own database endpoint
        wait_until("every service to answer from the recovery region",
                   lambda: all(routed_region(u) == recovery for u in sandbox.services.values()), timeout=30)
        late = [(rid, round(t - t_fault, 3)) for rid, t in writer.acked if t > t_fault + 3.0]
        assert not late, f"writes acknowledged with no primary: {late[:5]}"
        # DescribeEndpointGroup reports what the router's checks see: the primary ALB unhealthy
        ga = boto(sandbox, "globalaccelerator", "us-west-2")
        for svc in topology(sandbox)["services"].values():
            health = {r: [e["HealthState"] for e in ga.describe_endpoint_group(
                EndpointGroupArn=arn)["EndpointGroup"]["EndpointDescriptions"]]
                for r, arn in svc["endpoint_group_arns"].items()}
            assert health == {region: ["UNHEALTHY"], recovery: ["HEALTHY"]}, health
        rds = boto(sandbox, "rds", recovery)
        rds.promote_read_replica(DBInstanceIdentifier=db["replica_identifier"])
        t_promote = time.time()
        wait_until("writes accepted in the recovery region",
                   lambda: any(t > t_promote for _, t in writer.acked), timeout=30)
        time.sleep(1.0)
        writer.stop()
        acked = [rid for rid, _ in writer.acked]
        found = present(sandbox.regional["orders"][recovery], acked)
        lost = [(rid, t) for rid, t in writer.acked if rid not in found]
        # only writes acknowledged just before the outage (within the replication lag) may be lost
        assert all(t <= t_fault + 0.5 for _, t in lost), "a write acknowledged after promotion was lost"
        lag_events = read_events(str(sandbox.events_path), "db_replica_promoted")
        assert lag_events and lag_events[-1]["ts"] >= t_fault
        print(f"lost {len(lost)} of {len(acked)} acknowledged writes in the region outage")
    finally:
        writer.stop()
        restore_region(region=region, configuration={"aws_region": region})


def test_events_file_is_ordered_json_lines(sandbox: Endpoints) -> None:
    events = read_events(str(sandbox.events_path))
    kinds = [e["kind"] for e in events]
    up = kinds.index("sandbox_up")
    # every instance ran before the sandbox said it was up, and every event has both clocks
    assert kinds[:up].count("instance_started") >= 12
    assert all(isinstance(e["ts"], float) and isinstance(e["mono"], float) for e in events)
    walls = [e["ts"] for e in events]
    assert max(a - b for a, b in itertools.pairwise(walls)) < 0.5  # appended as it happens


def test_replication_partition_grows_replica_lag_metric(sandbox: Endpoints) -> None:
    from gameday.chaos.region.actions import cut_inter_region_link, heal_inter_region_link

    region, recovery = sandbox.primary_region, sandbox.recovery_region
    replica = topology(sandbox)["database"]["replica_identifier"]
    cw = boto(sandbox, "cloudwatch", recovery)

    def max_lag(since: float) -> float:
        stats = cw.get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag", Statistics=["Maximum"], Period=60,
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": replica}],
            StartTime=since - 60, EndTime=time.time() + 60)
        return max((p["Maximum"] for p in stats["Datapoints"]), default=-1.0)

    wait_until("a ReplicaLag datapoint", lambda: max_lag(time.time() - 30) >= 0, timeout=15)
    writer = Writer(sandbox.services["orders"]).start(max_s=60)
    wait_until("writes acknowledged before the cut", lambda: len(writer.acked) >= 3, timeout=30)
    t_cut = time.time()
    cut_inter_region_link(region=region, other_region=recovery, configuration={"aws_region": region})
    try:
        wait_until("ReplicaLag to pass 2 s while the link is cut", lambda: max_lag(t_cut) > 2.0, timeout=30)
        # the cut must not block the primary: its synchronous standby is in the same region
        wait_until("writes acknowledged during the cut", lambda: writer.acked[-1][1] > t_cut + 1.0, timeout=10)
    finally:
        heal_inter_region_link(region=region, configuration={"aws_region": region})
        writer.stop()
    cuts = [e for e in read_events(str(sandbox.events_path), "link_cut") if e["ts"] >= t_cut]
    assert cuts
