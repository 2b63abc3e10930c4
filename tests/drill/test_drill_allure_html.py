"""The real report chain: allure-pytest results -> Allure 3 HTML (npm) -> headless Chromium.

A dummy drill suite (one pass, one SLO breach, one harness error) runs in a subprocess with
``--alluredir``; ``gameday report`` builds the HTML; Chromium renders it from a loopback HTTP
server and the rendered DOM must show every test. The screenshot is kept in the tmp dir.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gameday import allure_html, report_cli
from gameday.drill.report import (
    CATEGORY_HARNESS,
    CATEGORY_INFRA,
    CATEGORY_SLO,
    run_layout,
    write_categories,
    write_environment_properties,
)
from gameday.drill.scenario import load_scenario
from gameday.errors import ConfigError, PrerequisiteMissing

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Never-In-Reports-42"
TESTS = {"test_failover_meets_slos": "passed", "test_failover_breaches_rto": "failed",
         "test_sandbox_did_not_start": "broken", "test_failover_on_a_starved_host": "skipped"}

DUMMY = '''
import os
import sys
from pathlib import Path

import pytest

from gameday.drill.report import attach_file, attach_json, attach_verdicts, label_scenario, phase
from gameday.drill.scenario import load_scenario
from gameday.drill.slo import assert_slos, evaluate
from gameday.errors import DrillError

REPO = Path(os.environ["GAMEDAY_TEST_REPO"])
sys.path.insert(0, str(REPO / "tests" / "drill"))
from slo_bundles import bundle, loss, routing, rto  # noqa: E402

SCENARIO = load_scenario(REPO / "scenarios" / "service-failover.yaml")
REGIONS = {"primary": "eu-south-1", "recovery": "eu-central-1"}


def results(read_rto):
    rto4 = rto(read_rto, failed=4, total=200)
    calm = rto(0.0, status="no_errors", total=200)
    stay = routing("eu-south-1", "eu-south-1", "eu-south-1")
    return bundle(rto={"orders": {"read": rto4, "write": rto4}, "web": {"read": calm}, "catalog": {"read": calm}},
                  data_loss=loss(0, [], 0.0),
                  routing={"orders": routing("eu-south-1", "eu-central-1", "eu-south-1", 3.5, stayed=False),
                           "web": stay, "catalog": stay})


def drill(read_rto):
    label_scenario(SCENARIO, target="sandbox", timing="fast")
    with phase("steady state"):
        pass
    with phase("fault: service-failover"):
        attach_json({"database_password": os.environ["PW"], "service": "orders"}, "chaos configuration")
    with phase("verification"):
        verdicts = evaluate(SCENARIO, results(read_rto), regions=REGIONS)
        attach_verdicts(verdicts, secrets=(os.environ["PW"],))
        attach_file(Path("no-such-timeline.png"), "timeline")
    assert_slos(verdicts)


def test_failover_meets_slos():
    drill(4.0)


def test_failover_breaches_rto():
    drill(14.5)


def test_sandbox_did_not_start():
    with phase("steady state"):
        raise DrillError("steady state not reached within 60 s")


def test_failover_on_a_starved_host():
    from gameday.drill.results import DrillResults
    from gameday.drill.runner import DrillResult
    from gameday.drill.starvation import assess

    # a locust stream on a 20/s schedule that stalled for 3 s during the fault
    starts = [100.0 + k / 20 + (3.0 if k >= 200 else 0.0) for k in range(400)]
    starved = assess(SCENARIO.slos_for("fast"), 100.0, 120.0, events_path=None,
                     requests=[{"service": "orders", "kind": "read", "t0": t} for t in starts],
                     rates={("orders", "read"): 20.0})
    result = DrillResult("service-failover", Path("."), 100.0, None, DrillResults(host=starved), [], "completed",
                         starved)
    with phase("verification"):
        attach_json(starved.to_dict(), "host lateness")
    if result.inconclusive:
        pytest.skip(result.inconclusive_message)
'''


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run the dummy suite once; write the run folder's side files; build the report."""
    base = tmp_path_factory.mktemp("allure-run")
    layout = run_layout(base / "reports", "20250101-000000-1")
    (base / "test_dummy_drills.py").write_text(textwrap.dedent(DUMMY))
    env = {**os.environ, "GAMEDAY_TEST_REPO": str(REPO), "PW": PASSWORD}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(base), "--alluredir", str(layout.allure_results),
                           str(base / "test_dummy_drills.py")],
                          cwd=base, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one SLO breach + one harness error, by design
    assert "1 skipped" in proc.stdout, proc.stdout  # the INCONCLUSIVE drill: not a failure
    write_categories(layout.allure_results)
    write_environment_properties(layout.allure_results, {"target": "sandbox", "timing": "fast",
                                                         "database_password": PASSWORD}, secrets=(PASSWORD,))
    # Through the CLI entry point, as `gameday report --results ... --out ...` runs it.
    parser = argparse.ArgumentParser(prog="gameday")
    report_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "--results", str(layout.allure_results)])
    assert args.func(args) == 0
    return {"base": base, "results": layout.allure_results, "report": layout.allure_report}


def test_allure_results_carry_labels_steps_and_no_password(run: dict[str, Path]) -> None:
    docs = [json.loads(p.read_text()) for p in run["results"].glob("*-result.json")]
    assert {d["name"]: d["status"] for d in docs} == TESTS
    breach = next(d for d in docs if d["name"] == "test_failover_breaches_rto")
    labels = {(lbl["name"], lbl["value"]) for lbl in breach["labels"]}
    assert {("scenario", "service-failover"), ("fault type", "service"), ("feature", "service fault"),
            ("story", "service-failover")} <= labels
    params = {p["name"]: p["value"] for p in breach["parameters"]}
    assert params == {"scenario": "'service-failover'", "target": "'sandbox'", "timing": "'fast'"}, params
    assert [s["name"] for s in breach["steps"]] == ["steady state", "fault: service-failover", "verification"]
    assert breach["statusDetails"]["message"].startswith("AssertionError: SLO breach: 2 of ")
    budget = load_scenario(REPO / "scenarios" / "service-failover.yaml").slos_for("fast").read_budget("orders")
    assert budget is not None
    assert f"orders read RTO 14.5 s > {budget:.1f} s allowed (budget {budget:.1f} s = " in \
        breach["statusDetails"]["message"]
    attachments = [a["name"] for s in breach["steps"] for a in s.get("attachments", [])]
    assert attachments == ["chaos configuration", "SLO verdicts", "SLO verdicts (json)", "timeline (missing)"]
    starved = next(d for d in docs if d["name"] == "test_failover_on_a_starved_host")
    message = starved["statusDetails"]["message"]
    assert message.startswith("Skipped: INCONCLUSIVE: host starved: load generator schedule lateness p99 2."), message
    assert " s during the fault (bound = 25% of the tightest RTO budget" in message
    for path in run["results"].iterdir():
        assert PASSWORD not in path.read_text(errors="replace"), path


def test_report_html_renders_in_chromium(run: dict[str, Path]) -> None:
    report = run["report"]
    index = report / "index.html"
    assert index.is_file()
    assert "googletagmanager" not in index.read_text()  # nothing in the page calls out of the machine
    widgets = report / "widgets"
    categories = json.loads((widgets / "categories.json").read_text())
    names = {n["name"] for n in categories["nodes"].values() if n.get("type") == "category"}
    assert names == {CATEGORY_SLO, CATEGORY_HARNESS, CATEGORY_INFRA}
    env_widget = (widgets / "allure_environment.json").read_text()
    assert "sandbox" in env_widget and PASSWORD not in env_widget
    for path in report.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".txt", ".md"):
            assert PASSWORD not in path.read_text(errors="replace"), path

    browser = chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    profile = run["base"] / "chromium-profile"
    shot = run["base"] / "report.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             # belt and braces: no name resolves except loopback, whatever the page asks for
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--virtual-time-budget=15000", "--window-size=1400,1000"]
    env = {**os.environ, "HOME": str(run["base"])}
    with allure_html.serve_report(report) as url:
        assert url.startswith("http://127.0.0.1:")
        dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                             env=env, check=False)
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot_run = subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, text=True,
                                  timeout=120, env=env, check=False)
        assert shot_run.returncode == 0, shot_run.stderr[-2000:]
    # Titles rendered by the report's JavaScript (they are not in index.html itself).
    leaf = r'data-testid="tree-leaf-title"[^>]*>([^<]+)<'
    titles = {html.unescape(t) for t in re.findall(leaf, dom.stdout)}
    assert set(TESTS) <= titles, titles
    for status in ("passed", "failed", "broken", "skipped"):
        assert f'data-testid="tree-leaf-status-{status}"' in dom.stdout
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_generate_refuses_bad_input(tmp_path: Path, run: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="allure results folder not found"):
        allure_html.generate_report(tmp_path / "none", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no test results \(\*-result.json\)"):
        allure_html.generate_report(tmp_path / "empty", tmp_path / "out")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        allure_html.generate_report(run["results"], tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_missing_prerequisites_say_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allure_html, "repo_candidates", lambda: [tmp_path])
    (tmp_path / "package.json").write_text("{}")
    with pytest.raises(PrerequisiteMissing) as info:
        allure_html.find_allure_cli()
    assert "npm package 'allure'" in str(info.value) and f"cd {tmp_path} && npm ci" in str(info.value)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(PrerequisiteMissing) as info:
        allure_html.find_allure_cli()
    assert "node (Node.js" in str(info.value) and "apt-get install -y nodejs npm" in str(info.value)


def test_allure_is_version_3() -> None:
    assert allure_html.allure_version().startswith("3.")
