"""Drill reports: allure helpers for the pytest side and the per-run folder ``reports/<run-id>/``.

Run folder layout (``RunLayout``)::

    reports/<run-id>/
      allure-results/        allure-pytest output + environment.properties + categories.json
      drills/<scenario>/     one folder per drill: results.json, timeline.png, chaos-journal.json,
                             cleanup.json, load/ (the request and write journals, locust's HTML and CSV)
      summary.md             one table row per scenario, then each scenario's SLO table
      summary.json           the same, machine-readable

Everything written here goes through ``gameday.util.redact``: reports get shared, passwords must not.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allure

from gameday.drill.results import DrillResults
from gameday.drill.scenario import Scenario
from gameday.drill.slo import SLO_BREACH_PREFIX, SloVerdict, slo_table_markdown
from gameday.util.redact import redact

VERDICT_PASS = "PASS"
VERDICT_FAIL = "FAIL"    # an SLO was breached: the system under test failed
VERDICT_ERROR = "ERROR"  # the drill could not run: harness or infrastructure problem
VERDICT_INCONCLUSIVE = "INCONCLUSIVE"  # the host was starved during the fault: no verdict either way
VERDICT_HALTED = "HALTED"  # a stop condition tripped: the method was stopped, rollbacks ran (a failure)

CATEGORY_SLO = "SLO breach"
CATEGORY_HARNESS = "Harness/infrastructure error"
CATEGORY_OTHER_ASSERTION = "Failed check (not an SLO)"
CATEGORY_INFRA = "Infrastructure"  # INCONCLUSIVE drills: pytest skips them with the starvation figure
CATEGORY_HALTED = "Stop condition (HALTED)"  # a guard tripped: the test fails with "HALTED: ..."

_TYPES: dict[str, tuple[str, str]] = {
    ".json": ("application/json", "json"), ".jsonl": ("application/x-ndjson", "jsonl"),
    ".md": ("text/markdown", "md"), ".txt": ("text/plain", "txt"), ".log": ("text/plain", "log"),
    ".csv": ("text/csv", "csv"), ".html": ("text/html", "html"), ".png": ("image/png", "png"),
    ".svg": ("image/svg+xml", "svg"), ".yaml": ("application/yaml", "yaml"),
    ".yml": ("application/yaml", "yaml"),
}


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run's report folder."""

    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def allure_results(self) -> Path:
        return self.root / "allure-results"

    @property
    def drills(self) -> Path:
        """One folder per drill (``drills/<scenario>``), made by the drill itself."""
        return self.root / "drills"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def allure_report(self) -> Path:
        """Where ``gameday report`` writes the HTML by default."""
        return self.root / "allure-report"

    def create(self) -> RunLayout:
        self.allure_results.mkdir(parents=True, exist_ok=True)
        return self


def new_run_id(now: float | None = None) -> str:
    """Sortable, filesystem-safe id: ``20250101-120000-<pid>`` (pid keeps parallel runs apart)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    return f"{stamp}-{os.getpid()}"


def run_layout(reports_dir: str | os.PathLike[str], run_id: str | None = None) -> RunLayout:
    """Create ``reports_dir/<run-id>/`` with its sub-folders."""
    return RunLayout(Path(reports_dir) / (run_id or new_run_id())).create()


def latest_run(reports_dir: str | os.PathLike[str]) -> RunLayout | None:
    """The newest run folder that has allure results (for ``gameday report`` without --results)."""
    d = Path(reports_dir)
    if not d.is_dir():
        return None
    runs = sorted((p for p in d.iterdir() if (p / "allure-results").is_dir()),
                  key=lambda p: p.stat().st_mtime)
    return RunLayout(runs[-1]) if runs else None


# --- allure helpers (no-ops outside an allure-pytest run) ----------------------------------------

@contextmanager
def phase(name: str) -> Iterator[None]:
    """A drill phase (warm-up, inject, recover, verify) as an allure step."""
    with allure.step(name):
        yield


def label_scenario(scenario: Scenario, *, target: str | None = None, timing: str | None = None) -> None:
    """Labels so allure groups drills by fault type (feature) and scenario (story)."""
    allure.dynamic.label("scenario", scenario.name)
    allure.dynamic.parameter("scenario", scenario.name)  # not the Scenario object's repr
    allure.dynamic.label("fault type", scenario.fault)
    allure.dynamic.feature(f"{scenario.fault} fault")
    allure.dynamic.story(scenario.name)
    allure.dynamic.description(scenario.description)
    for tag in scenario.tags:
        allure.dynamic.tag(tag)
    if target:
        allure.dynamic.parameter("target", target)
    if timing:
        allure.dynamic.parameter("timing", timing)


def attach_file(path: str | os.PathLike[str], name: str | None = None, type: str | None = None) -> bool:
    """Attach a file (MIME from its extension unless ``type`` is given); a missing one is noted, not fatal."""
    p = Path(path)
    label = name or p.name
    if not p.is_file():
        allure.attach(f"not produced: {p}", name=f"{label} (missing)",
                      attachment_type=allure.attachment_type.TEXT)
        return False
    mime, ext = _TYPES.get(p.suffix.lower(), (None, p.suffix.lstrip(".") or "txt"))
    if type is not None:
        mime = type
        ext = (mimetypes.guess_extension(type) or f".{ext}").lstrip(".")
    allure.attach.file(str(p), name=label, attachment_type=mime or "application/octet-stream", extension=ext)
    return True


def attach_json(data: Any, name: str, secrets: tuple[str, ...] = ()) -> None:
    """Attach a JSON value, redacted."""
    body = json.dumps(redact(data, secrets), indent=2, sort_keys=True, default=str)
    allure.attach(body, name=name, attachment_type=allure.attachment_type.JSON)


def attach_results(results: DrillResults, name: str = "measurements", secrets: tuple[str, ...] = ()) -> None:
    """A drill's results in their one JSON shape (:meth:`DrillResults.to_dict`), redacted."""
    attach_json(results.to_dict(), name, secrets)


def attach_markdown(text: str, name: str, secrets: tuple[str, ...] = ()) -> None:
    allure.attach(redact(text, secrets), name=name, attachment_type="text/markdown", extension="md")


def attach_verdicts(verdicts: Sequence[SloVerdict], name: str = "SLO verdicts",
                    secrets: tuple[str, ...] = ()) -> None:
    """The SLO table as Markdown plus the raw verdicts as JSON."""
    attach_markdown(slo_table_markdown(verdicts), name, secrets)
    # Key-based redaction would mask the verdicts' "passed" field (it matches /pass/), and their
    # keys are fixed and harmless: mask only known secret strings.
    body = json.dumps([v.to_dict() for v in verdicts], indent=2, default=str)
    allure.attach(redact(body, secrets), name=f"{name} (json)", attachment_type=allure.attachment_type.JSON)


# --- allure-results side files -------------------------------------------------------------------

def _prop_escape(text: str, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if key:
        out = re.sub(r"([=: ])", r"\\\1", out)
    return out


def write_environment_properties(directory: str | os.PathLike[str], env: Mapping[str, Any],
                                 secrets: tuple[str, ...] = ()) -> Path:
    """allure ``environment.properties`` (target, timing, regions...), redacted, Java-properties escaped."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    clean = redact(dict(env), secrets)
    lines = []
    for k in sorted(clean):
        v = clean[k]
        text = json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list) else str(v)
        lines.append(f"{_prop_escape(str(k), key=True)}={_prop_escape(text)}")
    path = d / "environment.properties"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def categories() -> list[dict[str, Any]]:
    """allure categories: SLO breaches apart from harness failures (first match wins)."""
    slo = re.escape(SLO_BREACH_PREFIX)
    from gameday.drill.starvation import INCONCLUSIVE_PREFIX

    inconclusive = re.escape(INCONCLUSIVE_PREFIX)
    return [
        # [\s\S] instead of flags: allure 2 (Java, whole-string match) and 3 (JS, search) agree on it.
        {"name": CATEGORY_SLO, "matchedStatuses": ["failed"], "messageRegex": rf"[\s\S]*{slo}[\s\S]*"},
        {"name": CATEGORY_HARNESS, "matchedStatuses": ["broken"]},
        {"name": CATEGORY_HALTED, "matchedStatuses": ["failed"], "messageRegex": r"[\s\S]*HALTED: [\s\S]*"},
        {"name": CATEGORY_OTHER_ASSERTION, "matchedStatuses": ["failed"]},
        # a starved host: the drill is skipped with "INCONCLUSIVE: host starved: ..." (not red, not green)
        {"name": CATEGORY_INFRA, "matchedStatuses": ["skipped"], "messageRegex": rf"[\s\S]*{inconclusive}[\s\S]*"},
    ]


def write_categories(directory: str | os.PathLike[str]) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "categories.json"
    path.write_text(json.dumps(categories(), indent=2) + "\n", encoding="utf-8")
    return path


# --- run summary ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScenarioResult:
    """Outcome of one drill for the run summary."""

    scenario: str
    fault: str
    verdicts: Sequence[SloVerdict] = ()
    error: str | None = None             # harness/infrastructure error text, when the drill could not run
    target: str | None = None
    timing: str | None = None
    duration_s: float | None = None
    measurements: Mapping[str, Any] = field(default_factory=dict)  # extra key figures to show
    inconclusive: str | None = None      # the starvation figure when the host could not keep up
    halted: str | None = None            # which stop condition tripped, with its figure

    @property
    def verdict(self) -> str:
        if self.error:
            return VERDICT_ERROR
        if self.halted:
            return VERDICT_HALTED
        if self.inconclusive:
            return VERDICT_INCONCLUSIVE  # whatever the SLOs said: a stalled host fakes and hides outages
        if not self.verdicts:
            return VERDICT_ERROR  # nothing checked is not a pass
        return VERDICT_PASS if all(v.passed for v in self.verdicts) else VERDICT_FAIL

    def key_measurements(self) -> str:
        """The starvation figure, else failed SLOs (their messages), else the given measurements, else a count."""
        if self.error:
            return self.error.strip().splitlines()[0] if self.error.strip() else "error"
        if self.halted:
            return self.halted
        if self.inconclusive:
            return self.inconclusive
        bad = [v.message for v in self.verdicts if not v.passed]
        if bad:
            return "; ".join(bad)
        if self.measurements:
            return "; ".join(f"{k}: {human_value(k, v)}" for k, v in redact(dict(self.measurements)).items())
        if not self.verdicts:
            return "no SLO was checked"
        return f"all {len(self.verdicts)} SLOs met"

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "fault": self.fault, "verdict": self.verdict,
                "target": self.target, "timing": self.timing, "duration_s": self.duration_s,
                "error": self.error, "inconclusive": self.inconclusive, "halted": self.halted,
                "measurements": dict(self.measurements), "key_measurements": self.key_measurements(),
                "slos": [v.to_dict() for v in self.verdicts]}


_INSTANT_KEY = re.compile(r"(^|_)(start|end|at|time|ts)$")


def human_value(key: str, value: Any) -> Any:
    """A wall-clock instant (``fault_start: 1796156667.5``) as UTC time people read; other values unchanged."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 1e9 and _INSTANT_KEY.search(key):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(float(value), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return value


def overall_verdict(results: Sequence[ScenarioResult]) -> str:
    """ERROR > FAIL > INCONCLUSIVE > PASS: a real breach elsewhere is not hidden by a starved drill."""
    verdicts = {r.verdict for r in results}
    if not results or VERDICT_ERROR in verdicts:
        return VERDICT_ERROR
    for v in (VERDICT_HALTED, VERDICT_FAIL, VERDICT_INCONCLUSIVE):
        if v in verdicts:
            return v
    return VERDICT_PASS


def write_summary(run_dir: str | os.PathLike[str], scenario_results: Sequence[ScenarioResult],
                  meta: Mapping[str, Any] | None = None, secrets: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.json`` into the run folder; returns both paths."""
    layout = RunLayout(Path(run_dir))
    layout.root.mkdir(parents=True, exist_ok=True)
    # Caller-supplied maps (meta, measurements) get key-based redaction; the whole text then gets
    # known-secret masking. (Key-based redaction of the verdicts would mask their "passed" field.)
    info = dict(redact(dict(meta or {}), secrets))
    scenarios = []
    for r in scenario_results:
        d = r.to_dict()
        d["measurements"] = redact(d["measurements"], secrets)
        scenarios.append(d)
    doc = {"run_id": layout.run_id, "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "verdict": overall_verdict(scenario_results), **info, "scenarios": scenarios}
    text_json = redact(json.dumps(doc, indent=2, default=str) + "\n", secrets)
    layout.summary_json.write_text(text_json, encoding="utf-8")

    md = [f"# gameday run {layout.run_id}: {doc['verdict']}", ""]
    for k, v in info.items():
        md.append(f"- {k}: {v}")
    if info:
        md.append("")
    md += ["| Scenario | Fault | Verdict | Key measurements |", "|---|---|---|---|"]
    for r in scenario_results:
        shown = r.verdict if r.verdict == VERDICT_PASS else f"**{r.verdict}**"
        md.append(f"| {_md(r.scenario)} | {_md(r.fault)} | {shown} | {_md(r.key_measurements())} |")
    if not scenario_results:
        md.append("| (no scenario ran) | | ERROR | |")
    for r in scenario_results:
        md += ["", f"## {r.scenario} ({r.fault}): {r.verdict}", ""]
        if r.error:
            md += ["Harness/infrastructure error (not an SLO verdict):", "",
                   "```", r.error.strip(), "```", ""]
        if r.halted:
            md += ["Stopped by a stop condition (the method was stopped and rolled back; SLOs not judged):", "",
                   f"> {r.halted}", ""]
        if r.inconclusive:
            md += ["Host starved during the fault: no verdict (the SLOs below were measured, not judged):", "",
                   f"> {r.inconclusive}", ""]
        if r.verdicts:
            md.append(slo_table_markdown(r.verdicts))
    text = redact("\n".join(md).rstrip() + "\n", secrets)
    layout.summary_md.write_text(text, encoding="utf-8")
    return layout.summary_md, layout.summary_json


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
