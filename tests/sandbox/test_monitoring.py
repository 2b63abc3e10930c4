"""Monitoring parts without a sandbox: the rules and config (real promtool), the ALB exporter (real HAProxy)."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gameday.errors import PrerequisiteMissing
from gameday.provision.prereqs import find_prometheus, find_promtool
from gameday.sandbox.haproxy import AlbProxy, HealthCheck
from gameday.sandbox.monitoring import (
    Cadence,
    RegionPrometheus,
    format_duration,
    parse_duration,
    rules_dir,
    scale_rules,
)
from gameday.sandbox.timing import get_profile
from gameday.util.procs import ProcessRegistry

EXPECTED = {"InstanceDown", "ServiceDown", "HighErrorRate", "RegionUnreachable", "ReplicaLagHigh"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(find_promtool()), *args], capture_output=True, text=True, timeout=60, check=False)


def _rule_files() -> list[Path]:
    files = sorted(rules_dir().glob("*.yml"))
    assert files, rules_dir()
    return files


def _rules(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def test_shipped_rules_pass_promtool_and_name_the_drill_alerts() -> None:
    proc = _promtool("check", "rules", *map(str, _rule_files()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = {a for f in _rule_files() for a in _rules(yaml.safe_load(f.read_text()))}
    assert names >= EXPECTED


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: x\n  rules:\n  - alert: Broken\n    expr: up{job=\n")
    assert _promtool("check", "rules", str(bad)).returncode != 0


@pytest.mark.parametrize("profile", ["fast", "aws"])
def test_scaled_rules_pass_promtool(profile: str, tmp_path: Path) -> None:
    timing = get_profile(profile)
    cadence = Cadence.of(timing)
    for f in _rule_files():
        scaled = scale_rules(yaml.safe_load(f.read_text()), timing, cadence)
        out = tmp_path / f"{profile}-{f.name}"
        out.write_text(yaml.safe_dump(scaled, sort_keys=False))
        proc = _promtool("check", "rules", str(out))
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fast_profile_scales_every_duration() -> None:
    timing = get_profile("fast")
    cadence = Cadence.of(timing)
    assert (cadence.scrape_s, cadence.timeout_s, cadence.evaluation_s) == (pytest.approx(1.2), 1.0, pytest.approx(1.2))
    shipped = _rules(yaml.safe_load((rules_dir() / "gameday.yml").read_text()))
    scaled = _rules(scale_rules(yaml.safe_load((rules_dir() / "gameday.yml").read_text()), timing, cadence))
    for name in EXPECTED:
        assert parse_duration(scaled[name]["for"]) == pytest.approx(parse_duration(shipped[name]["for"]) * 0.02)
    assert scaled["ReplicaLagHigh"]["expr"].endswith("> 1.2")  # 60 s of lag, scaled
    # a rate window never shrinks below four scrapes (rate needs samples)
    assert "[6000ms]" in scaled["HighErrorRate"]["expr"]
    assert scaled["HighErrorRate"]["expr"].endswith("> 0.05")  # a ratio, not a duration: unscaled
    aws = _rules(scale_rules(yaml.safe_load((rules_dir() / "gameday.yml").read_text()), get_profile("aws"),
                             Cadence.of(get_profile("aws"))))
    assert parse_duration(aws["RegionUnreachable"]["for"]) == parse_duration(shipped["RegionUnreachable"]["for"])


def test_durations_round_trip() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("1500ms") == 1.5
    assert format_duration(2.4) == "2400ms"
    with pytest.raises(Exception, match="duration"):
        parse_duration("2 minutes")


def test_generated_config_passes_promtool(tmp_path: Path) -> None:
    timing = get_profile("fast")
    cadence = Cadence.of(timing)
    rules = scale_rules(yaml.safe_load((rules_dir() / "gameday.yml").read_text()), timing, cadence)
    prom = RegionPrometheus("eu-west-1", tmp_path / "eu-west-1", ProcessRegistry(tmp_path / "state"))
    albs = [{"targets": ["127.0.0.1:9101"], "labels": {"service": "orders", "region": "eu-west-1", "alb": "a"}}]
    prom.write_config(cadence, rules, albs, "127.0.0.1:9102", ("eu-central-1", "http://127.0.0.1:9103"))
    prom.write_instances([{"targets": ["127.0.0.1:9104"], "labels": {"service": "orders", "instance_id": "i-1"}}])
    proc = _promtool("check", "config", str(prom.config_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout + proc.stderr


def test_missing_prometheus_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAMEDAY_PROMETHEUS", str(tmp_path / "no-such-prometheus"))
    with pytest.raises(PrerequisiteMissing, match="GAMEDAY_PROMETHEUS") as exc:
        find_prometheus()
    assert "apt-get install prometheus" in str(exc.value)


def test_alb_serves_haproxy_prometheus_exporter_on_its_own_port(tmp_path: Path) -> None:
    registry = ProcessRegistry(tmp_path / "state")
    alb = AlbProxy("alb-metrics", tmp_path / "haproxy", registry,
                   HealthCheck(path="/health", interval_s=0.1, timeout_s=0.3, healthy_threshold=2,
                               unhealthy_threshold=2))
    try:
        alb.start()
        assert alb.metrics_port != alb.port
        with pytest.raises(urllib.error.HTTPError) as no_targets:  # the listener never serves metrics
            urllib.request.urlopen(f"{alb.url}/metrics", timeout=5)
        assert no_targets.value.code == 503
        with urllib.request.urlopen(alb.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        samples = {(s.name, s.labels.get("proxy")): s.value
                   for fam in text_string_to_metric_families(text) for s in fam.samples}
        assert samples[("haproxy_backend_active_servers", "targets")] == 0
        assert samples[("haproxy_frontend_http_responses_total", "alb")] >= 1 or \
            samples[("haproxy_frontend_http_requests_total", "alb")] >= 1
    finally:
        alb.stop()
        registry.kill_all()


def test_prometheus_that_cannot_start_leaves_no_process(tmp_path: Path) -> None:
    import psutil

    from gameday.errors import SandboxError

    registry = ProcessRegistry(tmp_path / "state")
    prom = RegionPrometheus("eu-west-1", tmp_path / "eu-west-1", registry)
    prom.dir.mkdir(parents=True)
    prom.config_path.write_text("scrape_configs: [{job_name: x, static_configs: nope}]\n")
    try:
        with pytest.raises(SandboxError, match="did not become ready"):
            prom.start(find_prometheus())
        assert prom.proc_name not in registry.procs
        assert not list(registry.dir.glob("*.json"))
        left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(prom.config_path) in " ".join(
            p.info["cmdline"] or [])]
        assert not left, left
    finally:
        registry.kill_all()
