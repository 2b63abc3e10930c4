"""Resolve logical database endpoints from the configuration and open short-lived connections.

An ``endpoint`` argument is either a logical name (``writer``, ``writer:<region>``,
``reader:<region>``) resolved through the configuration, or a literal ``host:port`` that must be
loopback or one of the configured endpoints (activities never connect anywhere else).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg

from gameday.chaos._common import ActivityFailed, db_password, json_value, scrub

CONNECT_TIMEOUT_S = 3


def _by_region(value: Any, name: str) -> dict[str, str]:
    value = json_value(value, name)
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def configured_endpoints(configuration: Mapping[str, Any] | None) -> dict[str, str]:
    """Every logical endpoint the configuration names: ``writer``, ``writer:<r>``, ``reader:<r>``."""
    cfg = dict(configuration or {})
    out: dict[str, str] = {}
    writer = json_value(cfg.get("gameday_db_writer"), "gameday_db_writer")
    primary = str(cfg.get("gameday_primary_region") or cfg.get("aws_region") or "")
    if isinstance(writer, str) and writer:
        out["writer"] = writer
        if primary:
            out[f"writer:{primary}"] = writer
    for region, hp in _by_region(writer, "gameday_db_writer").items():
        out[f"writer:{region}"] = hp
    if "writer" not in out and out:
        out["writer"] = out.get(f"writer:{primary}") or next(iter(out.values()))
    for region, hp in _by_region(cfg.get("gameday_db_reader"), "gameday_db_reader").items():
        out[f"reader:{region}"] = hp
    for key, value in cfg.items():
        if key.startswith("gameday_db_reader_") and isinstance(value, str) and value:
            out[f"reader:{key[len('gameday_db_reader_'):]}"] = value
    return out


def resolve(endpoint: str, configuration: Mapping[str, Any] | None) -> tuple[str, int]:
    """host, port of a logical endpoint name or an allowed literal host:port."""
    known = configured_endpoints(configuration)
    hostport = known.get(endpoint)
    if hostport is None:
        if endpoint in known.values() or _is_loopback(endpoint.rsplit(":", 1)[0]):
            hostport = endpoint
        else:
            raise ActivityFailed(f"unknown database endpoint {endpoint!r}; known: {sorted(known)} "
                                 "(or a loopback host:port)")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ActivityFailed(f"database endpoint {endpoint!r} -> {hostport!r} is not host:port")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


@contextlib.contextmanager
def connect(endpoint: str, configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None,
            timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to endpoint; errors never carry the password."""
    cfg = dict(configuration or {})
    host, port = resolve(endpoint, cfg)
    password = db_password(secrets)
    try:
        conn = psycopg.connect(host=host, port=port, dbname=str(cfg.get("gameday_db_name") or "postgres"),
                               user=str(cfg.get("gameday_db_user") or "postgres"), password=str(password),
                               connect_timeout=max(1, int(timeout_s)), autocommit=True,
                               application_name="gameday-chaos")
    except psycopg.Error as exc:
        raise ActivityFailed(f"cannot connect to database {endpoint} ({host}:{port}): "
                             f"{scrub(str(exc), password)}") from None  # text kept, scrubbed; cause dropped
    try:
        yield conn
    except psycopg.Error as exc:
        # The driver error's text is kept (scrubbed); its object is dropped so no trace can show the password.
        raise ActivityFailed(f"database {endpoint} ({host}:{port}): {scrub(str(exc), password)}") from None
    finally:
        conn.close()


def scalar(conn: psycopg.Connection[Any], query: Any, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None
