"""Trends over game days, and each run compared with the previous run and the median of the last N.

A measurement regressed when it is worse than its reference by more than ``regression_pct`` and
by more than ``min_delta_s`` (for RTO/RPO seconds; any increase of lost writes counts). The
absolute floor keeps a 0.1 s -> 0.2 s RTO (+100 %, well inside every budget) from paging anyone.
A service that recovered last time and did not recover now is always a regression.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gameday.gameday.history.models import ComparisonRow
from gameday.gameday.history.store import HistoryStore, Point
from gameday.gameday.home import human_time
from gameday.gameday.plan import Compare

METRICS = ("rto", "write_rto", "rpo", "lost_writes")
LABELS = {"rto": "RTO", "write_rto": "write RTO", "rpo": "RPO", "lost_writes": "lost writes"}


@dataclass(frozen=True)
class Comparison:
    scenario: str
    service: str
    metric: str
    value: float | None
    previous: float | None
    previous_run_id: str | None
    median: float | None
    runs_in_median: int
    change_pct: float | None
    regression: bool
    reason: str | None

    def row(self) -> ComparisonRow:
        return ComparisonRow(scenario=self.scenario, service=self.service, metric=self.metric, value=self.value,
                             previous=self.previous, previous_run_id=self.previous_run_id, median=self.median,
                             runs_in_median=self.runs_in_median, change_pct=self.change_pct,
                             regression=self.regression, reason=self.reason)

    @classmethod
    def of(cls, r: ComparisonRow) -> Comparison:
        return cls(r.scenario, r.service, r.metric, r.value, r.previous, r.previous_run_id, r.median,
                   r.runs_in_median, r.change_pct, r.regression, r.reason)

    def describe(self) -> str:
        unit = "" if self.metric == "lost_writes" else " s"
        now = "not recovered" if self.value is None else f"{self.value:g}{unit}"
        prev = "-" if self.previous is None else f"{self.previous:g}{unit}"
        med = "-" if self.median is None else f"{self.median:g}{unit}"
        pct = "" if self.change_pct is None else f" ({self.change_pct:+.0f} %)"
        return f"{self.scenario} {self.service} {LABELS.get(self.metric, self.metric)}: {now}, previous {prev}" \
               f"{pct}, median of last {self.runs_in_median} {med}"


def _worse(value: float | None, ref: float | None, metric: str, cfg: Compare) -> tuple[bool, float | None, str | None]:
    if ref is None:
        return False, None, None
    if value is None:
        return True, None, "did not recover (it did before)"
    pct = (value - ref) / ref * 100.0 if ref else None
    if metric == "lost_writes":
        return value > ref, pct, f"{value - ref:g} more lost writes" if value > ref else None
    floor = cfg.min_delta_s
    if value - ref > floor and (ref == 0 or (pct is not None and pct > cfg.regression_pct)):
        return True, pct, f"up {value - ref:.2f} s (> {cfg.regression_pct:g} % and > {floor:g} s)"
    return False, pct, None


def compare_run(store: HistoryStore, run_pk: int, run_id: str, plan: str, target: str,
                cfg: Compare) -> list[Comparison]:
    """Every measurement of the run against the runs of the same plan and target before it."""
    now = [p for p in store.series(plan=plan, target=target) if p.run_id == run_id]
    before = store.series(plan=plan, target=target, before_run_pk=run_pk)
    hist: dict[tuple[str, str, str], list[Point]] = defaultdict(list)
    for p in before:
        hist[(p.scenario, p.service, p.metric)].append(p)
    out: list[Comparison] = []
    for p in now:
        past = hist.get((p.scenario, p.service, p.metric), [])
        if not past:
            continue
        prev = past[-1]
        window = [q.value for q in past[-cfg.last_n:] if q.value is not None]
        med = statistics.median(window) if window else None
        bad_prev, pct, why_prev = _worse(p.value, prev.value, p.metric, cfg)
        bad_med, _, why_med = _worse(p.value, med, p.metric, cfg)
        reasons = [f"vs previous: {why_prev}" if bad_prev else None,
                   f"vs median of last {len(window)}: {why_med}" if bad_med else None]
        out.append(Comparison(p.scenario, p.service, p.metric, p.value, prev.value, prev.run_id, med, len(window),
                              pct, bad_prev or bad_med, "; ".join(r for r in reasons if r) or None))
    if out:
        store.add_comparisons(run_pk, [c.row() for c in out])
    return out


def worst(comparisons: Sequence[Comparison]) -> Comparison | None:
    """The regression to headline: not-recovered first, then the largest relative increase."""
    bad = [c for c in comparisons if c.regression]
    if not bad:
        return None
    return max(bad, key=lambda c: (c.value is None, c.change_pct if c.change_pct is not None else float("inf")))


# --- trends --------------------------------------------------------------------------------------

def trend_table(points: Sequence[Point], tz: str | None = None) -> str:
    """Plain-text table, one line per run x scenario x service x metric."""
    head = f"{'RUN':<24} {'WHEN':<24} {'SCENARIO':<22} {'SERVICE':<8} {'METRIC':<12} {'VALUE':>9} " \
           f"{'BUDGET':>8} {'POLICY':>8} VERDICT"
    lines = [head]
    for p in points:
        unit = "" if p.metric == "lost_writes" else " s"
        val = (f"{p.value:.2f}{unit}" if unit else f"{p.value:g}") if p.value is not None else (p.status or "-")
        bud = "-" if p.budget is None else f"{p.budget:g}{unit}"
        pol = "-" if p.policy is None else f"{p.policy:g}{unit}"
        lines.append(f"{p.run_id:<24} {human_time(p.started_at, tz):<24} {p.scenario:<22} {p.service:<8} "
                     f"{LABELS.get(p.metric, p.metric):<12} {val:>9} {bud:>8} {pol:>8} {p.scenario_verdict}")
    if len(lines) == 1:
        lines.append("(no measurements: run 'gameday run PLAN' first)")
    return "\n".join(lines)


def plot_trends(points: Sequence[Point], out: Path, title: str) -> Path:
    """One panel per scenario x metric, a line per service, the policy target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for p in points:
        panels[(p.scenario, p.metric)].append(p)
    keys = sorted(panels, key=lambda k: (k[0], METRICS.index(k[1]) if k[1] in METRICS else 99))
    n = max(1, len(keys))
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.6 * n), squeeze=False)
    runs = list(dict.fromkeys(p.run_id for p in points))
    for ax, key in zip(axes[:, 0], keys, strict=False):
        scenario, metric = key
        by_service: dict[str, list[Point]] = defaultdict(list)
        for p in panels[key]:
            by_service[p.service].append(p)
        for service, pts in sorted(by_service.items()):
            xs = [runs.index(p.run_id) for p in pts]
            ys = [p.value if p.value is not None else float("nan") for p in pts]
            line = ax.plot(xs, ys, marker="o", label=service)[0]
            policy = next((p.policy for p in reversed(pts) if p.policy is not None), None)
            if policy is not None:
                ax.axhline(policy, color=line.get_color(), linestyle="--", linewidth=1,
                           label=f"{service} policy {policy:g}")
        ax.set_title(f"{scenario}: {LABELS.get(metric, metric)}", fontsize=10)
        ax.set_ylabel("writes" if metric == "lost_writes" else "seconds")
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([human_time(next(p.started_at for p in points if p.run_id == r))[5:16] for r in runs],
                           fontsize=7, rotation=20)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    if not keys:
        axes[0, 0].text(0.5, 0.5, "no measurements yet", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
