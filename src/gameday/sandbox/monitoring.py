"""Per-region monitoring: one real Prometheus per region, its targets following the control plane.

Each region's Prometheus scrapes that region's service instances (``/metrics`` of ``gameday.app``,
discovered through ``file_sd_configs`` files rewritten as the controller starts and stops instance
processes, the way ``ec2_sd_configs`` follows DescribeInstances on AWS), the region's ALBs (HAProxy's
built-in Prometheus exporter), the region's database nodes (a small exporter served here, from the
daemon, reading the real PostgreSQL servers), itself, and, as ``peer_region``, the other region's
Prometheus. It evaluates the rules of ``monitoring/rules`` with every duration scaled by the timing
profile (:func:`scale_rules`). A frozen region's Prometheus and database exporter are frozen too: a
region outage takes its monitoring with it.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from gameday.errors import SandboxError
from gameday.sandbox.timing import TimingProfile
from gameday.util.net import LOOPBACK, free_port
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import poll_until

log = logging.getLogger("gameday.monitoring")

#: Prometheus's own defaults (scrape and evaluation interval 1 m, scrape timeout 10 s), as scaled.
SCRAPE_INTERVAL_S = 60.0
SCRAPE_TIMEOUT_S = 10.0
_START_TIMEOUT_S = 60.0
_DUR_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_DUR_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_RANGE_RE = re.compile(r"\[((?:\d+(?:ms|s|m|h|d|w|y))+)\]")
# a number compared with a *_seconds metric (optionally through one closing parenthesis) is a duration
_SECONDS_CMP_RE = re.compile(r"(_seconds(?:\{[^}]*\})?\)?\s*(?:[<>]=?|==|!=)\s*)(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Cadence:
    """Scrape interval, scrape timeout and rule evaluation interval of one timing profile (seconds)."""

    scrape_s: float
    timeout_s: float
    evaluation_s: float

    @classmethod
    def of(cls, timing: TimingProfile) -> Cadence:
        scrape = timing.interval(SCRAPE_INTERVAL_S)
        # the profile's timeout floor keeps a loaded host's slow answer from reading as a dead target
        return cls(scrape, min(scrape, timing.timeout(SCRAPE_TIMEOUT_S)), scrape)


def parse_duration(text: str) -> float:
    """A Prometheus duration (``1h30m``, ``2m``, ``1500ms``) in seconds."""
    parts = _DUR_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise SandboxError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _DUR_UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration in whole milliseconds (at least 1 ms)."""
    return f"{max(1, round(seconds * 1000))}ms"


def scale_rules(doc: Mapping[str, Any], timing: TimingProfile, cadence: Cadence) -> dict[str, Any]:
    """A rules document with its durations scaled: ``for``, range windows, thresholds on ``*_seconds``.

    Range windows never go below four scrape intervals, so ``rate()`` still has samples to work on.
    """
    min_range = 4 * cadence.scrape_s

    def expr(text: str) -> str:
        text = _RANGE_RE.sub(lambda m: f"[{format_duration(max(min_range, timing.s(parse_duration(m[1]))))}]", text)
        return _SECONDS_CMP_RE.sub(lambda m: f"{m[1]}{timing.s(float(m[2])):g}", text)

    groups = []
    for group in doc.get("groups", []):
        rules = []
        for rule in group.get("rules", []):
            rule = dict(rule)
            rule["expr"] = expr(str(rule["expr"]))
            if "for" in rule:
                rule["for"] = format_duration(timing.s(parse_duration(str(rule["for"]))))
            rules.append(rule)
        groups.append({**group, "interval": format_duration(cadence.evaluation_s), "rules": rules})
    return {"groups": groups}


def rules_dir() -> Path:
    """The repository's alert rules (``monitoring/rules``)."""
    from gameday.resources import resource

    return resource("monitoring") / "rules"


def write_json(path: Path, data: Any) -> None:
    """Replace path atomically (Prometheus watches file_sd files and must never read half of one)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def get_text(url: str, timeout: float = 2.0) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"User-Agent": "gameday-monitoring"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return int(resp.status), resp.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# the database exporter
# --------------------------------------------------------------------------------------------
class DbExporter:
    """``/metrics`` per region: each of its PostgreSQL nodes' role and replication lag.

    What postgres_exporter would run next to an RDS instance. Read from the real servers at most
    once per half scrape interval (both regions share one reading); while the region is frozen its
    exporter holds each request unanswered, as a partitioned host does.
    """

    def __init__(self, pg: Any, regions: Iterable[str], frozen: Callable[[], set[str]], min_age_s: float) -> None:
        self.pg = pg
        self.frozen = frozen
        self.min_age_s = min_age_s
        self._lock = threading.Lock()
        self._at = 0.0
        self._nodes: list[dict[str, Any]] = []
        self.servers: dict[str, ThreadingHTTPServer] = {}
        for region in regions:
            self.servers[region] = self._server(region)

    def url(self, region: str) -> str:
        return f"{LOOPBACK}:{self.servers[region].server_address[1]}"

    def _read(self) -> list[dict[str, Any]]:
        with self._lock:
            if time.monotonic() - self._at < self.min_age_s:
                return self._nodes
            nodes = [n.to_dict() for n in self.pg.status()]
            for n in nodes:
                if n["role"] == "replica":
                    # lag as RDS reports it for a cross-region replica, also with the primary unreachable
                    try:
                        n["lag_seconds"] = float(self.pg.replica_lag_seconds())
                    except Exception as exc:
                        log.debug("replica lag unreadable: %s", exc)
            self._nodes, self._at = nodes, time.monotonic()
            return nodes

    def render(self, region: str) -> bytes:
        lines = ["# HELP gameday_db_node_role 1 for the node's current role (primary, standby, replica, down).",
                 "# TYPE gameday_db_node_role gauge",
                 "# HELP gameday_db_replica_lag_seconds How far the node's replay trails its primary.",
                 "# TYPE gameday_db_replica_lag_seconds gauge",
                 "# HELP gameday_db_replica_lag_bytes WAL bytes the node has not replayed yet.",
                 "# TYPE gameday_db_replica_lag_bytes gauge"]
        for n in self._read():
            if n["region"] != region:
                continue
            labels = f'node="{n["name"]}",role="{n["role"]}"'
            lines.append(f"gameday_db_node_role{{{labels}}} 1")
            if n.get("lag_seconds") is not None:
                lines.append(f"gameday_db_replica_lag_seconds{{{labels}}} {float(n['lag_seconds']):.6f}")
            if n.get("lag_bytes") is not None:
                lines.append(f"gameday_db_replica_lag_bytes{{{labels}}} {int(n['lag_bytes'])}")
        return ("\n".join(lines) + "\n").encode()

    def _server(self, region: str) -> ThreadingHTTPServer:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                deadline = time.monotonic() + 30.0
                while region in exporter.frozen() and time.monotonic() < deadline:
                    time.sleep(0.1)
                if region in exporter.frozen():
                    self.close_connection = True
                    return
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                try:
                    body = exporter.render(region)
                except Exception as exc:
                    log.warning("database exporter %s: %s", region, exc)
                    self.send_error(500, str(exc)[:200])
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        srv = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name=f"db-exporter-{region}",
                         daemon=True).start()
        return srv

    def stop(self) -> None:
        for srv in self.servers.values():
            srv.shutdown()
            srv.server_close()


# --------------------------------------------------------------------------------------------
# Prometheus, one per region
# --------------------------------------------------------------------------------------------
class RegionPrometheus:
    """One region's Prometheus process, its config, rules and file_sd files under ``work_dir``."""

    def __init__(self, region: str, work_dir: Path, registry: ProcessRegistry) -> None:
        self.region = region
        self.dir = work_dir
        self.registry = registry
        self.proc_name = f"prometheus-{region}"
        self.port = free_port()
        self.frozen = False
        self.config_path = self.dir / "prometheus.yml"
        self.instances_sd = self.dir / "sd" / "instances.json"
        self.log_path = self.dir / "prometheus.log"
        self._sd_written: list[dict[str, Any]] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def write_config(self, cadence: Cadence, rules: Mapping[str, Any], albs: list[dict[str, Any]],
                     db_exporter: str, peer: tuple[str, str]) -> None:
        (self.dir / "sd").mkdir(parents=True, exist_ok=True)
        (self.dir / "rules").mkdir(exist_ok=True)
        (self.dir / "rules" / "gameday.yml").write_text(yaml.safe_dump(dict(rules), sort_keys=False))
        if self._sd_written is None:
            self.write_instances([])
        peer_region, peer_url = peer
        config = {
            "global": {"scrape_interval": format_duration(cadence.scrape_s),
                       "scrape_timeout": format_duration(cadence.timeout_s),
                       "evaluation_interval": format_duration(cadence.evaluation_s),
                       "external_labels": {"monitor": f"gameday-{self.region}"}},
            "rule_files": [str(self.dir / "rules" / "*.yml")],
            "scrape_configs": [
                {"job_name": "service",
                 "file_sd_configs": [{"files": [str(self.instances_sd)],
                                      "refresh_interval": format_duration(cadence.scrape_s)}]},
                {"job_name": "alb", "static_configs": albs},
                {"job_name": "database", "static_configs": [{"targets": [db_exporter],
                                                             "labels": {"region": self.region}}]},
                {"job_name": "prometheus", "static_configs": [{"targets": [f"{LOOPBACK}:{self.port}"],
                                                               "labels": {"region": self.region}}]},
                {"job_name": "peer_region", "static_configs": [{
                    "targets": [peer_url.removeprefix("http://")],
                    "labels": {"region": peer_region, "observer": self.region}}]},
            ],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def write_instances(self, groups: list[dict[str, Any]]) -> None:
        if groups != self._sd_written:
            write_json(self.instances_sd, groups)
            self._sd_written = groups

    def argv(self, binary: Path) -> list[str]:
        return [str(binary), f"--config.file={self.config_path}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}", "--storage.tsdb.retention.time=1d",
                "--log.level=warn"]

    def start(self, binary: Path) -> None:
        m = self.registry.spawn(self.proc_name, self.argv(binary), log=self.log_path, cwd=self.dir)

        def ready() -> bool:
            try:
                return get_text(self.url + "/-/ready", timeout=1.0)[0] == 200
            except OSError:
                return False

        if poll_until(lambda: not m.alive() or ready(), _START_TIMEOUT_S, interval=0.1) and ready():
            return
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.registry.kill(self.proc_name)
        raise SandboxError(f"Prometheus of {self.region} did not become ready (log {self.log_path}):\n{tail}")

    def set_frozen(self, frozen: bool) -> None:
        if frozen != self.frozen:
            self.registry.signal(self.proc_name, signal.SIGSTOP if frozen else signal.SIGCONT)
            self.frozen = frozen

    def stop(self) -> None:
        self.registry.kill(self.proc_name)


class Monitoring:
    """Both regions' Prometheus, the database exporters, and the thread keeping discovery current."""

    def __init__(self, state_dir: Path, registry: ProcessRegistry, timing: TimingProfile, regions: tuple[str, str],
                 controller: Any, albs: Mapping[tuple[str, str], Any], pg: Any, tick_s: float = 0.25) -> None:
        self.timing = timing
        self.cadence = Cadence.of(timing)
        self.regions = regions
        self.controller = controller
        self.albs = albs
        self.pg = pg
        self.tick_s = tick_s
        self.registry = registry
        self.proms = {r: RegionPrometheus(r, Path(state_dir) / "monitoring" / r, registry) for r in regions}
        self.db: DbExporter | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def urls(self) -> dict[str, str]:
        return {r: p.url for r, p in self.proms.items()}

    def _frozen(self) -> set[str]:
        return set(self.controller.frozen)

    def start(self) -> None:
        from gameday.provision.prereqs import find_prometheus

        binary = find_prometheus()
        self.db = DbExporter(self.pg, self.regions, self._frozen, min_age_s=self.cadence.scrape_s / 2)
        rules: dict[str, Any] = {}
        for path in sorted(rules_dir().glob("*.yml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            rules.setdefault("groups", []).extend(scale_rules(doc, self.timing, self.cadence)["groups"])
        for region, prom in self.proms.items():
            peer = next(r for r in self.regions if r != region)
            albs = [{"targets": [f"{LOOPBACK}:{alb.metrics_port}"],
                     "labels": {"service": svc, "region": region, "alb": alb.name}}
                    for (svc, r), alb in sorted(self.albs.items()) if r == region]
            prom.write_config(self.cadence, rules, albs, self.db.url(region), (peer, self.proms[peer].url))
        self.sync()
        for prom in self.proms.values():
            prom.start(binary)
        self._thread = threading.Thread(target=self._loop, name="monitoring-discovery", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.sync()
            except Exception:
                log.exception("monitoring discovery failed")

    def sync(self) -> None:
        """Freeze/thaw each region's Prometheus with its region; rewrite the instance discovery files."""
        frozen = self._frozen()
        for region, prom in self.proms.items():
            prom.set_frozen(region in frozen)
        instances = self.controller.status()["instances"]
        for region, prom in self.proms.items():
            if region in frozen:
                continue  # a dark region's discovery is as dark as its Prometheus
            prom.write_instances([
                {"targets": [f"{LOOPBACK}:{i['port']}"],
                 "labels": {"service": i["service"], "region": region, "az": i["az"], "instance_id": i["id"]}}
                for i in instances if i["region"] == region and i["state"] != "stopped"])

    def stop(self) -> None:
        """Stop the thread, both Prometheus processes and the exporters; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for prom in self.proms.values():
            prom.stop()
        if self.db is not None:
            self.db.stop()
            self.db = None


__all__ = ["Cadence", "DbExporter", "Monitoring", "RegionPrometheus", "format_duration", "parse_duration",
           "rules_dir", "scale_rules"]
