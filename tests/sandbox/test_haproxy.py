"""AlbProxy and GlobalRouter against real HAProxy and real (tiny) HTTP backends.

Health-check intervals are 100 ms so failure detection takes a fraction of a second; every
timing bound is derived from the HealthCheck settings (``detection_s`` / ``recovery_s``) plus
one check interval of phase jitter and the polling step, never a bare magic number.
"""

from __future__ import annotations

import functools
import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from gameday.errors import ConfigError, PrerequisiteMissing
from gameday.sandbox.haproxy import (
    ELB_HEALTH_PATH,
    AlbProxy,
    GlobalRouter,
    HAProxyRuntime,
    HealthCheck,
    haproxy_binary,
)
from gameday.util.net import LOOPBACK, port_open
from gameday.util.procs import ProcessRegistry, pid_alive

POLL_S = 0.02
# ALB targets: 100 ms checks, healthy after 2, unhealthy after 2 (timeouts generous: 2 busy cores)
ALB_HC = HealthCheck(path="/health", interval_s=0.1, timeout_s=0.3, healthy_threshold=2,
                     unhealthy_threshold=2)
# router (GA) checks of the ALBs' ELB health: 100 ms, 3 to fall, 2 to rise
GA_HC = HealthCheck(path=ELB_HEALTH_PATH, interval_s=0.1, timeout_s=0.3, healthy_threshold=2,
                    unhealthy_threshold=3)


def _bound_down(*hcs: HealthCheck) -> float:
    """Longest legitimate time until a chain of checkers all noticed a failure."""
    return sum(h.detection_s + h.interval_s for h in hcs) + 5 * POLL_S + 0.2


def _bound_up(*hcs: HealthCheck) -> float:
    return sum(h.recovery_s + h.interval_s for h in hcs) + 5 * POLL_S + 0.2


# --------------------------------------------------------------------------------------------
# tiny real backends
# --------------------------------------------------------------------------------------------
class Backend:
    """A ThreadingHTTPServer on 127.0.0.1: /health (settable code), / (tag), /slow?s=N (sleeps)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.health_code = 200
        self.hits = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                url = urlparse(self.path)
                code = 200
                if url.path == "/health":
                    code = backend.health_code
                else:
                    backend.hits += 1
                    if url.path == "/slow":
                        time.sleep(float(parse_qs(url.query).get("s", ["1"])[0]))
                body = backend.tag.encode()
                self.send_response(code)
                self.send_header("X-Backend", backend.tag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # health checkers hang up early; not an error worth a traceback

        self.server = Server((LOOPBACK, 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.stopped = False

    def stop(self) -> None:
        """Close the listener: new connections are refused (a killed instance)."""
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(2)


@pytest.fixture
def backends() -> Iterator[Callable[[str], Backend]]:
    made: list[Backend] = []

    def make(tag: str) -> Backend:
        b = Backend(tag)
        made.append(b)
        return b

    try:
        yield make
    finally:
        for b in made:
            b.stop()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ProcessRegistry]:
    haproxy_binary()  # PrerequisiteMissing early if absent
    reg = ProcessRegistry(tmp_path / "state")
    try:
        yield reg
    finally:
        reg.kill_all()


@pytest.fixture
def alb_factory(tmp_path: Path, registry: ProcessRegistry) -> Iterator[Callable[..., AlbProxy]]:
    made: list[AlbProxy] = []

    def make(name: str = "alb", health: HealthCheck = ALB_HC, **kw: Any) -> AlbProxy:
        alb = AlbProxy(name, tmp_path / "haproxy", registry, health, **kw)
        made.append(alb)
        alb.start()
        return alb

    try:
        yield make
    finally:
        for alb in made:
            alb.stop()


def get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str, float]:
    """(status, X-Backend tag or "", seconds) of one request on a fresh connection."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Backend") or "", time.monotonic() - t0
    finally:
        conn.close()


def wait_for(what: str, pred: Callable[[], bool], timeout: float) -> float:
    """Poll pred every POLL_S; return the seconds it took, fail the test after timeout."""
    t0 = time.monotonic()
    while not pred():
        elapsed = time.monotonic() - t0
        assert elapsed < timeout, f"{what}: not within {timeout:.2f} s"
        time.sleep(POLL_S)
    return time.monotonic() - t0


def all_healthy(alb: AlbProxy, ids: set[str]) -> Callable[[], bool]:
    return lambda: {k for k, v in alb.target_health().items() if v == "healthy"} >= ids


# --------------------------------------------------------------------------------------------
# settings and prerequisites
# --------------------------------------------------------------------------------------------
def test_health_check_maps_target_group_settings() -> None:
    hc = HealthCheck.from_target_group({"HealthCheckPath": "/healthz", "HealthCheckIntervalSeconds": 10,
                                        "HealthCheckTimeoutSeconds": 5, "HealthyThresholdCount": 3,
                                        "UnhealthyThresholdCount": 4, "Matcher": {"HttpCode": "200-202"}},
                                       scale=0.1)
    assert (hc.path, hc.interval_s, hc.timeout_s, hc.healthy_threshold, hc.unhealthy_threshold) == \
        ("/healthz", 1.0, 0.5, 3, 4)
    assert hc.server_args() == "check inter 1000 fastinter 1000 downinter 1000 rise 3 fall 4"
    lines = hc.backend_lines("h")
    assert "timeout check 500" in lines and "http-check expect rstatus ^(200|201|202)$" in lines
    assert hc.detection_s == pytest.approx(4 * 1.0 + 0.5)
    for bad in ({"path": "health"}, {"interval_s": 0}, {"unhealthy_threshold": 0}, {"matcher": "ok"}):
        with pytest.raises(ConfigError):
            HealthCheck(**bad)


def test_missing_haproxy_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAMEDAY_HAPROXY", str(tmp_path / "no-such-haproxy"))
    haproxy_binary.cache_clear()
    try:
        with pytest.raises(PrerequisiteMissing) as exc:
            haproxy_binary()
        assert "apt-get install haproxy" in str(exc.value)
    finally:
        monkeypatch.delenv("GAMEDAY_HAPROXY")
        haproxy_binary.cache_clear()
    assert haproxy_binary().name == "haproxy"


# --------------------------------------------------------------------------------------------
# ALB
# --------------------------------------------------------------------------------------------
def test_alb_balances_and_new_targets_start_initial(alb_factory: Callable[..., AlbProxy],
                                                    backends: Callable[[str], Backend]) -> None:
    a, b = backends("A"), backends("B")
    alb = alb_factory()
    assert get(alb.port)[0] == 503  # no targets at all
    alb.set_targets({"i-a": a.port, "i-b": b.port})
    assert alb.target_health() == {"i-a": "initial", "i-b": "initial"}
    assert get(alb.port)[0] == 503  # initial targets get no traffic
    took = wait_for("targets healthy", all_healthy(alb, {"i-a", "i-b"}), _bound_up(ALB_HC))
    print(f"\n[alb] new targets healthy after {took:.3f} s (rise*inter = "
          f"{ALB_HC.healthy_threshold * ALB_HC.interval_s:.3f} s)")
    tags = Counter(get(alb.port)[1] for _ in range(20))
    assert tags == {"A": 10, "B": 10}  # roundrobin, equal weights


def test_alb_target_failing_checks_never_becomes_healthy(alb_factory: Callable[..., AlbProxy],
                                                         backends: Callable[[str], Backend]) -> None:
    a, bad = backends("A"), backends("BAD")
    bad.health_code = 503
    alb = alb_factory()
    alb.set_targets({"i-a": a.port, "i-bad": bad.port})
    wait_for("A healthy", all_healthy(alb, {"i-a"}), _bound_up(ALB_HC))
    assert alb.target_health()["i-bad"] in ("initial", "unhealthy")
    wait_for("bad unhealthy", lambda: alb.target_health()["i-bad"] == "unhealthy", _bound_down(ALB_HC))
    assert {get(alb.port)[1] for _ in range(10)} == {"A"}
    assert bad.hits == 0


def test_alb_set_targets_live_keeps_inflight_request(alb_factory: Callable[..., AlbProxy],
                                                     backends: Callable[[str], Backend]) -> None:
    a, b = backends("A"), backends("B")
    alb = alb_factory(deregistration_delay_s=10.0)
    pid = alb.pid
    alb.set_targets({"i-a": a.port})
    wait_for("A healthy", all_healthy(alb, {"i-a"}), _bound_up(ALB_HC))

    slow_s = 1.0
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(r=get(alb.port, f"/slow?s={slow_s}")))
    t.start()
    wait_for("slow request in flight", lambda: a.hits >= 1, 2.0)

    alb.set_targets({"i-b": b.port})  # register B, deregister A while A serves the slow request
    health = alb.target_health()
    assert health == {"i-a": "draining", "i-b": "initial"}
    wait_for("B healthy", all_healthy(alb, {"i-b"}), _bound_up(ALB_HC))
    assert {get(alb.port)[1] for _ in range(6)} == {"B"}  # draining A takes no new requests
    assert alb.target_health().get("i-a") == "draining"

    t.join(slow_s + 5)
    status, tag, took = result["r"]
    assert (status, tag) == (200, "A") and took >= slow_s
    alb.wait_drained(timeout=2.0)
    assert alb.target_health() == {"i-b": "healthy"}
    assert alb.pid == pid and pid is not None and pid_alive(pid)  # never restarted
    # re-register A: a new server, initial again, then healthy
    alb.set_targets({"i-a": a.port, "i-b": b.port})
    assert alb.target_health()["i-a"] == "initial"
    wait_for("A healthy again", all_healthy(alb, {"i-a", "i-b"}), _bound_up(ALB_HC))


@pytest.mark.parametrize("fault", ["health_503", "killed"])
def test_alb_detects_unhealthy_target(fault: str, alb_factory: Callable[..., AlbProxy],
                                      backends: Callable[[str], Backend]) -> None:
    a, b = backends("A"), backends("B")
    alb = alb_factory()
    alb.set_targets({"i-a": a.port, "i-b": b.port})
    wait_for("targets healthy", all_healthy(alb, {"i-a", "i-b"}), _bound_up(ALB_HC))

    t0 = time.monotonic()
    if fault == "health_503":
        a.health_code = 503
    else:
        a.stop()
    statuses: list[int] = []
    while alb.target_health()["i-a"] != "unhealthy":
        assert time.monotonic() - t0 < _bound_down(ALB_HC), "A not marked unhealthy in time"
        statuses.append(get(alb.port)[0])  # traffic keeps flowing during detection
        time.sleep(POLL_S)
    detected = time.monotonic() - t0
    print(f"\n[alb/{fault}] unhealthy after {detected:.3f} s (fall*inter = "
          f"{ALB_HC.unhealthy_threshold * ALB_HC.interval_s:.3f} s, bound {_bound_down(ALB_HC):.3f} s)")
    # at least fall-1 intervals must pass: HAProxy needs `fall` failed checks
    assert detected >= (ALB_HC.unhealthy_threshold - 1) * ALB_HC.interval_s
    if fault == "killed":
        # no retry on another target (an ALB has none): requests sent to the dead target during
        # detection fail, the others reach B
        assert 503 in statuses and 200 in statuses, statuses
    else:
        assert set(statuses) <= {200}, statuses  # A still answers its requests, only /health fails
    hits_before = a.hits
    assert {get(alb.port)[1] for _ in range(10)} == {"B"}
    assert a.hits == hits_before
    assert alb.target_health()["i-b"] == "healthy"


def test_alb_with_only_unhealthy_targets_fails_open(alb_factory: Callable[..., AlbProxy],
                                                    backends: Callable[[str], Backend]) -> None:
    """ALB: "If a target group contains only unhealthy registered targets, the load balancer routes
    requests to all those targets, regardless of their health status"."""
    a, b = backends("A"), backends("B")
    alb = alb_factory()
    alb.set_targets({"i-a": a.port, "i-b": b.port})
    wait_for("targets healthy", all_healthy(alb, {"i-a", "i-b"}), _bound_up(ALB_HC))
    a.health_code = 503
    wait_for("A unhealthy", lambda: alb.target_health()["i-a"] == "unhealthy", _bound_down(ALB_HC))
    assert {get(alb.port)[1] for _ in range(8)} == {"B"}  # one healthy target: no fail-open
    b.health_code = 503
    wait_for("B unhealthy", lambda: alb.target_health()["i-b"] == "unhealthy", _bound_down(ALB_HC))
    answers = [get(alb.port) for _ in range(8)]
    assert {(status, tag) for status, tag, _ in answers} == {(200, "A"), (200, "B")}  # open to both
    a.health_code = 200
    wait_for("A healthy again", lambda: alb.target_health()["i-a"] == "healthy", _bound_up(ALB_HC))
    assert {get(alb.port)[1] for _ in range(8)} == {"A"}  # closed again: only the healthy one


def test_alb_without_registered_targets_answers_503_fast(alb_factory: Callable[..., AlbProxy],
                                                         backends: Callable[[str], Backend]) -> None:
    a = backends("A")
    alb = alb_factory()
    alb.set_targets({"i-a": a.port})
    wait_for("A healthy", all_healthy(alb, {"i-a"}), _bound_up(ALB_HC))
    assert get(alb.port, "/health")[0] == 200
    alb.set_targets({})
    alb.wait_drained(timeout=5.0)
    for path in ("/", "/health"):
        status, _tag, took = get(alb.port, path)
        assert status == 503
        assert took < ALB_HC.interval_s * 5  # answered by HAProxy itself, no queueing / timeouts
    hits = a.hits
    assert get(alb.port)[0] == 503 and a.hits == hits  # nothing reaches the deregistered target


def test_alb_stop_leaves_no_process_port_or_socket(alb_factory: Callable[..., AlbProxy],
                                                   registry: ProcessRegistry,
                                                   backends: Callable[[str], Backend]) -> None:
    alb = alb_factory("alb-stop")
    alb.set_targets({"i-a": backends("A").port})
    pid, port, sock = alb.pid, alb.port, alb.socket_path
    assert pid is not None and pid_alive(pid) and port_open(port) and sock.exists()
    assert HAProxyRuntime(sock).show_servers_state("targets")[0]["srv_port"] != ""
    alb.stop()
    assert not pid_alive(pid)
    assert not port_open(port)
    assert not sock.exists()
    assert list(registry.dir.glob("*.json")) == []
    alb.stop()  # idempotent


# --------------------------------------------------------------------------------------------
# global router
# --------------------------------------------------------------------------------------------
PRIMARY, RECOVERY = "eu-south-1", "eu-central-1"


@pytest.fixture
def two_services(tmp_path: Path, registry: ProcessRegistry, backends: Callable[[str], Backend],
                 alb_factory: Callable[..., AlbProxy]) -> Iterator[dict[str, Any]]:
    """Services web and orders, each with one ALB (one target) per region, behind one router."""
    router = GlobalRouter(tmp_path / "haproxy", registry)
    out: dict[str, Any] = {"router": router, "targets": {}, "albs": {}}
    try:
        for svc in ("web", "orders"):
            for region in (PRIMARY, RECOVERY):
                be = backends(f"{svc}@{region}")
                alb = alb_factory(f"alb-{svc}-{region}")
                alb.set_targets({f"i-{svc}-{region}": be.port})
                out["targets"][(svc, region)] = be
                out["albs"][(svc, region)] = alb
            router.add_service(svc, PRIMARY, out["albs"][(svc, PRIMARY)].port,
                               RECOVERY, out["albs"][(svc, RECOVERY)].port, GA_HC)
        router.start()
        for (svc, region), alb in out["albs"].items():
            wait_for("targets healthy", all_healthy(alb, {f"i-{svc}-{region}"}), _bound_up(ALB_HC))
        for svc in ("web", "orders"):
            wait_for(f"{svc} routed to primary", functools.partial(_routed_to, router, svc, PRIMARY),
                     _bound_up(ALB_HC, GA_HC))
        yield out
    finally:
        router.stop()


def _routed_to(router: GlobalRouter, svc: str, region: str) -> bool:
    return router.active_region(svc) == region


def region_of(router: GlobalRouter, svc: str) -> str:
    status, tag, _ = get(router.service_port(svc))
    return tag.split("@")[1] if status == 200 else f"HTTP {status}"


def test_router_fails_over_and_back_per_service(two_services: dict[str, Any]) -> None:
    router: GlobalRouter = two_services["router"]
    web_primary: Backend = two_services["targets"][("web", PRIMARY)]
    assert region_of(router, "web") == PRIMARY and region_of(router, "orders") == PRIMARY

    # break web's primary region: its only target fails health checks → the ALB has no healthy
    # target → Global Accelerator sees the endpoint unhealthy → the router fails over
    web_primary.health_code = 503
    seen: Counter[str] = Counter()

    def on_recovery() -> bool:
        r = region_of(router, "web")
        seen[r] += 1
        return r == RECOVERY

    switched = wait_for("web fails over", on_recovery, _bound_down(ALB_HC, GA_HC))
    # GA takes the endpoint's health from ELB: the ALB must first mark its target down (ALB
    # fall*inter), then GA needs its own fall checks: at least both, at most the ALB+GA bound
    ga = GA_HC.unhealthy_threshold * GA_HC.interval_s
    print(f"\n[router] failover after {switched:.3f} s; GA fall*inter = {ga:.3f} s, "
          f"bound ALB+GA {_bound_down(ALB_HC, GA_HC):.3f} s; responses while switching: {dict(seen)}")
    assert switched >= ((ALB_HC.unhealthy_threshold - 1) * ALB_HC.interval_s
                        + (GA_HC.unhealthy_threshold - 1) * GA_HC.interval_s)
    assert router.active_region("web") == RECOVERY
    states = router.server_states("web")
    assert not states[PRIMARY].healthy and states[RECOVERY].healthy
    assert states[PRIMARY].check_status.startswith("L7")  # the ALB answers its ELB health, with 503
    # the other service is not affected
    assert router.active_region("orders") == PRIMARY
    assert {region_of(router, "orders") for _ in range(5)} == {PRIMARY}
    assert {region_of(router, "web") for _ in range(5)} == {RECOVERY}

    # heal: ALB target healthy after rise, then the router sees the ALB healthy after rise
    t1 = time.monotonic()
    web_primary.health_code = 200
    back = wait_for("web fails back", lambda: region_of(router, "web") == PRIMARY, _bound_up(ALB_HC, GA_HC))
    rise = ALB_HC.healthy_threshold * ALB_HC.interval_s + GA_HC.healthy_threshold * GA_HC.interval_s
    print(f"[router] failback after {back:.3f} s; rise*inter ALB+GA = {rise:.3f} s")
    assert time.monotonic() - t1 >= (ALB_HC.healthy_threshold - 1) * ALB_HC.interval_s
    assert router.active_region("web") == PRIMARY


def test_router_keeps_a_region_whose_alb_still_has_a_healthy_target(
        tmp_path: Path, registry: ProcessRegistry, backends: Callable[[str], Backend],
        alb_factory: Callable[..., AlbProxy]) -> None:
    """One of two targets dies: GA keeps the region (ELB still reports a healthy target); the
    requests the ALB sends to the dead target fail until the ALB's own checks mark it down."""
    slow_alb = HealthCheck(path="/health", interval_s=0.3, timeout_s=0.3, healthy_threshold=2,
                           unhealthy_threshold=5)
    a, b, r = backends("web@a"), backends("web@b"), backends(f"web@{RECOVERY}")
    primary = alb_factory("alb-web-primary", health=slow_alb)
    primary.set_targets({"i-a": a.port, "i-b": b.port})
    recovery = alb_factory("alb-web-recovery")
    recovery.set_targets({"i-r": r.port})
    router = GlobalRouter(tmp_path / "haproxy", registry)
    router.add_service("web", PRIMARY, primary.port, RECOVERY, recovery.port, GA_HC)
    try:
        router.start()
        wait_for("targets healthy", all_healthy(primary, {"i-a", "i-b"}), _bound_up(slow_alb))
        wait_for("web on primary", functools.partial(_routed_to, router, "web", PRIMARY), _bound_up(slow_alb, GA_HC))
        a.stop()  # killed: connections refused; the ALB needs 5 x 0.3 s to notice
        t0 = time.monotonic()
        answers: Counter[str] = Counter()
        while primary.target_health()["i-a"] != "unhealthy":
            assert time.monotonic() - t0 < _bound_down(slow_alb), "A not marked unhealthy in time"
            status, tag, _ = get(router.service_port("web"))
            answers[tag if status == 200 else f"HTTP {status}"] += 1
            assert router.active_region("web") == PRIMARY, "GA failed over a region with a healthy target"
            time.sleep(POLL_S)
        detected = time.monotonic() - t0
        print(f"\n[router] one of two targets killed: ALB noticed after {detected:.3f} s, GA stayed on "
              f"the primary; answers meanwhile {dict(answers)}")
        # several GA fall windows passed: a router checking *through* the ALB would have failed over
        assert detected > 2 * GA_HC.detection_s
        assert answers["web@b"] and sum(n for k, n in answers.items() if k.startswith("HTTP")), answers
        assert f"web@{RECOVERY}" not in answers
        assert {region_of(router, "web") for _ in range(5)} == {"b"}
        assert router.server_states("web")[PRIMARY].healthy
    finally:
        router.stop()


def test_router_fails_over_when_primary_alb_dies(two_services: dict[str, Any]) -> None:
    router: GlobalRouter = two_services["router"]
    t0 = time.monotonic()
    two_services["albs"][("orders", PRIMARY)].stop()  # the whole load balancer is gone
    took = wait_for("orders fails over", lambda: router.active_region("orders") == RECOVERY,
                    _bound_down(GA_HC))
    print(f"\n[router] ALB process killed → failover after {took:.3f} s "
          f"(GA fall*inter = {GA_HC.unhealthy_threshold * GA_HC.interval_s:.3f} s)")
    assert router.server_states("orders")[PRIMARY].check_status.startswith("L4")  # refused
    assert region_of(router, "orders") == RECOVERY
    assert time.monotonic() - t0 < _bound_down(GA_HC) + 1.0
    assert router.active_region("web") == PRIMARY


def test_router_failover_ignores_the_recovery_dial_but_not_a_zero_weight(
        tmp_path: Path, registry: ProcessRegistry, backends: Callable[[str], Backend],
        alb_factory: Callable[..., AlbProxy]) -> None:
    """GA: "for this failover, Global Accelerator ignores the traffic dial setting"; it fails over
    only to "a healthy endpoint with a weight greater than zero". The recovery group's own (slower)
    checks decide how soon it is seen healthy."""
    slow = HealthCheck(path=ELB_HEALTH_PATH, interval_s=0.3, timeout_s=0.3, healthy_threshold=3,
                       unhealthy_threshold=3)
    router = GlobalRouter(tmp_path / "haproxy", registry)
    albs = {}
    for region in (PRIMARY, RECOVERY):
        alb = alb_factory(f"alb-dial-{region}")
        alb.set_targets({f"i-{region}": backends(f"svc@{region}").port})
        albs[region] = alb
    router.add_service("svc", PRIMARY, albs[PRIMARY].port, RECOVERY, albs[RECOVERY].port, GA_HC,
                       recovery_health=slow, dials={PRIMARY: 100.0, RECOVERY: 0.0})
    with pytest.raises(ConfigError):
        router.add_service("bad", PRIMARY, 1, RECOVERY, 2, GA_HC, dials={RECOVERY: 120.0})
    with pytest.raises(ConfigError):
        router.add_service("bad2", PRIMARY, 1, RECOVERY, 2, GA_HC, weights={RECOVERY: 256})
    try:
        router.start()
        for region, alb in albs.items():
            wait_for("target healthy", all_healthy(alb, {f"i-{region}"}), _bound_up(ALB_HC))
        wait_for("routed to primary", functools.partial(_routed_to, router, "svc", PRIMARY), _bound_up(ALB_HC, GA_HC))
        cfg = router.config_path.read_text()
        assert f"inter {round(slow.interval_s * 1000)} " in cfg and "retries 0" in cfg and "no option redispatch" in cfg
        assert {region_of(router, "svc") for _ in range(6)} == {PRIMARY}  # dial 0: no share of normal traffic
        # a recovery endpoint of weight 0 is no failover target: with the primary down nothing serves
        router.set_endpoint_weight("svc", RECOVERY, 0)
        albs[PRIMARY].stop()
        wait_for("primary seen down", lambda: not router.server_states("svc")[PRIMARY].healthy,
                 _bound_down(GA_HC))
        assert router.active_region("svc") is None
        assert region_of(router, "svc").startswith("HTTP 5")
        # weight back: the failover goes to the recovery group although its dial is still 0
        router.set_endpoint_weight("svc", RECOVERY, 128)
        assert router.traffic_dial("svc", RECOVERY) == 0.0
        wait_for("recovery seen healthy by its own checks", lambda: router.server_states("svc")[RECOVERY].healthy,
                 _bound_up(ALB_HC, slow))
        assert router.active_region("svc") == RECOVERY
        assert region_of(router, "svc") == RECOVERY
    finally:
        router.stop()


def test_router_traffic_dial(two_services: dict[str, Any]) -> None:
    router: GlobalRouter = two_services["router"]
    # dial 0 on the primary: the very next request goes to the recovery region
    router.set_traffic_dial("web", PRIMARY, 0)
    assert router.active_region("web") == RECOVERY
    assert {region_of(router, "web") for _ in range(5)} == {RECOVERY}
    st = router.server_states("web")[PRIMARY]
    assert st.status == "DRAIN" and st.healthy and st.dial == 0  # still health checked
    assert router.active_region("orders") == PRIMARY

    # back to 100: traffic returns at once (the primary stayed healthy under its checks)
    router.set_traffic_dial("web", PRIMARY, 100)
    assert {region_of(router, "web") for _ in range(5)} == {PRIMARY}

    # partial: weights split the traffic
    router.set_traffic_dial("web", PRIMARY, 50)
    assert router.traffic_split("web") == {PRIMARY: 0.5, RECOVERY: 0.5}
    split = Counter(region_of(router, "web") for _ in range(20))
    assert split == {PRIMARY: 10, RECOVERY: 10}, split
    router.set_traffic_dial("web", PRIMARY, 25)
    split = Counter(region_of(router, "web") for _ in range(20))
    assert split == {PRIMARY: 5, RECOVERY: 15}, split
    assert router.active_region("web") == RECOVERY

    # nowhere to go: both dials 0 → 503, no active region
    router.set_traffic_dial("web", PRIMARY, 0)
    router.set_traffic_dial("web", RECOVERY, 0)
    assert router.active_region("web") is None
    assert region_of(router, "web") == "HTTP 503"

    router.set_traffic_dial("web", PRIMARY, 100)
    router.set_traffic_dial("web", RECOVERY, 100)
    assert {region_of(router, "web") for _ in range(5)} == {PRIMARY}
    with pytest.raises(ConfigError):
        router.set_traffic_dial("web", "us-east-1", 50)
    with pytest.raises(ConfigError):
        router.set_traffic_dial("web", PRIMARY, 150)


def test_router_stop_leaves_nothing(two_services: dict[str, Any], registry: ProcessRegistry) -> None:
    router: GlobalRouter = two_services["router"]
    pid = router.pid
    ports = [router.port, router.service_port("web"), router.service_port("orders")]
    assert pid is not None and all(port_open(p) for p in ports)
    router.stop()
    assert not pid_alive(pid)
    assert not any(port_open(p) for p in ports)
    assert not router.socket_path.exists()
    assert not (registry.dir / "haproxy-global-router.json").exists()


def test_router_without_health_checks_only_follows_dials(tmp_path: Path, registry: ProcessRegistry,
                                                         backends: Callable[[str], Backend],
                                                         alb_factory: Callable[..., AlbProxy]) -> None:
    """Variant "no-router-health": a broken primary keeps the traffic until the dial moves it."""
    albs = {}
    for region in (PRIMARY, RECOVERY):
        alb = albs[region] = alb_factory(f"alb-web-{region}")
        alb.set_targets({f"i-{region}": backends(f"web@{region}").port})
        wait_for("target healthy", all_healthy(alb, {f"i-{region}"}), _bound_up(ALB_HC))
    router = GlobalRouter(tmp_path / "haproxy", registry, name="router-nocheck", health_checks=False)
    try:
        router.add_service("web", PRIMARY, albs[PRIMARY].port, RECOVERY, albs[RECOVERY].port, GA_HC)
        router.start()
        assert region_of(router, "web") == PRIMARY
        albs[PRIMARY].set_targets({})  # primary ALB has no targets: answers 503
        time.sleep(_bound_down(GA_HC))  # longer than a checking router would need to fail over
        assert region_of(router, "web") == "HTTP 503"
        assert router.active_region("web") == PRIMARY
        router.set_traffic_dial("web", PRIMARY, 0)
        assert region_of(router, "web") == RECOVERY
    finally:
        router.stop()


def test_router_route53_mode_keeps_stale_answers_for_the_ttl(tmp_path: Path, registry: ProcessRegistry,
                                                             backends: Callable[[str], Backend],
                                                             alb_factory: Callable[..., AlbProxy]) -> None:
    """Route 53 failover: clients follow a changed answer only after the record's TTL, both ways."""
    ttl = 1.0
    albs = {}
    for region in (PRIMARY, RECOVERY):
        alb = albs[region] = alb_factory(f"alb-web-{region}")
        alb.set_targets({f"i-{region}": backends(f"web@{region}").port})
        wait_for("target healthy", all_healthy(alb, {f"i-{region}"}), _bound_up(ALB_HC))
    router = GlobalRouter(tmp_path / "haproxy", registry, name="router-dns")
    stop = threading.Event()
    switches: list[tuple[float, str, str]] = []

    def watch() -> None:          # what the controller's router watch does every 20 ms
        while not stop.wait(0.02):
            switches.extend((time.monotonic(), old, new) for _svc, old, new in router.observe()[0])

    try:
        router.add_service("web", PRIMARY, albs[PRIMARY].port, RECOVERY, albs[RECOVERY].port, GA_HC, dns_ttl_s=ttl)
        router.start()
        threading.Thread(target=watch, daemon=True).start()
        assert region_of(router, "web") == PRIMARY and router.dns_ttl("web") == ttl
        t_down = time.monotonic()
        albs[PRIMARY].set_targets({})                    # the primary region's ALB loses its targets
        wait_for("router sees the primary down",
                 lambda: not router.server_states("web")[PRIMARY].healthy, _bound_down(ALB_HC, GA_HC))
        t_detected = time.monotonic()
        assert region_of(router, "web") == "HTTP 503"    # stale answer: still sent to the dead region
        wait_for("clients follow the new answer", lambda: region_of(router, "web") == RECOVERY,
                 _bound_down(ALB_HC, GA_HC) + ttl + 1.0)
        assert switches and switches[-1][1:] == (PRIMARY, RECOVERY)
        assert switches[-1][0] - t_detected >= ttl - 0.1, (switches, t_down, t_detected)
        assert router.active_region("web") == RECOVERY

        albs[PRIMARY].set_targets({f"i-{PRIMARY}": backends(f"web2@{PRIMARY}").port})
        wait_for("router sees the primary up", lambda: router.server_states("web")[PRIMARY].healthy,
                 _bound_up(ALB_HC, GA_HC))
        t_up = time.monotonic()
        assert region_of(router, "web") == RECOVERY      # failback waits for the TTL too
        wait_for("failback", lambda: region_of(router, "web") == PRIMARY, ttl + 1.0)
        assert switches[-1][1:] == (RECOVERY, PRIMARY) and switches[-1][0] - t_up >= ttl - 0.1
    finally:
        stop.set()
        router.stop()
