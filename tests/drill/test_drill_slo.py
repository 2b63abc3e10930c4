"""SLO verdicts on typed result bundles (gameday.analysis.results.AnalysisSummary)."""

from __future__ import annotations

from pathlib import Path

import pytest
from slo_bundles import bundle, loss, routing, rto

from gameday.drill.scenario import LoadProfile, Scenario, Slos, Unaffected, load_scenario
from gameday.drill.slo import (
    SLO_BREACH_PREFIX,
    ErrorRatio,
    assert_slos,
    breach_message,
    evaluate,
    slo_table_markdown,
)
from gameday.errors import DrillError

REPO = Path(__file__).resolve().parents[2]
REGIONS = {"primary": "eu-south-1", "recovery": "eu-central-1"}


def scenario(slos: Slos, aws: Slos | None = None) -> Scenario:
    return Scenario(name="demo", description="d", experiment="demo", experiment_path=Path("demo.json"),
                    fault="service", load=LoadProfile(), slos=slos,
                    slos_by_timing={"aws": aws} if aws else {})


def test_rto_pass_and_breach_messages() -> None:
    s = scenario(Slos(rto_s={"*": 5.0, "orders": 5.0}, write_rto_s={"orders": 10.0}, max_lost_writes=None))
    results = bundle(rto={"orders": {"read": rto(7.4, failed=30), "write": rto(9.5, failed=12)},
                           "web": {"read": rto(0.0, status="no_errors"), "write": rto(3.2, failed=2)}})
    by_name = {v.name: v for v in evaluate(s, results)}
    assert by_name["rto.orders.read"].message == "orders read RTO 7.4 s > 5.0 s allowed"
    assert not by_name["rto.orders.read"].passed and by_name["rto.orders.read"].measured == 7.4
    assert by_name["rto.orders.write"].message == "orders write RTO 9.5 s <= 10.0 s allowed"
    assert by_name["rto.orders.write"].passed
    assert by_name["rto.web.read"].message == "web read RTO 0.0 s <= 5.0 s allowed (no errors)"
    # web has no write_rto_s entry: its write budget is the read one ("*": 5)
    assert by_name["rto.web.write"].message == "web write RTO 3.2 s <= 5.0 s allowed"
    assert "rto.web.write" in by_name and "rto.catalog.read" not in by_name


def test_rto_rounding_never_hides_a_breach() -> None:
    s = scenario(Slos(rto_s={"orders": 5.0}, max_lost_writes=None))
    [read, _write] = evaluate(s, bundle(rto={"orders": {"read": rto(5.04), "write": rto(1.0)}}))
    assert read.message == "orders read RTO 5.04 s > 5.00 s allowed" and not read.passed


def test_not_recovered_and_not_measured_fail() -> None:
    s = scenario(Slos(rto_s={"orders": 5.0, "catalog": 5.0}, max_lost_writes=None))
    results = bundle(rto={"orders": {"read": rto(None, recovered=False, status="not_recovered", failed=40,
                                                 unknown=3, ttfe=2.1),
                                     "write": rto(None, recovered=False, status="no_data", total=0)}})
    by_name = {v.name: v for v in evaluate(s, results)}
    assert by_name["rto.orders.read"].message == (
        "orders reads never recovered within the run (first error at 2.1 s; 40 failed, 3 unknown); "
        "5.0 s allowed")
    assert by_name["rto.orders.write"].message == (
        "orders write RTO not measured (no write requests after the fault); 5.0 s allowed")
    assert by_name["rto.catalog.read"].message == (
        "catalog read RTO not measured (no read requests after the fault); 5.0 s allowed")
    assert not any(v.passed for v in by_name.values())


def test_lost_writes_and_rpo() -> None:
    s = scenario(Slos(max_lost_writes=0, max_rpo_s=1.0))
    ids = [f"w-{i}" for i in range(12)]
    verdicts = evaluate(s, bundle(data_loss=loss(12, ids, 1.8)))
    assert [v.message for v in verdicts] == [
        "lost acknowledged writes: 12 > 0 allowed (ids: w-0, w-1, w-2, w-3, w-4, w-5, w-6, w-7, w-8, w-9 "
        "(+2 more))",
        "RPO 1.8 s > 1.0 s allowed (12 acknowledged writes lost)",
    ]
    ok = evaluate(s, bundle(data_loss=loss(0, [], 0.0)))
    assert [v.message for v in ok] == ["lost acknowledged writes: 0 <= 0 allowed",
                                       "RPO 0.0 s <= 1.0 s allowed"]
    assert all(v.passed for v in ok)
    missing = evaluate(s, bundle(data_loss=None))
    assert [v.passed for v in missing] == [False, False]
    assert missing[0].message == "lost writes not measured: the results have no data-loss analysis"


def test_region_outage_allows_loss_within_rpo_only() -> None:
    s = load_scenario(REPO / "scenarios" / "region-outage.yaml")
    by_name = {v.name: v for v in evaluate(s, bundle(data_loss=loss(3, ["a", "b", "c"], 0.7)), regions=REGIONS)}
    assert "lost_writes" not in by_name  # max_lost_writes: null -> the count itself is not judged
    rpo = by_name["rpo"]
    assert rpo.passed and rpo.message == "RPO 0.7 s <= 5.0 s allowed (3 acknowledged writes lost)"


def test_region_slos() -> None:
    s = scenario(Slos(max_lost_writes=None, end_region={"*": "primary"}, during_region={"orders": "recovery"},
                      must_switch=("orders", "catalog")))
    results = bundle(primary="eu-south-1",
                     routing={"web": routing("eu-south-1", "eu-south-1", "eu-central-1", 3.0),
                              "orders": routing("eu-south-1", "eu-central-1", "eu-south-1", 4.1),
                              "catalog": routing("eu-south-1", "eu-south-1", None)})
    by_name = {v.name: v for v in evaluate(s, results, regions=REGIONS)}
    assert by_name["end_region.web"].message == "web ended in eu-central-1, expected primary eu-south-1"
    assert not by_name["end_region.web"].passed
    assert by_name["end_region.orders"].message == "orders ended in eu-south-1 (primary), as expected"
    assert by_name["end_region.catalog"].message == (
        "catalog: no request succeeded at the end, expected primary eu-south-1")
    assert by_name["during_region.orders"].message == (
        "orders was served from eu-central-1 during the fault (recovery), as expected")
    assert by_name["must_switch.orders"].message == "orders switched to eu-central-1 at 4.1 s"
    assert by_name["must_switch.orders"].passed
    assert by_name["must_switch.catalog"].message == (
        "catalog never switched region, expected a switch to recovery eu-central-1")


def test_region_slo_needs_region_names() -> None:
    s = scenario(Slos(max_lost_writes=None, during_region={"*": "recovery"}))
    with pytest.raises(DrillError, match="names no 'recovery' region"):
        evaluate(s, bundle(routing={"web": routing("eu-south-1", "eu-central-1", "eu-central-1", 1.0)}))


def test_unaffected_services_from_explicit_ratios_and_from_rto_counts() -> None:
    s = scenario(Slos(max_lost_writes=None, unaffected=Unaffected(("web", "catalog"), 0.01)))
    errors = {"web": ErrorRatio(0.125, 25, 200), "catalog": ErrorRatio(0.005, 1, 200)}
    results = bundle(routing={"web": routing("eu-south-1", "eu-central-1", "eu-central-1", 2.0),
                              "catalog": routing("eu-south-1", "eu-south-1", "eu-south-1")})
    by_name = {v.name: v for v in evaluate(s, results, errors=errors)}
    assert by_name["unaffected.web.errors"].message == (
        "web error ratio 12.5% > 1.0% allowed (25 of 200 requests failed)")
    assert by_name["unaffected.catalog.errors"].message == (
        "catalog error ratio 0.5% <= 1.0% allowed (1 of 200 requests failed)")
    assert by_name["unaffected.web.region"].message == (
        "web switched region (eu-south-1 -> eu-central-1 -> eu-central-1) but should be unaffected")
    assert by_name["unaffected.catalog.region"].message == "catalog stayed in eu-south-1"
    # Without explicit error ratios the ratio comes from the RTO counts (failed + unknown over total).
    derived = evaluate(s, bundle(rto={"web": {"read": rto(0.0, failed=1, unknown=1, total=100),
                                              "write": rto(0.0, total=100)}}))
    assert derived[0].message == "web error ratio 1.0% <= 1.0% allowed (2 of 200 requests failed)"
    assert derived[1].message == "catalog error ratio not measured; 1.0% allowed" and not derived[1].passed


def test_replica_lag() -> None:
    s = scenario(Slos(max_lost_writes=None, max_replica_lag_s=2.0))
    lag = evaluate(s, bundle(), replica_lag_s=3.1)[0]
    assert lag.message == "max replica lag 3.1 s > 2.0 s allowed" and not lag.passed
    assert evaluate(s, bundle())[0].message == "replica lag not measured; 2.0 s allowed"


def test_timing_profile_selects_budgets() -> None:
    s = scenario(Slos(rto_s={"*": 5.0}, max_lost_writes=None),
                 aws=Slos(rto_s={"*": 90.0}, max_lost_writes=None))
    results = bundle(rto={"web": {"read": rto(42.0, failed=9), "write": rto(1.0)}})
    assert not evaluate(s, results, timing="fast")[0].passed
    aws = evaluate(s, results, timing="aws")
    assert aws[0].passed and aws[0].message == "web read RTO 42.0 s <= 90.0 s allowed"


def test_breach_message_table_and_assert() -> None:
    s = scenario(Slos(rto_s={"orders": 5.0}, max_lost_writes=0))
    verdicts = evaluate(s, bundle(rto={"orders": {"read": rto(7.4, failed=3), "write": rto(1.0)}},
                                  data_loss=loss(3, ["a", "b", "c"], 0.2)))
    msg = breach_message(verdicts)
    assert msg == (f"{SLO_BREACH_PREFIX} 2 of 3 SLOs failed\n"
                   "- orders read RTO 7.4 s > 5.0 s allowed\n"
                   "- lost acknowledged writes: 3 > 0 allowed (ids: a, b, c)")
    with pytest.raises(AssertionError) as info:
        assert_slos(verdicts)
    assert str(info.value) == msg
    table = slo_table_markdown(verdicts)
    assert table.splitlines()[0] == "| Result | SLO | Expected | Measured | Detail |"
    assert "| **FAIL** | rto.orders.read | 5.0 | 7.4 | orders read RTO 7.4 s > 5.0 s allowed |" in table
    assert "| PASS | rto.orders.write | 5.0 | 1.0 | orders write RTO 1.0 s <= 5.0 s allowed |" in table
    assert breach_message([v for v in verdicts if v.passed]) is None
    assert_slos([v for v in verdicts if v.passed])


def test_inherited_write_budget_skips_services_the_load_never_writes_to() -> None:
    s = scenario(Slos(rto_s={"*": 5.0}, max_lost_writes=None))
    results = bundle(rto={"web": {"read": rto(0.0, status="no_errors"), "write": rto(None, status="no_data")},
                          "orders": {"read": rto(0.0, status="no_errors"),
                                     "write": rto(None, status="no_data")}})
    names = {v.name: v for v in evaluate(s, results, write_services=["orders"])}
    assert "rto.web.write" not in names
    assert names["rto.orders.write"].passed is False  # the write target must be measured
