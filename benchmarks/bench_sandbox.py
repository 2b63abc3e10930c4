"""Sandbox cost and failover behaviour, measured from the client side and checked against ground truth.

Starts one sandbox (fast timing profile) in a fresh temporary state dir and prints:
  * bring-up time: the ``sandbox_up`` event, our own wall time, and terraform vs data plane
    (split at the daemon's "terraform applied" progress line);
  * resident memory of the whole sandbox process tree (RSS sum and PSS sum, by kind);
  * failover times per behaviour, each from a bounded loopback probe loop (urllib) and from the
    ground-truth events file: ALB target kill, service failover + fail-back, DB failover under a
    write loop, region outage + restore.  ``POST /reset`` between behaviours.

    .venv/bin/python benchmarks/bench_sandbox.py [--skip a,b,c,d] [--keep-state]

The sandbox is always torn down (``client.down``), also on Ctrl-C / SIGTERM.  Loopback only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import boto3

from gameday.sandbox import client
from gameday.sandbox.events import read_events
from gameday.target import SANDBOX_CREDENTIALS, Endpoints
from gameday.util.net import assert_loopback

PROBE_TIMEOUT_S = 1.0      # one request; a frozen region must not stall a probe loop for long
PROBE_INTERVAL_S = 0.05    # pause between requests of one probe loop
MAX_SAMPLES = 5000         # per probe loop
PHASE_LIMIT_S = 60.0       # any single wait inside a behaviour


# ---------------------------------------------------------------------------------------------- probes
@dataclass
class Sample:
    sent: float            # time.monotonic() (system-wide CLOCK_MONOTONIC: comparable with event "mono")
    done: float
    status: int            # 0: no HTTP answer (refused, reset, timeout)
    region: str | None


@dataclass
class Prober:
    """GET url in a loop on a thread until stopped, bounded in time and count."""

    url: str
    max_s: float = 120.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Prober:
        loopback_url(self.url)
        self._thread = threading.Thread(target=self._run, name=f"probe {self.url}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT_S + 2)

    def _run(self) -> None:
        end = time.monotonic() + self.max_s
        while not self._stop.is_set() and time.monotonic() < end and len(self.samples) < MAX_SAMPLES:
            self.samples.append(http("GET", self.url))
            self._stop.wait(PROBE_INTERVAL_S)

    def since(self, t0: float) -> list[Sample]:
        return [s for s in list(self.samples) if s.sent >= t0]


def loopback_url(url: str) -> str:
    assert_loopback(urlsplit(url).hostname or "")
    return url


def http(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = PROBE_TIMEOUT_S) -> Sample:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    t = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return Sample(t, time.monotonic(), resp.status, resp.headers.get("X-Gameday-Region"))
    except urllib.error.HTTPError as exc:
        return Sample(t, time.monotonic(), exc.code, exc.headers.get("X-Gameday-Region") if exc.headers else None)
    except (OSError, ValueError):
        return Sample(t, time.monotonic(), 0, None)


def ok(s: Sample) -> bool:
    return 200 <= s.status < 300


def first(samples: list[Sample], pred: Callable[[Sample], bool]) -> Sample | None:
    return next((s for s in samples if pred(s)), None)


def settled_at(samples: list[Sample], pred: Callable[[Sample], bool]) -> Sample | None:
    """The first sample from which on every sample satisfies pred (None if the last does not)."""
    found: Sample | None = None
    for s in samples:
        found = (found or s) if pred(s) else None
    return found


def wait_samples(p: Prober, t0: float, pred: Callable[[Sample], bool], timeout: float, then: int = 3) -> bool:
    """Until `then` consecutive samples after t0 satisfy pred; bounded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tail = p.since(t0)[-then:]
        if len(tail) == then and all(pred(s) for s in tail):
            return True
        time.sleep(0.05)
    return False


def wait_event(path: str, t0: float, pred: Callable[[dict[str, Any]], bool],
               timeout: float = PHASE_LIMIT_S) -> dict[str, Any] | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ev in events_since(path, t0):
            if pred(ev):
                return ev
        time.sleep(0.05)
    return None


def events_since(path: str, t0: float) -> list[dict[str, Any]]:
    try:
        return [e for e in read_events(path) if float(e.get("mono", 0)) >= t0]
    except FileNotFoundError:
        return []


def rel(t: float | None, t0: float) -> str:
    return "-" if t is None else f"{t - t0:.2f}"


def at(ev: dict[str, Any] | None) -> float | None:
    """Monotonic time of an event (None when it never came)."""
    return None if ev is None else float(ev["mono"])


def done(s: Sample | None) -> float | None:
    return None if s is None else s.done


def failures(samples: list[Sample]) -> str:
    bad = [s for s in samples if not ok(s)]
    if not bad:
        return f"0/{len(samples)}"
    return f"{len(bad)}/{len(samples)} over {bad[-1].done - bad[0].sent:.2f} s"


# ---------------------------------------------------------------------------------------------- memory
def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1:raw.rfind(")")]
        table[int(entry)] = (int(raw.rsplit(")", 1)[1].split()[1]), comm)
    return table


def sandbox_pids(state: Path) -> set[int]:
    """The daemon, every process recorded under pids/, and all their descendants."""
    roots: set[int] = set()
    pid = client.daemon_pid(state)
    if pid:
        roots.add(pid)
    for rec in (state / "pids").glob("*.json"):
        try:
            roots.add(int(json.loads(rec.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            continue
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    seen: set[int] = set()
    todo = [p for p in roots if p in table]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(children.get(p, []))
    return seen


def _kb(path: str, key: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kind(pid: int, comm: str) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    cmd = " ".join(a.decode(errors="replace") for a in argv)
    if "gameday.sandbox.daemon" in cmd:
        return "daemon (control plane + controller)"
    if "gameday.app" in cmd:
        return "service instances"
    if comm.startswith(("postgres", "postmaster")) or "/postgresql/" in cmd:
        return "postgresql"
    if comm == "haproxy":
        return "haproxy (ALBs + router)"
    if "tcpproxy" in cmd:
        return "tcp proxies"
    if "terraform" in comm or "terraform-provider" in cmd:
        return "terraform"
    return f"other ({comm})"


def memory(state: Path) -> tuple[int, int, int, dict[str, tuple[int, int, int]]]:
    """(processes, RSS kB, PSS kB, {kind: (n, rss, pss)})."""
    pids = sandbox_pids(state)
    table = _proc_table()
    by: dict[str, tuple[int, int, int]] = {}
    tot_rss = tot_pss = 0
    for p in pids:
        rss = _kb(f"/proc/{p}/status", "VmRSS")
        pss = _kb(f"/proc/{p}/smaps_rollup", "Pss")
        k = _kind(p, table.get(p, (0, "?"))[1])
        n, r, s = by.get(k, (0, 0, 0))
        by[k] = (n + 1, r + rss, s + pss)
        tot_rss += rss
        tot_pss += pss
    return len(pids), tot_rss, tot_pss, by


def print_memory(title: str, state: Path) -> None:
    n, rss, pss, by = memory(state)
    print(f"\n== {title}: {n} processes, RSS sum {rss / 1024:.0f} MiB, PSS sum {pss / 1024:.0f} MiB")
    print(f"   {'kind':40s} {'n':>3s} {'RSS MiB':>8s} {'PSS MiB':>8s}")
    for k, (cnt, r, s) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"   {k:40s} {cnt:3d} {r / 1024:8.0f} {s / 1024:8.0f}")


# ---------------------------------------------------------------------------------------------- behaviours
@dataclass
class Row:
    behaviour: str
    client: str             # what the probe saw
    truth: str              # what the events file says
    requests: str           # failed/total during the behaviour
    note: str = ""


class Bench:
    def __init__(self, state: Path, ep: Endpoints) -> None:
        self.state = state
        self.ep = ep
        self.topo = json.loads((state / "topology.json").read_text())
        self.p, self.r = ep.primary_region, ep.recovery_region
        self.events = ep.events_path or str(state / "events.jsonl")
        self.rows: list[Row] = []

    def aws(self, service: str, region: str | None = None) -> Any:
        assert self.ep.aws_endpoint_url is not None
        loopback_url(self.ep.aws_endpoint_url)
        return boto3.client(service, region_name=region or self.p, endpoint_url=self.ep.aws_endpoint_url,
                            aws_access_key_id=SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def asg(self, service: str, region: str) -> str:
        return str(self.topo["services"][service]["regions"][region]["asg_name"])

    def reset(self) -> float:
        t = time.monotonic()
        client.admin(self.ep, "/reset", method="POST")
        return time.monotonic() - t

    # (a) ------------------------------------------------------------------------------------------
    def alb_target_kill(self) -> None:
        asg = self.aws("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.asg("web", self.p)])["AutoScalingGroups"][0]
        victim = sorted(i["InstanceId"] for i in asg["Instances"] if i["LifecycleState"] == "InService")[0]
        probe = Prober(self.ep.regional["web"][self.p] + "/items").start()
        try:
            time.sleep(1.0)
            ec2 = self.aws("ec2")
            t0 = time.monotonic()
            ec2.terminate_instances(InstanceIds=[victim])
            api = time.monotonic() - t0
            killed = wait_event(self.events, t0, lambda e: e.get("instance") == victim
                                and e["kind"] == "instance_killed", timeout=30)
            # a terminated instance leaves the ASG (moto replaces it) and the controller drops the
            # target at once, so HAProxy may never mark it unhealthy: wait only briefly for that
            gone = wait_event(self.events, t0, lambda e: e.get("instance") == victim and e["kind"] in (
                "target_unhealthy", "target_deregistered"), timeout=3)
            unhealthy = gone if gone and gone["kind"] == "target_unhealthy" else None
            replaced = wait_event(self.events, t0, lambda e: e["kind"] == "target_healthy" and e.get("service") == "web"
                                  and e.get("region") == self.p and e.get("instance") != victim, timeout=30)
            time.sleep(1.0)
        finally:
            probe.stop()
        s = probe.since(t0)
        bad = [x for x in s if not ok(x)]
        client_txt = (f"first failed request at {rel(bad[0].sent, t0)} s, last at {rel(bad[-1].done, t0)} s"
                      if bad else "no failed request through the ALB")
        truth = (f"instance_killed {rel(at(killed), t0)} s; "
                 f"target_unhealthy {rel(at(unhealthy), t0)} s; "
                 f"{gone['kind'] if gone else 'no target_unhealthy/deregistered'} "
                 f"{rel(at(gone), t0)} s; replacement healthy {rel(at(replaced), t0)} s")
        self.rows.append(Row("(a) ALB target kill (web, 1 of 2)", client_txt, truth, failures(s),
                             f"TerminateInstances returned after {api:.2f} s"))

    # (b) ------------------------------------------------------------------------------------------
    def service_failover(self) -> None:
        asc = self.aws("autoscaling")
        name = self.asg("orders", self.p)
        g = asc.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        orig_min, orig_desired = int(g["MinSize"]), int(g["DesiredCapacity"])
        probe = Prober(self.ep.services["orders"] + "/items", max_s=3 * PHASE_LIMIT_S).start()
        restored = False
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            asc.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0)
            api_out = time.monotonic() - t0
            wait_samples(probe, t0, lambda x: ok(x) and x.region == self.r, PHASE_LIMIT_S)
            sw = wait_event(self.events, t0, lambda e: e["kind"] == "router_switched"
                            and e.get("service") == "orders" and e.get("to_region") == self.r, timeout=5)
            s_out = probe.since(t0)
            t1 = time.monotonic()
            asc.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=orig_min, DesiredCapacity=orig_desired)
            api_back = time.monotonic() - t1
            restored = True
            wait_samples(probe, t1, lambda x: ok(x) and x.region == self.p, PHASE_LIMIT_S)
            back = wait_event(self.events, t1, lambda e: e["kind"] == "router_switched"
                              and e.get("service") == "orders" and e.get("to_region") == self.p, timeout=5)
            s_back = probe.since(t1)
        finally:
            probe.stop()
            if not restored:
                asc.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=orig_min,
                                              DesiredCapacity=orig_desired)
        f_rec = first(s_out, lambda x: ok(x) and x.region == self.r)
        f_pri = first(s_back, lambda x: ok(x) and x.region == self.p)
        self.rows.append(Row("(b) service failover (orders ASG -> 0)",
                             f"first answer from {self.r} at {rel(done(f_rec), t0)} s",
                             f"router_switched -> {self.r} at {rel(at(sw), t0)} s",
                             failures([x for x in s_out if x.sent < (f_rec.done if f_rec else t1)]),
                             f"UpdateAutoScalingGroup returned after {api_out:.2f} s"))
        self.rows.append(Row("(b') fail back (ASG restored)",
                             f"first answer from {self.p} at {rel(done(f_pri), t1)} s",
                             f"router_switched -> {self.p} at {rel(at(back), t1)} s",
                             failures(s_back), f"UpdateAutoScalingGroup returned after {api_back:.2f} s"))

    # (c) ------------------------------------------------------------------------------------------
    def db_failover(self) -> None:
        url = self.ep.regional["orders"][self.p] + "/records"
        loopback_url(url)
        run = uuid.uuid4().hex[:8]
        acks: list[Sample] = []
        errors: list[Sample] = []
        stop = threading.Event()

        def writer() -> None:
            end = time.monotonic() + 2 * PHASE_LIMIT_S
            n = 0
            while not stop.is_set() and time.monotonic() < end and n < 20 * MAX_SAMPLES:
                n += 1
                s = http("POST", url, {"id": f"bench-{run}-{n}"}, timeout=5.0)
                (acks if s.status == 201 else errors).append(s)

        th = threading.Thread(target=writer, name="writer", daemon=True)
        th.start()
        try:
            time.sleep(1.5)
            rds = self.aws("rds")
            t0 = time.monotonic()
            rds.reboot_db_instance(DBInstanceIdentifier=self.topo["database"]["primary_identifier"],
                                   ForceFailover=True)
            api = time.monotonic() - t0
            fin = wait_event(self.events, t0, lambda e: e["kind"] == "db_failover_done", timeout=PHASE_LIMIT_S)
            started = wait_event(self.events, t0, lambda e: e["kind"] == "db_failover_started", timeout=0.1)
            # keep writing until a few writes are acknowledged after the switch
            end = time.monotonic() + 15
            while time.monotonic() < end and len([a for a in acks if a.sent > (fin or {}).get("mono", t0)]) < 10:
                time.sleep(0.1)
        finally:
            stop.set()
            th.join(timeout=10)
        window = [a for a in acks if a.done >= t0 - 1.0]
        gaps = [(b.done - a.done, a.done) for a, b in itertools.pairwise(window)]
        gap, gap_at = max(gaps) if gaps else (float("nan"), t0)
        errs = [e for e in errors if e.sent >= t0 - 1.0]
        before = [a for a in acks if a.done < t0]
        typical = (sum(b.done - a.done for a, b in itertools.pairwise(before)) / max(1, len(before) - 1))
        truth = (f"db_failover_done.duration_s {fin['duration_s']:.2f} s" if fin else "no db_failover_done")
        if started and fin:
            truth += f" (started->done {fin['mono'] - started['mono']:.2f} s, done at {rel(fin['mono'], t0)} s)"
        self.rows.append(Row("(c) DB failover (reboot ForceFailover)",
                             f"longest gap between acked writes {gap:.2f} s (from {rel(gap_at, t0)} s); "
                             f"steady gap {typical * 1000:.0f} ms",
                             truth, f"{len(errs)} failed / {len(window) + len(errs)} writes",
                             f"RebootDBInstance returned after {api:.2f} s"))

    # (d) ------------------------------------------------------------------------------------------
    def region_outage(self) -> None:
        from gameday.chaos.region.actions import region_outage, restore_region

        os.environ.update(self.ep.aws_env())
        cfg = {"aws_region": self.p}
        services = sorted(self.ep.services)
        probes = {s: Prober(self.ep.services[s] + "/items", max_s=3 * PHASE_LIMIT_S).start() for s in services}
        restored = False
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            region_outage(region=self.p, configuration=cfg)
            api_out = time.monotonic() - t0
            for s in services:
                wait_samples(probes[s], t0, lambda x: ok(x) and x.region == self.r, PHASE_LIMIT_S)
            down = wait_event(self.events, t0, lambda e: e["kind"] == "region_down", timeout=5)
            sw = {s: wait_event(self.events, t0, lambda e, s=s: e["kind"] == "router_switched"  # type: ignore[misc]
                                and e.get("service") == s and e.get("to_region") == self.r, timeout=2)
                  for s in services}
            out = {s: probes[s].since(t0) for s in services}
            t1 = time.monotonic()
            restore_region(region=self.p, configuration=cfg)
            api_back = time.monotonic() - t1
            restored = True
            for s in services:
                wait_samples(probes[s], t1, lambda x: ok(x) and x.region == self.p, PHASE_LIMIT_S)
            up = wait_event(self.events, t1, lambda e: e["kind"] == "region_up", timeout=5)
            back = {s: wait_event(self.events, t1, lambda e, s=s: e["kind"] == "router_switched"  # type: ignore[misc]
                                  and e.get("service") == s and e.get("to_region") == self.p, timeout=2)
                    for s in services}
            ret = {s: probes[s].since(t1) for s in services}
        finally:
            for p in probes.values():
                p.stop()
            if not restored:
                restore_region(region=self.p, configuration=cfg)
        firsts = {s: first(out[s], lambda x: ok(x) and x.region == self.r) for s in services}
        backs = {s: first(ret[s], lambda x: ok(x) and x.region == self.p) for s in services}
        all_rec = max((f.done for f in firsts.values() if f), default=None) if all(firsts.values()) else None
        all_pri = max((f.done for f in backs.values() if f), default=None) if all(backs.values()) else None
        per = ", ".join(f"{s} {rel(done(firsts[s]), t0)}" for s in services)
        sws = ", ".join(f"{s} {rel(at(sw[s]), t0)}" for s in services)
        self.rows.append(Row("(d) region outage (FIS, primary dark)",
                             f"all 3 from {self.r} at {rel(all_rec, t0)} s ({per})",
                             f"region_down {rel(at(down), t0)} s; router_switched {sws}",
                             "; ".join(f"{s} {failures(out[s])}" for s in services),
                             f"region_outage (FIS create template + start) returned after {api_out:.2f} s"))
        per = ", ".join(f"{s} {rel(done(backs[s]), t1)}" for s in services)
        sws = ", ".join(f"{s} {rel(at(back[s]), t1)}" for s in services)
        self.rows.append(Row("(d') restore_region",
                             f"all 3 from {self.p} at {rel(all_pri, t1)} s ({per})",
                             f"region_up {rel(at(up), t1)} s; router_switched {sws}",
                             "; ".join(f"{s} {failures(ret[s])}" for s in services),
                             f"restore_region (FIS stop) returned after {api_back:.2f} s"))


def print_rows(rows: list[Row]) -> None:
    print("\n== failover behaviours (seconds from the fault / restore API call; client = loopback probe)")
    for r in rows:
        print(f"\n{r.behaviour}")
        print(f"   client : {r.client}")
        print(f"   events : {r.truth}")
        print(f"   failed : {r.requests}")
        if r.note:
            print(f"   note   : {r.note}")


# ---------------------------------------------------------------------------------------------- main
def _progress_split(state: Path) -> str:
    """terraform vs data plane from the daemon's progress.log (its own monotonic seconds)."""
    tf = total = None
    for line in (state / "progress.log").read_text().splitlines():
        msg = line.split(" ", 1)[1] if " " in line else line
        if msg.startswith("terraform applied in "):
            tf = float(msg.split()[3])
        elif msg.startswith("sandbox up: all services healthy in "):
            total = float(msg.split()[-2])
    if tf is None or total is None:
        return "progress.log lacks the terraform/healthy lines"
    return (f"terraform (incl. control plane start) {tf:.1f} s + data plane (PostgreSQL, HAProxy, instances, "
            f"health) {total - tf:.1f} s = {total:.1f} s")


def _on_sigterm(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip", default="", help="comma-separated behaviours to skip: a,b,c,d")
    ap.add_argument("--keep-state", action="store_true", help="keep the temp state dir (logs, events) afterwards")
    args = ap.parse_args()
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    signal.signal(signal.SIGTERM, _on_sigterm)
    state = Path(tempfile.mkdtemp(prefix="gameday-bench-sandbox-"))
    print(f"state dir {state}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    arrived: list[tuple[float, str]] = []
    try:
        t0 = time.monotonic()
        ep = client.up(state, timing="fast", progress=lambda line: arrived.append((time.monotonic(), line)))
        wall = time.monotonic() - t0
        ev = next((e for e in read_events(state / "events.jsonl", "sandbox_up")), {})
        print("\n== bring-up (fast profile)")
        print(f"   sandbox_up event seconds : {ev.get('seconds', float('nan')):.1f} s (daemon's own clock)")
        print(f"   wall time of client.up   : {wall:.1f} s (incl. interpreter start, 0.2 s polling)")
        print(f"   split                    : {_progress_split(state)}")
        for t, line in arrived:  # milestones only, not every terraform resource
            if not any(k in line for k in ("Creation complete", "Refresh complete", "Modifications complete")):
                print(f"     +{t - t0:6.1f} s  {line}")
        time.sleep(2.0)  # let start-up transients (terraform, imports) settle
        print_memory("resident memory after bring-up (steady state)", state)
        bench = Bench(state, ep)
        steps = [("a", bench.alb_target_kill), ("b", bench.service_failover), ("c", bench.db_failover),
                 ("d", bench.region_outage)]
        resets: list[str] = []
        for key, fn in steps:
            if key in skip:
                continue
            print(f"\n-- running ({key}) ...", flush=True)
            try:
                fn()
            except Exception as exc:  # report and carry on with the next behaviour
                bench.rows.append(Row(f"({key}) {fn.__name__}", f"FAILED: {type(exc).__name__}: {exc}", "-", "-"))
            resets.append(f"{key}: {bench.reset():.1f} s")
        print_rows(bench.rows)
        print(f"\n   POST /reset after each behaviour took: {', '.join(resets)}")
        print_memory("resident memory after the behaviours", state)
        print(f"\nload average at end {os.getloadavg()[0]:.2f} (2-core box shared with other work: figures are noisy)")
    except KeyboardInterrupt:
        print("\ninterrupted: tearing the sandbox down", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the teardown short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        t = time.monotonic()
        n = client.down(state)
        print(f"sandbox down in {time.monotonic() - t:.1f} s ({n} recorded process groups still alive were killed)")
        if args.keep_state:
            print(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
