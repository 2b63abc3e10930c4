"""Node lifecycle: data directories, postgresql.conf, start/stop/signal, superuser sessions, waits."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from gameday.errors import CommandFailed, SandboxError, TimeoutExceeded
from gameday.sandbox.pg.common import (
    HIST_RE,
    REPL_USER,
    SUPERUSER,
    TL_SQL,
    ClusterState,
    Node,
    conf_str,
    lsn,
)
from gameday.util.net import LOOPBACK
from gameday.util.procs import kill_group, process_tree
from gameday.util.retry import wait_until


class NodeOps(ClusterState):
    """Everything about one PostgreSQL node, independent of the topology around it."""

    def _choose_root(self) -> tuple[Path, bool]:
        """base_dir if the postgres user can reach it, else a private /tmp dir (root's home is 0700)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._ids is None or self._traversable(self.base_dir):
            root = self.base_dir / "pg"
            root.mkdir(exist_ok=True)
            return root, False
        root = Path(tempfile.mkdtemp(prefix="gameday-pgdata-", dir="/tmp"))
        os.chmod(root, 0o711)
        with contextlib.suppress(OSError):
            link = self.base_dir / "pg"
            if link.is_symlink() or not link.exists():
                link.unlink(missing_ok=True)
                link.symlink_to(root)
        return root, True

    def _traversable(self, path: Path) -> bool:
        assert self._ids is not None
        uid, gid = self._ids
        for p in [path, *path.parents]:
            st = p.stat()
            if st.st_uid == uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid == gid:
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if not ok:
                return False
        return True

    def _chown(self, path: Path) -> None:
        if self._ids is not None:
            os.chown(path, *self._ids)

    def _wipe(self, node: Node) -> None:
        self._drop_shm(node)
        shutil.rmtree(node.dir, ignore_errors=True)
        node.dir.mkdir(parents=True, exist_ok=True)
        node.sock.mkdir(parents=True, exist_ok=True)
        for p in (node.dir, node.sock):
            os.chmod(p, 0o700)
            self._chown(p)

    def _drop_shm(self, node: Node) -> None:
        """Remove the SysV segment a SIGKILLed postmaster leaves behind (its key is in postmaster.pid)."""
        pidfile = node.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError, subprocess.SubprocessError):
            key, shmid = (int(x) for x in pidfile.read_text().splitlines()[6].split()[:2])
            # read directly: psutil has no SysV IPC API
            for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
                f = line.split()
                # only our segment (same key and id) and only when nothing is attached any more
                if int(f[0]) == key and int(f[1]) == shmid and int(f[6]) == 0:
                    subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, timeout=5)

    def _run_as_pg(self, argv: list[str], what: str, *, timeout: float) -> str:
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": str(self._root)}
        kw: dict[str, Any] = {}
        if self._ids is not None:
            kw = {"user": self._ids[0], "group": self._ids[1], "extra_groups": []}
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                                 cwd=str(self._root), **kw)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutExceeded(what, timeout) from exc
        if out.returncode != 0:
            raise CommandFailed(argv, out.returncode, out.stderr + out.stdout, summary=f"{what} failed")
        return out.stdout + out.stderr

    def _basebackup(self, node: Node, source: Node) -> None:
        self._wipe(node)
        self._run_as_pg([str(self.bin / "pg_basebackup"), "-D", str(node.data), "-h", str(source.sock),
                         "-p", str(source.port), "-U", REPL_USER, "-X", "stream", "-c", "fast", "--no-sync",
                         "-w"], f"pg_basebackup {node.name} from {source.name}", timeout=120)

    def _write_config(self, node: Node, *, primary: bool, upstream: str | None = None,
                      sync_names: str | None = None) -> None:
        """Write the node's whole postgresql.conf (ours, not the copied one) and reload if running."""
        if sync_names is None:
            sync_names = self.standby() if (primary and self.synchronous) else ""
        conninfo = ""
        if not primary:
            node.upstream = upstream
            if upstream in ("link", "az"):
                conninfo = make_conninfo(host=LOOPBACK, port=self.proxies[upstream].port, user=REPL_USER,
                                         password=str(self.repl_password), application_name=node.name,
                                         connect_timeout=2)
            elif upstream:
                src = self.nodes[upstream]
                conninfo = make_conninfo(host=str(src.sock), port=src.port, user=REPL_USER,
                                         application_name=node.name, connect_timeout=2)
        sync = f'FIRST 1 ("{sync_names}")' if sync_names else ""
        lines = {
            "listen_addresses": conf_str(LOOPBACK), "port": str(node.port),
            "unix_socket_directories": conf_str(str(node.sock)), "max_connections": "200",
            "shared_buffers": "'32MB'", "dynamic_shared_memory_type": "posix",
            "fsync": "on" if self.fsync else "off", "synchronous_commit": "on", "full_page_writes": "on",
            "wal_level": "replica", "wal_log_hints": "on", "wal_keep_size": f"'{self.wal_keep_size_mb}MB'",
            "max_wal_size": "'1GB'", "max_wal_senders": "10", "max_replication_slots": "10",
            "hot_standby": "on", "hot_standby_feedback": "on", "wal_receiver_status_interval": "'1s'",
            "wal_retrieve_retry_interval": "'200ms'", "wal_sender_timeout": "'15s'",
            "wal_receiver_timeout": "'15s'", "synchronous_standby_names": conf_str(sync),
            "primary_conninfo": conf_str(conninfo), "recovery_target_timeline": "'latest'",
            "log_line_prefix": "'%m [%p] %a '", "lc_messages": "'C'", "timezone": "'UTC'",
            "log_min_error_statement": "panic", "log_connections": "off",
            "cluster_name": conf_str(node.name),
            "checkpoint_timeout": "'5min'", "log_checkpoints": "off",
        }
        text = "# written by gameday.sandbox.pg; rewritten on every role change\n"
        text += "".join(f"{k} = {v}\n" for k, v in lines.items())
        self._write_pg_file(node.data / "postgresql.conf", text)
        self._write_pg_file(node.data / "postgresql.auto.conf", "# unused: see postgresql.conf\n")
        self._write_pg_file(node.data / "pg_hba.conf", (
            "local all all trust\n"
            "local replication all trust\n"
            "host replication replicator 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"))
        for sig in ("standby.signal", "recovery.signal"):
            (node.data / sig).unlink(missing_ok=True)
        if not primary:
            self._write_pg_file(node.data / "standby.signal", "")
        if node.alive() and not node.frozen and node.proc is not None:
            os.kill(node.proc.pid, signal.SIGHUP)
            if primary:
                self._wait_setting(node, "synchronous_standby_names", sync)

    def _wait_setting(self, node: Node, name: str, value: str) -> None:
        def ok() -> bool:
            try:
                with self._su(node, timeout=2) as conn:
                    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                return row is not None and row[0] == value
            except psycopg.Error:
                return False
        wait_until(f"{node.name}: {name} reloaded", ok, 10, 0.02)

    def _write_pg_file(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        self._chown(path)

    def _start_node(self, node: Node) -> None:
        name = f"{self.name_prefix}-{node.name}"
        if name in self.registry.procs:
            self.registry.forget(name)
        self._drop_shm(node)
        node.proc = self.registry.spawn(name, [str(self.bin / "postgres"), "-D", str(node.data)],
                                        log=node.log, unprivileged=True, cwd=str(self._root))
        node.frozen = False

        def ready() -> bool:
            if not node.alive():
                rc = node.proc.popen.returncode if node.proc else None
                raise SandboxError(f"postgres {node.name} exited at start (rc={rc}); see {node.log}:\n"
                                   f"{self._log_tail(node)}")
            try:
                with self._su(node, timeout=1):
                    return True
            except psycopg.Error:
                return False
        wait_until(f"postgres {node.name} to accept connections", ready, self.start_timeout_s, 0.03)

    def _stop_node(self, node: Node, *, fast: bool) -> None:
        """Fast shutdown (SIGINT to the postmaster) when fast and alive, then make sure the group is gone."""
        name = f"{self.name_prefix}-{node.name}"
        if node.proc is not None:
            if node.frozen:
                self._signal(node, signal.SIGCONT)
            if fast and node.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.proc.pid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.popen.wait(5)
            self._kill_tree(node)
            kill_group(node.proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.popen.wait(5)
            self.registry.forget(name)
        node.proc = None
        node.frozen = False

    def _signal(self, node: Node, sig: int) -> None:
        """Signal the postmaster and every child (each child is its own process group)."""
        if node.proc is None:
            return
        pids = process_tree(node.proc.pid)
        if sig == signal.SIGCONT:
            pids.reverse()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        # A stopped child never notices its postmaster dying: record each one while frozen so
        # kill_recorded() (cleanup after a crash of ours) can still SIGCONT+SIGKILL it.
        prefix = f"{self.name_prefix}-{node.name}-frozen-"
        if sig == signal.SIGSTOP:
            for pid in pids[1:]:
                self.registry.adopt(f"{prefix}{pid}", pid)
        elif sig == signal.SIGCONT:
            for path in self.registry.dir.glob(f"{prefix}*.json"):
                path.unlink(missing_ok=True)

    def _kill_tree(self, node: Node) -> None:
        """SIGKILL the whole node at once (stop everything first so nothing forks or reacts)."""
        if node.proc is None or node.proc.popen.poll() is not None:
            return
        pids = process_tree(node.proc.pid)
        for sig in (signal.SIGSTOP, signal.SIGKILL, signal.SIGCONT):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    @contextlib.contextmanager
    def _su(self, node: Node, *, timeout: int = 3,
            dbname: str = "postgres") -> Iterator[psycopg.Connection[Any]]:
        """Superuser session over the node's unix socket (trust), for control queries."""
        conn = psycopg.connect(host=str(node.sock), port=node.port, user=SUPERUSER, dbname=dbname,
                               autocommit=True, connect_timeout=max(1, timeout))
        try:
            yield conn
        finally:
            conn.close()

    def _bootstrap(self, node: Node) -> None:
        with self._su(node, timeout=5) as conn:
            conn.execute("SET log_min_error_statement = panic")
            for role, attrs, pw in ((self.user, "LOGIN", self.password),
                                    (REPL_USER, "LOGIN REPLICATION", self.repl_password)):
                # libpq computes the SCRAM-SHA-256 verifier client-side: the plain password never
                # reaches the server (nor its log, nor pg_stat_activity)
                verifier = conn.pgconn.encrypt_password(str(pw).encode(), role.encode(), b"scram-sha-256")
                conn.execute(sql.SQL("CREATE ROLE {} " + attrs + " PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(verifier.decode("ascii"))))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.db_name),
                                                                       sql.Identifier(self.user)))
        with self._su(node, timeout=5, dbname=self.db_name) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.user)))
            conn.execute("CREATE TABLE records (id text PRIMARY KEY, service text, region text,"
                         " payload jsonb, created_at timestamptz NOT NULL DEFAULT now())")

    def _wait_streaming(self, primary: Node, standby: Node, *, sync: bool, timeout: float = 30.0) -> None:
        def ok() -> bool:
            if not standby.alive():
                raise SandboxError(f"{standby.name} died while joining {primary.name}:\n"
                                   f"{self._log_tail(standby)}")
            try:
                with self._su(primary, timeout=2) as conn:
                    row = conn.execute("SELECT state, sync_state FROM pg_stat_replication"
                                       " WHERE application_name = %s", (standby.name,)).fetchone()
            except psycopg.Error:
                return False
            return row is not None and row[0] == "streaming" and (not sync or row[1] == "sync")
        what = f"{standby.name} streaming from {primary.name}{' (sync)' if sync else ''}"
        wait_until(what, ok, timeout, 0.03)

    def _timeline(self, node: Node) -> int:
        with self._su(node, timeout=3) as conn:
            row = conn.execute(f"SELECT {TL_SQL}").fetchone()
        assert row is not None
        return int(row[0])

    def _switch_lsn(self, node: Node, timeline: int) -> int:
        """LSN where ``timeline`` forked from its parent (last line of its .history file)."""
        path = node.data / "pg_wal" / f"{timeline:08X}.history"
        try:
            lines = [m for m in (HIST_RE.match(x) for x in path.read_text().splitlines()) if m]
        except OSError:
            return 0
        return lsn(lines[-1].group(2)) if lines else 0

    def _log_tail(self, node: Node, n: int = 15) -> str:
        try:
            return "\n".join(node.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

