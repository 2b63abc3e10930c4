"""Plan files: the shipped plans load; bad ones give one line naming file and field, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gameday.errors import ConfigError
from gameday.gameday.plan import load_plan

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: {name}
target: {{kind: sandbox}}
scenarios:
  - instance-termination
  - name: service-failover
    load: {{duration_s: 40}}
    slos: {{rto_s: {{orders: policy}}, max_rpo_s: policy}}
policy:
  rto_s: {{"*": 30}}
  rpo_s: {{"*": 0}}
  by_disruption: {{software: {{rto_s: {{orders: 12}}}}}}
schedule: {{cron: "*/5 * * * *", timezone: Europe/Rome}}
"""


def write(tmp: Path, name: str, text: str) -> Path:
    d = tmp / "gamedays"
    d.mkdir(exist_ok=True)
    p = d / f"{name}.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_weekly_plan_runs_every_drill() -> None:
    plan = load_plan(REPO / "gamedays" / "weekly.yaml")
    assert {s.name for s in plan.scenarios} == {p.stem for p in (REPO / "scenarios").glob("*.yaml")}
    assert plan.schedule is not None and plan.schedule.timezone == "Europe/Rome"


def test_overrides_and_policy_references(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, "good", GOOD.format(name="good")))
    sf = next(s for s in plan.scenarios if s.name == "service-failover")
    assert sf.load_for("fast").duration_s == 40
    slos = sf.slos_for("fast", "global_accelerator")
    # 'policy' resolves per disruption type: service faults are "software" in Resilience Hub's terms
    assert slos.rto_s == {"orders": 12.0}
    assert slos.max_rpo_s == 0.0
    assert "policy" in (slos.budget_basis("read", "orders") or "")
    assert plan.policy.target("rto", "web", "region") == 30.0


BAD = [
    ("not-a-mapping", "- a\n- b\n", None, "must be a YAML mapping"),
    ("syntax", "name: syntax\ntarget: {kind: sandbox\n", None, "invalid YAML"),
    ("missing-target", "name: missing-target\nscenarios: [instance-termination]\n", "target", "required"),
    ("bad-kind", "name: bad-kind\ntarget: {kind: gcp}\nscenarios: [instance-termination]\n", "target.kind",
     "expected one of"),
    ("unknown-key", "name: unknown-key\ntarget: {kind: sandbox}\nscenarios: [instance-termination]\nfoo: 1\n",
     "foo", "unknown key"),
    ("no-scenario", "name: no-scenario\ntarget: {kind: sandbox}\nscenarios: [no-such-drill]\n", "scenarios.0",
     "no scenario named"),
    ("twice", "name: twice\ntarget: {kind: sandbox}\nscenarios: [instance-termination, instance-termination]\n",
     "scenarios.1", "listed twice"),
    ("bad-cron", "name: bad-cron\ntarget: {kind: sandbox}\nscenarios: [instance-termination]\n"
     "schedule: {cron: '61 * * * *'}\n", "schedule.cron", "cron"),
    ("bad-tz", "name: bad-tz\ntarget: {kind: sandbox}\nscenarios: [instance-termination]\n"
     "schedule: {cron: '0 6 * * 1', timezone: Mars/Olympus}\n", "schedule.timezone", "time zone"),
    ("policy-missing", "name: policy-missing\ntarget: {kind: sandbox}\nscenarios:\n"
     "  - {name: service-failover, slos: {rto_s: {orders: policy}}}\n", "scenarios.0.slos.rto_s.orders",
     "policy sets no"),
    ("aws-no-topology", "name: aws-no-topology\ntarget: {kind: aws}\nscenarios: [instance-termination]\n",
     "target.topology", "topology"),
    ("sandbox-only", "name: sandbox-only\ntarget: {kind: aws, topology: t.json}\nscenarios: [database-crash]\n",
     "scenarios.0", "runs only on sandbox"),
    ("bad-load", "name: bad-load\ntarget: {kind: sandbox}\nscenarios:\n"
     "  - {name: instance-termination, load: {duration_s: -1}}\n", "scenarios.0.load.duration_s", "minimum"),
    ("bad-config", "name: bad-config\ntarget: {kind: sandbox}\nscenarios:\n"
     "  - {name: instance-termination, experiment_config: {nope: 1}}\n", "scenarios.0.experiment_config.nope",
     "not a configuration key"),
    ("bad-url", "name: bad-url\ntarget: {kind: sandbox}\nscenarios: [instance-termination]\n"
     "notify: [{url: 'ftp://x'}]\n", "notify.0.url", "expected form"),
    ("wrong-name", "name: other\ntarget: {kind: sandbox}\nscenarios: [instance-termination]\n", "name",
     "differs from the file name"),
]


@pytest.mark.parametrize(("stem", "text", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_plan_names_file_and_field(tmp_path: Path, stem: str, text: str, field: str | None, words: str) -> None:
    path = write(tmp_path, stem, text)
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    err = info.value
    assert err.file == str(path)
    assert err.field == field
    first = str(err).splitlines()[0]
    assert str(path) in first and words in first
    if field:
        assert f"field '{field}'" in first


def test_bad_plan_cli_exit_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "bad-kind", BAD[3][1])
    for cmd in (["run", str(path)], ["schedule", str(path)]):
        proc = subprocess.run([sys.executable, "-m", "gameday", *cmd], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[0].startswith(f"gameday: error: {path}: field 'target.kind'"), proc.stderr
        assert len(lines) <= 2  # the message, then the "fix:" line
