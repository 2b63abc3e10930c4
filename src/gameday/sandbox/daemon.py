"""The sandbox daemon: control plane + Terraform apply + data plane + controller in one process.

Started in the background by ``gameday sandbox up`` (and by the pytest fixture), it writes
``endpoints.json`` when everything is healthy and tears everything down on SIGTERM/SIGINT,
also when start-up fails half-way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gameday.errors import GamedayError, SandboxError
from gameday.provision.topology import ROUTING_MODES
from gameday.sandbox import moto_patches, routing, steady
from gameday.sandbox.controller import ACCOUNT, Controller, ServiceMap, Variant, python_argv
from gameday.sandbox.events import EventLog
from gameday.sandbox.faults import ApiFaults
from gameday.sandbox.lateness import LatenessMonitor
from gameday.sandbox.timing import TimingProfile, get_profile
from gameday.target import SANDBOX_CREDENTIALS, Endpoints
from gameday.util.net import LOOPBACK
from gameday.util.procs import ProcessRegistry, kill_recorded
from gameday.util.redact import Secret
from gameday.util.retry import poll_until

log = logging.getLogger("gameday.sandbox")

class Sandbox:
    """One two-region sandbox on this machine, living in ``state_dir``."""

    def __init__(self, state_dir: Path, timing: TimingProfile, variant: Variant | None = None,
                 progress: Any = None, routing_mode: str = "global_accelerator",
                 var_files: tuple[str, ...] = (), tf_vars: tuple[str, ...] = (),
                 snapshots: str = "use") -> None:
        self.snapshots = snapshots  # use (restore or save), cold (apply, then replace), off
        self.restored_from: str | None = None
        self.state_dir = Path(state_dir)
        self.routing_mode = routing_mode
        self.var_files = tuple(var_files)  # the user's .tfvars, in endpoints.json / status
        self.tf_vars = tuple(tf_vars)
        self.timing = timing
        self.variant = variant or Variant()
        self.progress = progress or (lambda msg: log.info(msg))
        self.registry = ProcessRegistry(self.state_dir)
        self.events = EventLog(self.state_dir / "events.jsonl")
        self.lateness = LatenessMonitor(self.events)  # host starvation figures for the drill verdicts
        self.password = Secret(secrets.token_urlsafe(18))
        self.cp: Any = None
        self.pg: Any = None
        self.router: Any = None
        self.albs: dict[tuple[str, str], Any] = {}
        self.controller: Controller | None = None
        self.topology: Any = None
        self.endpoints: Endpoints | None = None
        self.admin: ThreadingHTTPServer | None = None
        self.faults = ApiFaults(self)
        self._bg: list[threading.Thread] = []
        self._declared_dials: dict[str, dict[str, float]] = {}
        self._declared_weights: dict[str, dict[str, int]] = {}
        self._endpoint_health: dict[tuple[str, str], str] = {}
        self._metrics_stop = threading.Event()
        self.monitoring: Any = None

    # -- bring-up ----------------------------------------------------------------------------
    def up(self) -> Endpoints:
        from gameday.provision.sandbox import check_sandbox_vars

        check_sandbox_vars(self.var_files, self.tf_vars)  # before anything starts (ConfigError names the fix)
        t0 = time.monotonic()
        self.lateness.start()
        from urllib.parse import urlsplit

        from gameday.controlplane import ControlPlane
        from gameday.sandbox import snapshot
        from gameday.util.net import free_port

        key, parts, snap = snapshot.find(self.snapshots, self.routing_mode, self.var_files, self.tf_vars,
                                         self.progress)
        port = free_port()
        if snap is not None:  # moto's state is process-global: install it before anything serves or reads it
            snapshot.load_controlplane(snap.path / "controlplane.pickle",
                                       urlsplit(str(snap.meta.get("endpoint_url", ""))).netloc, f"{LOOPBACK}:{port}")
        self.cp = ControlPlane(port=port)
        self.cp.start()
        moto_patches.patch_moto(self._target_health)
        self.progress(f"control plane at {self.cp.url}")
        if snap is not None:
            self.password = Secret(snap.password)  # the one the restored RDS instances hold
            snapshot.restore_terraform(snap, self.state_dir, self.cp.url)
            from gameday.provision.topology import Topology

            self.topology = Topology.load(self.state_dir / "topology.json")
            self.restored_from = snap.key
            self.progress(f"restored snapshot {snap.key} in {time.monotonic() - t0:.1f} s (no terraform apply)")
        else:
            self.topology = self._provision()
            self.progress(f"terraform applied in {time.monotonic() - t0:.1f} s")
            if key is not None and parts is not None:
                snapshot.save_after_apply(key, parts, self.snapshots, self.state_dir, self.cp,
                                          time.monotonic() - t0, self.progress)
        self._start_database()
        self.progress(f"PostgreSQL primary, synchronous standby and cross-region replica streaming "
                      f"({time.monotonic() - t0:.1f} s)")
        smap = self._service_map()
        self._start_load_balancers(smap)
        self._start_router()
        self.controller = Controller(
            state_dir=self.state_dir, registry=self.registry, events=self.events, timing=self.timing,
            regions=(self.topology.primary_region, self.topology.recovery_region),
            services=list(self.topology.services), smap=smap, albs=self.albs, router=self.router, pg=self.pg,
            instance_env=self._instance_env, on_router_states=self._report_endpoint_health,
            note_lateness=self.lateness.note, moto_lock=self.cp.quiesced,
        )
        self.faults.install(self.cp.hooks, smap)
        self.controller.start()
        self._start_metrics()
        self._start_monitoring()
        self._wait_healthy()
        self.endpoints = self._endpoints()
        self._start_admin()
        self.endpoints = self._endpoints()
        self.endpoints.save(self.state_dir / "endpoints.json")
        self.events.emit("sandbox_up", seconds=round(time.monotonic() - t0, 3), timing=self.timing.name,
                         snapshot=self.restored_from)
        self.progress(f"sandbox up: all services healthy in {time.monotonic() - t0:.1f} s")
        return self.endpoints

    def _provision(self) -> Any:
        from gameday.provision.sandbox import apply_sandbox_stack

        return apply_sandbox_stack(self.cp.url, self.state_dir / "terraform", self.password,
                                   progress=self.progress, routing_mode=self.routing_mode,
                                   var_files=self.var_files, tf_vars=self.tf_vars)

    def _start_database(self) -> None:
        """The data plane follows the control plane: MultiAZ and engine version of the primary as created."""
        from gameday.sandbox import rds
        from gameday.sandbox.pg import PgCluster

        topo = self.topology
        settings = rds.instance_settings(topo.primary_region, topo.database.primary_identifier)
        self.pg = PgCluster(
            self.state_dir / "pg", self.registry, self.events,
            primary_region=topo.primary_region, recovery_region=topo.recovery_region,
            password=str(self.password), db_name=topo.database.db_name, user=topo.database.username,
            link_delay_ms=self.variant.link_delay_ms, synchronous=self.variant.synchronous_standby,
            standby_delay_ms=self.variant.standby_delay_ms,
            failover_delay_s=self.timing.s(self.timing.db_failover_s),
            failover_detect_s=self.timing.s(self.timing.db_crash_detect_s),
            multi_az=settings.multi_az, engine_version=settings.engine_version,
            single_az_recovery_s=self.timing.s(self.timing.db_single_az_recovery_s),
        )
        self.pg.start()
        rds.RdsControlPlane(self.cp.hooks, self.pg, primary_region=topo.primary_region,
                            primary_identifier=topo.database.primary_identifier).install()

    def _service_map(self) -> ServiceMap:
        smap = ServiceMap()
        for name, svc in self.topology.services.items():
            for region, sr in svc.regions.items():
                smap.asg[(name, region)] = sr.asg_name
                smap.target_group[(name, region)] = sr.target_group_arn
            for region, arn in svc.endpoint_group_arns.items():
                smap.endpoint_group[arn] = (name, region)
            for region, hc_id in svc.health_check_ids.items():
                smap.health_check[hc_id] = (name, region)
        return smap

    def _start_load_balancers(self, smap: ServiceMap) -> None:
        from moto.elbv2.models import elbv2_backends

        from gameday.sandbox.haproxy import AlbProxy, HealthCheck

        for (svc, region), tg_arn in smap.target_group.items():
            tg = elbv2_backends[ACCOUNT][region].target_groups[tg_arn]
            hc = HealthCheck(
                path=tg.health_check_path or "/health",
                interval_s=self.timing.interval(float(tg.health_check_interval_seconds or 30)),
                timeout_s=self.timing.timeout(float(tg.health_check_timeout_seconds or 5)),
                healthy_threshold=int(tg.healthy_threshold_count or 5),
                unhealthy_threshold=int(tg.unhealthy_threshold_count or 2),
            )
            # the target group's deregistration_delay: how long a deregistering target keeps its
            # in-flight requests (ELBv2 default 300 s when the attribute is unset)
            delay = float(str(tg.attributes.get("deregistration_delay.timeout_seconds", 300)))
            alb = AlbProxy(f"alb-{svc}-{region}", self.state_dir / "haproxy", self.registry, hc,
                           deregistration_delay_s=self.timing.s(delay))
            alb.start()
            self.albs[(svc, region)] = alb
        self.progress(f"{len(self.albs)} load balancers (HAProxy) listening")

    def _start_router(self) -> None:
        from gameday.sandbox.haproxy import GlobalRouter

        topo = self.topology
        primary, recovery = topo.primary_region, topo.recovery_region
        self.router = GlobalRouter(self.state_dir / "haproxy", self.registry,
                                   health_checks=self.variant.router_health_checks)
        for name, svc in topo.services.items():
            if topo.routing_mode == "route53":
                hcs = {r: routing.route53_health(svc.health_check_ids[r], self.timing) for r in topo.regions}
                dials = {r: 100.0 for r in topo.regions}
                weights = {r: 128 for r in topo.regions}
                dns_ttl: float | None = self.timing.s(routing.route53_ttl(svc.route53_zone_id, svc.global_dns_name))
            else:
                groups = {r: routing.endpoint_group(svc.endpoint_group_arns[r]) for r in topo.regions}
                hcs = {r: routing.ga_health(g, self.timing) for r, g in groups.items()}
                # the dials and endpoint weights the Terraform declared: what the router starts with
                # and what reset restores
                dials = {r: float(g.traffic_dial_percentage) for r, g in groups.items()}
                weights = {r: routing.endpoint_weight(g) for r, g in groups.items()}
                dns_ttl = None
            self._declared_dials[name] = dict(dials)
            self._declared_weights[name] = dict(weights)
            self.router.add_service(name, primary, self.albs[(name, primary)].port,
                                    recovery, self.albs[(name, recovery)].port, hcs[primary],
                                    recovery_health=hcs[recovery], dials=dials, weights=weights,
                                    dns_ttl_s=dns_ttl)
        self.router.start()
        how = "Route 53 failover records" if topo.routing_mode == "route53" else "Global Accelerator"
        self.progress(f"global router (HAProxy, as {how}) listening")

    def _instance_env(self, svc: str, region: str) -> tuple[list[str], dict[str, str]]:
        topo = self.topology
        reader_region = region if (self.variant.replica_reads or region == topo.primary_region) \
            else topo.primary_region
        argv = [*python_argv(), "--service", svc, "--region", region,
                "--db-writer", f"{LOOPBACK}:{self.pg.writer_port(region)}",
                "--db-reader", f"{LOOPBACK}:{self.pg.reader_port(reader_region)}",
                "--db-name", topo.database.db_name, "--db-user", topo.database.username,
                # health follows the region's own database endpoint (the local replica in recovery), so a
                # dead primary region does not also take down reads in the recovery region
                "--health-db", "reader", "--health-db-grace", f"{self.timing.s(self.timing.db_health_grace_s):.3f}"]
        queue = topo.queues.get(region)
        if queue:
            argv += ["--queue-url", queue, "--sqs-endpoint", self.cp.url]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GAMEDAY_DB"))}
        env.update(SANDBOX_CREDENTIALS)
        env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "GAMEDAY_DB_PASSWORD": str(self.password)})
        return argv, env

    def _wait_healthy(self, timeout: float = 120.0) -> None:
        assert self.controller is not None
        want = {(s, r) for s in self.topology.services for r in self.topology.regions}

        def ready() -> bool:
            healthy = {key for key, alb in self.albs.items()
                       if any(v == "healthy" for v in alb.target_health().values())}
            return healthy >= want and all(self.router.active_region(s) == self.topology.primary_region
                                           for s in self.topology.services)

        if poll_until(ready, timeout):
            return
        raise SandboxError(f"services not healthy after {timeout:.0f} s: "
                           f"{json.dumps(self.controller.status()['instances'])[:2000]}")

    def _endpoints(self) -> Endpoints:
        topo = self.topology
        return Endpoints(
            kind="sandbox", primary_region=topo.primary_region, recovery_region=topo.recovery_region,
            aws_endpoint_url=self.cp.url,
            services={s: f"http://{LOOPBACK}:{self.router.service_port(s)}" for s in topo.services},
            regional={s: {r: f"http://{LOOPBACK}:{self.albs[(s, r)].port}" for r in topo.regions}
                      for s in topo.services},
            db_writer={r: f"{LOOPBACK}:{self.pg.writer_port(r)}" for r in topo.regions},
            db_reader={r: f"{LOOPBACK}:{self.pg.reader_port(r)}" for r in topo.regions},
            events_path=str(self.state_dir / "events.jsonl"), state_dir=str(self.state_dir),
            admin_url=f"http://{LOOPBACK}:{self.admin.server_address[1]}" if self.admin else None,
            var_files=list(self.var_files),
            prometheus=self.monitoring.urls() if self.monitoring else {},
        )

    def _start_metrics(self, period_s: float = 1.0) -> None:
        """Publish the replica's real lag as CloudWatch ``AWS/RDS ReplicaLag`` (seconds), as RDS does."""
        from datetime import UTC, datetime

        from moto.cloudwatch.models import cloudwatch_backends

        replica = self.topology.database.replica_identifier
        backend = cloudwatch_backends[ACCOUNT][self.topology.recovery_region]

        def loop() -> None:
            while not self._metrics_stop.wait(period_s):
                try:
                    lag = float(self.pg.replica_lag_seconds())
                except Exception:
                    continue
                backend.put_metric_data("AWS/RDS", [{
                    "MetricName": "ReplicaLag", "Value": lag, "Unit": "Seconds",
                    "Timestamp": datetime.now(UTC).replace(tzinfo=None),  # moto compares naive UTC
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": replica}]}])

        threading.Thread(target=loop, name="replica-lag-metric", daemon=True).start()

    def _start_monitoring(self) -> None:
        """One Prometheus per region (see sandbox/monitoring.py); registered, so teardown kills it."""
        from gameday.sandbox.monitoring import Monitoring

        self.monitoring = Monitoring(self.state_dir, self.registry, self.timing,
                                     (self.topology.primary_region, self.topology.recovery_region),
                                     self.controller, self.albs, self.pg)
        self.monitoring.start()
        self.progress(f"Prometheus per region: {', '.join(self.monitoring.urls().values())}")

    # -- AWS API calls that take real effect -------------------------------------------------
    def _report_endpoint_health(self, states: dict[str, Any]) -> None:
        """DescribeEndpointGroup reports each ALB endpoint's health as the router's checks see it."""
        from gameday.controlplane.globalaccelerator.models import ga_backends

        if self.topology is None or self.topology.routing_mode == "route53":
            return
        backend = ga_backends[ACCOUNT]
        for name, by_region in states.items():
            svc = self.topology.services[name]
            for region, st in by_region.items():
                arn, alb = svc.endpoint_group_arns.get(region), svc.regions[region].alb_arn
                state = "HEALTHY" if st.healthy else ("INITIAL" if st.check_status in ("", "INI") else "UNHEALTHY")
                if arn and self._endpoint_health.get((arn, alb)) != state:
                    backend.set_endpoint_health(arn, alb, state, None if state == "HEALTHY" else st.check_status)
                    self._endpoint_health[(arn, alb)] = state

    def _target_health(self, tg_arn: str, instance_id: str) -> str | None:
        return self.controller.target_health(tg_arn, instance_id) if self.controller is not None else None

    def _kick(self) -> None:
        """Reconcile now rather than at the next tick, so API faults take effect at once."""
        if self.controller is not None:
            self._background(self.controller.reconcile, "reconcile")

    def _background(self, fn: Any, name: str) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("%s failed", name)
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self._bg.append(t)

    # -- admin API (status, reset) -----------------------------------------------------------
    def _start_admin(self) -> None:
        from gameday.sandbox.admin import start_admin

        self.admin = start_admin(self)

    def status(self) -> dict[str, Any]:
        ctl = self.controller.status() if self.controller else {}
        routing = {}
        if self.router is not None and self.topology is not None:
            for s in self.topology.services:
                try:
                    routing[s] = self.router.active_region(s)
                except Exception:
                    routing[s] = None
        db = []
        if self.pg is not None:
            try:
                db = [n.to_dict() if hasattr(n, "to_dict") else dict(vars(n)) for n in self.pg.status()]
            except Exception as exc:
                db = [{"error": str(exc)}]
        return {"timing": self.timing.name, "routing": routing, "database": db, **ctl,
                "lateness": self.lateness.latest(),
                "endpoints": self.endpoints.to_dict() if self.endpoints else None}

    def reset(self) -> None:
        """Back to the steady state between drills: regions up, declared dials, database roles restored."""
        assert self.controller is not None
        self.faults.end_all()
        for region in list(self.controller.frozen):
            self.controller.thaw_region(region)
        steady.restore_dials(self.topology, self.router, self._declared_dials, self._declared_weights)
        if not steady.db_steady(self.pg, self.topology):
            self.pg.reset()
        steady.wait_writable(self.pg, self.topology)
        self._wait_healthy()

    # -- teardown ----------------------------------------------------------------------------
    def down(self) -> None:
        """Stop everything; safe to call twice and after a half-finished up()."""
        self._metrics_stop.set()
        self.lateness.stop()
        self.faults.cancel_timers()
        steps: list[tuple[str, Any]] = [
            ("admin", self.admin.shutdown if self.admin else None),
            ("monitoring", self.monitoring.stop if self.monitoring else None),
            ("controller", self.controller.stop if self.controller else None),
            ("router", self.router.stop if self.router else None),
            *[(f"alb {key}", alb.stop) for key, alb in self.albs.items()],
            ("database", self.pg.stop if self.pg else None),
            ("control plane", self.cp.stop if self.cp else None),
            ("processes", self.registry.kill_all),
        ]
        for name, fn in steps:
            if fn is None:
                continue
            try:
                fn()
            except Exception:
                log.exception("teardown of %s failed", name)
        try:
            self.events.emit("sandbox_down")
        finally:
            self.events.close()


def main(argv: list[str] | None = None) -> int:
    """Daemon entry point: ``python -m gameday.sandbox.daemon --state-dir D --timing fast``."""
    ap = argparse.ArgumentParser(prog="gameday-sandbox-daemon")
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--timing", default="fast")
    ap.add_argument("--variant", action="append", default=[])
    ap.add_argument("--link-delay-ms", type=float, default=20.0)
    ap.add_argument("--routing-mode", choices=ROUTING_MODES, default="global_accelerator")
    ap.add_argument("--var-file", action="append", default=[], help="terraform .tfvars (repeatable)")
    ap.add_argument("--var", action="append", default=[], help="terraform NAME=VALUE (repeatable)")
    ap.add_argument("--snapshots", choices=("use", "cold", "off"), default="use",
                    help="use: restore a matching snapshot or save one after the apply; cold: apply and "
                         "replace it; off: neither")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    state: Path = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    progress_path = state / "progress.log"

    def progress(msg: str) -> None:
        with open(progress_path, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {msg}\n")
        log.info(msg)

    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    (state / "daemon.json").write_text(json.dumps({"pid": os.getpid(), "pgid": os.getpgid(0)}))
    sandbox = Sandbox(state, get_profile(args.timing), Variant.parse(args.variant, args.link_delay_ms), progress,
                      routing_mode=args.routing_mode, var_files=tuple(args.var_file), tf_vars=tuple(args.var),
                      snapshots=args.snapshots)
    code = 0
    try:
        sandbox.up()
        progress("READY")
        while not stop.is_set():
            stop.wait(1.0)
    except KeyboardInterrupt:
        progress("stopping")
    except GamedayError as exc:
        progress(f"FAILED: {exc}")
        code = 1
    except Exception as exc:
        log.exception("sandbox failed")
        progress(f"FAILED: {type(exc).__name__}: {exc}")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sandbox.down()
        kill_recorded(state)
        (state / "endpoints.json").unlink(missing_ok=True)
        progress("DOWN")
    return code


if __name__ == "__main__":
    sys.exit(main())
