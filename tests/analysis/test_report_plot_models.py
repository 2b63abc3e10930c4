"""summarise() bundle, the timeline PNG, and journal parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gameday.analysis import (
    load_ledger,
    load_requests,
    plot_timeline,
    recovery_marks_from,
    rto_by_service,
    summarise,
)
from gameday.analysis.models import Request, parse_request, parse_write
from gameday.analysis.synthetic import Outage, probe_timeline, writes_from
from gameday.errors import ConfigError
from gameday.util.jsonl import JsonlWriter

F = 30_000.0
P, R = "eu-south-1", "eu-central-1"


def drill() -> list[Request]:
    return probe_timeline(start=F - 30, duration_s=120, outages=[Outage(F + 0.5, F + 12.0, outcome="mixed")],
                          region_of={"web": [(F + 12.0, R)], "orders": [(F + 12.0, R), (F + 60.0, P)]},
                          jitter=0.2, seed=7)


def test_summarise_is_json_and_consistent() -> None:
    reqs = drill()
    ledger = writes_from(reqs)
    acked = [w.id for w in ledger if w.outcome == "ok"]
    present = set(acked[3:])
    out = summarise(reqs, ledger, present, F, F + 12.0, P)
    assert set(out.rto) == {"web", "orders", "catalog"}
    assert out.rto["web"]["read"].recovered is True
    assert out.data_loss is not None
    assert out.data_loss.lost == 3 and out.data_loss.lost_ids == acked[:3]
    assert out.routing["catalog"].stayed is True
    assert out.routing["orders"].switched_back_at is not None
    # the one JSON shape carries the same figures
    back = json.loads(json.dumps(out.to_dict(), allow_nan=False))
    assert back["rto"]["web"]["read"]["recovered"] is True
    assert back["data_loss"]["lost"] == 3 and back["data_loss"]["lost_ids"] == acked[:3]
    assert back["routing"]["orders"]["switched_back_at"] == out.routing["orders"].switched_back_at
    assert back["fault"] == {"start": F, "end": F + 12.0, "duration_s": 12.0}
    assert back["parameters"]["primary_region"] == P and back["requests"] == len(reqs)
    assert summarise(reqs, ledger, None, F, None, P).data_loss is None
    assert json.dumps(summarise([], [], set(), F, None, P).to_dict(), allow_nan=False)


def test_plot_timeline_writes_a_png(tmp_path: Path) -> None:
    from matplotlib.image import imread

    reqs = drill()
    marks = recovery_marks_from(rto_by_service(reqs, F))
    assert set(marks) == {"web", "orders", "catalog"}
    out = plot_timeline(reqs, tmp_path / "t.png", fault_start=F, fault_end=F + 12.0, recovery_marks=marks,
                        title="unit test drill")
    img = imread(out)
    assert img.shape[0] > 500 and img.shape[1] > 1000
    assert img.std() > 0.05  # not a blank canvas
    zoomed = plot_timeline(reqs, tmp_path / "z.png", fault_start=F, xlim=(-10.0, 40.0))
    assert imread(zoomed).shape == img.shape
    empty = plot_timeline([], tmp_path / "empty.png", fault_start=F)
    assert empty.stat().st_size > 1000


def test_load_journals_and_bad_records(tmp_path: Path) -> None:
    reqs = drill()[:50]
    with JsonlWriter(tmp_path / "requests.jsonl") as w:
        for r in reqs:
            w.write(r.to_dict())
    with open(tmp_path / "requests.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"t0": 1.0, "t1"')  # torn last line after a crash
    assert load_requests(tmp_path / "requests.jsonl") == reqs
    ledger = writes_from(drill())[:5]
    with JsonlWriter(tmp_path / "ledger.jsonl") as w:
        for x in ledger:
            w.write(x.to_dict())
    assert load_ledger(tmp_path / "ledger.jsonl") == ledger
    assert load_requests(tmp_path / "missing.jsonl") == []

    good = reqs[0].to_dict()
    with pytest.raises(ConfigError, match="outcome"):
        parse_request({**good, "outcome": "maybe"}, source="requests.jsonl")
    with pytest.raises(ConfigError, match="t0"):
        parse_request({**good, "t0": None})
    with pytest.raises(ConfigError, match="kind"):
        parse_request({**good, "kind": "delete"})
    with pytest.raises(ConfigError, match="id"):
        parse_write({"service": "orders", "t0": 1.0, "t1": 2.0, "outcome": "ok"})
    minimal = parse_request({"t0": 1, "t1": 2, "service": "web", "kind": "read", "outcome": "ok"})
    assert minimal.region is None and minimal.t0 == 1.0
