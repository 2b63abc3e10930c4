"""The Kubernetes manifest in docs/LOAD.md parses and wires workers to the master as locust expects."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "LOAD.md"


def test_manifest_in_docs_is_valid_and_consistent() -> None:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "no yaml block in docs/LOAD.md"
    docs = [d for d in yaml.safe_load_all(block.group(1)) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    master = by[("Deployment", "gameday-locust-master")]["spec"]["template"]["spec"]["containers"][0]
    worker_dep = by[("Deployment", "gameday-locust-worker")]["spec"]
    worker = worker_dep["spec"]["containers"][0] if "spec" in worker_dep else \
        worker_dep["template"]["spec"]["containers"][0]
    service = by[("Service", "gameday-locust-master")]["spec"]
    assert "--master" in master["args"] and "--worker" in worker["args"]
    assert worker["args"][worker["args"].index("--master-host") + 1] == "gameday-locust-master"
    expect = int(master["args"][master["args"].index("--expect-workers") + 1])
    assert expect == worker_dep["replicas"]
    assert service["ports"][0]["port"] == 5557 and service["selector"]["role"] == "master"
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert env["GAMEDAY_RUN_ID"] == {e["name"]: e["value"] for e in master["env"]}["GAMEDAY_RUN_ID"]
    users = int(master["args"][master["args"].index("-u") + 1])
    assert users % 3 == 0  # web read + orders read + orders write: -u is a multiple of the schedules
