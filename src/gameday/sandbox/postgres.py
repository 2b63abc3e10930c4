"""Compatibility name of the PostgreSQL data plane; the code lives in :mod:`gameday.sandbox.pg`."""

from gameday.sandbox.pg.cluster import PgCluster
from gameday.sandbox.pg.common import NodeStatus, ReplicaLag, process_tree, scram_verifier

__all__ = ["NodeStatus", "PgCluster", "ReplicaLag", "process_tree", "scram_verifier"]
