"""The timeline's legend names only what was drawn, and the fault's end is marked."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from gameday.analysis.models import Request
from gameday.analysis.plot import plot_timeline, timeline_figure
from gameday.analysis.synthetic import Outage, probe_timeline

F = 50_000.0
P, R = "eu-south-1", "eu-central-1"


def legend_labels(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def all_ok_reads() -> list[Request]:
    return probe_timeline(start=F - 10, duration_s=40, services=("web",), write_services=(), default_region=P)


def test_legend_lists_only_drawn_series() -> None:
    reqs = all_ok_reads()
    assert reqs and all(r.ok and r.kind == "read" for r in reqs)
    labels = legend_labels(timeline_figure(reqs, fault_start=F))
    assert labels == ["fault (start solid line)", f"ok via {P}", "success ratio (read)"]


def test_legend_grows_with_failures_writes_and_marks() -> None:
    reqs = probe_timeline(start=F - 30, duration_s=90, outages=[Outage(F + 0.5, F + 10.0, outcome="mixed")],
                          region_of={"orders": [(F + 10.0, R)]}, jitter=0.2, seed=3)
    fig = timeline_figure(reqs, fault_start=F, fault_end=F + 10.0, recovery_marks={"orders": F + 11.0})
    labels = legend_labels(fig)
    for present in ("failed", "unknown (timeout)", "success ratio (read)", "success ratio (write)",
                    "recovered (RTO)", "fault end", f"ok via {R}"):
        assert present in labels, labels
    assert len(labels) == len(set(labels))


def test_fault_end_is_marked_on_every_row(tmp_path: Path) -> None:
    reqs = probe_timeline(start=F - 20, duration_s=60, outages=[Outage(F + 0.5, F + 7.5)], jitter=0.0, seed=5)
    fig = timeline_figure(reqs, fault_start=F, fault_end=F + 7.5)
    axes = fig.get_axes()
    assert len(axes) == len({r.service for r in reqs}) > 1
    for ax in axes:
        ends = [ln for ln in ax.get_lines() if ln.get_gid() == "fault-end"]
        assert len(ends) == 1
        assert list(ends[0].get_xdata()) == [7.5, 7.5]
        assert any(t.get_text().strip() == "fault end +7.5s" for t in ax.texts)
    open_ended = timeline_figure(reqs, fault_start=F)
    for ax in open_ended.get_axes():
        assert not [ln for ln in ax.get_lines() if ln.get_gid() == "fault-end"]
    assert plot_timeline(reqs, tmp_path / "t.png", fault_start=F, fault_end=F + 7.5).stat().st_size > 1000
