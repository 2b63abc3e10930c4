"""A small loopback TCP proxy that can delay, freeze, cut and re-point a link.

It stands in for the network between clients and databases: the writer endpoint that
follows the current primary, and the inter-region replication link whose latency makes
replica lag realistic. One asyncio loop in a daemon thread serves every connection, so
tens of connections and a few hundred round-trips per second cost almost nothing.

Semantics (what a client sees):
- ``set_delay(ms)``: every chunk is held ``ms`` before being forwarded, in both
  directions, in order (one-way latency; a round trip costs twice that).
- ``freeze()``: nothing is forwarded and new connections are accepted by the kernel but
  never answered, nothing is closed: like a network partition, clients hang until their
  own timeouts fire. ``thaw()`` resumes and delivers what was held.
- ``cut()``: every connection is closed and new ones are reset at once (fail fast).
  ``heal()`` accepts again.
- ``set_upstream(port, drop_existing=...)``: new connections go to the new port;
  with ``drop_existing`` the old ones are closed (a moved DNS/endpoint + killed sessions).
- ``lossy_upstream_close=True``: when the upstream side closes, bytes still held by the delay
  are discarded and the client's connection is reset. The delay then stands for data the
  upstream host had not sent yet, which dies with it (an asynchronous standby's lag at a
  crash of its primary). A clean upstream close that waited for the client's acknowledgement
  (a walsender at shutdown does) has nothing held, so it loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gameday.errors import SandboxError
from gameday.util.net import LOOPBACK

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHUNK = 256 * 1024
_QUEUE_CHUNKS = 4096
_CONNECT_TIMEOUT_S = 5.0


@dataclass
class ProxyStats:
    """Counters since the proxy started (read from any thread; updated only by the loop)."""

    accepted: int = 0
    active: int = 0
    refused: int = 0
    upstream_failures: int = 0
    dropped: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    chunks: int = 0
    discarded_chunks: int = 0   # held by the delay when the connection was reset or a lossy upstream closed

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(eq=False)
class _Conn:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    closed: bool = False


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0) so the peer fails at once instead of waiting."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Listen on 127.0.0.1 and forward to 127.0.0.1:upstream_port; starts at construction."""

    def __init__(self, name: str, upstream_port: int | None, *, delay_ms: float = 0.0,
                 listen_port: int | None = None, lossy_upstream_close: bool = False) -> None:
        self.name = name
        self._lossy_upstream_close = lossy_upstream_close
        self._upstream = upstream_port
        self._delay_s = max(0.0, float(delay_ms)) / 1000.0
        self._frozen = False
        self._cut = False
        self._conns: set[_Conn] = set()
        self.stats = ProxyStats()
        self._loop = asyncio.new_event_loop()
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._server: asyncio.base_events.Server | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcpproxy-{name}", daemon=True)
        self._thread.start()
        try:
            self._server = self._call(lambda: asyncio.start_server(
                self._handle, LOOPBACK, listen_port or 0, reuse_address=True, backlog=512))
        except Exception as exc:
            self._shutdown_loop()
            where = f"{LOOPBACK}:{listen_port or 0}"
            raise SandboxError(f"proxy {name}: cannot listen on {where}: {exc}") from exc
        self.port: int = int(self._server.sockets[0].getsockname()[1])

    # ----------------------------------------------------------------- public API
    @property
    def upstream_port(self) -> int | None:
        return self._upstream

    @property
    def delay_ms(self) -> float:
        return self._delay_s * 1000.0

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def active_connections(self) -> int:
        return self.stats.active

    def set_upstream(self, port: int | None, *, drop_existing: bool = False) -> None:
        """New connections go to port (None: refuse them); optionally close current ones."""
        async def go() -> None:
            self._upstream = port
            if drop_existing:
                self._drop_all()
        self._call(go)

    def set_delay(self, ms: float) -> None:
        """One-way delay per chunk, both directions; applies to chunks read from now on."""
        self._delay_s = max(0.0, float(ms)) / 1000.0

    def freeze(self) -> None:
        """Stop forwarding and answering without closing anything (a partition: clients hang)."""
        async def go() -> None:
            self._frozen = True
            self._thawed.clear()
        self._call(go)

    def thaw(self) -> None:
        """Resume forwarding; held bytes and pending connections proceed."""
        async def go() -> None:
            self._frozen = False
            self._thawed.set()
        self._call(go)

    def cut(self) -> None:
        """Close every connection and reset new ones until heal()."""
        async def go() -> None:
            self._cut = True
            self._drop_all()
        self._call(go)

    def heal(self) -> None:
        """Accept and forward again after cut()."""
        async def go() -> None:
            self._cut = False
        self._call(go)

    def drop_connections(self) -> None:
        """Close every current connection (new ones are still accepted)."""
        async def go() -> None:
            self._drop_all()
        self._call(go)

    def stop(self) -> None:
        """Close the listener and every connection, stop the thread; idempotent."""
        if self._stopped:
            return
        self._stopped = True

        async def go() -> None:
            if self._server is not None:
                self._server.close()
            self._drop_all()
            self._thawed.set()
        with contextlib.suppress(Exception):
            self._call(go)
        self._shutdown_loop()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"TcpProxy({self.name!r}, port={getattr(self, 'port', None)}, upstream={self._upstream}, "
                f"delay_ms={self.delay_ms:g}, frozen={self._frozen}, cut={self._cut})")

    # ----------------------------------------------------------------- internals
    def _call(self, fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run a coroutine on the proxy loop and wait for it (bounded)."""
        if self._stopped and not self._loop.is_running():
            raise SandboxError(f"proxy {self.name} is stopped")

        async def wrapper() -> T:
            return await fn()
        fut = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return fut.result(timeout)

    def _shutdown_loop(self) -> None:
        async def cancel_all() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    def _drop_all(self) -> None:
        for conn in list(self._conns):
            self._close(conn, reset=True)
            self.stats.dropped += 1

    def _close(self, conn: _Conn, *, reset: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._conns.discard(conn)
        self.stats.active = len(self._conns)
        for w in (conn.client, conn.upstream):
            if w is None:
                continue
            if reset:
                _rst(w)
            else:
                w.close()
        current = asyncio.current_task()
        for t in conn.tasks:
            if t is not current:
                t.cancel()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        if self._cut or self._upstream is None:
            self.stats.refused += 1
            _rst(cwriter)
            return
        conn = _Conn(cwriter)
        me = asyncio.current_task()
        if me is not None:
            conn.tasks.add(me)
        self._conns.add(conn)
        self.stats.accepted += 1
        self.stats.active = len(self._conns)
        try:
            await self._thawed.wait()          # frozen: the client hangs, nothing is answered
            if conn.closed:
                return
            port = self._upstream
            if port is None:
                self.stats.refused += 1
                self._close(conn, reset=True)
                return
            try:
                ureader, uwriter = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, port),
                                                          _CONNECT_TIMEOUT_S)
            except (TimeoutError, OSError):
                self.stats.upstream_failures += 1
                self._close(conn, reset=True)
                return
            if conn.closed:
                _rst(uwriter)
                return
            conn.upstream = uwriter
            for sock_writer in (cwriter, uwriter):
                s = sock_writer.get_extra_info("socket")
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up = asyncio.ensure_future(self._pipe(conn, creader, uwriter, up=True))
            down = asyncio.ensure_future(self._pipe(conn, ureader, cwriter, up=False))
            conn.tasks.update((up, down))
            await asyncio.gather(up, down, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            self._close(conn)

    async def _pipe(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    *, up: bool) -> None:
        """Forward one direction: a reader task stamps chunks, a sender releases them in order."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(_QUEUE_CHUNKS)
        held = [0]   # chunks read but not yet written
        loop = asyncio.get_running_loop()

        async def send() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    with contextlib.suppress(OSError, RuntimeError):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                release, data = item
                wait = release - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not self._thawed.is_set():
                    await self._thawed.wait()
                held[0] -= 1
                writer.write(data)
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                self.stats.chunks += 1
                await writer.drain()

        sender = asyncio.ensure_future(send())
        conn.tasks.add(sender)

        def sender_done(t: asyncio.Task[None]) -> None:
            if not t.cancelled() and t.exception() is not None:
                self._close(conn, reset=True)
        sender.add_done_callback(sender_done)
        try:
            while True:
                if not self._thawed.is_set():
                    await self._thawed.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                held[0] += 1
                await queue.put((loop.time() + self._delay_s, data))
            if not up and self._lossy_upstream_close:
                sender.cancel()
                self.stats.discarded_chunks += held[0]
                self._close(conn, reset=True)
                return
            await queue.put(None)
            await sender
        except (OSError, asyncio.IncompleteReadError):
            sender.cancel()              # a reset connection: what the delay held is gone either way
            self.stats.discarded_chunks += held[0]
            self._close(conn, reset=True)
        except asyncio.CancelledError:
            sender.cancel()
            raise
        except Exception:  # pragma: no cover - defensive: never kill the loop
            log.exception("proxy %s: pipe failed", self.name)
            sender.cancel()
            self._close(conn, reset=True)
