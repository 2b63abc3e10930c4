"""The environment that fills the experiments' ``configuration`` (see experiments/README.md).

Experiments read every target-specific value from ``GAMEDAY_*`` env vars, so the same files run
on the sandbox and on AWS; this builds those vars from an ``Endpoints`` record and a ``Topology``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gameday.errors import ConfigError

# configuration key -> env var, exactly as declared in experiments/*.json
CONFIG_ENV: dict[str, str] = {
    "aws_region": "GAMEDAY_PRIMARY_REGION",
    "gameday_primary_region": "GAMEDAY_PRIMARY_REGION",
    "gameday_recovery_region": "GAMEDAY_RECOVERY_REGION",
    "gameday_service_urls": "GAMEDAY_SERVICE_URLS",
    "gameday_db_writer": "GAMEDAY_DB_WRITER",
    "gameday_db_reader": "GAMEDAY_DB_READER",
    "gameday_db_name": "GAMEDAY_DB_NAME",
    "gameday_db_user": "GAMEDAY_DB_USER",
    "gameday_max_lag_s": "GAMEDAY_MAX_LAG_S",
    "gameday_timeout_s": "GAMEDAY_TIMEOUT_S",
    "gameday_primary_asgs": "GAMEDAY_PRIMARY_ASGS",
    "gameday_primary_az": "GAMEDAY_PRIMARY_AZ",
    "gameday_db_primary_id": "GAMEDAY_DB_PRIMARY_ID",
    "gameday_db_replica_id": "GAMEDAY_DB_REPLICA_ID",
    "gameday_failover_service": "GAMEDAY_FAILOVER_SERVICE",
    "gameday_failover_asg": "GAMEDAY_FAILOVER_ASG",
    "gameday_fis_role_arn": "GAMEDAY_FIS_ROLE_ARN",
    "gameday_prometheus_urls": "GAMEDAY_PROMETHEUS_URLS",
}
DEFAULT_FAILOVER_SERVICE = "orders"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def experiment_env(endpoints: Any, topology: Any, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """GAMEDAY_* env for ``chaos run``: from Endpoints + Topology, then scenario overrides (config keys)."""
    extra = dict(extra or {})
    unknown = sorted(k for k in extra if k not in CONFIG_ENV)
    if unknown:
        raise ConfigError(f"unknown experiment configuration key(s): {', '.join(unknown)}",
                          field="experiment_config", hint=f"use one of: {', '.join(sorted(CONFIG_ENV))}")
    primary, recovery = endpoints.primary_region, endpoints.recovery_region
    db = topology.database
    writer = dict(endpoints.db_writer)
    # The recovery "writer" is where writes go after promotion: the sandbox's recovery writer proxy,
    # on AWS the replica's endpoint (RDS keeps it when the replica is promoted).
    writer.setdefault(recovery, endpoints.db_reader.get(recovery, db.replica_endpoint))
    service = str(extra.get("gameday_failover_service", DEFAULT_FAILOVER_SERVICE))
    if service not in topology.services:
        raise ConfigError(f"failover service {service!r} is not in the topology",
                          field="experiment_config.gameday_failover_service",
                          hint=f"use one of: {', '.join(sorted(topology.services))}")
    values: dict[str, Any] = {
        "gameday_primary_region": primary,
        "gameday_recovery_region": recovery,
        "gameday_service_urls": dict(endpoints.services),
        "gameday_db_writer": writer,
        "gameday_db_reader": dict(endpoints.db_reader),
        "gameday_db_name": db.db_name,
        "gameday_db_user": db.username,
        "gameday_primary_asgs": [svc.regions[primary].asg_name for svc in topology.services.values()
                                 if primary in svc.regions],
        "gameday_primary_az": f"{primary}a",
        "gameday_db_primary_id": db.primary_identifier,
        "gameday_db_replica_id": db.replica_identifier,
        "gameday_failover_service": service,
        "gameday_failover_asg": topology.services[service].regions[primary].asg_name,
        "gameday_prometheus_urls": dict(getattr(endpoints, "prometheus", None) or {}),
    }
    values.update({k: v for k, v in extra.items() if k != "aws_region"})
    return {CONFIG_ENV[k]: _text(v) for k, v in values.items()}
