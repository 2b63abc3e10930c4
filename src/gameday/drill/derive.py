"""RTO budgets derived from the reference system's settings instead of hand-picked numbers.

A scenario may write a budget as ``{derive: alb_target_detection, margin_s: 1.0}`` (or a list
of derivations, which add up: a failure detected by one layer and then by the next). The
budget is the *requirement* of the reference system, so the settings are the defaults of the
reference Terraform (``provision/terraform/variables.tf``), scaled by the timing profile with
the same ``TimingProfile.interval()/timeout()/s()`` the sandbox uses for what that Terraform
creates. A user's Terraform that slows detection therefore breaches the unchanged drill.

``margin_s`` is never scaled: it stands for what no setting describes (the probes' time
resolution, the analysis window, the emulation's own tick). Each budget carries its formula,
shown in the verdict ("budget 2.4 s = 2 x 0.2 s interval + 1.0 s timeout + 1.0 s margin").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gameday import resources
from gameday.errors import ConfigError
from gameday.sandbox.routing import GA_CHECK_TIMEOUT_S, ROUTE53_CHECK_TIMEOUT_S  # the router's own, with sources
from gameday.sandbox.timing import TimingProfile, get_profile

ROUTING_MODES = ("global_accelerator", "route53")


def terraform_variables_path() -> Path:
    """The reference Terraform's ``variables.tf``: always gameday's own.

    Not GAMEDAY_TF_MODULE (the stack the sandbox applies): a budget is the reference
    system's requirement, so a user's Terraform changes what is measured, never what is allowed.
    """
    return resources.terraform_module() / "variables.tf"


_VARIABLE = re.compile(r'^variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"\s*\{', re.MULTILINE)
_DEFAULT = re.compile(r"^\s*default\s*=\s*(-?\d+(?:\.\d+)?)\s*(?:#.*|//.*)?$", re.MULTILINE)


def read_numeric_defaults(text: str) -> dict[str, float]:
    """``variable "x" { default = N }`` -> {x: N}, numbers only; other defaults are skipped.

    Each block is cut at its closing brace by counting braces outside strings and heredocs, so a
    ``default`` inside a nested ``validation { }`` block or another variable is never taken.
    """
    out: dict[str, float] = {}
    for m in _VARIABLE.finditer(text):
        body = _block_body(text, m.end())
        top = _top_level(body)
        d = _DEFAULT.search(top)
        if d:
            out[m.group(1)] = float(d.group(1))
    return out


def _block_body(text: str, start: int) -> str:
    depth, i, in_str = 1, start, False
    while i < len(text) and depth:
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "<" and text.startswith("<<", i):  # heredoc: skip to its terminator line
            m = re.match(r"<<-?([A-Za-z_]+)\n", text[i:])
            if m:
                end = re.compile(rf"^\s*{m.group(1)}\s*$", re.MULTILINE).search(text, i + m.end())
                i = end.end() if end else len(text)
                continue
        elif c == "#" or text.startswith("//", i):
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        i += 1
    return text[start:i - 1]


def _top_level(body: str) -> str:
    """The body's lines outside nested blocks (``validation { ... }``)."""
    lines, depth = [], 0
    for line in body.splitlines():
        if depth == 0:
            lines.append(line)
        depth += line.count("{") - line.count("}")
        depth = max(depth, 0)
    return "\n".join(lines)


@cache
def _defaults_of(path: str, mtime: float) -> dict[str, float]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the reference Terraform variables: {exc.strerror}", file=path,
                          hint="budgets with 'derive:' need provision/terraform/variables.tf") from exc
    return read_numeric_defaults(text)


def reference_settings(path: Path | None = None) -> dict[str, float]:
    """Numeric defaults of the reference Terraform (cached per file version)."""
    p = path or terraform_variables_path()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _defaults_of(str(p), mtime)


@dataclass(frozen=True)
class Budget:
    """A derived budget: seconds, and the sentence that says where they come from."""

    seconds: float
    formula: str


def _s(x: float) -> str:
    """1.0 s, 0.2 s, 0.02 s, 25 s: as many digits as the figure has (up to two decimals)."""
    for digits in (0, 1, 2) if x >= 10 else (1, 2):
        if abs(round(x, digits) - x) < 1e-9:
            return f"{x:.{digits}f} s"
    return f"{x:.2f} s"


def _detection(n: float, interval: float, timeout: float, what: str) -> tuple[float, str]:
    """Worst-case time until ``n`` consecutive failed checks, every ``interval``, each up to ``timeout``.

    AWS requires the ALB timeout to be below the interval; then the failure can begin just after a
    check, ``n`` more checks start ``interval`` apart and the last one times out: n x interval +
    timeout. The fast profile's timeout floor (1 s) can exceed its scaled interval; a health checker
    does not overlap checks of one target (HAProxy runs one check at a time), so each of the ``n``
    checks then takes the timeout: interval + n x timeout.
    """
    if timeout <= interval:
        return n * interval + timeout, f"{n:g} x {_s(interval)} {what} interval + {_s(timeout)} timeout"
    return interval + n * timeout, (f"{_s(interval)} {what} interval + {n:g} x {_s(timeout)} timeout "
                                    "(scaled timeout above the interval: checks cannot overlap)")


def _alb(p: TimingProfile, v: Mapping[str, float], routing_mode: str) -> tuple[float, str]:
    # ALB: "The load balancer sends a health check request to each registered target every
    # HealthCheckIntervalSeconds seconds"; UnhealthyThresholdCount: "The number of consecutive health
    # check failures required before considering the target unhealthy"
    # (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html)
    return _detection(v["unhealthy_threshold"], p.interval(v["health_check_interval"]),
                      p.timeout(v["health_check_timeout"]), "ALB health-check")


def _ga(p: TimingProfile, v: Mapping[str, float], routing_mode: str) -> tuple[float, str]:
    # GA endpoint group: "ThresholdCount: The number of consecutive health checks required to set the
    # state of a healthy endpoint to unhealthy" (https://docs.aws.amazon.com/global-accelerator/latest/api/API_EndpointGroup.html)
    interval = v["ga_health_check_interval"]
    return _detection(v["ga_threshold_count"], p.interval(interval),
                      p.timeout(min(interval, GA_CHECK_TIMEOUT_S)), "Global Accelerator")


def _route53(p: TimingProfile, v: Mapping[str, float], routing_mode: str) -> tuple[float, str]:
    # Failover records: the health check's failure threshold x request interval, then clients keep
    # the old answer for up to the record's TTL (resolvers cache it for the TTL).
    interval = v["route53_request_interval"]
    t, text = _detection(v["route53_failure_threshold"], p.interval(interval),
                         p.timeout(min(interval, ROUTE53_CHECK_TIMEOUT_S)), "Route 53")
    ttl = p.s(v["route53_record_ttl"])
    return t + ttl, f"{text} + {_s(ttl)} record TTL"


def _global_routing(p: TimingProfile, v: Mapping[str, float], routing_mode: str) -> tuple[float, str]:
    """Whichever global routing the run uses: Global Accelerator, or Route 53 failover records."""
    if routing_mode == "route53":
        return _route53(p, v, routing_mode)
    return _ga(p, v, routing_mode)


def _rds_failover(p: TimingProfile, v: Mapping[str, float], routing_mode: str) -> tuple[float, str]:
    t = p.s(p.db_failover_s)
    return t, f"{_s(t)} RDS Multi-AZ failover (timing profile {p.name})"


def _rds_crash(p: TimingProfile, v: Mapping[str, float], routing_mode: str) -> tuple[float, str]:
    d, f = p.s(p.db_crash_detect_s), p.s(p.db_failover_s)
    return d + f, f"{_s(d)} RDS crash detection + {_s(f)} Multi-AZ failover (timing profile {p.name})"


_Fn = Callable[[TimingProfile, Mapping[str, float], str], tuple[float, str]]
DERIVATIONS: dict[str, tuple[_Fn, tuple[str, ...]]] = {
    "alb_target_detection": (_alb, ("unhealthy_threshold", "health_check_interval", "health_check_timeout")),
    "ga_endpoint_detection": (_ga, ("ga_threshold_count", "ga_health_check_interval")),
    "route53_failover": (_route53, ("route53_failure_threshold", "route53_request_interval",
                                    "route53_record_ttl")),
    "global_routing_detection": (_global_routing, ("ga_threshold_count", "ga_health_check_interval",
                                                   "route53_failure_threshold", "route53_request_interval",
                                                   "route53_record_ttl")),
    "rds_multi_az_failover": (_rds_failover, ()),
    "rds_crash_failover": (_rds_crash, ()),
}


def derive(spec: Mapping[str, object], timing: str, *, routing_mode: str = "global_accelerator",
           settings: Mapping[str, float] | None = None, file: str | None = None,
           field: str | None = None) -> Budget:
    """Seconds of one ``{derive: ..., margin_s: ...}`` budget for a timing profile and routing mode."""
    names = spec["derive"]
    names = [names] if isinstance(names, str) else list(names)  # type: ignore[call-overload]
    margin = float(spec.get("margin_s", 0.0))  # type: ignore[arg-type]
    values = settings if settings is not None else reference_settings()
    profile = get_profile(timing)
    total, parts = 0.0, []
    for name in names:
        fn, needs = DERIVATIONS[str(name)]
        missing = [k for k in needs if k not in values]
        if missing:
            raise ConfigError(f"derivation {name!r} needs the Terraform variable {missing[0]!r}, which has "
                              f"no numeric default in {terraform_variables_path()}", file=file, field=field,
                              hint="declare it with a number default, or write the budget in seconds")
        t, text = fn(profile, values, routing_mode)
        total += t
        parts.append(text)
    total += margin
    formula = " + ".join(parts) + (f" + {_s(margin)} margin" if margin else "")
    return Budget(round(total, 3), f"{_s(total)} = {formula}")
