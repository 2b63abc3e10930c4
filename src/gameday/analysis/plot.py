"""One PNG that tells the drill story at a glance: per service, who served, what failed, when it healed.

Each service gets one row. The stacked area splits every time bucket of requests into
successful responses per region (one colour per region), ``unknown`` outcomes and ``failed``
ones, so the top of the coloured area *is* the success ratio; black lines repeat the success
ratio per request kind. The fault is shaded, its start is a solid and its end (when known) a
dash-dot vertical line, recovery marks are dashed vertical lines; the legend lists only what was
drawn. The time axis is seconds relative to the fault start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gameday.analysis._series import series
from gameday.analysis.models import Request, as_requests
from gameday.analysis.rto import RtoResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure as Figure

_REGION_COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#bcbd22"]
_FAILED = "#d62728"
_UNKNOWN = "#ff7f0e"
_FAULT = "0.25"
_MARK = "#e6007e"


def recovery_marks_from(rto: Mapping[str, Mapping[str, RtoResult]], kind: str = "all") -> dict[str, float]:
    """``{service: recovered_at}`` from ``rto_by_service`` output, for ``plot_timeline``'s marks."""
    out: dict[str, float] = {}
    for svc, per in rto.items():
        r = per.get(kind)
        if r is not None and r.recovered and r.recovered_at is not None and r.rto_s:
            out[svc] = r.recovered_at
    return out


def plot_timeline(requests: Iterable[Request | Mapping[str, Any]], out_png: str | os.PathLike[str], *,
                  fault_start: float, fault_end: float | None = None,
                  recovery_marks: Mapping[str, float] | None = None, bucket_s: float = 1.0,
                  title: str = "gameday drill timeline", services: Iterable[str] | None = None,
                  xlim: tuple[float, float] | None = None) -> Path:
    """Write the timeline PNG (see ``timeline_figure``) and return its path."""
    fig = timeline_figure(requests, fault_start=fault_start, fault_end=fault_end, recovery_marks=recovery_marks,
                          bucket_s=bucket_s, title=title, services=services, xlim=xlim)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def timeline_figure(requests: Iterable[Request | Mapping[str, Any]], *, fault_start: float,
                    fault_end: float | None = None, recovery_marks: Mapping[str, float] | None = None,
                    bucket_s: float = 1.0, title: str = "gameday drill timeline",
                    services: Iterable[str] | None = None, xlim: tuple[float, float] | None = None) -> Figure:
    """The timeline as a matplotlib ``Figure`` (not saved).

    ``recovery_marks`` maps a label to an absolute (wall-clock) time; a label equal to a service
    name or starting with ``"<service>/"`` is drawn on that service's row only, any other label
    on every row. ``xlim`` zooms the time axis (seconds relative to the fault), useful when a
    short fault sits in an hour of probes.
    """
    # Figure without pyplot: no global backend state, safe in threads and headless runs.
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    reqs = as_requests(requests)
    names = sorted({r.service for r in reqs}) if services is None else list(services)
    marks = dict(recovery_marks or {})
    all_regions = sorted({r.region for r in reqs if r.region is not None and r.ok})
    colour = {reg: _REGION_COLOURS[i % len(_REGION_COLOURS)] for i, reg in enumerate(all_regions)}
    rows = max(len(names), 1)
    fig = Figure(figsize=(12, 2.3 * rows + 0.8))
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)
    t_lo = min((r.t0 for r in reqs), default=fault_start) - fault_start
    t_hi = max((r.t0 for r in reqs), default=fault_start + 1) - fault_start
    # Legend keys for what was actually drawn, in first-drawn order (no entries for empty series).
    drawn: dict[str, Artist] = {}
    by_service: dict[str, list[Request]] = {n: [] for n in names}
    for r in reqs:
        if r.service in by_service:
            by_service[r.service].append(r)
    for ax, svc in zip(axes[:, 0], names, strict=False):
        mine = by_service[svc]
        s = series(mine, svc)
        ax.set_ylim(0, 1.16)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_ylabel(svc, fontsize=11, fontweight="bold")
        ax.grid(alpha=0.3)
        # The fault is a dark bar above the data (the stacked area fills the plot) plus edge lines.
        f_hi = (fault_end - fault_start) if fault_end is not None else t_hi + bucket_s
        ax.fill_between([0.0, f_hi], 1.035, 1.14, color=_FAULT, zorder=3)
        ax.text(0.0, 1.0875, " fault", color="white", fontsize=8, va="center", ha="left", zorder=4,
                clip_on=True)
        ax.axvline(0.0, color=_FAULT, lw=1.5, zorder=3)
        drawn.setdefault("fault", Patch(color=_FAULT, label="fault (start solid line)"))
        if fault_end is not None:
            ax.axvline(f_hi, color=_FAULT, lw=1.5, ls="-.", zorder=3, gid="fault-end")
            ax.text(f_hi, 1.0875, f" fault end +{f_hi:.1f}s", color=_FAULT, fontsize=8, va="center", ha="left",
                    zorder=4, clip_on=True)
            drawn.setdefault("fault end", Line2D([], [], color=_FAULT, ls="-.", lw=1.5, label="fault end"))
        if len(s) == 0:
            ax.text(0.5, 0.5, "no requests", transform=ax.transAxes, ha="center", va="center")
            continue
        k = np.floor((s.t0 - fault_start) / bucket_s).astype(np.int64)
        kmin, kmax = int(k.min()), int(k.max())
        idx = k - kmin
        n_b = kmax - kmin + 1
        x = (np.arange(n_b) + kmin) * bucket_s
        total = np.bincount(idx, minlength=n_b).astype(float)
        denom = np.where(total > 0, total, np.nan)
        layers, colours, labels = [], [], []
        counts = [(f"ok via {reg}", colour[reg], np.bincount(idx[s.ok & (s.region == c)], minlength=n_b))
                  for c, reg in enumerate(s.regions)]
        counts += [("ok (no region)", "0.6", np.bincount(idx[s.ok & (s.region < 0)], minlength=n_b)),
                   ("unknown (timeout)", _UNKNOWN, np.bincount(idx[s.outcome == 2], minlength=n_b)),
                   ("failed", _FAILED, np.bincount(idx[s.outcome == 1], minlength=n_b))]
        for label, col, n in counts:
            if not n.any():
                continue
            layers.append(n / denom)
            colours.append(col)
            labels.append(label)
            drawn.setdefault(label, Patch(color=col, alpha=0.55, label=label))
        ax.stackplot(x, np.nan_to_num(np.vstack(layers)), colors=colours, step="post", alpha=0.55,
                     labels=labels, zorder=1)
        for kind, style in (("read", "-"), ("write", "--")):
            ks = series(mine, svc, kind)
            if len(ks) == 0:
                continue
            kk = np.floor((ks.t0 - fault_start) / bucket_s).astype(np.int64) - kmin
            tot = np.bincount(kk, minlength=n_b).astype(float)
            ratio = np.bincount(kk[ks.ok], minlength=n_b) / np.where(tot > 0, tot, np.nan)
            ax.step(x, ratio, where="post", color="k", ls=style, lw=1.3, label=f"success ({kind})", zorder=4)
            drawn.setdefault(f"success ratio ({kind})",
                             Line2D([], [], color="k", ls=style, lw=1.3, label=f"success ratio ({kind})"))
        for label, at in marks.items():
            if label == svc or label.startswith(f"{svc}/") or label.split("/")[0] not in names:
                rel = at - fault_start
                ax.axvline(rel, color=_MARK, ls="--", lw=2, zorder=5)
                ax.text(rel, 0.5, f" {label} recovered +{rel:.1f}s ", color=_MARK, fontsize=9, va="center",
                        ha="left", zorder=6, bbox={"facecolor": "white", "edgecolor": _MARK, "alpha": 0.85})
                drawn.setdefault("recovered (RTO)", Line2D([], [], color=_MARK, ls="--", lw=2,
                                                           label="recovered (RTO)"))
    handles = list(drawn.values())
    axes[0, 0].set_xlim(*(xlim if xlim is not None else (t_lo, t_hi + bucket_s)))
    axes[-1, 0].set_xlabel("seconds since fault start")
    fig.suptitle(title, fontsize=13)
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.09 if rows > 1 else 0.16, 1, 0.97))
    return fig
