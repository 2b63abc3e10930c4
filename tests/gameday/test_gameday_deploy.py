"""deploy/: the systemd units, the Kubernetes CronJob and the CI example, each checked by its own tool
where the machine has it, and their schedules checked against gamedays/weekly.yaml's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from gameday.gameday.plan import load_plan
from gameday.gameday.scheduler import next_firing

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
WEEKLY = load_plan(REPO / "gamedays" / "weekly.yaml")


def _units(tmp: Path) -> Path:
    """The units with /opt/gameday pointed at this checkout (verify checks ExecStart exists)."""
    out = tmp / "units"
    out.mkdir()
    for f in (DEPLOY / "systemd").iterdir():
        (out / f.name).write_text(f.read_text().replace("/opt/gameday/.venv/bin/gameday",
                                                        str(Path(sys.executable).parent / "gameday")))
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not on this machine")
def test_systemd_units_verify(tmp_path: Path) -> None:
    units = _units(tmp_path)
    files = sorted(str(p) for p in units.iterdir())
    proc = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True, timeout=60)
    ours = [ln for ln in (proc.stdout + proc.stderr).splitlines() if str(units) in ln or "gameday" in ln]
    assert proc.returncode == 0 and not ours, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not on this machine")
def test_timer_fires_when_the_plan_does() -> None:
    timer = (DEPLOY / "systemd" / "gameday-weekly.timer").read_text()
    spec = next(ln.split("=", 1)[1] for ln in timer.splitlines() if ln.startswith("OnCalendar="))
    base = "2025-01-01 12:00:00 UTC"  # both answer from the same instant (a Wednesday in winter)
    proc = subprocess.run(["systemd-analyze", "calendar", f"--base-time={base}", spec],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 and "--base-time" in proc.stderr:
        pytest.skip("this systemd-analyze has no --base-time")
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "Next elapse" in ln)
    got = datetime.strptime(line.split(":", 1)[1].strip().split(" ", 1)[1], "%Y-%m-%d %H:%M:%S %Z")
    assert WEEKLY.schedule is not None
    want = next_firing(WEEKLY.schedule.cron, datetime(2025, 1, 1, 12, tzinfo=UTC), ZoneInfo(WEEKLY.schedule.timezone))
    assert got.replace(tzinfo=UTC) == want


def test_kubernetes_cronjob() -> None:
    path = DEPLOY / "kubernetes" / "gameday-cronjob.yaml"
    doc = yaml.safe_load(path.read_text())
    spec = doc["spec"]
    assert WEEKLY.schedule is not None
    assert (spec["schedule"], spec["timeZone"]) == (WEEKLY.schedule.cron, WEEKLY.schedule.timezone)
    assert spec["concurrencyPolicy"] == "Forbid"
    ZoneInfo(spec["timeZone"])
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][0] == "run" and pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] >= 900
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not on this machine (the schedule was checked above)")
    # kubectl's own CronJob for the same schedule and command (client side, no cluster needed): every
    # field path it writes must be in ours, at the same place
    ref = subprocess.run(["kubectl", "create", "cronjob", "gameday-weekly", f"--image={container['image']}",
                          f"--schedule={spec['schedule']}", "--restart=Never", "--dry-run=client", "-o", "json",
                          "--", *container["command"], *container["args"]], capture_output=True, text=True, timeout=60)
    assert ref.returncode == 0, ref.stderr

    def paths(node: object, prefix: str = "") -> set[str]:
        if isinstance(node, dict):
            return {p for k, v in node.items() if k not in ("creationTimestamp", "resources", "status")
                    for p in paths(v, f"{prefix}.{k}")} or {prefix}
        if isinstance(node, list):
            return {p for v in node[:1] for p in paths(v, f"{prefix}[]")} or {prefix}
        return {prefix}

    ours = paths(doc)
    missing = {p for p in paths(json.loads(ref.stdout)) if not any(o == p or o.startswith(p + ".") for o in ours)}
    assert not missing, missing
    kust = Path(path.parent / "kustomization.yaml")
    assert not kust.exists()
    proc = subprocess.run(["kubectl", "create", "--dry-run=client", "--validate=false", "-o", "name", "-f", str(path)],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 and "connection refused" in proc.stderr:
        return  # kubectl needs a cluster's API discovery for -f; the generated reference above is the check
    assert proc.returncode == 0 and "cronjob" in proc.stdout, proc.stderr


def test_ci_schedule_example() -> None:
    doc = yaml.safe_load((DEPLOY / "ci" / "github-actions-gameday.yml").read_text())
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as true
    cron = on["schedule"][0]["cron"]
    assert WEEKLY.schedule is not None
    winter = datetime(2025, 1, 1, 12, tzinfo=UTC)
    # CI crons are UTC: in winter the example fires at the plan's instant
    assert next_firing(cron, winter, ZoneInfo("UTC")) == next_firing(WEEKLY.schedule.cron, winter,
                                                                    ZoneInfo(WEEKLY.schedule.timezone))
    steps = doc["jobs"]["gameday"]["steps"]
    assert any(s.get("run") == "make gameday" for s in steps) and doc["concurrency"]["cancel-in-progress"] is False
    make = subprocess.run(["make", "-n", "gameday"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert make.returncode == 0 and "gameday run gamedays/weekly.yaml" in make.stdout, make.stderr
