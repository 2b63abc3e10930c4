"""Undo log (fsync'd lines, updates, closes) and stop conditions (live journal tail, CloudWatch alarms)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from gameday.errors import ConfigError
from gameday.safety import undolog
from gameday.safety.guard import Guard, StopCondition, Trip, parse_conditions


def test_entry_written_before_and_closed_after(tmp_path: Path) -> None:
    paths = [tmp_path / "run" / "undo.jsonl", tmp_path / "target" / "r1.jsonl"]
    eid = undolog.record("region_outage", "fis:us-east-1:region-outage",
                         {"kind": "fis_stop", "region": "us-east-1", "fault": "region-outage"}, region="us-east-1",
                         paths=paths)
    for p in paths:  # both copies on disk, private to the user
        assert p.stat().st_mode & 0o777 == 0o600
        assert json.loads(p.read_text().splitlines()[0])["op"] == "open"
    undolog.update(eid, {"experiment_id": "EXP1"}, paths)
    [entry] = undolog.open_entries(paths)
    assert entry.undo["experiment_id"] == "EXP1" and entry.region == "us-east-1"
    assert undolog.close_matching("fis_stop", {"region": "us-east-1", "fault": "region-outage"}, "rollback",
                                  paths) == [eid]
    assert undolog.open_entries(paths) == []
    assert undolog.read(paths)[0].closed_by == "rollback"


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "u.jsonl"
    undolog.record("a", "r", {"kind": "ga_dial"}, paths=[p])
    with open(p, "a") as fh:
        fh.write('{"op": "open", "id": "x", "undo"')  # killed mid-write
    assert [e.action for e in undolog.open_entries([p])] == ["a"]


def test_unwritable_log_refuses(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(undolog.UndoLogError, match="cannot write the undo log"):
        undolog.record("a", "r", {"kind": "ga_dial"}, paths=[blocker / "sub" / "u.jsonl"])


@pytest.mark.parametrize(("raw", "field", "text"), [
    ([{"service": "web", "max_error_ratio": 0.2}], "stop_conditions.0.window_s", "required"),
    ([{"service": "web", "window_s": 2}], "stop_conditions.0", "needs a threshold"),
    ([{"service": "web", "cloudwatch_alarm": "x", "window_s": 1}], "stop_conditions.0", "either"),
    ([{"cloudwatch_alarm": "x", "window_s": 1}], "stop_conditions.0.window_s", "does not apply"),
])
def test_bad_stop_conditions_name_the_field(raw: list[dict[str, object]], field: str, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_conditions(raw, "scenarios/x.yaml")
    assert err.value.field == field and text in str(err.value)


def test_scenario_schema_checks_stop_conditions(tmp_path: Path) -> None:
    from gameday.drill.scenario import load_scenario

    src = Path(__file__).resolve().parents[2] / "scenarios" / "service-failover.yaml"
    (tmp_path / "scenarios").mkdir()
    bad = tmp_path / "scenarios" / "service-failover.yaml"
    bad.write_text(src.read_text() + "stop_conditions:\n  - {service: web, window_s: 2, max_error_ratio: 3}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(bad, check_experiment=False)
    assert "stop_conditions.0.max_error_ratio" in str(err.value) and str(bad) in str(err.value)
    bad.write_text(src.read_text() + "stop_conditions:\n  - {service: web, window_s: 2, max_error_ratio: 0.2}\n")
    sc = load_scenario(bad, check_experiment=False)
    assert sc.stop_conditions == (StopCondition(service="web", window_s=2.0, max_error_ratio=0.2),)


def test_guard_trips_within_a_second_of_the_breach(tmp_path: Path) -> None:
    """A writer appends web requests (ok, then failing) as locust does; the guard reads them live."""
    journal = tmp_path / "requests.jsonl"
    trips: list[tuple[Trip, float]] = []
    cond = StopCondition(service="web", window_s=1.0, max_error_ratio=0.2)
    guard = Guard([cond], journal, lambda t: trips.append((t, time.time()))).start()
    stop = threading.Event()

    def write() -> None:
        with open(journal, "a") as fh:
            for i in range(200):
                if stop.is_set():
                    return
                now = time.time()
                outcome = "ok" if i < 20 else "failed"
                fh.write(json.dumps({"t0": now - 0.01, "t1": now, "service": "web", "kind": "read",
                                     "outcome": outcome}) + "\n")
                fh.write(json.dumps({"t0": now - 0.01, "t1": now, "service": "orders", "kind": "read",
                                     "outcome": "failed"}) + "\n")  # not the guarded service
                fh.flush()
                time.sleep(0.02)

    w = threading.Thread(target=write)
    w.start()
    try:
        deadline = time.monotonic() + 10
        while not trips and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        w.join()
        guard.stop()
    assert trips, f"guard never tripped (error: {guard.error})"
    trip, seen = trips[0]
    assert "web error ratio" in trip.figure and float(trip.figure.split()[3]) > 0.2
    assert seen - trip.breach_at < 1.0, f"tripped {seen - trip.breach_at:.3f} s after the breach"
    print(f"guard lag {seen - trip.breach_at:.3f} s: {trip.figure}")


def test_guard_follows_every_worker_journal_and_judges_them_together(tmp_path: Path) -> None:
    """Distributed load: one journal per locust worker, the second appearing late.

    Worker 1 journals only successes, worker 2 (from a later moment) two failures for each of
    worker 1's successes. Read alone, worker 1's file never trips and worker 2's would trip at a
    ratio of 1.0; only the two files merged by completion time give a ratio between 0.5 and 1.
    """
    from gameday.load.runner import journal_files

    trips: list[Trip] = []
    cond = StopCondition(service="web", window_s=1.0, max_error_ratio=0.5, min_requests=10)
    guard = Guard([cond], lambda: journal_files(tmp_path, "requests", 2), trips.append).start()

    def line(ok: bool) -> str:
        now = time.time()
        return json.dumps({"t0": now - 0.01, "t1": now, "service": "web", "kind": "read",
                           "outcome": "ok" if ok else "failed"}) + "\n"

    try:
        with open(tmp_path / "requests-w1.jsonl", "a") as w1:
            for _ in range(20):  # worker 1 alone, all ok
                w1.write(line(True))
                w1.flush()
                time.sleep(0.01)
            time.sleep(0.3)
            assert not trips, trips
            with open(tmp_path / "requests-w2.jsonl", "a") as w2:  # worker 2 joins late, all failing
                for _ in range(60):
                    w1.write(line(True))
                    w2.write(line(False))
                    w2.write(line(False))
                    w1.flush()
                    w2.flush()
                    time.sleep(0.01)
                    if trips:
                        break
        deadline = time.monotonic() + 5
        while not trips and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        guard.stop()
    assert trips, f"guard never tripped on the merged journals (error: {guard.error})"
    ratio = float(trips[0].figure.split()[3])
    assert 0.5 < ratio < 1.0, trips[0].figure  # both workers' requests are in the window


def test_guard_trips_on_cloudwatch_alarm() -> None:
    """DescribeAlarms StateValue=ALARM against moto's CloudWatch (the AWS API stand-in)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from gameday.util.net import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        def cw(region: str | None) -> object:
            return boto3.client("cloudwatch", region_name=region or "us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                                aws_access_key_id="test", aws_secret_access_key="test")

        c = cw(None)
        c.put_metric_alarm(AlarmName="orders-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ELB",
                           Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                           ComparisonOperator="GreaterThanThreshold")
        trips: list[Trip] = []
        guard = Guard([StopCondition(cloudwatch_alarm="orders-5xx")], Path("/nonexistent"), trips.append,
                      cloudwatch=cw).start()
        time.sleep(1.2)
        assert not trips  # INSUFFICIENT_DATA / OK does not trip
        c.set_alarm_state(AlarmName="orders-5xx", StateValue="ALARM", StateReason="5xx > 1")
        deadline = time.monotonic() + 5
        while not trips and time.monotonic() < deadline:
            time.sleep(0.05)
        guard.stop()
        assert trips and "orders-5xx is ALARM" in trips[0].figure, guard.error
    finally:
        server.stop()


def test_halted_is_its_own_allure_category_and_summary_verdict(tmp_path: Path) -> None:
    import re

    from gameday.drill.report import CATEGORY_HALTED, ScenarioResult, categories, write_summary

    message = "Failed: HALTED: stop condition 'web: error ratio > 0.2 over 2 s' tripped: web error ratio 0.45"
    first = next(c for c in categories() if c["matchedStatuses"] == ["failed"] and
                 re.fullmatch(c.get("messageRegex", "[\\s\\S]*"), message))
    assert first["name"] == CATEGORY_HALTED
    r = ScenarioResult("service-failover", "service", halted=message.removeprefix("Failed: "))
    _, js = write_summary(tmp_path, [r])
    doc = json.loads(js.read_text())
    assert doc["verdict"] == "HALTED" and doc["scenarios"][0]["halted"].startswith("HALTED: stop condition")
    assert "HALTED" in (tmp_path / "summary.md").read_text()
