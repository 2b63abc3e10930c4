"""Region shares and debounced switches on timelines with a known failover and failback."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gameday.analysis import region_share, routing_summary, switches
from gameday.analysis.synthetic import Outage, probe_timeline

F = 20_000.0
P, R = "eu-south-1", "eu-central-1"
PROFILE = settings.get_profile("analysis")


@settings(PROFILE)
@given(rate=st.sampled_from([10.0, 20.0]), s=st.floats(0.0, 20.0), stay=st.floats(3.0, 60.0),
       outage=st.floats(0.0, 10.0), jitter=st.sampled_from([0.0, 0.2]), seed=st.integers(0, 100))
def test_failover_and_failback_are_found_within_one_request(rate: float, s: float, stay: float, outage: float,
                                                            jitter: float, seed: int) -> None:
    """Fault at F, errors for `outage` s; recovery region serves from F+outage+s to F+outage+s+stay."""
    t_sw = F + outage + s
    t_back = t_sw + stay
    reqs = probe_timeline(start=F - 30, duration_s=30 + outage + s + stay + 10, services=("web",),
                          read_rate=rate, write_rate=0, outages=[Outage(F, F + outage)] if outage else [],
                          region_of={"web": [(t_sw, R), (t_back, P)]}, jitter=jitter, seed=seed)
    gap = (1 + 2 * jitter) / rate
    sw = switches(reqs, "web", min_stable_s=1.0)
    assert [(x.from_region, x.to_region) for x in sw] == [(P, R), (R, P)]
    # Switch time = first successful response from the new region, within one probe of the change
    # (or of the end of the outage when the change happened while requests were still failing).
    first_r = min(q.t0 for q in reqs if q.ok and q.region == R)
    assert sw[0].t == first_r and t_sw <= sw[0].t <= max(t_sw, F + outage) + gap + 1e-9
    assert t_back <= sw[1].t <= t_back + gap + 1e-9
    rs = routing_summary(reqs, "web", F, F + outage, primary_region=P)
    assert (rs.region_before, rs.region_after, rs.switched_to, rs.stayed) == (P, P, R, False)
    assert rs.switched_at == sw[0].t and rs.switched_back_at == sw[1].t
    assert rs.switched_at_s == pytest.approx(sw[0].t - F)
    buckets = region_share(reqs, "web", 1.0, origin=F)
    for b in buckets:
        if b.end <= t_sw and b.start >= F + outage + 1 / rate:
            assert b.share_by_region == {P: 1.0}
        if t_sw + 1 / rate <= b.start and b.end <= t_back:
            assert b.share_by_region == {R: 1.0}
    json.dumps(rs.to_dict(), allow_nan=False)


@settings(PROFILE)
@given(rate=st.sampled_from([10.0, 20.0]), outage=st.floats(0.0, 20.0), n_stray=st.integers(0, 5),
       seed=st.integers(0, 100))
@example(rate=20.0, outage=1.0, n_stray=4, seed=44)  # a stray answer 50 ms before a 1 s outage
def test_service_that_never_moved_stayed(rate: float, outage: float, n_stray: int, seed: int) -> None:
    """Stray single responses from the other region are debounced away."""
    reqs = probe_timeline(start=F - 30, duration_s=90, services=("catalog",), read_rate=rate, write_rate=0,
                          outages=[Outage(F, F + outage)] if outage else [], seed=seed)
    for k in range(n_stray):
        i = (seed * 7 + k * 97) % len(reqs)
        if reqs[i].ok:
            reqs[i] = replace(reqs[i], region=R)
    assert switches(reqs, "catalog") == []
    rs = routing_summary(reqs, "catalog", F, F + outage, primary_region=P)
    assert rs.stayed and rs.switched_at is None and rs.region_before == rs.region_after == P


def test_flapping_shorter_than_min_stable_is_ignored() -> None:
    reqs = probe_timeline(start=F, duration_s=30, services=("web",), read_rate=20, write_rate=0,
                          region_of={"web": [(F + 10, R), (F + 10.4, P)]})
    assert switches(reqs, "web", min_stable_s=1.0) == []
    assert [x.to_region for x in switches(reqs, "web", min_stable_s=0.3)] == [R, P]


def test_switch_too_close_to_the_end_is_not_confirmed() -> None:
    reqs = probe_timeline(start=F, duration_s=30, services=("web",), read_rate=20, write_rate=0,
                          region_of={"web": [(F + 29.5, R)]})
    assert switches(reqs, "web", min_stable_s=1.0) == []


def test_fault_with_total_outage_in_recovery_region_only() -> None:
    """Served by the recovery region before the fault already: not 'stayed' on the primary."""
    reqs = probe_timeline(start=F - 20, duration_s=40, services=("web",), write_rate=0, default_region=R)
    rs = routing_summary(reqs, "web", F, primary_region=P)
    assert rs.region_before == R and not rs.stayed and rs.switched_at is None


def test_region_share_buckets() -> None:
    reqs = probe_timeline(start=F, duration_s=4, services=("web",), read_rate=10, write_rate=0,
                          outages=[Outage(F + 1.0, F + 1.45)], region_of={"web": [(F + 2.5, R)]})
    b = region_share(reqs, "web", 1.0)
    assert [x.start - F for x in b] == [0.0, 1.0, 2.0, 3.0]
    assert [x.total for x in b] == [10, 10, 10, 10] and [x.ok for x in b] == [10, 5, 10, 10]
    assert b[2].counts_by_region == {P: 5, R: 5} and b[2].share_by_region == {P: 0.5, R: 0.5}
    assert b[1].to_dict()["success_ratio"] == 0.5


def test_empty_inputs() -> None:
    assert region_share([], "web") == [] and switches([], "web") == []
    rs = routing_summary([], "web", F, primary_region=P)
    assert rs.stayed and rs.region_before is None and rs.switches == []
