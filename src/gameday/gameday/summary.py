"""A game day's ``summary.md``, one-page ``summary.html`` and ``summary.json``.

Written for the person on call: the verdict table, each drill's timeline (as times of day and
offsets from the fault, never epoch seconds), the measured RTO/RPO against the SLO budget and the
recovery policy, and what changed since the last run. Everything goes through ``redact``.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from gameday.drill.slo import slo_table_markdown
from gameday.gameday.home import duration, human_time
from gameday.gameday.trends import LABELS
from gameday.util.redact import redact


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "not recovered"
    return f"{value:g}" if metric == "lost_writes" else f"{value:.2f} s"


def _tz(gd: Any) -> str:
    return gd.plan.schedule.timezone if gd.plan.schedule else "UTC"


def facts(gd: Any) -> list[tuple[str, str]]:
    p = gd.plan
    rows = [("plan", f"{p.name} ({p.path.name})"), ("target", f"{p.target_kind} {gd.target_name}"),
            ("timing profile", p.timing), ("routing mode", p.routing_mode),
            ("started", human_time(gd.started_at, _tz(gd))), ("finished", human_time(gd.finished_at, _tz(gd))),
            ("duration", duration((gd.finished_at or gd.started_at) - gd.started_at)), ("trigger", gd.trigger),
            ("gameday revision", gd.gameday_rev or "-"), ("terraform revision", gd.terraform_rev or "-")]
    if gd.var_files:
        rows.append(("terraform var files", ", ".join(gd.var_files)))
    if gd.halt_reason:
        rows.append(("halted", gd.halt_reason))
    if gd.error:
        rows.append(("error", gd.error.splitlines()[0]))
    return rows


def verdict_rows(gd: Any) -> list[list[str]]:
    from gameday.gameday.engine import _breaches

    out = []
    for s in gd.scenarios:
        detail = s.halted or (s.error.splitlines()[0] if s.error else None) or _breaches(s.result)
        if detail is None and s.result is not None:
            detail = f"all {len(s.result.verdicts)} SLOs met"
        out.append([str(s.position + 1), s.scenario.name, s.scenario.fault, s.verdict, duration(s.duration_s),
                    detail or "-"])
    return out


def policy_rows(gd: Any) -> list[list[str]]:
    out = []
    for s in gd.scenarios:
        for m in s.measurements:
            if m.policy is None:
                verdict = "-"
            elif m.value is None:
                verdict = "MISSED"
            else:
                verdict = "met" if m.value <= m.policy else "MISSED"
            out.append([s.scenario.name, m.service, LABELS.get(m.metric, m.metric), _fmt(m.value, m.metric),
                        "-" if m.budget is None else _fmt(m.budget, m.metric),
                        "-" if m.policy is None else _fmt(m.policy, m.metric), verdict])
    return out


def change_rows(gd: Any) -> list[list[str]]:
    out = []
    for c in gd.comparisons:
        out.append([c.scenario, c.service, LABELS.get(c.metric, c.metric), _fmt(c.value, c.metric),
                    _fmt(c.previous, c.metric) if c.previous is not None or c.previous_run_id else "-",
                    "-" if c.change_pct is None else f"{c.change_pct:+.0f} %",
                    "-" if c.median is None else f"{_fmt(c.median, c.metric)} (n={c.runs_in_median})",
                    f"REGRESSION: {c.reason}" if c.regression else "ok"])
    return out


def timeline(s: Any) -> list[str]:
    """What happened when, in a drill: fault, first errors, recoveries, region switches."""
    r = s.result
    if r is None:
        return []
    lines = [f"{human_time(r.fault_start)[11:]} fault injected ({s.scenario.experiment})"]
    events: list[tuple[float, str]] = []
    analysis = r.results.analysis
    for svc, kinds in sorted(analysis.rto.items() if analysis is not None else ()):
        for kind, m in sorted(kinds.items()):
            if kind not in ("read", "write"):
                continue
            first = m.time_to_first_error_s
            if first is not None:
                events.append((float(first), f"{svc} {kind}s: first error"))
            if m.recovered and m.rto_s:
                events.append((m.rto_s, f"{svc} {kind}s recovered (RTO {m.rto_s:.2f} s)"))
            elif not m.recovered:
                events.append((float("inf"), f"{svc} {kind}s never recovered within the run"))
    for svc, rt in sorted(analysis.routing.items() if analysis is not None else ()):
        if rt.switched_at_s is not None and rt.switched_to:
            events.append((rt.switched_at_s, f"{svc} switched to {rt.switched_to}"))
    if r.fault_end is not None:
        events.append((r.fault_end - r.fault_start, "experiment's rollback finished"))
    for t, text in sorted(events, key=lambda e: e[0]):
        when = "end of run" if t == float("inf") else f"{human_time(r.fault_start + t)[11:]} (+{t:.2f} s)"
        lines.append(f"{when} {text}")
    return lines


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    def cell(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


VERDICT_HEAD = ["#", "Scenario", "Fault", "Verdict", "Duration", "Key measurements"]
POLICY_HEAD = ["Scenario", "Service", "Metric", "Measured", "SLO budget", "Policy target", "Policy"]
CHANGE_HEAD = ["Scenario", "Service", "Metric", "Now", "Previous", "Change", "Median of last runs", "Flag"]


def markdown(gd: Any, history_note: str | None = None) -> str:
    md = [f"# Game day {gd.plan.name}: {gd.verdict}", ""]
    md += [f"- {k}: {v}" for k, v in facts(gd)]
    if history_note:
        md.append(f"- history: {history_note}")
    md += ["", "## Verdicts", "", *_md_table(VERDICT_HEAD, verdict_rows(gd)), ""]
    md += [f"## Recovery against the policy ({gd.plan.policy.name})", ""]
    rows = policy_rows(gd)
    md += [*_md_table(POLICY_HEAD, rows), ""] if rows else ["No measurement (no drill finished).", ""]
    md += ["## Change since the last run", ""]
    if gd.comparisons:
        md += [f"Previous run: {gd.previous_run_id}; median over up to {gd.plan.compare.last_n} earlier runs; "
               f"a regression is > {gd.plan.compare.regression_pct:g} % and > {gd.plan.compare.min_delta_s:g} s "
               "worse (any more lost writes).", "", *_md_table(CHANGE_HEAD, change_rows(gd)), ""]
    else:
        md += ["First run of this plan on this target in the history: nothing to compare yet.", ""]
    for s in gd.scenarios:
        md += [f"## {s.scenario.name} ({s.scenario.fault}): {s.verdict}", ""]
        tl = timeline(s)
        if tl:
            md += ["Timeline (UTC):", "", *[f"- {line}" for line in tl], ""]
        if (s.run_dir / "timeline.png").is_file():
            md += [f"![{s.scenario.name} timeline]({(s.run_dir / 'timeline.png').relative_to(gd.root)})", ""]
        if s.halted:
            md += [f"Halted: {s.halted}", ""]
        if s.error:
            md += ["Harness/infrastructure error (not an SLO verdict):", "", "```", s.error.strip(), "```", ""]
        if s.result is not None:
            if s.result.inconclusive:
                md += [f"> {s.result.inconclusive_message}", ""]
            md.append(slo_table_markdown(s.result.verdicts))
    return redact("\n".join(md).rstrip() + "\n")


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = ""
    for r in rows:
        cells = ""
        for c in r:
            cls = f' class="v-{html.escape(c)}"' if c in ("PASS", "FAIL", "ERROR", "HALTED", "INCONCLUSIVE",
                                                           "MISSED", "met", "ok") else ""
            if c.startswith("REGRESSION"):
                cls = ' class="v-FAIL"'
            cells += f"<td{cls}>{html.escape(c)}</td>"
        body += f"<tr>{cells}</tr>"
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.v-PASS,.v-met,.v-ok{color:#17692c;font-weight:600}
.v-FAIL,.v-MISSED,.v-ERROR{color:#b00020;font-weight:600}.v-HALTED,.v-INCONCLUSIVE{color:#8a5a00;font-weight:600}
h1 .v{padding:.1em .4em;border-radius:4px;background:#eee}img{max-width:100%;border:1px solid #ddd}
ul.tl{font-family:ui-monospace,monospace;font-size:.85em}"""


def html_page(gd: Any, history_note: str | None = None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Game day {html.escape(gd.plan.name)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>Game day {html.escape(gd.plan.name)}: <span class='v v-{gd.verdict}'>{gd.verdict}</span></h1>",
             _html_table(["", ""], [[k, v] for k, v in facts(gd)]
                         + ([["history", history_note]] if history_note else [])),
             "<h2>Verdicts</h2>", _html_table(VERDICT_HEAD, verdict_rows(gd)),
             f"<h2>Recovery against the policy ({html.escape(gd.plan.policy.name)})</h2>",
             _html_table(POLICY_HEAD, policy_rows(gd)), "<h2>Change since the last run</h2>"]
    if gd.comparisons:
        parts += [f"<p>Previous run: {html.escape(str(gd.previous_run_id))}</p>",
                  _html_table(CHANGE_HEAD, change_rows(gd))]
    else:
        parts.append("<p>First run of this plan on this target in the history: nothing to compare yet.</p>")
    for s in gd.scenarios:
        parts.append(f"<h2>{html.escape(s.scenario.name)} ({html.escape(s.scenario.fault)}): "
                     f"<span class='v-{s.verdict}'>{s.verdict}</span></h2>")
        tl = timeline(s)
        if tl:
            parts.append("<ul class='tl'>" + "".join(f"<li>{html.escape(t)}</li>" for t in tl) + "</ul>")
        png = s.run_dir / "timeline.png"
        if png.is_file():  # embedded: the page is one file people can mail or attach
            data = base64.b64encode(png.read_bytes()).decode()
            parts.append(f"<img alt='{html.escape(s.scenario.name)} timeline' src='data:image/png;base64,{data}'>")
        if s.halted or s.error:
            parts.append(f"<pre>{html.escape(s.halted or s.error or '')}</pre>")
        if s.result is not None:
            parts.append(_html_table(["Result", "SLO", "Detail"],
                                     [["PASS" if v.passed else "FAIL", v.name, v.message] for v in s.result.verdicts]))
    parts.append("</body></html>")
    return redact("\n".join(parts))


def document(gd: Any, history_note: str | None = None) -> dict[str, Any]:
    return {"run_id": gd.run_id, "plan": gd.plan.name, "verdict": gd.verdict, "exit_code": gd.exit_code,
            "target": {"kind": gd.plan.target_kind, "name": gd.target_name}, "timing": gd.plan.timing,
            "routing_mode": gd.plan.routing_mode, "started_at": human_time(gd.started_at),
            "finished_at": human_time(gd.finished_at), "halt_reason": gd.halt_reason, "error": gd.error,
            "history": history_note or "recorded", "previous_run_id": gd.previous_run_id,
            "scenarios": [{"scenario": s.scenario.name, "fault": s.scenario.fault, "verdict": s.verdict,
                           "duration_s": s.duration_s, "halted": s.halted, "error": s.error, "run_dir": str(s.run_dir),
                           "measurements": [m.__dict__ for m in s.measurements],
                           "slos": [v.to_dict() for v in (s.result.verdicts if s.result is not None else [])]}
                          for s in gd.scenarios],
            "comparisons": [c.__dict__ for c in gd.comparisons]}


def write_all(gd: Any, history_note: str | None = None) -> None:
    gd.root.mkdir(parents=True, exist_ok=True)
    (gd.root / "summary.md").write_text(markdown(gd, history_note), encoding="utf-8")
    (gd.root / "summary.html").write_text(html_page(gd, history_note), encoding="utf-8")
    text = json.dumps(document(gd, history_note), indent=2, default=str)
    (gd.root / "summary.json").write_text(redact(text) + "\n", encoding="utf-8")
