"""Compatibility name of the PostgreSQL data plane; the code lives in :mod:`gameday.sandbox.pg`."""

from gameday.sandbox.pg.cluster import PgCluster
from gameday.sandbox.pg.common import TIMING_PROFILES, NodeStatus, ReplicaLag, process_tree, scram_verifier

__all__ = ["TIMING_PROFILES", "NodeStatus", "PgCluster", "ReplicaLag", "process_tree", "scram_verifier"]
