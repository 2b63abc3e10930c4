"""Rotating, compressed JSON-lines journals for hours of load at thousands of requests per second.

Layout of one journal ``DIR/NAME.jsonl`` (``NAME`` may carry a worker suffix, e.g. ``requests-w2``):

* ``DIR/NAME.jsonl``                   the current segment: plain text, appended in buffered batches,
                                      so it is always a valid prefix (at worst a torn last line,
                                      which readers skip) and can be tailed live;
* ``DIR/NAME.000001.jsonl``            a closed segment just rotated out (renamed, so no line moves);
* ``DIR/NAME.000001.jsonl.gz|.zst``    the same segment once compressed; the compressed file appears
                                      by an atomic rename after it is complete and fsync'd, and only
                                      then is the plain one removed, so at every instant each line is
                                      in at least one complete file (readers prefer the compressed
                                      one when both exist).

Writes are buffered in memory and reach the file when the buffer passes ``buffer_bytes``, when the
owner calls :meth:`JournalWriter.flush` (locust does every 0.2 s) and on :meth:`close`, which also
fsyncs: a clean stop loses nothing and the run's last lines are durable before it ends.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

try:  # optional accelerators: same output, less CPU
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency, but the locustfile may run elsewhere
    _orjson = None  # type: ignore[assignment]
try:
    import zstandard as _zstd
except ImportError:
    _zstd = None

_SEGMENT = re.compile(r"^(?P<stem>.+)\.(?P<n>\d{6,})\.jsonl(?P<ext>\.gz|\.zst)?$")
_CHUNK = 1 << 20


def dumps_line(record: dict[str, Any]) -> bytes:
    """One compact JSON line (orjson when installed: same JSON, a tenth of the CPU)."""
    if _orjson is not None:
        return _orjson.dumps(record, default=str, option=_orjson.OPT_APPEND_NEWLINE)
    return (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()


def loads_line(line: bytes | str) -> Any:
    """Parse one line; what orjson refuses (NaN, huge ints) goes to json, as the journals always did."""
    if _orjson is not None:
        try:
            return _orjson.loads(line)
        except ValueError:
            pass
    return json.loads(line)


def default_compression() -> str:
    """``zstd`` when the zstandard package is importable, else ``gzip`` (always available)."""
    return "zstd" if _zstd is not None else "gzip"


def _spawn_thread(fn: Callable[[], object]) -> Any:
    """A real OS thread even under gevent's monkey-patching (locust), so compression never blocks
    the event loop; returns something with ``join()``."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            import gevent

            return gevent.get_hub().threadpool.spawn(fn)
    except ImportError:
        pass
    t = threading.Thread(target=fn, name="journal-compress", daemon=True)
    t.start()
    return t


def compress_segment(plain: Path, compression: str) -> Path:
    """``X.jsonl`` -> ``X.jsonl.gz|.zst`` via a fsync'd temporary file and an atomic rename, then unlink
    the plain file. Safe to interrupt at any point (readers ignore ``.tmp`` and keep the plain one)."""
    ext = ".zst" if compression == "zstd" else ".gz"
    final = plain.with_name(plain.name + ext)
    tmp = plain.with_name(plain.name + ext + ".tmp")
    with open(plain, "rb") as src, open(tmp, "wb") as dst:
        if compression == "zstd" and _zstd is not None:
            cctx = _zstd.ZstdCompressor(level=3)
            with cctx.stream_writer(dst, closefd=False) as zw:
                while chunk := src.read(_CHUNK):
                    zw.write(chunk)
        else:
            z = zlib.compressobj(1, zlib.DEFLATED, 31)  # level 1: ~5x smaller at little CPU
            while chunk := src.read(_CHUNK):
                dst.write(z.compress(chunk))
            dst.write(z.flush())
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    plain.unlink()
    return final


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class JournalWriter:
    """Append-only JSON-lines journal: buffered, rotated by size or line count, compressed behind.

    ``threadsafe=False`` drops the lock for single-threaded callers (locust's greenlets), which makes
    :meth:`write` a list append.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 64 << 20, max_lines: int = 0,
                 compression: str | None = None, buffer_bytes: int = 256 << 10,
                 threadsafe: bool = True) -> None:
        self.path = Path(path)
        if not self.path.name.endswith(".jsonl"):
            raise ValueError(f"journal path must end in .jsonl: {self.path}")
        self.stem = self.path.name[: -len(".jsonl")]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.compression = compression or default_compression()
        if self.compression not in ("gzip", "zstd", "none"):
            raise ValueError(f"compression must be gzip, zstd or none, got {self.compression!r}")
        self.buffer_bytes = buffer_bytes
        self._lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if threadsafe else contextlib.nullcontext())
        self._buf: list[bytes] = []
        self._pending = 0
        self._fh: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._bytes = self._fh.tell()
        if self._bytes and not self._ends_with_newline():
            self._fh.write(b"\n")  # a torn line of a crashed run must not swallow our first line
            self._bytes += 1
        self._lines = self._count_lines() if max_lines and self._bytes else 0
        self._seq = max((n for n, _ in _numbered(self.path.parent, self.stem)), default=0)
        self._jobs: list[Any] = []
        self.lines_written = 0

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def _count_lines(self) -> int:
        with open(self.path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(_CHUNK), b""))

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(dumps_line(record))

    def write_line(self, line: bytes) -> None:
        """Queue one newline-terminated line; the file sees it at the next flush."""
        with self._lock:
            if self._fh is None:
                return
            self._buf.append(line)
            self._pending += len(line)
            if self._pending >= self.buffer_bytes:
                self._flush_locked()

    def flush(self, *, fsync: bool = False) -> None:
        with self._lock:
            self._flush_locked(fsync=fsync)

    def _flush_locked(self, *, fsync: bool = False) -> None:
        fh = self._fh
        if fh is None:
            return
        buf, self._buf, pending, self._pending = self._buf, [], self._pending, 0
        if (not self.max_bytes or self._bytes + pending <= self.max_bytes) and (
                not self.max_lines or self._lines + len(buf) <= self.max_lines):
            fh.write(b"".join(buf))  # the usual case: no rotation in this batch
            self._bytes += pending
            self._lines += len(buf)
            self.lines_written += len(buf)
            buf = []
        for line in buf:  # rotation happens between lines, never inside one
            if (self.max_bytes and self._bytes and self._bytes + len(line) > self.max_bytes) or (
                    self.max_lines and self._lines >= self.max_lines):
                fh = self._rotate(fh)
            fh.write(line)
            self._bytes += len(line)
            self._lines += 1
            self.lines_written += 1
        fh.flush()  # one write(2) per flush: the buffered file object batches the lines
        if fsync:
            os.fsync(fh.fileno())

    def _rotate(self, fh: IO[bytes]) -> IO[bytes]:
        fh.flush()
        os.fsync(fh.fileno())
        self._seq += 1
        closed = self.path.with_name(f"{self.stem}.{self._seq:06d}.jsonl")
        os.replace(self.path, closed)  # the fd follows the inode; a tailer drains it, then reopens
        fh.close()
        new = open(self.path, "ab")  # noqa: SIM115 - closed in close()/next rotation
        _fsync_dir(self.path.parent)
        self._fh, self._bytes, self._lines = new, 0, 0
        if self.compression != "none":
            comp = self.compression
            self._jobs = [j for j in self._jobs if not _done(j)]
            self._jobs.append(_spawn_thread(lambda: compress_segment(closed, comp)))
        return new

    def close(self, *, wait_compression: bool = True) -> None:
        """Flush, fsync and close; then wait for background compression (it is interruptible anyway)."""
        with self._lock:
            if self._fh is not None:
                self._flush_locked(fsync=True)
                self._fh.close()
                self._fh = None
        if wait_compression:
            for job in self._jobs:
                (job.join if hasattr(job, "join") else job.wait)()  # a thread, or gevent's AsyncResult
            self._jobs = []

    @property
    def closed(self) -> bool:
        return self._fh is None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _done(job: Any) -> bool:
    ready = getattr(job, "ready", None)
    return bool(ready()) if callable(ready) else not job.is_alive()


def _numbered(directory: Path, stem: str) -> Iterator[tuple[int, Path]]:
    if not directory.is_dir():
        return
    for p in directory.iterdir():
        m = _SEGMENT.match(p.name)
        if m and m.group("stem") == stem:
            yield int(m.group("n")), p


def segments(path: str | os.PathLike[str]) -> list[Path]:
    """Every complete file holding lines of the journal ``path`` (``.../NAME.jsonl``), oldest first:
    numbered segments (compressed preferred over a plain copy of the same number), then the current."""
    p = Path(path)
    stem = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    best: dict[int, Path] = {}
    for n, seg in _numbered(p.parent, stem):
        if n not in best or best[n].suffix == ".jsonl":
            best[n] = seg
    out = [best[n] for n in sorted(best)]
    if p.exists():
        out.append(p)
    return out


def journal_files(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                  stem: str | None = None) -> list[Path]:
    """Resolve a journal source to its segment files.

    ``source`` is one journal path (``requests.jsonl``: its rotated segments come along), a
    directory (every journal in it and below whose name starts with ``stem``, e.g. the per-worker
    ``requests-w1.jsonl``, ``requests-w2.jsonl``), or a list of either. Compressed or numbered
    segment paths given explicitly are taken as they are.
    """
    items: list[str | os.PathLike[str]]
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            if stem is None:
                raise ValueError("a journal directory needs the journal name (e.g. 'requests')")
            heads: set[Path] = set()
            for f in sorted(p.rglob(f"{stem}*.jsonl*")):
                m = _SEGMENT.match(f.name)
                base = f.with_name(f"{m.group('stem')}.jsonl") if m else f
                if base.name.endswith(".jsonl") and base.name[: -len(".jsonl")].startswith(stem):
                    heads.add(base)
            for head in sorted(heads):
                out.extend(segments(head))
        elif _SEGMENT.match(p.name) or p.name.endswith((".gz", ".zst")):
            out.append(p)
        else:
            out.extend(segments(p))
    seen: set[Path] = set()
    return [f for f in out if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]


def open_segment(path: Path) -> IO[bytes]:
    """Binary reader of one segment, decompressing ``.gz`` / ``.zst`` on the fly."""
    if path.name.endswith(".gz"):
        import gzip

        return cast(IO[bytes], gzip.open(path, "rb"))
    if path.name.endswith(".zst"):
        if _zstd is None:
            raise RuntimeError(f"{path} is zstd-compressed but the zstandard package is not installed")
        return io.BufferedReader(_zstd.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    return open(path, "rb")


def iter_lines(files: Iterable[Path]) -> Iterator[bytes]:
    """Raw lines of every segment in order (a torn last line is left to the parser, which rejects it);
    a compressed file cut short (excluded by the rename, but a copied prefix is possible) yields what
    it holds."""
    for f in files:
        with open_segment(f) as fh:
            try:
                yield from fh
            except EOFError:
                continue


def iter_records(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
                 stem: str | None = None) -> Iterator[dict[str, Any]]:
    """Parsed records of a journal source (see :func:`journal_files`); unparsable lines are skipped."""
    return file_records(journal_files(source, stem))


def file_records(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Parsed records of exactly these segment files, in order (a torn line is skipped, as read_jsonl)."""
    for line in iter_lines(files):
        if not line.strip():
            continue
        try:
            yield loads_line(line)
        except ValueError:
            continue


class JournalTail:
    """Follows a live journal across rotations, like ``tail -F``, and never loses or repeats a line.

    The writer flushes the segment and stops writing it *before* renaming it to the next number, so
    once the path names a new file, reading the old one (still open here) to its end yields all its
    lines; segments rotated out since (when several rotations fall between two reads) are read from
    their numbered files, plain or compressed; then the new current segment from its start. The tail
    starts at the current segment (older segments are history, not news).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.stem = self.path.name[: -len(".jsonl")]
        self._fh: IO[bytes] | None = None
        self._ino: int | None = None
        self._number = 0  # the number the open segment will get when it is rotated out
        self._done: int | None = None  # last numbered segment whose lines were all returned
        self._partial = b""

    def _open_current(self, out: list[bytes]) -> bool:
        for _ in range(16):
            try:
                fh = open(self.path, "rb")  # noqa: SIM115 - closed on rotation / close()
            except FileNotFoundError:
                return False
            ino = os.fstat(fh.fileno()).st_ino
            numbered = {n: p for n, p in _numbered(self.path.parent, self.stem)}
            try:
                still = os.stat(self.path).st_ino == ino
            except FileNotFoundError:
                still = False
            if not still:  # rotated while we listed: try again
                fh.close()
                continue
            top = max(numbered, default=0)
            if self._done is not None:
                for n in range(self._done + 1, top + 1):
                    self._read_numbered(n, out)
            self._fh, self._ino, self._number, self._done = fh, ino, top + 1, top
            return True
        return False

    def _read_numbered(self, n: int, out: list[bytes]) -> None:
        cands = [p for m, p in _numbered(self.path.parent, self.stem) if m == n]
        cands.sort(key=lambda p: p.suffix == ".jsonl")  # compressed (complete by rename) first
        for p in cands:
            try:
                with open_segment(p) as fh:
                    out.extend(line.rstrip(b"\n") for line in fh)
                return
            except FileNotFoundError:  # compressed and removed meanwhile: the other copy
                continue

    def lines(self) -> list[bytes]:
        """Complete lines appended since the last call (without their newline)."""
        out: list[bytes] = []
        for _ in range(64):  # bounded: rotations caught up per call
            if self._fh is None and not self._open_current(out):
                return out
            assert self._fh is not None
            self._take(self._fh.read(), out)
            try:
                ino = os.stat(self.path).st_ino
            except FileNotFoundError:
                return out
            if ino == self._ino:
                return out
            self._take(self._fh.read(), out)  # rotated: drain what was written before the rename
            self._fh.close()
            self._fh, self._partial, self._done = None, b"", self._number
        return out

    def _take(self, data: bytes, out: list[bytes]) -> None:
        if data:
            *complete, self._partial = (self._partial + data).split(b"\n")
            out.extend(complete)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
