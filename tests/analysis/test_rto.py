"""RTO on synthetic probe timelines whose outage is known exactly."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameday.analysis import compute_rto, rto_by_service
from gameday.analysis.models import Request
from gameday.analysis.synthetic import Outage, probe_timeline
from gameday.errors import ConfigError

F = 10_000.0
PROFILE = settings.get_profile("analysis")


def timeline(rate: float, lead: float, a: float, d: float, tail: float, *, outcome: str = "failed",
             jitter: float = 0.0, seed: int = 0, noise: list[float] | None = None) -> list[Request]:
    """One service ('web', reads only) from F-lead; outage [F+a, F+a+d]; data ends tail s after it."""
    return probe_timeline(start=F - lead, duration_s=lead + a + d + tail, services=("web",), read_rate=rate,
                          write_rate=0, outages=[Outage(F + a, F + a + d, outcome=outcome)], jitter=jitter,
                          seed=seed, noise=[("web", t) for t in (noise or [])])


outage_params = dict(
    rate=st.sampled_from([10.0, 20.0, 50.0]),
    a=st.floats(0.0, 5.0),
    d=st.floats(0.5, 30.0),
    tail=st.floats(6.0, 15.0),
    outcome=st.sampled_from(["failed", "unknown", "mixed"]),
    jitter=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 1000),
)


@settings(PROFILE)
@given(**outage_params, n_noise=st.integers(0, 5))
def test_recovery_and_first_error_match_the_known_outage(rate: float, a: float, d: float, tail: float,
                                                         outcome: str, jitter: float, seed: int,
                                                         n_noise: int) -> None:
    rng = random.Random(seed)
    noise = [F - 60 + i * 10 + rng.uniform(0, 5) for i in range(n_noise)]  # isolated, before the fault
    reqs = timeline(rate, 60.0, a, d, tail, outcome=outcome, jitter=jitter, seed=seed, noise=noise)
    r = compute_rto(reqs, F, service="web", window_s=5.0, threshold=0.99)
    gap = (1 + 2 * jitter) / rate  # longest distance between two probes
    assert r.status == "recovered" and r.recovered
    assert r.rto_s is not None and a + d < r.rto_s <= a + d + gap + 1e-9
    assert r.time_to_first_error_s is not None and a - 1e-9 <= r.time_to_first_error_s < a + gap
    assert r.outage_start is not None and r.outage_end is not None
    assert r.outage_end <= F + a + d < r.outage_end + gap
    assert r.outage_errors == r.outage_requests == r.failed + r.unknown
    assert r.ok + r.failed + r.unknown == r.total
    if n_noise:
        assert r.baseline_success_ratio is not None and r.baseline_success_ratio < 1.0
    json.dumps(r.to_dict(), allow_nan=False)


@settings(PROFILE)
@given(**outage_params)
def test_isolated_errors_after_recovery_within_threshold_do_not_move_rto(
        rate: float, a: float, d: float, tail: float, outcome: str, jitter: float, seed: int) -> None:
    """'Stays' tolerates errors that keep every window above the threshold."""
    b = a + d
    tail = tail + 30.0
    noise = [F + b + 1.0 + 6.5 * i for i in range(int((tail - 2.0) // 6.5))]  # one per 5 s window at most
    reqs = timeline(rate, 10.0, a, d, tail, outcome=outcome, jitter=jitter, seed=seed, noise=noise)
    r = compute_rto(reqs, F, service="web", window_s=5.0, threshold=0.95)
    assert r.recovered and r.rto_s is not None
    assert b < r.rto_s <= b + (1 + 2 * jitter) / rate + 1e-9
    assert r.failed + r.unknown > r.outage_errors  # the noise was seen, yet did not count as outage


@settings(PROFILE)
@given(rate=st.sampled_from([5.0, 20.0]), duration=st.floats(1.0, 60.0), jitter=st.sampled_from([0.0, 0.3]),
       seed=st.integers(0, 100))
def test_no_errors_gives_rto_zero(rate: float, duration: float, jitter: float, seed: int) -> None:
    reqs = probe_timeline(start=F - 5, duration_s=duration + 5, services=("web",), read_rate=rate,
                          write_rate=0, jitter=jitter, seed=seed)
    r = compute_rto(reqs, F, service="web")
    assert (r.status, r.recovered, r.rto_s, r.first_error_at, r.outage_requests) == (
        "no_errors", True, 0.0, None, 0)


@settings(PROFILE)
@given(rate=st.sampled_from([10.0, 20.0]), a=st.floats(0.0, 5.0), d=st.floats(1.0, 60.0),
       outcome=st.sampled_from(["failed", "unknown"]))
def test_outage_lasting_to_the_end_never_recovers(rate: float, a: float, d: float, outcome: str) -> None:
    reqs = timeline(rate, 20.0, a, d, 0.0, outcome=outcome)
    r = compute_rto(reqs, F, service="web")
    assert r.status == "not_recovered" and not r.recovered and r.rto_s is None and r.recovered_at is None
    assert r.time_to_first_error_s is not None and r.time_to_first_error_s >= a - 1e-9
    assert r.outage_end is not None and r.outage_end == max(q.t0 for q in reqs)


def test_too_little_data_after_the_outage_is_not_a_recovery() -> None:
    """Recovery needs one full window inside the data: 3 s of success after the outage is not enough."""
    reqs = timeline(20.0, 10.0, 1.0, 10.0, 3.0)
    r = compute_rto(reqs, F, service="web", window_s=5.0)
    assert not r.recovered and "window" in r.reason
    later = compute_rto(timeline(20.0, 10.0, 1.0, 10.0, 5.2), F, service="web", window_s=5.0)
    assert later.recovered and later.rto_s == pytest.approx(11.05, abs=0.051)


def test_recovery_must_stay_a_relapse_moves_it() -> None:
    """Healthy for 20 s between two outages is not 'recovered': RTO runs to the end of the second."""
    reqs = probe_timeline(start=F - 10, duration_s=80, services=("web",), read_rate=20, write_rate=0,
                          outages=[Outage(F, F + 10), Outage(F + 30, F + 40)])
    r = compute_rto(reqs, F, service="web")
    assert r.rto_s == pytest.approx(40.05, abs=1e-6)
    assert r.outage_start == F and r.outage_end == pytest.approx(F + 40)
    assert r.outage_errors == 2 * 201 and r.outage_requests == 801
    clipped = compute_rto(reqs, F, service="web", horizon_end=F + 28)  # the drill ended before the relapse
    assert clipped.rto_s == pytest.approx(10.05, abs=1e-6) and clipped.data_end == F + 28


def test_errors_within_threshold_after_fault_are_no_outage() -> None:
    reqs = probe_timeline(start=F - 10, duration_s=40, services=("web",), read_rate=20, write_rate=0,
                          noise=[("web", F + 3.0), ("web", F + 20.0)])
    r = compute_rto(reqs, F, service="web", threshold=0.99)
    assert (r.status, r.rto_s, r.outage_requests) == ("no_outage", 0.0, 0)
    assert r.time_to_first_error_s == pytest.approx(3.0) and r.failed == 2
    strict = compute_rto(reqs, F, service="web", threshold=1.0)
    assert strict.status == "recovered" and strict.rto_s == pytest.approx(20.05)


def test_grid_mode_is_within_one_step_of_request_mode() -> None:
    reqs = timeline(20.0, 10.0, 2.0, 17.3, 12.0)
    exact = compute_rto(reqs, F, service="web")
    for step in (0.25, 1.0, 2.0):
        coarse = compute_rto(reqs, F, service="web", step_s=step)
        assert coarse.rto_s is not None and exact.rto_s is not None
        assert exact.rto_s <= coarse.rto_s <= exact.rto_s + step + 0.05


def test_empty_and_pre_fault_only_inputs_give_no_data() -> None:
    assert compute_rto([], F, service="web").status == "no_data"
    before = probe_timeline(start=F - 10, duration_s=5, services=("web",), write_rate=0)
    r = compute_rto(before, F, service="web")
    assert (r.status, r.recovered, r.rto_s, r.total, r.baseline_requests) == ("no_data", False, None, 0, 100)
    assert rto_by_service([], F) == {}


def test_input_order_and_dicts_do_not_matter() -> None:
    reqs = timeline(20.0, 10.0, 1.0, 5.0, 10.0, jitter=0.2, seed=3)
    shuffled = [q.to_dict() for q in reqs]
    random.Random(1).shuffle(shuffled)
    assert compute_rto(shuffled, F, service="web") == compute_rto(reqs, F, service="web")


def test_kind_filter_and_by_service() -> None:
    reqs = probe_timeline(start=F - 10, duration_s=60, services=("web", "orders"), read_rate=20,
                          write_rate=10, write_services=("orders",),
                          outages=[Outage(F + 1, F + 8, service="orders", kind="write")])
    by = rto_by_service(reqs, F)
    assert set(by) == {"orders", "web"} and set(by["web"]) == {"read", "all"}
    assert set(by["orders"]) == {"read", "write", "all"}
    assert by["orders"]["read"].status == "no_errors"
    assert by["orders"]["write"].rto_s == pytest.approx(8.1, abs=1e-6)
    # Mixed kinds: the read at +7.95 starts a window holding one write error of 150 (>= 0.99) ...
    assert by["orders"]["all"].rto_s == pytest.approx(7.95, abs=1e-6)
    assert by["orders"]["all"].outage_end == pytest.approx(F + 7.9)
    # ... with a zero-error threshold it is the first read after the last write error.
    strict = rto_by_service(reqs, F, threshold=1.0)
    assert strict["orders"]["all"].rto_s == pytest.approx(8.05, abs=1e-6)


@pytest.mark.parametrize("kwargs", [{"window_s": 0}, {"threshold": 0}, {"threshold": 1.5}, {"step_s": -1}])
def test_bad_parameters_raise_config_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        compute_rto([], F, service="web", **kwargs)  # type: ignore[arg-type]
