"""TcpProxy against a real loopback echo server: forwarding, delay, freeze, cut, re-pointing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from gameday.sandbox.tcpproxy import TcpProxy
from gameday.util.net import LOOPBACK, port_open
from gameday.util.retry import wait_until


def _roundtrip(port: int, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(payload)
        return _recv_exact(s, len(payload) + 1)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def test_forwards_and_counts(echo_server: tuple[int, str]) -> None:
    port, tag = echo_server
    with TcpProxy("t", port) as p:
        with socket.create_connection((LOOPBACK, p.port), timeout=2) as s:
            s.sendall(b"abc")
            assert _recv_exact(s, len(tag) + 3) == tag.encode() + b"abc"
        # counters are bumped by the proxy thread right after forwarding: allow it a moment
        wait_until("counters", lambda: p.stats.bytes_down == 3 + len(tag) and p.stats.bytes_up == 3, 2)
        assert p.stats.accepted == 1


def test_delay_is_one_way_both_directions_and_keeps_order(echo_server: tuple[int, str]) -> None:
    port, tag = echo_server
    with TcpProxy("d", port, delay_ms=100) as p, socket.create_connection((LOOPBACK, p.port), timeout=3) as s:
        t0 = time.monotonic()
        for i in range(20):
            s.sendall(f"{i:03d}".encode())
            time.sleep(0.002)
        got = _recv_exact(s, len(tag) + 60)
        rtt = time.monotonic() - t0
        assert got == tag.encode() + b"".join(f"{i:03d}".encode() for i in range(20))
        assert 0.2 <= rtt < 1.0, rtt       # 100 ms each way
        p.set_delay(0)
        t0 = time.monotonic()
        s.sendall(b"x")
        _recv_exact(s, 1)
        assert time.monotonic() - t0 < 0.1


def test_freeze_hangs_without_closing_and_thaw_delivers(echo_server: tuple[int, str]) -> None:
    port, tag = echo_server
    with TcpProxy("f", port) as p, socket.create_connection((LOOPBACK, p.port), timeout=2) as s:
        s.sendall(b"1")
        assert _recv_exact(s, len(tag) + 1) == tag.encode() + b"1"
        p.freeze()
        s.settimeout(0.3)
        s.sendall(b"2")
        with pytest.raises(TimeoutError):
            s.recv(1)
        # a new connection is not refused, it just never gets an answer
        with socket.create_connection((LOOPBACK, p.port), timeout=1) as s2:
            s2.settimeout(0.3)
            s2.sendall(b"z")
            with pytest.raises(TimeoutError):
                s2.recv(1)
            p.thaw()
            s2.settimeout(2)
            assert _recv_exact(s2, len(tag) + 1) == tag.encode() + b"z"
        s.settimeout(2)
        assert _recv_exact(s, 1) == b"2"


def test_cut_refuses_fast_and_heal_restores(echo_server: tuple[int, str]) -> None:
    port, tag = echo_server
    with TcpProxy("c", port) as p:
        s = socket.create_connection((LOOPBACK, p.port), timeout=2)
        s.sendall(b"1")
        _recv_exact(s, len(tag) + 1)
        p.cut()
        t0 = time.monotonic()
        with pytest.raises((ConnectionError, OSError)):
            s.sendall(b"2")
            if not s.recv(1):
                raise ConnectionError("closed by proxy")
        s.close()
        with pytest.raises((ConnectionError, OSError)):
            _roundtrip(p.port)
        assert time.monotonic() - t0 < 1.0
        assert p.stats.refused >= 1
        p.heal()
        with socket.create_connection((LOOPBACK, p.port), timeout=2) as s3:
            s3.sendall(b"ok")
            assert _recv_exact(s3, len(tag) + 2) == tag.encode() + b"ok"


def test_set_upstream_moves_new_connections_and_can_drop_old(echo_server: tuple[int, str],
                                                             echo_server2: tuple[int, str]) -> None:
    (port1, tag1), (port2, tag2) = echo_server, echo_server2
    with TcpProxy("u", port1) as p:
        old = socket.create_connection((LOOPBACK, p.port), timeout=2)
        old.sendall(b"a")
        assert _recv_exact(old, len(tag1) + 1) == tag1.encode() + b"a"
        p.set_upstream(port2)
        old.sendall(b"b")                 # old connection still on the old upstream
        assert _recv_exact(old, 1) == b"b"
        with socket.create_connection((LOOPBACK, p.port), timeout=2) as new:
            new.sendall(b"c")
            assert _recv_exact(new, len(tag2) + 1) == tag2.encode() + b"c"
        p.set_upstream(port2, drop_existing=True)
        old.settimeout(2)
        with pytest.raises((ConnectionError, OSError)):
            old.sendall(b"d")
            if not old.recv(1):
                raise ConnectionError("closed by proxy")
        old.close()


def test_many_connections_and_stop_frees_port(echo_server: tuple[int, str]) -> None:
    port, tag = echo_server
    p = TcpProxy("m", port, delay_ms=1)
    errors: list[BaseException] = []
    done = []

    def client(i: int) -> None:
        try:
            with socket.create_connection((LOOPBACK, p.port), timeout=5) as s:
                _recv_exact_after(s, tag)
                for j in range(20):
                    msg = f"{i:02d}{j:02d}".encode()
                    s.sendall(msg)
                    assert _recv_exact(s, 4) == msg
                done.append(i)
        except BaseException as exc:
            errors.append(exc)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    elapsed = time.monotonic() - t0
    assert not errors, errors[:3]
    assert len(done) == 40
    assert elapsed < 5, elapsed           # 800 round trips through a 1 ms proxy
    assert p.stats.accepted == 40
    port_ = p.port
    p.stop()
    assert not port_open(port_)
    p.stop()                               # idempotent


def _recv_exact_after(s: socket.socket, tag: str) -> None:
    """The echo server greets with its tag; consume it."""
    assert _recv_exact(s, len(tag)) == tag.encode()


@pytest.mark.parametrize("lossy", [False, True])
def test_upstream_close_delivers_or_discards_held_bytes(lossy: bool) -> None:
    """A lossy link loses what its delay still holds when the upstream dies (an async standby's lag)."""
    srv = socket.create_server((LOOPBACK, 0))
    srv.settimeout(5)

    def speak_and_die() -> None:
        conn, _ = srv.accept()
        conn.sendall(b"wal-record")
        conn.close()

    t = threading.Thread(target=speak_and_die, daemon=True)
    t.start()
    try:
        with TcpProxy("az", srv.getsockname()[1], delay_ms=200, lossy_upstream_close=lossy) as p, \
                socket.create_connection((LOOPBACK, p.port), timeout=3) as s:
            got = b""
            with pytest.raises(OSError) if lossy else contextlib.nullcontext():
                while chunk := s.recv(64):
                    got += chunk
            if lossy:
                assert got == b""
                assert p.stats.discarded_chunks >= 1
            else:
                assert got == b"wal-record"
                assert p.stats.discarded_chunks == 0
    finally:
        t.join(5)
        srv.close()
