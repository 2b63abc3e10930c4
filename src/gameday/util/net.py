"""Loopback-only networking helpers: every listener of the harness binds 127.0.0.1."""

from __future__ import annotations

import socket

from gameday.util.retry import wait_until

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1 (racy by nature; callers bind soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    assert_loopback(host)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, timeout: float = 10.0, host: str = LOOPBACK, what: str | None = None) -> None:
    """Block until host:port accepts connections, or raise TimeoutExceeded."""
    wait_until(what or f"port {host}:{port} to open", lambda: port_open(port, host), timeout, interval=0.05)


def assert_loopback(host: str) -> None:
    """Refuse any target outside 127.0.0.0/8: the sandbox never sends traffic elsewhere."""
    if host in ("localhost", "::1") or host.startswith("127."):
        return
    raise ValueError(f"refusing non-loopback address {host!r}: the sandbox only talks to 127.0.0.0/8")
