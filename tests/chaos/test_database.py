"""Database probes/actions against real throwaway PostgreSQL 15 (a primary and its streaming replica)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from chaos_testlib import DB_PASSWORD, RECOVERY, Pg, db_configuration, psql

from gameday.chaos._common import ActivityFailed
from gameday.chaos.database.actions import wait_for_replication, wait_for_writable, write_heartbeat
from gameday.chaos.database.probes import (
    any_writable,
    count_records,
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
