"""Probes on the FIS experiments behind the region faults."""

from __future__ import annotations

from chaoslib.types import Configuration, Secrets

from gameday.chaos._common import ActivityFailed, client

__all__ = ["experiment_state"]


def experiment_state(experiment_id: str, region: str | None = None, configuration: Configuration = None,
                     secrets: Secrets = None) -> str:
    """FIS state of one experiment (pending/initiating/running/completed/stopping/stopped/failed)."""
    fis = client("fis", configuration, secrets, region=region)
    try:
        experiment = fis.get_experiment(id=experiment_id)["experiment"]
    except Exception as exc:
        raise ActivityFailed(f"FIS experiment {experiment_id} not readable: {exc}") from exc
    return str(experiment.get("state", {}).get("status", "unknown"))
