"""Load generation: locust as a subprocess, journals of every request and every write."""

from gameday.load.runner import LoadResult, LoadRunner, read_ledger, read_requests
from gameday.util.journal_schema import RequestRecord, RunInfo, WriteRecord

__all__ = ["LoadResult", "LoadRunner", "RequestRecord", "RunInfo", "WriteRecord", "read_ledger", "read_requests"]
