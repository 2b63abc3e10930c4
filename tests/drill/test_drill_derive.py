"""Budgets derived from the reference Terraform's settings, scaled as the sandbox scales them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gameday.drill.derive import DERIVATIONS, derive, read_numeric_defaults, reference_settings
from gameday.drill.scenario import load_all, load_scenario, scenario_schema
from gameday.errors import ConfigError
from gameday.sandbox.timing import get_profile

REPO = Path(__file__).resolve().parents[2]

HCL = '''
variable "health_check_interval" {
  description = "Seconds between checks {not a brace problem}"
  type        = number
  default     = 10
}

variable "unhealthy_threshold" {
  type    = number
  default = 2 # inline comment

  validation {
    condition     = var.unhealthy_threshold >= 2
    error_message = "must be >= 2 }"
  }
}

variable "create_timeout" {
  description = <<-EOT
    A heredoc with default = 99 inside and a } brace.
  EOT
  type    = string
  default = null
}

variable "ratio" {
  default = 0.25
}

variable "nested_only" {
  validation {
    default = 7
  }
}
'''


def test_reader_takes_top_level_numeric_defaults_only() -> None:
    assert read_numeric_defaults(HCL) == {"health_check_interval": 10.0, "unhealthy_threshold": 2.0,
                                          "ratio": 0.25}


def test_reference_settings_are_the_repository_terraform_defaults() -> None:
    v = reference_settings()
    text = (REPO / "provision" / "terraform" / "variables.tf").read_text()
    for name in ("health_check_interval", "health_check_timeout", "unhealthy_threshold",
                 "ga_health_check_interval", "ga_threshold_count", "route53_request_interval",
                 "route53_failure_threshold", "route53_record_ttl"):
        assert name in v, name
        assert f'variable "{name}"' in text


def test_derivation_names_match_the_schema() -> None:
    assert set(scenario_schema()["$defs"]["derivation_name"]["enum"]) == set(DERIVATIONS)


@pytest.mark.parametrize("timing", ["fast", "aws"])
def test_alb_detection_uses_the_sandbox_scaling(timing: str) -> None:
    p = get_profile(timing)
    settings = {"unhealthy_threshold": 3.0, "health_check_interval": 20.0, "health_check_timeout": 4.0}
    b = derive({"derive": "alb_target_detection", "margin_s": 0.5}, timing, settings=settings)
    interval, timeout = p.interval(20.0), p.timeout(4.0)
    expected = 3 * interval + timeout if timeout <= interval else interval + 3 * timeout
    assert b.seconds == pytest.approx(expected + 0.5)
    assert b.formula.startswith(f"{b.seconds:g}") and "0.5 s margin" in b.formula


def test_aws_formula_reads_like_the_aws_settings() -> None:
    b = derive({"derive": "alb_target_detection", "margin_s": 1.0}, "aws",
               settings={"unhealthy_threshold": 2.0, "health_check_interval": 10.0, "health_check_timeout": 5.0})
    assert b.seconds == 26.0
    assert b.formula == "26 s = 2 x 10 s ALB health-check interval + 5.0 s timeout + 1.0 s margin"


def test_derivations_add_up_and_follow_the_routing_mode() -> None:
    v = reference_settings()
    alb = derive({"derive": "alb_target_detection"}, "aws", settings=v).seconds
    ga = derive({"derive": "ga_endpoint_detection"}, "aws", settings=v).seconds
    r53 = derive({"derive": "route53_failover"}, "aws", settings=v).seconds
    both = derive({"derive": ["alb_target_detection", "global_routing_detection"]}, "aws", settings=v)
    assert both.seconds == pytest.approx(alb + ga)
    via_dns = derive({"derive": ["alb_target_detection", "global_routing_detection"]}, "aws", settings=v,
                     routing_mode="route53")
    assert via_dns.seconds == pytest.approx(alb + r53)
    assert "record TTL" in via_dns.formula and r53 > ga  # the TTL is on top of the checks


def test_rds_derivations_come_from_the_timing_profile() -> None:
    for timing in ("fast", "aws"):
        p = get_profile(timing)
        assert derive({"derive": "rds_multi_az_failover"}, timing).seconds == pytest.approx(p.s(p.db_failover_s))
        assert derive({"derive": "rds_crash_failover"}, timing).seconds == pytest.approx(
            p.s(p.db_crash_detect_s) + p.s(p.db_failover_s))


def test_a_slower_user_terraform_does_not_widen_the_budget() -> None:
    """The budget is the reference's requirement: slower settings give a bigger detection time, same budget."""
    v = dict(reference_settings())
    reference = derive({"derive": "alb_target_detection", "margin_s": 1.0}, "aws", settings=v).seconds
    slower = derive({"derive": "alb_target_detection", "margin_s": 1.0}, "aws",
                    settings={**v, "health_check_interval": 30.0}).seconds
    shipped = load_scenario(REPO / "scenarios" / "instance-termination.yaml").slos_for("aws").read_budget("web")
    assert shipped == reference < slower


def test_missing_variable_names_file_and_field() -> None:
    with pytest.raises(ConfigError) as info:
        derive({"derive": "ga_endpoint_detection"}, "fast", settings={}, file="s.yaml", field="slos.rto_s.*")
    text = str(info.value)
    assert "ga_threshold_count" in text and "s.yaml" in text and "slos.rto_s.*" in text


def test_shipped_derived_budgets_carry_their_formula_into_the_verdict() -> None:
    by_name = {s.name: s for s in load_all(REPO / "scenarios")}
    fast = by_name["instance-termination"].slos_for("fast")
    basis = fast.budget_basis("read", "web")
    assert basis is not None and basis.startswith(f"{fast.read_budget('web'):g} s = ")
    assert "ALB health-check interval" in basis
    svc = by_name["service-failover"]
    assert svc.slos_for("fast", "route53").read_budget("orders") > svc.slos_for("fast").read_budget("orders")
    assert by_name["replication-partition"].slos_for("fast").budget_basis("read", "web") is None


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "experiments" / "demo.json").write_text(json.dumps({"title": "demo", "configuration": {}}))
    return tmp_path


def scenario_with(repo: Path, budget: str) -> Path:
    path = repo / "scenarios" / "demo.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: demo
        description: a demo drill
        experiment: demo
        fault: instance
        slos:
          rto_s: {budget}
        """))
    return path


def test_a_derived_budget_in_a_file(repo: Path) -> None:
    s = load_scenario(scenario_with(repo, '{"*": {derive: alb_target_detection, margin_s: 1.0}, web: 9}'))
    assert s.slos_for("aws").read_budget("orders") == 26.0
    assert s.slos_for("aws").read_budget("web") == 9.0
    assert s.slos_for("fast").read_budget("orders") < 26.0


@pytest.mark.parametrize("budget, field, words", [
    ('{"*": {derive: alb_detection}}', "slos.rto_s.*.derive", "alb_target_detection"),
    ('{"*": {derive: alb_target_detection, margin: 1}}', "slos.rto_s.*.margin", "margin_s"),
    ('{"*": {derive: alb_target_detection, margin_s: -1}}', "slos.rto_s.*.margin_s", ">= 0"),
    ('{"*": {margin_s: 1}}', "slos.rto_s.*.derive", "derive"),
    ('{orders: {derive: []}}', "slos.rto_s.orders.derive", ""),
    ('{orders: "5"}', "slos.rto_s.orders", "seconds"),
])
def test_bad_derivations_name_file_and_field(repo: Path, budget: str, field: str, words: str) -> None:
    path = scenario_with(repo, budget)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    err = info.value
    assert err.file == str(path)
    assert err.field == field, str(err)
    assert words in str(err)
