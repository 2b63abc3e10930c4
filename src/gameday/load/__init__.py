"""Load generation: locust as a subprocess, journals of every request and every write."""

from gameday.load.records import LedgerRecord, RequestRecord, read_ledger, read_requests
from gameday.load.runner import LoadResult, LoadRunner

__all__ = ["LedgerRecord", "LoadResult", "LoadRunner", "RequestRecord", "read_ledger", "read_requests"]
