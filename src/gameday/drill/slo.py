"""SLO verdicts: compare a drill's measured results with the scenario's SLOs.

Input is the typed analysis bundle (:class:`gameday.analysis.results.AnalysisSummary`): RTO per
service and kind (:class:`~gameday.analysis.rto.RtoResult`), data loss
(:class:`~gameday.analysis.rpo.DataLossResult`, None when nothing was read back) and routing per
service (:class:`~gameday.analysis.routing.RoutingResult`). Error ratios of unaffected services
come from the RTO counts unless given; the replica lag only when measured.

An SLO whose measurement is missing from the bundle *fails* (with a message saying so):
a drill that measured nothing must not look green.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from gameday.analysis.results import AnalysisSummary
from gameday.analysis.routing import RoutingResult
from gameday.analysis.rpo import DataLossResult
from gameday.analysis.rto import RtoResult
from gameday.drill.scenario import ANY_SERVICE, Scenario, Slos
from gameday.errors import DrillError

T = TypeVar("T")
Measured = float | int | str | None

SLO_BREACH_PREFIX = "SLO breach:"
MAX_IDS_SHOWN = 10


@dataclass(frozen=True)
class SloVerdict:
    """One checked SLO: what was allowed, what was measured, and a sentence saying both."""

    name: str
    expected: Measured
    measured: Measured
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ErrorRatio:
    """Failed (or unknown) requests of one service over all its post-fault requests."""

    ratio: float
    failed: int
    total: int


def evaluate(scenario: Scenario, results: AnalysisSummary, *, timing: str = "fast",
             regions: Mapping[str, str] | None = None, routing_mode: str | None = None,
             write_services: Sequence[str] | None = None, errors: Mapping[str, ErrorRatio] | None = None,
             replica_lag_s: float | None = None) -> list[SloVerdict]:
    """Every SLO of the scenario (for this timing profile and routing mode) checked against the results.

    ``write_services``: the services the load wrote to (an inherited write budget is skipped for the
    others); ``errors``: error ratios per service (default: from the RTO counts).
    """
    slos = scenario.slos_for(timing, routing_mode)
    regions = dict(regions or {})
    if "primary" not in regions:
        regions["primary"] = results.parameters.primary_region
    verdicts: list[SloVerdict] = []
    verdicts += _rto(slos, results.rto, write_services)
    verdicts += _data_loss(slos, results.data_loss)
    verdicts += _regions(slos, results.routing, regions)
    verdicts += _unaffected(slos, errors if errors is not None else _error_ratios(results.rto), results.routing)
    verdicts += _replica_lag(slos, replica_lag_s)
    return verdicts


def failures(verdicts: Iterable[SloVerdict]) -> list[SloVerdict]:
    return [v for v in verdicts if not v.passed]


def breach_message(verdicts: Sequence[SloVerdict]) -> str | None:
    """The text of the assertion a drill test raises, or None when every SLO held."""
    bad = failures(verdicts)
    if not bad:
        return None
    lines = "\n".join(f"- {v.message}" for v in bad)
    return f"{SLO_BREACH_PREFIX} {len(bad)} of {len(verdicts)} SLOs failed\n{lines}"


def assert_slos(verdicts: Sequence[SloVerdict]) -> None:
    """Raise AssertionError starting with ``SLO breach:`` (allure's "SLO breach" category)."""
    message = breach_message(verdicts)
    if message is not None:
        raise AssertionError(message)


def slo_table_markdown(verdicts: Sequence[SloVerdict]) -> str:
    """A Markdown table of verdicts (summary.md, allure attachment)."""
    rows = ["| Result | SLO | Expected | Measured | Detail |", "|---|---|---|---|---|"]
    for v in verdicts:
        rows.append(f"| {'PASS' if v.passed else '**FAIL**'} | {_md(v.name)} | {_md(_show(v.expected))} | "
                    f"{_md(_show(v.measured))} | {_md(v.message)} |")
    if not verdicts:
        rows.append("| - | (no SLO checked) | | | |")
    return "\n".join(rows) + "\n"


# --- formatting ---------------------------------------------------------------------------------

def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _show(value: Measured) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def _secs(measured: float, budget: float) -> tuple[str, str]:
    """Seconds with one decimal, more when one decimal would hide why the comparison went so."""
    for digits in (1, 2, 3):
        a, b = f"{measured:.{digits}f}", f"{budget:.{digits}f}"
        if a != b or measured == budget:
            return f"{a} s", f"{b} s"
    return f"{measured:.3f} s", f"{budget:.3f} s"


def _cmp(measured: float, allowed: float) -> str:
    return "<=" if measured <= allowed else ">"


def _for_services(table: Mapping[str, T], measured: Iterable[str]) -> list[tuple[str, T]]:
    """(service, expectation) pairs: named services always, ``*`` for every measured service."""
    pairs = [(s, v) for s, v in table.items() if s != ANY_SERVICE]
    if ANY_SERVICE in table:
        named = {s for s, _ in pairs}
        pairs += [(s, table[ANY_SERVICE]) for s in sorted(measured) if s not in named]
    return pairs


# --- checks -------------------------------------------------------------------------------------

def _rto(slos: Slos, rto: Mapping[str, Mapping[str, RtoResult]],
         write_services: Sequence[str] | None = None) -> list[SloVerdict]:
    out: list[SloVerdict] = []
    services = sorted(set(_for_services_names(slos.rto_s, rto))
                      | set(_for_services_names(slos.write_rto_s, rto)))
    if not services and (slos.rto_s or slos.write_rto_s):
        budget = slos.rto_s.get(ANY_SERVICE) or slos.write_rto_s.get(ANY_SERVICE)
        out.append(SloVerdict("rto", budget, None, False,
                              "RTO not measured: the results have no per-service RTO at all"))
    for service in services:
        for kind in ("read", "write"):
            budget = slos.read_budget(service) if kind == "read" else slos.write_budget(service)
            if budget is None:
                continue
            m = rto.get(service, {}).get(kind)
            inherited = kind == "write" and service not in slos.write_rto_s and ANY_SERVICE not in slos.write_rto_s
            if inherited and write_services is not None and service not in write_services:
                continue  # the load never writes to this service; an explicit write budget still must be met
            out.append(_rto_one(service, kind, budget, m, slos.budget_basis(kind, service)))
    return out


def _for_services_names(table: Mapping[str, object], measured: Iterable[str]) -> list[str]:
    return [s for s, _ in _for_services(table, measured)]


def _rto_one(service: str, kind: str, budget: float, m: RtoResult | None,
             basis: str | None = None) -> SloVerdict:
    """One RTO verdict; a derived budget's formula ends the message ("budget 3.2 s = ...")."""
    v = _rto_verdict(service, kind, budget, m)
    if basis is None:
        return v
    return SloVerdict(v.name, v.expected, v.measured, v.passed, f"{v.message} (budget {basis})")


def _rto_verdict(service: str, kind: str, budget: float, m: RtoResult | None) -> SloVerdict:
    name = f"rto.{service}.{kind}"
    label = f"{service} {kind} RTO"
    allowed = f"{budget:.1f} s allowed"
    if m is None or m.status == "no_data":
        return SloVerdict(name, budget, None, False,
                          f"{label} not measured (no {kind} requests after the fault); {allowed}")
    if not m.recovered:
        first = m.time_to_first_error_s
        bits = [f"first error at {first:.1f} s" if first is not None else None,
                f"{m.failed} failed, {m.unknown} unknown"]
        detail = "; ".join(b for b in bits if b)
        return SloVerdict(name, budget, None, False,
                          f"{service} {kind}s never recovered within the run ({detail}); {allowed}")
    recovery = m.rto_s if m.rto_s is not None else 0.0
    a, b = _secs(recovery, budget)
    passed = recovery <= budget
    suffix = " (no errors)" if recovery == 0 and m.status == "no_errors" else ""
    return SloVerdict(name, budget, recovery, passed,
                      f"{label} {a} {_cmp(recovery, budget)} {b} allowed{suffix}")


def _error_ratios(rto: Mapping[str, Mapping[str, RtoResult]]) -> dict[str, ErrorRatio]:
    """Per-service error ratio over every post-fault request (reads and writes) from RTO counts."""
    out: dict[str, ErrorRatio] = {}
    for service, kinds in rto.items():
        per_kind = [m for k, m in kinds.items() if k in ("read", "write")]
        failed = sum(m.failed + m.unknown for m in per_kind)
        total = sum(m.total for m in per_kind)
        if total:
            out[service] = ErrorRatio(failed / total, failed, total)
    return out


def _data_loss(slos: Slos, loss: DataLossResult | None) -> list[SloVerdict]:
    out: list[SloVerdict] = []
    if slos.max_lost_writes is None and slos.max_rpo_s is None:
        return out
    if loss is None:
        for name, expected in (("lost_writes", slos.max_lost_writes), ("rpo", slos.max_rpo_s)):
            if expected is not None:
                what = name.replace("_", " ")
                out.append(SloVerdict(name, expected, None, False,
                                      f"{what} not measured: the results have no data-loss analysis"))
        return out
    lost, ids = loss.lost, loss.lost_ids
    if slos.max_lost_writes is not None:
        allowed = slos.max_lost_writes
        passed = lost <= allowed
        msg = f"lost acknowledged writes: {lost} {_cmp(lost, allowed)} {allowed} allowed"
        if ids and lost:
            shown = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
            more = f" (+{len(ids) - MAX_IDS_SHOWN} more)" if len(ids) > MAX_IDS_SHOWN else ""
            msg += f" (ids: {shown}{more})"
        out.append(SloVerdict("lost_writes", allowed, lost, passed, msg))
    if slos.max_rpo_s is not None:
        rpo = loss.rpo_s
        a, b = _secs(rpo, slos.max_rpo_s)
        detail = f" ({lost} acknowledged writes lost)" if lost else ""
        out.append(SloVerdict("rpo", slos.max_rpo_s, rpo, rpo <= slos.max_rpo_s,
                              f"RPO {a} {_cmp(rpo, slos.max_rpo_s)} {b} allowed{detail}"))
    return out


def _region_of(role: str, regions: Mapping[str, str]) -> str:
    region = regions.get(role)
    if not region:
        raise DrillError(f"cannot check a region SLO: the results bundle names no {role!r} region "
                         "(results['regions'] = {'primary': ..., 'recovery': ...})")
    return region


def _regions(slos: Slos, routing: Mapping[str, RoutingResult], regions: Mapping[str, str]) -> list[SloVerdict]:
    out: list[SloVerdict] = []
    for when, label in ((slos.during_region, "during"), (slos.end_region, "end")):
        if ANY_SERVICE in when and not routing:
            role = when[ANY_SERVICE]
            out.append(SloVerdict(f"{label}_region", f"{role} {_region_of(role, regions)}", None, False,
                                  f"{label} region not measured: the results have no routing per service"))
        for service, role in _for_services(when, routing):
            expected = _region_of(role, regions)
            name = f"{label}_region.{service}"
            r = routing.get(service)
            if r is None:
                out.append(SloVerdict(name, f"{role} {expected}", None, False,
                                      f"{service}: no routing measurement, expected {role} {expected}"))
                continue
            measured = r.region_during if label == "during" else r.region_after
            verb = "was served from" if label == "during" else "ended in"
            phase = " during the fault" if label == "during" else ""
            if measured is None:
                what = "during the fault" if label == "during" else "at the end"
                out.append(SloVerdict(name, f"{role} {expected}", None, False,
                                      f"{service}: no request succeeded {what}, expected {role} {expected}"))
            elif measured == expected:
                out.append(SloVerdict(name, f"{role} {expected}", measured, True,
                                      f"{service} {verb} {measured}{phase} ({role}), as expected"))
            else:
                out.append(SloVerdict(name, f"{role} {expected}", measured, False,
                                      f"{service} {verb} {measured}{phase}, expected {role} {expected}"))
    for service in slos.must_switch:
        r = routing.get(service)
        recovery = regions.get("recovery", "the recovery region")
        name = f"must_switch.{service}"
        if r is None:
            out.append(SloVerdict(name, "switch", None, False, f"{service}: no routing measurement, "
                                  f"expected a switch to recovery {recovery}"))
        elif r.switched_at_s is None:
            out.append(SloVerdict(name, "switch", None, False, f"{service} never switched region, "
                                  f"expected a switch to recovery {recovery}"))
        else:
            to = r.switched_to or r.region_during or recovery
            out.append(SloVerdict(name, "switch", r.switched_at_s, True,
                                  f"{service} switched to {to} at {r.switched_at_s:.1f} s"))
    return out


def _unaffected(slos: Slos, errors: Mapping[str, ErrorRatio],
                routing: Mapping[str, RoutingResult]) -> list[SloVerdict]:
    out: list[SloVerdict] = []
    if slos.unaffected is None:
        return out
    limit = slos.unaffected.max_error_ratio
    for service in slos.unaffected.services:
        e = errors.get(service)
        name = f"unaffected.{service}.errors"
        if e is None:
            out.append(SloVerdict(name, limit, None, False,
                                  f"{service} error ratio not measured; {limit:.1%} allowed"))
        else:
            counts = f" ({e.failed} of {e.total} requests failed)"
            msg = f"{service} error ratio {e.ratio:.1%} {_cmp(e.ratio, limit)} {limit:.1%} allowed{counts}"
            out.append(SloVerdict(name, limit, e.ratio, e.ratio <= limit, msg))
        r = routing.get(service)
        if r is not None:
            before, after = r.region_before, r.region_after
            name = f"unaffected.{service}.region"
            if r.stayed:
                out.append(SloVerdict(name, "stay", before, True, f"{service} stayed in {before}"))
            else:
                during = r.region_during
                path = " -> ".join(str(x) for x in (before, during, after) if x is not None)
                out.append(SloVerdict(name, "stay", path, False,
                                      f"{service} switched region ({path}) but should be unaffected"))
    return out


def _replica_lag(slos: Slos, lag: float | None) -> list[SloVerdict]:
    if slos.max_replica_lag_s is None:
        return []
    if lag is None:
        return [SloVerdict("replica_lag", slos.max_replica_lag_s, None, False,
                           f"replica lag not measured; {slos.max_replica_lag_s:.1f} s allowed")]
    a, b = _secs(lag, slos.max_replica_lag_s)
    return [SloVerdict("replica_lag", slos.max_replica_lag_s, lag, lag <= slos.max_replica_lag_s,
                       f"max replica lag {a} {_cmp(lag, slos.max_replica_lag_s)} {b} allowed")]
