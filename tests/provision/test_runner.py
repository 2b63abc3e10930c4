"""TerraformRunner against real terraform and tiny terraform_data modules (no provider download)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from gameday.errors import (
    ConfigError,
    EndpointUnreachable,
    MaxRetriesExceeded,
    PrerequisiteMissing,
    TerraformError,
    TimeoutExceeded,
)
from gameday.provision.runner import (
    TerraformEndpointUnreachable,
    TerraformRunError,
    TerraformRunner,
    TfEvent,
    provisioned,
)
from gameday.util.net import free_port
from gameday.util.procs import pgid_alive
from gameday.util.redact import REDACTED, Secret

MakeRunner = Callable[..., tuple[TerraformRunner, list[TfEvent]]]
MakeModule = Callable[..., Path]

BASIC = """
variable "greeting" {
  type    = string
  default = "hello"
}
variable "db_password" {
  type      = string
  sensitive = true
}
resource "terraform_data" "a" {
  input = var.greeting
}
resource "terraform_data" "b" {
  input = "${terraform_data.a.output}-b"
}
output "a" { value = terraform_data.a.output }
output "nested" { value = { b = terraform_data.b.output, n = 3 } }
output "password" {
  value     = var.db_password
  sensitive = true
}
"""


def _procs_with(marker: str) -> list[int]:
    """PIDs whose command line contains marker (proves a child is really gone)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline:
                out.append(int(entry))
    return out


def test_init_apply_output_destroy_streams_events(make_module: MakeModule, make_runner: MakeRunner) -> None:
    secret = "pw-" + uuid.uuid4().hex
    runner, seen = make_runner(make_module(BASIC), vars={"greeting": "hi", "db_password": Secret(secret)})
    runner.init()
    res = runner.apply()
    assert res.exit_code == 0
    started = [e.address for e in seen if e.type == "apply_start"]
    completed = [e.address for e in seen if e.type == "apply_complete"]
    assert set(started) == set(completed) == {"terraform_data.a", "terraform_data.b"}
    assert str(next(e for e in seen if e.type == "apply_start")).startswith("apply_start terraform_data.")
    assert sorted(runner.state_list()) == ["terraform_data.a", "terraform_data.b"]

    out = runner.output()
    assert out["a"] == "hi"
    assert out["nested"] == {"b": "hi-b", "n": 3}
    assert out.sensitive == frozenset({"password"})
    assert isinstance(out["password"], Secret) and str(out["password"]) == secret
    assert secret not in repr(out) and out.redacted()["password"] == REDACTED

    # the secret went through the environment: not in argv, not in any log or event
    logs = "".join(p.read_text() for p in (runner.work_dir / "logs").glob("*.log"))
    assert secret not in logs
    assert all(secret not in e.message and secret not in json.dumps(dict(e.raw)) for e in runner.events)

    plan = runner.plan()
    assert not plan.has_changes

    runner.destroy()
    assert runner.state_list() == []
    assert any(e.type == "apply_complete" and e.raw["hook"]["action"] == "delete" for e in seen)
    assert not list((runner.work_dir / "pids").glob("*.json")), "terraform pid records are removed"


def test_plan_reports_changes(make_module: MakeModule, make_runner: MakeRunner) -> None:
    runner, _ = make_runner(make_module(BASIC), vars={"db_password": Secret("x" * 10)})
    runner.init()
    plan = runner.plan()
    assert (plan.add, plan.change, plan.destroy) == (2, 0, 0)
    assert dict(plan.changes) == {"terraform_data.a": "create", "terraform_data.b": "create"}


def test_failing_apply_names_resource_and_message(make_module: MakeModule,
                                                  make_runner: MakeRunner) -> None:
    module = make_module("""
        resource "terraform_data" "ok" {
          input = "fine"
        }
        resource "terraform_data" "bad" {
          input = terraform_data.ok.output
          lifecycle {
            postcondition {
              condition     = self.output == "something else"
              error_message = "bad must equal something else"
            }
          }
        }
    """)
    runner, seen = make_runner(module)
    runner.init()
    with pytest.raises(TerraformError) as ei:
        runner.apply()
    err = ei.value
    assert isinstance(err, TerraformRunError)
    assert err.resources == ["terraform_data.bad"]
    assert "bad must equal something else" in str(err)
    assert "Resource postcondition failed" in str(err)
    assert err.returncode == 1 and err.command[1] == "apply"
    assert any(e.type == "diagnostic" and e.level == "error" for e in seen)


def test_invalid_expression_is_reported_with_file(make_module: MakeModule,
                                                  make_runner: MakeRunner) -> None:
    runner, _ = make_runner(make_module("""
        resource "terraform_data" "x" {
          input = upper(42, "too many")
        }
    """))
    runner.init()
    with pytest.raises(TerraformError) as ei:
        runner.plan()
    assert "main.tf" in str(ei.value)
    assert "Invalid function argument" in str(ei.value) or "arguments" in str(ei.value)


def test_invalid_tfvars_names_the_file(make_module: MakeModule, make_runner: MakeRunner,
                                       tmp_path: Path) -> None:
    bad = tmp_path / "broken.tfvars"
    bad.write_text('greeting = "unterminated\n')
    runner, _ = make_runner(make_module(BASIC), var_files=[bad], vars={"db_password": Secret("x" * 10)})
    runner.init()
    with pytest.raises(TerraformError) as ei:
        runner.apply()
    assert "broken.tfvars" in str(ei.value)

    missing = tmp_path / "nope.tfvars"
    runner2, _ = make_runner(make_module(BASIC), var_files=[missing])
    with pytest.raises(ConfigError) as ci:
        runner2.plan()
    assert ci.value.file == str(missing)


def test_timeout_kills_terraform_process_group(make_module: MakeModule, make_runner: MakeRunner) -> None:
    marker = f"gameday-timeout-{uuid.uuid4().hex}"
    runner, seen = make_runner(make_module(f"""
        resource "terraform_data" "slow" {{
          provisioner "local-exec" {{
            command = "sleep 60 # {marker}"
          }}
        }}
    """), timeout_s=4.0)
    runner.init()
    t0 = time.monotonic()
    with pytest.raises(TimeoutExceeded):
        runner.apply()
    assert time.monotonic() - t0 < 15
    assert runner.last_pid is not None and not pgid_alive(runner.last_pid)
    assert _procs_with(marker) == [], "the provisioner's shell was killed with terraform"
    assert any(e.type == "timeout" for e in seen)


def test_state_lock_is_retried_then_max_retries(make_module: MakeModule, make_runner: MakeRunner,
                                                tmp_path: Path) -> None:
    module = make_module("""
        variable "hold" {
          type    = number
          default = 0
        }
        resource "terraform_data" "holder" {
          input = var.hold
          provisioner "local-exec" {
            command = "sleep ${var.hold}"
          }
        }
    """)
    work = tmp_path / "shared-work"
    holder, holder_events = make_runner(module, work_dir=work, vars={"hold": 6})
    holder.init()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            holder.apply()
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=hold)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not any(e.type == "apply_start" for e in holder_events) and time.monotonic() < deadline:
            time.sleep(0.05)
        # the lock is held now: a short-budget runner gives up with MaxRetriesExceeded...
        impatient, seen1 = make_runner(module, work_dir=work, lock_timeout_s=0, retry_attempts=2,
                                       retry_sleep_s=0.2, vars={"hold": 6})
        with pytest.raises(MaxRetriesExceeded) as ei:
            impatient.plan()
        assert ei.value.attempts == 2
        assert any(e.type == "retry" and "state lock" in e.message for e in seen1)
        # ...and a patient one retries until the holder is done
        patient, seen2 = make_runner(module, work_dir=work, lock_timeout_s=0, retry_attempts=15,
                                     retry_sleep_s=1.0, vars={"hold": 6})
        summary = patient.plan()
        assert any(e.type == "retry" for e in seen2)
        assert not summary.has_changes
    finally:
        t.join(60)
    assert not errors


def test_non_allow_listed_error_is_not_retried(make_module: MakeModule, make_runner: MakeRunner) -> None:
    runner, seen = make_runner(make_module("""
        resource "terraform_data" "x" {
          provisioner "local-exec" {
            command = "echo boom >&2; exit 3"
          }
        }
    """), retry_attempts=5, retry_sleep_s=0.1)
    runner.init()
    with pytest.raises(TerraformError):
        runner.apply()
    assert not any(e.type == "retry" for e in seen)
    assert sum(1 for e in seen if e.type == "command_start" and e.command == "apply") == 1


FLAKY_WAITER = """
variable "dir" { type = string }
resource "terraform_data" "first" {
  provisioner "local-exec" {
    command = "sh flaky.sh ${var.dir}/first 'timeout while waiting for state to become active'"
  }
}
resource "terraform_data" "second" {
  count      = 1
  depends_on = [terraform_data.first]
  provisioner "local-exec" {
    command = "sh flaky.sh ${var.dir}/second 'timeout while waiting for state to become ready'"
  }
}
output "done" { value = terraform_data.second[0].id }
"""
#: Fails once per flag file, printing what a provider waiter prints when its timeout is too short.
FLAKY_SH = '''test -e "$1" && exit 0
touch "$1"
echo "Error: $2 (last state: provisioning, timeout: 1s)"
exit 1
'''



def test_fast_waiters_untaint_and_reapply(make_module: MakeModule, make_runner: MakeRunner,
                                          tmp_path: Path) -> None:
    """Resources that fail creation with a waiter timeout are tainted; untaint + re-apply converges."""
    d = tmp_path / "flags"
    d.mkdir()
    runner, seen = make_runner(make_module(FLAKY_WAITER, **{"flaky.sh": FLAKY_SH}), vars={"dir": str(d)})
    runner.init()
    runner.apply(fast_waiters=True, max_rounds=4)
    rounds = [e for e in seen if e.type == "fast_waiter_round"]
    named = [("terraform_data.first" in e.message, "terraform_data.second[0]" in e.message) for e in rounds]
    assert named == [(True, False), (False, True)]
    assert [e.message for e in seen if e.type == "untaint"] == [
        "untainted terraform_data.first", "untainted terraform_data.second[0]"]
    state = json.loads(runner.state_file.read_text())
    assert all(i.get("status") != "tainted" for r in state["resources"] for i in r["instances"])
    assert runner.output()["done"]
    runner.destroy()


FLAKY_RULE = """
variable "dir" { type = string }
resource "terraform_data" "sg" {
  provisioner "local-exec" {
    command = "sh flaky.sh ${var.dir}/sg 'InvalidPermission.Duplicate: the specified rule already exists'"
  }
}
output "done" { value = terraform_data.sg.id }
"""


def test_fast_apply_replaces_resources_failing_with_a_known_moto_race(make_module: MakeModule,
                                                                       make_runner: MakeRunner,
                                                                       tmp_path: Path) -> None:
    """An allow-listed error taints the resource; the next round replaces it and the apply converges."""
    d = tmp_path / "flags"
    d.mkdir()
    runner, seen = make_runner(make_module(FLAKY_RULE, **{"flaky.sh": FLAKY_SH}), vars={"dir": str(d)})
    runner.init()
    runner.apply(fast_waiters=True, max_rounds=3)
    assert [e for e in seen if e.type == "retry" and "terraform_data.sg will be replaced" in e.message]
    assert runner.output()["done"]
    with pytest.raises(TerraformError):  # without the fast loop the same error is not retried
        other, _ = make_runner(make_module(FLAKY_RULE, **{"flaky.sh": FLAKY_SH}), vars={"dir": str(tmp_path)})
        other.init()
        other.apply()
    runner.destroy()


def test_fast_waiters_are_bounded(make_module: MakeModule, make_runner: MakeRunner,
                                  tmp_path: Path) -> None:
    d = tmp_path / "flags"
    d.mkdir()
    runner, _ = make_runner(make_module(FLAKY_WAITER, **{"flaky.sh": FLAKY_SH}), vars={"dir": str(d)})
    runner.init()
    with pytest.raises(MaxRetriesExceeded) as ei:
        runner.apply(fast_waiters=True, max_rounds=1)
    assert "timeout while waiting for state" in str(ei.value)
    # without fast_waiters the same error is a plain TerraformError naming the resource
    runner2, _ = make_runner(make_module(FLAKY_WAITER, **{"flaky.sh": FLAKY_SH}), vars={"dir": str(tmp_path)})
    runner2.init()
    with pytest.raises(TerraformError) as ti:
        runner2.apply()
    assert ti.value.resources == ["terraform_data.first"]


CLEANUP = """
variable "marker" { type = string }
variable "fail_destroy" {
  type    = bool
  default = false
}
resource "terraform_data" "made" {
  input = { marker = var.marker, fail = var.fail_destroy }
  provisioner "local-exec" {
    command = "touch ${self.input.marker}"
  }
  provisioner "local-exec" {
    when    = destroy
    command = self.input.fail ? "exit 7" : "rm -f ${self.input.marker}"
  }
}
resource "terraform_data" "slow" {
  depends_on = [terraform_data.made]
  provisioner "local-exec" {
    command = "sleep 45"
  }
}
"""


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_provisioned_destroys_after_interrupted_apply(make_module: MakeModule, make_runner: MakeRunner,
                                                      tmp_path: Path, exc_type: type[BaseException]) -> None:
    marker = tmp_path / "made.flag"
    fired: list[str] = []

    def interrupt_on_slow(ev: TfEvent) -> None:
        if ev.type == "apply_start" and ev.address == "terraform_data.slow" and not fired:
            fired.append(ev.address)
            assert marker.exists(), "the first resource was really created"
            raise exc_type("stop mid-apply")

    runner, _ = make_runner(make_module(CLEANUP), vars={"marker": str(marker)}, on_event=interrupt_on_slow,
                            interrupt_grace_s=20.0)
    t0 = time.monotonic()
    with pytest.raises(exc_type, match="stop mid-apply"), provisioned(runner):
        pytest.fail("apply must not complete")
    assert fired and time.monotonic() - t0 < 40
    assert not marker.exists(), "destroy ran (its destroy-time provisioner removed the marker)"
    assert runner.state_list() == []
    assert any(e.type == "interrupt" for e in runner.events)


def test_destroy_error_does_not_mask_original(make_module: MakeModule, make_runner: MakeRunner,
                                              tmp_path: Path) -> None:
    marker = tmp_path / "made.flag"
    module = make_module(CLEANUP.replace('command = "sleep 45"', 'command = "exit 0"'))
    runner, _ = make_runner(module, vars={"marker": str(marker), "fail_destroy": True})
    with pytest.raises(ValueError, match="test body failed") as ei, provisioned(runner) as outputs:
        assert outputs == {}
        raise ValueError("test body failed")
    notes = getattr(ei.value, "__notes__", [])
    assert any("terraform destroy also failed" in n for n in notes)
    assert "terraform_data.made" in runner.state_list(), "destroy really failed; state kept"


def test_terraform_missing(make_module: MakeModule, make_runner: MakeRunner,
                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAMEDAY_TERRAFORM", str(tmp_path / "no-such-terraform"))
    with pytest.raises(PrerequisiteMissing) as ei:
        make_runner(make_module(BASIC))
    assert "GAMEDAY_TERRAFORM" in str(ei.value) and "install terraform" in str(ei.value)


def test_unreachable_endpoint_fails_fast(make_module: MakeModule, make_runner: MakeRunner) -> None:
    """Real aws provider, endpoints overridden to a closed loopback port: bounded, clear failure."""
    port = free_port()  # nothing listens there
    module = make_module("""
        terraform {
          required_providers {
            aws = { source = "hashicorp/aws" }
          }
        }
        provider "aws" {
          region = "eu-south-1"
        }
        resource "aws_sqs_queue" "q" {
          name = "gameday-unreachable"
        }
    """)
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    runner, seen = make_runner(module, env=creds, retry_attempts=3, retry_sleep_s=0.1)
    path = runner.write_override("endpoints", f"""
provider "aws" {{
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  max_retries                 = 1
  endpoints {{
    sqs = "http://127.0.0.1:{port}"
    sts = "http://127.0.0.1:{port}"
  }}
}}
""")
    assert path.name == "endpoints_override.tf"
    runner.init()
    t0 = time.monotonic()
    with pytest.raises(TerraformEndpointUnreachable) as ei:
        runner.apply()
    assert time.monotonic() - t0 < 90
    err = ei.value
    assert isinstance(err, TerraformError) and isinstance(err, EndpointUnreachable)
    assert err.resources == ["aws_sqs_queue.q"]
    assert f"127.0.0.1:{port}" in str(err) and "connection refused" in str(err)
    assert not any(e.type == "retry" for e in seen), "connection refused is not on the retry allow-list"


def test_destroy_reruns_after_delete_waiter_timeout(make_module: MakeModule, make_runner: MakeRunner,
                                                    tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    module = make_module("""
        variable "dir" { type = string }
        resource "terraform_data" "db" {
          input = var.dir
          provisioner "local-exec" {
            when    = destroy
            command = "sh flaky.sh ${self.input}/db-gone 'timeout while waiting for resource to be gone'"
          }
        }
    """, **{"flaky.sh": FLAKY_SH})
    runner, seen = make_runner(module, vars={"dir": str(flags)})
    runner.init()
    runner.apply()
    runner.destroy()
    assert runner.state_list() == []
    assert sum(1 for e in seen if e.type == "command_start" and e.command == "destroy") == 2
    assert any(e.type == "fast_waiter_round" and e.command == "destroy" for e in seen)
