"""A Single-AZ RDS instance on real PostgreSQL: no standby, crash -> RDS Single-AZ recovery, and the RDS
API through boto3 (ForceFailover refused, DBInstanceStatus as the data plane is, MultiAZ changes refused)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.exceptions
import pytest

from gameday.controlplane import ControlPlane
from gameday.controlplane.hooks import ApiCall
from gameday.errors import ConfigError, SandboxError
from gameday.provision.prereqs import _pg_dir_version, find_pg_bin
from gameday.sandbox import rds
from gameday.sandbox.events import EventLog, read_events
from gameday.sandbox.pg import PgCluster
from gameday.sandbox.pg.common import require_engine_major
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until

P, R = "eu-south-1", "eu-central-1"
DETECT_S = 0.5
RECOVERY_S = 2.0
DB_ID = "gd-single-az-db"


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgCluster]:
    """One Single-AZ cluster for the module (tests leave it writable)."""
    tmp = tmp_path_factory.mktemp("pg1az")
    registry = ProcessRegistry(tmp / "state")
    cluster = PgCluster(tmp, registry, EventLog(tmp / "events.jsonl"), password="Gd-1az'pa ss\\word",
                        multi_az=False, failover_detect_s=DETECT_S, single_az_recovery_s=RECOVERY_S)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        registry.kill_all()


@pytest.fixture(scope="module")
def api(single: PgCluster) -> Iterator[SimpleNamespace]:
    """A control plane with the Single-AZ instance created through the real API and the RDS emulation on."""
    cp = ControlPlane().start()
    try:
        c = boto3.client("rds", region_name=P, endpoint_url=cp.url, aws_access_key_id="test",
                         aws_secret_access_key="test")
        c.create_db_instance(DBInstanceIdentifier=DB_ID, Engine="postgres", EngineVersion="15",
                             DBInstanceClass="db.t3.micro", MasterUsername="gameday",
                             MasterUserPassword="not-the-cluster-password", AllocatedStorage=20, MultiAZ=False)
        emu = rds.RdsControlPlane(cp.hooks, single, primary_region=P, primary_identifier=DB_ID).install()
        reboots: list[ApiCall] = []

        def after_reboot(call: ApiCall) -> None:
            # what the sandbox daemon does with an accepted reboot (Sandbox._on_reboot_db)
            if call.status < 300:
                reboots.append(call)
                threading.Thread(target=single.restart_primary, daemon=True).start()
        cp.hooks.after("rds", "RebootDBInstance", after_reboot)
        yield SimpleNamespace(cp=cp, rds=c, reboots=reboots)
        emu.uninstall()
    finally:
        cp.stop()


def _status(api: SimpleNamespace) -> str:
    return str(api.rds.describe_db_instances(DBInstanceIdentifier=DB_ID)["DBInstances"][0]["DBInstanceStatus"])


def test_single_az_has_no_standby(single: PgCluster, pgkit: SimpleNamespace) -> None:
    assert set(single.nodes) == {"a", "c"} and single.standby() == "" and not single.synchronous
    roles = {s.name: s.role for s in single.status()}
    assert roles == {"a": "primary", "c": "replica"}
    with pgkit.WriteLoop(lambda: single.connect(single.writer_port(P)), "1az") as w:
        w.wait_acks(20)
    wait_until("c replays the writes", lambda: single.count_ids(w.acked, single.reader_port(R)) == set(w.acked),
               timeout=15)
    with pytest.raises(SandboxError, match="Single-AZ"):
        single.failover("test: no standby")


def test_force_failover_refused_by_the_api(single: PgCluster, api: SimpleNamespace) -> None:
    pid = single.nodes["a"].proc.pid  # type: ignore[union-attr]
    n = len(api.reboots)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        api.rds.reboot_db_instance(DBInstanceIdentifier=DB_ID, ForceFailover=True)
    e = err.value.response
    assert e["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e["Error"]["Code"] == "InvalidParameterCombination"
    assert e["Error"]["Message"] == "You can't enable force failover if the instance isn't configured for Multi-AZ."
    # nothing injected: same postmaster, still available, no reboot reached the data plane
    assert len(api.reboots) == n and single.nodes["a"].proc.pid == pid  # type: ignore[union-attr]
    assert single.nodes["a"].alive() and _status(api) == "available"


def test_multi_az_change_refused(api: SimpleNamespace) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        api.rds.modify_db_instance(DBInstanceIdentifier=DB_ID, MultiAZ=True, ApplyImmediately=True)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "not emulated" in err.value.response["Error"]["Message"]
    assert api.rds.describe_db_instances(DBInstanceIdentifier=DB_ID)["DBInstances"][0]["MultiAZ"] is False


def test_reboot_status_follows_the_data_plane(single: PgCluster, api: SimpleNamespace) -> None:
    answer = api.rds.reboot_db_instance(DBInstanceIdentifier=DB_ID)["DBInstance"]
    assert answer["DBInstanceStatus"] == "rebooting"
    seen: list[str] = []

    def available() -> bool:
        seen.append(_status(api))
        return seen[-1] == "available"
    wait_until("the instance available again", available, timeout=30, interval=0.02)
    with single.connect(single.writer_port(P)) as conn:   # available means writable
        conn.execute("INSERT INTO records (id) VALUES ('after-reboot')")
    kinds = [(e["status"]) for e in read_events(single.events.path, "db_instance_status")]  # type: ignore[union-attr]
    assert kinds[-2:] == ["rebooting", "available"]
    # a second reboot while one is running is refused like AWS does (not in the available state)
    single.begin_reboot("test")
    try:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            api.rds.reboot_db_instance(DBInstanceIdentifier=DB_ID)
        assert err.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    finally:
        single._set_status("available")


def test_crash_means_single_az_recovery_without_loss(single: PgCluster, api: SimpleNamespace,
                                                     pgkit: SimpleNamespace) -> None:
    """Writes fail for detection + recovery time, then succeed; every acknowledged write survives."""
    n = len(single.recoveries)
    statuses: list[tuple[float, str]] = []
    with pgkit.WriteLoop(lambda: single.connect(single.writer_port(P), connect_timeout=1), "1azcrash",
                         interval_s=0.002) as w:
        w.wait_acks(50)
        single.crash_primary()
        t_crash = time.monotonic()

        def recovered() -> bool:
            statuses.append((time.monotonic() - t_crash, _status(api)))
            return len(single.recoveries) > n
        wait_until("Single-AZ recovery", recovered, timeout=DETECT_S + RECOVERY_S + 30, interval=0.1)
        w.wait_acks(20, timeout=15)
    first = w.first_ack_of_write_sent_after(t_crash)
    assert first is not None
    first_ack = first - t_crash
    expected = DETECT_S + RECOVERY_S
    assert first_ack >= expected, f"writes came back after {first_ack:.2f}s, before detection+recovery"
    assert first_ack < expected + 10, f"writes came back only after {first_ack:.2f}s"
    lost = set(w.acked) - single.count_ids(w.acked, single.writer_port(P))
    assert not lost, f"{len(lost)} acknowledged writes lost: {sorted(lost)[:5]}"
    assert single.primary() == "a" and {s.name: s.role for s in single.status()} == {"a": "primary",
                                                                                      "c": "replica"}
    # the API said rebooting between detection and recovery, available afterwards
    assert any(s == "rebooting" and t >= DETECT_S for t, s in statuses), statuses
    assert _status(api) == "available"
    kinds = [e["kind"] for e in read_events(single.events.path)]  # type: ignore[union-attr]
    i = kinds.index("db_crashed", len(kinds) - 40 if len(kinds) > 40 else 0)
    assert kinds[i:].index("db_crash_detected") < kinds[i:].index("db_recovery_started") < \
        kinds[i:].index("db_recovered")
    wait_until("c follows the recovered primary",
               lambda: single.count_ids(w.acked, single.reader_port(R)) == set(w.acked), timeout=20)
    print(f"\nsingle-AZ crash: writes back after {first_ack:.3f}s (detect {DETECT_S}s + recovery "
          f"{RECOVERY_S}s), {len(w.acked)} acked, none lost; {single.recoveries[-1]}")


def test_engine_version_must_match_the_installed_major(tmp_path: Path) -> None:
    bin_dir = find_pg_bin()
    installed = _pg_dir_version(bin_dir)
    assert installed is not None
    require_engine_major(f"{installed[0]}.4", installed, bin_dir)   # same major: fine
    other = str(installed[0] - 1)
    with pytest.raises(ConfigError) as err:
        PgCluster(tmp_path, None, None, password="x" * 12, engine_version=other)  # type: ignore[arg-type]
    text = str(err.value)
    assert f"PostgreSQL {other}" in text and f"major {installed[0]}" in text
    assert err.value.field == "db_engine_version" and err.value.hint and other in err.value.hint
    assert not any(tmp_path.iterdir()), "nothing is created before the version check"


