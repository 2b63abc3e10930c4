"""Database probes/actions against real throwaway PostgreSQL 15 (a primary and its streaming replica)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from chaos_testlib import DB_PASSWORD, PRIMARY, RECOVERY, Pg, db_configuration, psql

from gameday.chaos._common import ActivityFailed
from gameday.chaos.database.actions import (
    wait_for_db_instance_available,
    wait_for_replication,
    wait_for_writable,
    write_heartbeat,
)
from gameday.chaos.database.probes import (
    any_writable,
    count_records,
    db_instance_status,
    is_writable,
    replica_lag_seconds,
    replication_healthy,
    role,
)
from gameday.chaos.sandbox.actions import crash_primary_db
from gameday.util.procs import pid_alive

SECRETS = {"db_password": DB_PASSWORD}


def test_roles_and_writability(pg_pair: tuple[Pg, Pg]) -> None:
    primary, replica = pg_pair
    cfg = db_configuration(primary.hostport, {RECOVERY: replica.hostport})
    assert role("writer", cfg, SECRETS) == "primary"
    assert role(f"reader:{RECOVERY}", cfg, SECRETS) == "replica"
    assert is_writable("writer", cfg, SECRETS) is True
    assert is_writable(f"reader:{RECOVERY}", cfg, SECRETS) is False
    assert wait_for_writable("writer", timeout_s=5, configuration=cfg, secrets=SECRETS) < 5


def test_replication_lag_and_health(pg_pair: tuple[Pg, Pg]) -> None:
    primary, replica = pg_pair
    cfg = db_configuration(primary.hostport, {RECOVERY: replica.hostport})
    write_heartbeat("writer", cfg, {"gameday": {"db_password": DB_PASSWORD}})  # nested secrets form too
    lag = replica_lag_seconds(f"reader:{RECOVERY}", configuration=cfg, secrets=SECRETS)
    assert 0 <= lag < 2
    assert replication_healthy(2.0, configuration=cfg, secrets=SECRETS) is True
    assert wait_for_replication(2.0, timeout_s=10, configuration=cfg, secrets=SECRETS) < 10


def test_lag_of_a_primary_is_a_clear_error(pg_pair: tuple[Pg, Pg]) -> None:
    primary, _ = pg_pair
    cfg = db_configuration(primary.hostport, {RECOVERY: primary.hostport})
    with pytest.raises(ActivityFailed, match="is a primary, not a replica"):
        replica_lag_seconds(f"reader:{RECOVERY}", configuration=cfg, secrets=SECRETS)
    replicas = [f"reader:{RECOVERY}"]
    assert replication_healthy(2.0, replicas=replicas, configuration=cfg, secrets=SECRETS) is False


def test_count_records_on_writer_and_replica(pg_pair: tuple[Pg, Pg]) -> None:
    primary, replica = pg_pair
    cfg = db_configuration(primary.hostport, {RECOVERY: replica.hostport})
    psql(primary, "INSERT INTO records VALUES ('a'), ('b'), ('c') ON CONFLICT DO NOTHING", db="app")
    assert count_records("writer", configuration=cfg, secrets=SECRETS) >= 3
    assert count_records("writer", ids=["a", "c", "zz"], configuration=cfg, secrets=SECRETS) == 2
    wait_for_replication(2.0, timeout_s=10, configuration=cfg, secrets=SECRETS)
    assert count_records(f"reader:{RECOVERY}", ids=["a", "b"], configuration=cfg, secrets=SECRETS) == 2


def test_password_never_in_errors(pg_pair: tuple[Pg, Pg]) -> None:
    primary, _ = pg_pair
    cfg = db_configuration(primary.hostport)
    wrong = {"db_password": "not-the-" + DB_PASSWORD}
    with pytest.raises(ActivityFailed) as err:
        role("writer", cfg, wrong)
    assert "authentication failed" in str(err.value)
    assert DB_PASSWORD not in str(err.value) and "not-the-" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert is_writable("writer", cfg, wrong) is False
    with pytest.raises(ActivityFailed, match="no database password"):
        role("writer", cfg, {})


def test_only_configured_or_loopback_endpoints(pg_pair: tuple[Pg, Pg]) -> None:
    cfg = db_configuration(pg_pair[0].hostport)
    with pytest.raises(ActivityFailed, match="unknown database endpoint"):
        role("10.1.2.3:5432", cfg, SECRETS)
    with pytest.raises(ActivityFailed, match="unknown database endpoint"):
        role("reader:nowhere", cfg, SECRETS)


def test_wait_for_writable_is_bounded() -> None:
    from gameday.util.net import free_port

    cfg = db_configuration(f"127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(ActivityFailed, match="not writable within"):
        wait_for_writable("writer", timeout_s=1.0, configuration=cfg, secrets=SECRETS)
    assert time.monotonic() - start < 10


@pytest.mark.skipif(os.geteuid() != 0, reason="killing the postgres user's processes needs root")
def test_crash_primary_db_kills_the_postmaster(pg_factory: Callable[..., Pg]) -> None:
    victim = pg_factory("victim")
    cfg = db_configuration(victim.hostport)
    out = crash_primary_db("writer", cfg, SECRETS)
    assert out["postmaster_pid"] == victim.pid()
    deadline = time.monotonic() + 10
    while pid_alive(victim.pid()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(victim.pid())
    assert is_writable("writer", cfg, SECRETS) is False


def test_crash_refuses_a_replica(pg_pair: tuple[Pg, Pg]) -> None:
    _, replica = pg_pair
    with pytest.raises(ActivityFailed, match="not a primary"):
        crash_primary_db("writer", db_configuration(replica.hostport), SECRETS)


def test_any_writable_and_writer_is_not_a_replica(pg_pair: tuple[Pg, Pg]) -> None:
    primary, replica = pg_pair
    # AWS shape: the primary region "reads" from the primary itself; only the real replica is checked.
    cfg = db_configuration(f'{{"eu-south-1": "{primary.hostport}", "{RECOVERY}": "{replica.hostport}"}}',
                           {"eu-south-1": primary.hostport, RECOVERY: replica.hostport})
    assert any_writable(configuration=cfg, secrets=SECRETS) is True
    assert any_writable([f"writer:{RECOVERY}"], cfg, SECRETS) is False
    assert replication_healthy(2.0, configuration=cfg, secrets=SECRETS) is True


def test_db_instance_status_through_the_rds_api(cp: Any, aws: Callable[..., Any]) -> None:
    """The probe reads DescribeDBInstances; the wait follows a status the sandbox's data plane reports."""
    from gameday.sandbox import rds as sandbox_rds

    aws("rds").create_db_instance(DBInstanceIdentifier="gd-probe-db", Engine="postgres", EngineVersion="15",
                                  DBInstanceClass="db.t3.micro", MasterUsername="gameday",
                                  MasterUserPassword="probe-password", AllocatedStorage=20, MultiAZ=False)
    state = {"status": "rebooting"}

    class DataPlane:
        """The RDS emulation's view of a data plane: just its live status."""

        def instance_status(self) -> str:
            return state["status"]

        def begin_reboot(self, reason: str) -> None:
            state["status"] = "rebooting"

    emu = sandbox_rds.RdsControlPlane(cp.hooks, DataPlane(), primary_region=PRIMARY,
                                      primary_identifier="gd-probe-db").install()
    try:
        got = db_instance_status("gd-probe-db", PRIMARY)
        assert got == {"db_instance_identifier": "gd-probe-db", "status": "rebooting", "multi_az": False,
                       "engine_version": "15"}
        with pytest.raises(ActivityFailed, match="still 'rebooting'"):
            wait_for_db_instance_available("gd-probe-db", PRIMARY, timeout_s=1.5)
        threading.Timer(1.0, lambda: state.update(status="available")).start()
        assert 0.5 < wait_for_db_instance_available("gd-probe-db", PRIMARY, timeout_s=10) < 5
    finally:
        emu.uninstall()
