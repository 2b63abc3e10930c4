"""Real PostgreSQL standing in for RDS: see :mod:`gameday.sandbox.pg.cluster`."""

from gameday.sandbox.pg.cluster import PgCluster
from gameday.sandbox.pg.common import NodeStatus, ReplicaLag, process_tree

__all__ = ["NodeStatus", "PgCluster", "ReplicaLag", "process_tree"]
