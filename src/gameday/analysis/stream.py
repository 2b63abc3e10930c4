"""The analysis of journals too big for Python objects: 10 million requests in well under 1 GiB.

Journals are read block by block (rotated, compressed, per-worker segments alike, see
``gameday.util.journal``) with pyarrow's multi-threaded JSON reader, and only compact columns are
kept: per request 14 bytes (start time, service, kind, outcome, region codes), per write its id,
service, ack time and outcome. RTO and routing then run the very same code as the in-memory path
on :class:`~gameday.analysis._series.Series` built from those columns, and lost writes are the same
Jepsen set semantics computed with pyarrow's hash aggregation, so :func:`summarise_journals` gives
exactly what :func:`gameday.analysis.report.summarise` gives on the same lines.

A block pyarrow cannot parse as a whole (a malformed or torn line) is re-read line by line through
the in-memory parser, so malformed records raise the same ``ConfigError`` and torn lines are
skipped the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from gameday.analysis._series import Series
from gameday.analysis.models import KINDS, OUTCOMES, parse_request, parse_write
from gameday.analysis.results import AnalysisParameters, AnalysisSummary, FaultWindow
from gameday.analysis.routing import RoutingResult, routing_of_series
from gameday.analysis.rpo import DataLossResult
from gameday.analysis.rto import RtoResult, _check_params, _rto
from gameday.errors import ConfigError
from gameday.util.journal import journal_files, loads_line, open_segment

Source = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
BLOCK_BYTES = 32 << 20
STREAM_BLOCK_BYTES = 8 << 20
_OUT: dict[str, int] = {name: i for i, name in enumerate(OUTCOMES)}  # ok 0, failed 1, unknown 2 (as _series)
_KIND: dict[str, int] = {name: i for i, name in enumerate(KINDS)}
_RANK = np.array([2, 0, 1], dtype=np.int8)  # outcome code -> merge rank (ok > unknown > failed)
_REQ_SCHEMA = pa.schema([("t0", pa.float64()), ("t1", pa.float64()), ("service", pa.string()),
                         ("kind", pa.string()), ("outcome", pa.string()), ("region", pa.string())])
_LEDGER_SCHEMA = pa.schema([("id", pa.string()), ("service", pa.string()), ("t0", pa.float64()),
                            ("t1", pa.float64()), ("outcome", pa.string())])


class _Names:
    """Growing string dictionary shared by every block (service and region names)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def code(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.names)
            self.names.append(name)
        return i


def _blocks(files: Sequence[Path]) -> Iterator[tuple[bytes, str]]:
    """Blocks of whole lines (the last one of a file may be torn), with the file they come from."""
    for f in files:
        rest = b""
        # Arrow's own gzip/zstd decoder: ~3x faster than Python's gzip module
        fh = (pa.input_stream(str(f), compression="gzip" if str(f).endswith(".gz") else "zstd")
              if str(f).endswith((".gz", ".zst")) else open_segment(f))
        with fh:
            while True:
                try:
                    chunk = fh.read(BLOCK_BYTES)
                except (EOFError, OSError):  # a compressed file cut short: keep what it held
                    chunk = b""
                if not chunk:
                    break
                data = rest + chunk
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    yield data[:cut], str(f)
        if rest.strip():
            yield rest, str(f)


class _Fallback(Exception):
    """A batch the fast path cannot take: the file is re-read block by block."""


Cols = dict[str, Any]  # numpy columns, and the ids as an Arrow array


def _file_columns(f: Path, schema: pa.Schema, convert: Callable[[pa.Table], Cols | None],
                  slow: Callable[[bytes, str], Cols]) -> list[Cols]:
    """Column parts of one segment: compressed (complete) segments stream through Arrow's reader
    (no line splitting in Python); anything it cannot take, and the plain current segment (which
    may end in a torn line), go block by block, each block falling back to the record parser."""
    if str(f).endswith((".gz", ".zst")):
        try:
            out: list[Cols] = []
            with pa.input_stream(str(f), compression="gzip" if str(f).endswith(".gz") else "zstd") as raw:
                reader = pj.open_json(raw, read_options=pj.ReadOptions(block_size=STREAM_BLOCK_BYTES),
                                      parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                    unexpected_field_behavior="ignore"))
                for batch in reader:
                    if batch.num_rows:
                        cols = convert(pa.Table.from_batches([batch]))
                        if cols is None:
                            raise _Fallback
                        out.append(cols)
            return out
        except (_Fallback, pa.ArrowInvalid, pa.ArrowTypeError, OSError, EOFError):
            pass
    out = []
    for block, src in _blocks([f]):
        tab = _arrow(block, schema)
        if tab is not None and not tab.num_rows:
            continue
        cols = convert(tab) if tab is not None else None
        out.append(cols if cols is not None else slow(block, src))
    return out


def _arrow(block: bytes, schema: pa.Schema) -> pa.Table | None:
    if not block.endswith(b"\n"):
        return None  # a torn last line: the slow path decides, as read_jsonl would
    try:
        return pj.read_json(pa.BufferReader(block), parse_options=pj.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _slow_records(block: bytes) -> Iterator[Any]:
    for line in block.splitlines():
        if not line.strip():
            continue
        try:
            yield loads_line(line)
        except ValueError:
            continue


def _codes(col: pa.ChunkedArray, names: _Names, *, empty_is_null: bool = False) -> npt.NDArray[np.int16]:
    enc = pc.dictionary_encode(col).combine_chunks()
    table = np.array([-1 if (empty_is_null and v == "") else names.code(v)
                      for v in enc.dictionary.to_pylist()] + [-1], dtype=np.int16)
    idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
    codes: npt.NDArray[np.int16] = table[idx]
    return codes


def _fixed_codes(col: pa.ChunkedArray, mapping: dict[str, int]) -> npt.NDArray[np.int8] | None:
    """Codes for a closed vocabulary; None when a value is outside it (the slow path raises)."""
    enc = pc.dictionary_encode(col).combine_chunks()
    if enc.null_count:
        return None
    words = enc.dictionary.to_pylist()
    if any(w not in mapping for w in words):
        return None
    codes: npt.NDArray[np.int8] = np.array([mapping[w] for w in words],
                                           dtype=np.int8)[enc.indices.to_numpy(zero_copy_only=False)]
    return codes


def _finite(*cols: pa.ChunkedArray) -> bool:
    for c in cols:
        if c.null_count:
            return False
        a = c.to_numpy()
        if not np.isfinite(a).all():
            return False
    return True


@dataclass
class RequestColumns:
    """Every request of a journal as columns, in journal order."""

    t0: npt.NDArray[np.float64]
    service: npt.NDArray[np.int16]
    kind: npt.NDArray[np.int8]
    outcome: npt.NDArray[np.int8]
    region: npt.NDArray[np.int16]
    services: list[str]
    regions: list[str]
    _sorted: bool = False

    def __len__(self) -> int:
        return int(self.t0.shape[0])

    def sort(self) -> None:
        """Stable sort by start time, once: a subset of a stably sorted whole is its own stable sort,
        so every per-service series is then a mere mask."""
        if self._sorted:
            return
        order = np.argsort(self.t0, kind="stable")
        for name in ("t0", "service", "kind", "outcome", "region"):
            setattr(self, name, getattr(self, name)[order])
        self._sorted = True

    def series(self, service: str | None, kind: str | None = None) -> Series:
        """Same as ``_series.series`` on the equivalent Request list (stable sort by t0)."""
        self.sort()
        sel = np.ones(len(self), dtype=bool)
        if service is not None:
            sel &= self.service == (self.services.index(service) if service in self.services else -2)
        if kind is not None:
            sel &= self.kind == _KIND[kind]
        t0, outcome, region = self.t0[sel], self.outcome[sel], self.region[sel]
        present = np.unique(region[region >= 0])
        local = sorted(self.regions[c] for c in present.tolist())
        remap = np.full(len(self.regions) + 1, -1, dtype=np.int16)
        for i, name in enumerate(local):
            remap[self.regions.index(name)] = i
        return Series(t0, outcome, remap[region], tuple(local))  # -1 indexes the trailing -1


def load_request_columns(source: Source) -> RequestColumns:
    """Columns of every request in ``source`` (a journal path, a directory or a list of them)."""
    svc, reg = _Names(), _Names()

    def convert(tab: pa.Table) -> Cols | None:
        kind = _fixed_codes(tab["kind"], _KIND)
        outcome = _fixed_codes(tab["outcome"], _OUT)
        names = tab["service"]
        if (kind is None or outcome is None or not _finite(tab["t0"], tab["t1"]) or names.null_count
                or pc.any(pc.equal(names, "")).as_py()):
            return None
        return {"t0": tab["t0"].to_numpy(), "service": _codes(names, svc), "kind": kind, "outcome": outcome,
                "region": _codes(tab["region"], reg, empty_is_null=True)}

    def slow(block: bytes, src: str) -> Cols:  # the in-memory parser: same errors, same skips
        rs = [parse_request(rec, source=src) for rec in _slow_records(block)]
        return {"t0": np.array([r.t0 for r in rs], dtype=np.float64),
                "service": np.array([svc.code(r.service) for r in rs], dtype=np.int16),
                "kind": np.array([_KIND[r.kind] for r in rs], dtype=np.int8),
                "outcome": np.array([_OUT[r.outcome] for r in rs], dtype=np.int8),
                "region": np.array([reg.code(r.region) if r.region else -1 for r in rs], dtype=np.int16)}

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("t0", "service", "kind", "outcome", "region")}
    for f in journal_files(source, "requests"):
        for cols in _file_columns(f, _REQ_SCHEMA, convert, slow):
            for k, v in cols.items():
                parts[k].append(v)
    dtypes = {"t0": np.float64, "service": np.int16, "kind": np.int8, "outcome": np.int8, "region": np.int16}
    arr = {k: (np.concatenate(v) if v else np.empty(0, dtype=dtypes[k])) for k, v in parts.items()}
    return RequestColumns(arr["t0"], arr["service"], arr["kind"], arr["outcome"], arr["region"],
                          svc.names, reg.names)


@dataclass
class LedgerColumns:
    """Every write attempt as columns (ids stay an Arrow string array: 3 million of them fit in ~150 MB)."""

    id: pa.ChunkedArray
    service: npt.NDArray[np.int16]
    t1: npt.NDArray[np.float64]
    outcome: npt.NDArray[np.int8]
    services: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.t1.shape[0])


def load_ledger_columns(source: Source) -> LedgerColumns:
    svc = _Names()

    def convert(tab: pa.Table) -> Cols | None:
        outcome = _fixed_codes(tab["outcome"], _OUT)
        if (outcome is None or tab["id"].null_count or tab["service"].null_count
                or pc.any(pc.equal(tab["id"], "")).as_py() or pc.any(pc.equal(tab["service"], "")).as_py()
                or not _finite(tab["t0"], tab["t1"])):
            return None
        return {"id": tab["id"].combine_chunks(), "service": _codes(tab["service"], svc),
                "t1": tab["t1"].to_numpy(), "outcome": outcome}

    def slow(block: bytes, src: str) -> Cols:
        ws = [parse_write(rec, source=src) for rec in _slow_records(block)]
        return {"id": pa.array([w.id for w in ws], type=pa.string()),
                "service": np.array([svc.code(w.service) for w in ws], dtype=np.int16),
                "t1": np.array([w.t1 for w in ws], dtype=np.float64),
                "outcome": np.array([_OUT[w.outcome] for w in ws], dtype=np.int8)}

    ids: list[pa.Array] = []
    parts: dict[str, list[np.ndarray]] = {"service": [], "t1": [], "outcome": []}
    for f in journal_files(source, "ledger"):
        for cols in _file_columns(f, _LEDGER_SCHEMA, convert, slow):
            ids.append(cols.pop("id"))
            for k, v in cols.items():
                parts[k].append(v)
    dtypes = {"service": np.int16, "t1": np.float64, "outcome": np.int8}
    arr = {k: (np.concatenate(v) if v else np.empty(0, dtype=dtypes[k])) for k, v in parts.items()}
    return LedgerColumns(pa.chunked_array(ids, type=pa.string()), arr["service"], arr["t1"], arr["outcome"],
                         svc.names)


PARTITION_IDS = 400_000  # ids per hash partition of the lost-write check: bounds its hash tables


def _id_hash(arr: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.uint64]:
    """A cheap per-string hash (length, first and last 8 bytes) from Arrow's buffers, to partition ids;
    equal strings always hash equal, which is all correctness needs."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out: list[np.ndarray] = []
    for c in chunks:
        c = c.cast(pa.string())
        n = len(c)
        if n == 0:
            continue
        bufs = c.buffers()
        offs = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=c.offset * 4).astype(np.int64)
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size else \
            np.zeros(1, dtype=np.uint8)
        starts, ends = offs[:-1], offs[1:]
        h = (ends - starts).astype(np.uint64)
        for j in range(8):
            for pos, ok in ((ends - 1 - j, ends - 1 - j >= starts), (starts + j, starts + j < ends)):
                byte = data[np.where(ok, pos, 0)].astype(np.uint64) * ok
                h = (h ^ byte) * np.uint64(1099511628211)  # FNV-1a step, wrapping
        out.append(h)
    return np.concatenate(out) if out else np.empty(0, dtype=np.uint64)


@dataclass
class _Part:
    """The lost-write check of one hash partition of the ids (partitions are disjoint in ids)."""

    attempted: int = 0
    acknowledged: int = 0
    failed: int = 0
    unknown: int = 0
    recovered: int = 0
    present: int = 0
    lost: int = 0
    lost_after_fault: int = 0
    lost_first: list[tuple[float, str]] = field(default_factory=list)  # (ack, id), first max_ids
    newest_lost: float | None = None
    by_service: npt.NDArray[np.int64] | None = None
    failed_present: int = 0
    fp_first: list[str] = field(default_factory=list)
    unexpected: int = 0
    unexpected_first: list[str] = field(default_factory=list)


def _check_part(ids: pa.ChunkedArray, outcome: np.ndarray, t1: np.ndarray, svc: np.ndarray, n_services: int,
                present: pa.Array, fault_start: float, max_ids: int) -> _Part:
    present = pc.unique(present)
    # one hash table over the ids (chunks share one dictionary, no combined copy); then numpy on codes
    enc = pc.dictionary_encode(ids)
    m_ids = enc.chunk(0).dictionary if enc.num_chunks else pa.array([], type=pa.string())
    codes = (np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in enc.chunks]).astype(np.int64)
             if enc.num_chunks else np.empty(0, dtype=np.int64))
    del enc
    n_ids = len(m_ids)
    rank = _RANK[outcome]
    m_rank = np.full(n_ids, -1, dtype=np.int8)
    np.maximum.at(m_rank, codes, rank)
    where = pc.index_in(present, value_set=m_ids)  # where each present id is among the attempted (or null)
    m_present = np.zeros(n_ids, dtype=bool)
    m_present[where.drop_null().to_numpy()] = True
    unexpected = present.filter(pc.is_null(where))
    del where
    ok_rows = np.flatnonzero(rank == 2)
    ok_codes = codes[ok_rows]
    ack = np.full(n_ids, np.inf)
    np.minimum.at(ack, ok_codes, t1[ok_rows])
    acked_codes, first = np.unique(ok_codes, return_index=True)  # first ok attempt of each id
    lost_mask = ~m_present[acked_codes]
    lost_codes, lost_svc = acked_codes[lost_mask], svc[ok_rows[first]][lost_mask]
    lost_ack = ack[lost_codes]
    lost_id = m_ids.take(pa.array(lost_codes))
    order = pc.sort_indices(pa.table({"t1": lost_ack, "id": lost_id}),
                            sort_keys=[("t1", "ascending"), ("id", "ascending")]).to_numpy()
    top = order[:max_ids]
    fp = m_ids.filter(pa.array((m_rank == 0) & m_present))
    return _Part(
        attempted=n_ids, acknowledged=len(acked_codes), failed=int((m_rank == 0).sum()),
        unknown=int((m_rank == 1).sum()), recovered=int(((m_rank == 1) & m_present).sum()),
        present=len(present), lost=len(lost_codes), lost_after_fault=int((lost_ack > fault_start).sum()),
        lost_first=list(zip(lost_ack[top].tolist(), lost_id.take(pa.array(top)).to_pylist(), strict=True)),
        newest_lost=float(lost_ack.max()) if len(lost_ack) else None,
        by_service=np.bincount(lost_svc, minlength=n_services), failed_present=len(fp),
        fp_first=fp.take(pc.sort_indices(fp)[:max_ids]).to_pylist(), unexpected=len(unexpected),
        unexpected_first=unexpected.take(pc.sort_indices(unexpected)[:max_ids]).to_pylist())


def check_writes_columns(ledger: LedgerColumns, present_ids: Iterable[str] | pa.Array | pa.ChunkedArray,
                         fault_start: float, *, max_ids: int = 50,
                         partition_ids: int = PARTITION_IDS) -> DataLossResult:
    """``rpo.check_writes`` (same definitions, same result) with Arrow hashing, one hash partition of
    the ids at a time (every attempt of an id and its presence fall in the same partition), so the
    hash tables stay small whatever the ledger's size."""
    if isinstance(present_ids, pa.ChunkedArray | pa.Array):
        present = present_ids.cast(pa.string())
    else:
        present = pa.array([str(p) for p in present_ids], type=pa.string())
    if isinstance(present, pa.ChunkedArray):
        present = present.combine_chunks()
    k = max(1, -(-max(len(ledger), len(present)) // max(1, partition_ids)))
    key_l = _id_hash(ledger.id) % np.uint64(k) if k > 1 else None
    key_p = _id_hash(present) % np.uint64(k) if k > 1 else None
    parts: list[_Part] = []
    for p in range(k):
        if key_l is None or key_p is None:
            parts.append(_check_part(ledger.id, ledger.outcome, ledger.t1, ledger.service, len(ledger.services),
                                     present, fault_start, max_ids))
            continue
        ml, mp = key_l == p, key_p == p
        parts.append(_check_part(ledger.id.filter(pa.array(ml)), ledger.outcome[ml], ledger.t1[ml],
                                 ledger.service[ml], len(ledger.services), present.filter(pa.array(mp)),
                                 fault_start, max_ids))
    lost_first = sorted(x for q in parts for x in q.lost_first)[:max_ids]
    n_lost = sum(q.lost for q in parts)
    n_fp = sum(q.failed_present for q in parts)
    n_unexp = sum(q.unexpected for q in parts)
    n_unknown = sum(q.unknown for q in parts)
    n_recovered = sum(q.recovered for q in parts)
    counts = np.zeros(len(ledger.services), dtype=np.int64)
    for q in parts:
        if q.by_service is not None and len(q.by_service):
            counts += q.by_service
    newest = max((q.newest_lost for q in parts if q.newest_lost is not None), default=None)
    oldest = lost_first[0][0] if lost_first else None
    rpo = max(0.0, fault_start - oldest) if oldest is not None else 0.0
    return DataLossResult(
        fault_start=fault_start, attempted=sum(q.attempted for q in parts),
        acknowledged=sum(q.acknowledged for q in parts), failed=sum(q.failed for q in parts),
        unknown=n_unknown, present=sum(q.present for q in parts), lost=n_lost,
        lost_ids=[i for _, i in lost_first], lost_after_fault=sum(q.lost_after_fault for q in parts),
        recovered=n_recovered, unknown_absent=n_unknown - n_recovered, failed_present=n_fp,
        failed_present_ids=sorted(x for q in parts for x in q.fp_first)[:max_ids], unexpected=n_unexp,
        unexpected_ids=sorted(x for q in parts for x in q.unexpected_first)[:max_ids], rpo_s=rpo,
        oldest_lost_ack_at=oldest, newest_lost_ack_at=newest, valid=not n_lost and not n_unexp,
        ids_truncated=n_lost > max_ids or n_fp > max_ids or n_unexp > max_ids, max_ids=max_ids,
        lost_by_service=dict(sorted((ledger.services[i], int(n)) for i, n in enumerate(counts.tolist()) if n)))


def summarise_journals(requests: Source | RequestColumns, ledger: Source | LedgerColumns,
                       present_ids: Iterable[str] | pa.Array | pa.ChunkedArray | None, fault_start: float,
                       fault_end: float | None, primary_region: str, *, services: Sequence[str] | None = None,
                       window_s: float = 5.0, threshold: float = 0.99, min_stable_s: float = 1.0,
                       max_ids: int = 50) -> AnalysisSummary:
    """``report.summarise`` straight from journal files (or columns), in bounded memory."""
    _check_params(window_s, threshold, None)
    if not min_stable_s > 0:
        raise ConfigError(f"min_stable_s must be > 0, got {min_stable_s}", field="min_stable_s")
    rc = requests if isinstance(requests, RequestColumns) else load_request_columns(requests)
    names = sorted(rc.services) if services is None else list(services)
    rto: dict[str, dict[str, RtoResult]] = {}
    routing: dict[str, RoutingResult] = {}
    for svc in names:
        code = rc.services.index(svc) if svc in rc.services else -2
        mine = rc.service == code
        kinds = sorted(k for k in KINDS if (mine & (rc.kind == _KIND[k])).any())
        per: dict[str, RtoResult] = {}
        for k in [*kinds, None]:
            per[k or "all"] = _rto(rc.series(svc, k), fault_start, service=svc, kind=k, window_s=window_s,
                                   threshold=threshold, step_s=None, horizon_end=None)
        rto[svc] = per
        routing[svc] = routing_of_series(rc.series(svc), svc, fault_start, fault_end,
                                         primary_region=primary_region, min_stable_s=min_stable_s)
    n_requests = len(rc)
    del rc  # the request columns are done with: the ledger gets the memory
    pa.default_memory_pool().release_unused()
    lc = ledger if isinstance(ledger, LedgerColumns) else load_ledger_columns(ledger)
    loss = (check_writes_columns(lc, present_ids, fault_start, max_ids=max_ids)
            if present_ids is not None else None)
    return AnalysisSummary(FaultWindow(fault_start, fault_end),
                           AnalysisParameters(primary_region, window_s, threshold, min_stable_s),
                           requests=n_requests, writes=len(lc), rto=rto, data_loss=loss, routing=routing)
