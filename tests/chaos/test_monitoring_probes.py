"""gameday.chaos.monitoring.probes against a real Prometheus (scraping itself, with one always-firing rule)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gameday.chaos._common import ActivityFailed
from gameday.chaos.monitoring.probes import alerts_firing, query
from gameday.provision.prereqs import find_prometheus
from gameday.util.net import LOOPBACK, free_port
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until

REGION = "eu-west-1"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": [
        {"alert": "AlwaysFiring", "expr": 'up{job="self"} == 1', "labels": {"severity": "test"}},
        {"alert": "NeverFiring", "expr": 'up{job="self"} == 0'}]}]}))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "200ms", "evaluation_interval": "200ms", "scrape_timeout": "200ms"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [{"job_name": "self", "static_configs": [{"targets": [f"{LOOPBACK}:{port}"],
                                                                    "labels": {"region": REGION}}]}]}))
    registry = ProcessRegistry(tmp_path / "state")
    try:
        registry.spawn("prometheus", [str(find_prometheus()), f"--config.file={tmp_path / 'prometheus.yml'}",
                                      f"--storage.tsdb.path={tmp_path / 'data'}",
                                      f"--web.listen-address={LOOPBACK}:{port}", "--log.level=warn"],
                       log=tmp_path / "prometheus.log")
        yield f"http://{LOOPBACK}:{port}"
    finally:
        registry.kill_all()


def test_query_and_alerts_firing(prometheus: str) -> None:
    conf = {"gameday_prometheus_urls": {REGION: prometheus}}

    def scraped() -> bool:
        try:
            return bool(query('up{job="self"}', REGION, conf))
        except ActivityFailed:
            return False

    wait_until("Prometheus scraping itself", scraped, timeout=30)
    (result,) = query('up{job="self"}', REGION, conf)
    assert result["value"] == 1 and result["labels"]["region"] == REGION
    assert query("1 + 1", REGION, conf) == [{"labels": {}, "value": 2.0}]
    wait_until("the rule firing", lambda: bool(alerts_firing(REGION, conf)), timeout=30)
    firing = alerts_firing(REGION, conf)
    assert [a["name"] for a in firing] == ["AlwaysFiring"] and firing[0]["labels"]["severity"] == "test"
    with pytest.raises(ActivityFailed, match="bad_data"):
        query("up{", REGION, conf)
    # configuration given as JSON text, as the experiments' env gives it
    assert query("1", REGION, {"gameday_prometheus_urls": f'{{"{REGION}": "{prometheus}"}}'})[0]["value"] == 1


def test_unknown_region_and_unreachable_prometheus_fail_clearly() -> None:
    with pytest.raises(ActivityFailed, match="no Prometheus for region"):
        query("up", "us-east-1", {"gameday_prometheus_urls": {REGION: "http://127.0.0.1:1"}})
    with pytest.raises(ActivityFailed, match="unreachable"):
        alerts_firing(REGION, {"gameday_prometheus_urls": {REGION: f"http://{LOOPBACK}:{free_port()}"}})
