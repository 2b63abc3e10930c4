"""The one allow-list of retryable terraform errors and the bounded fast-waiter rounds (real terraform)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gameday.errors import MaxRetriesExceeded, TerraformError
from gameday.provision import fast_waiters
from gameday.provision.fast_waiters import ALLOW_LIST, Action, UntrackedCreate, match
from gameday.provision.runner import TerraformRunError, TerraformRunner, TfEvent

MakeRunner = Callable[..., tuple[TerraformRunner, list[TfEvent]]]
MakeModule = Callable[..., Path]

#: Fails once per flag file with the given text (what a provider prints), then succeeds.
FLAKY_SH = '''test -e "$1" && exit 0
touch "$1"
echo "Error: $2"
exit 1
'''


def test_every_entry_has_a_reason_and_a_valid_regex() -> None:
    assert ALLOW_LIST
    for entry in ALLOW_LIST:
        assert len(entry.reason) > 20, entry
        assert not entry.matches(""), entry  # nothing matches everything


@pytest.mark.parametrize(("message", "action"), [
    # provider 5.x wording, copied from sandbox apply logs
    ("waiting for ELBv2 Load Balancer (arn:...) create: timeout while waiting for state to become "
     "'active' (last state: 'provisioning', timeout: 5s)", Action.UNTAINT),
    ("waiting for RDS DB Instance (gameday-db) delete: timeout while waiting for resource to be gone "
     "(last state: 'deleting', timeout: 5s)", Action.UNTAINT),
    ("waiting for SQS Queue (https://...) attributes create: context deadline exceeded", Action.UNTAINT),
    ("Failed to install provider: text file busy", Action.RERUN),
    ("Error acquiring the state lock", Action.RERUN),
    ("read tcp 127.0.0.1:50000->127.0.0.1:4566: read: connection reset by peer", Action.RERUN),
    ("revoking default IPv4 egress rule for Security Group (sg-1): InvalidPermission.NotFound", Action.REPLACE),
    ("InvalidPermission.Duplicate: the specified rule already exists", Action.REPLACE),
])
def test_allow_listed_errors(message: str, action: Action) -> None:
    entry = match(message)
    assert entry is not None and entry.action is action


@pytest.mark.parametrize("message", [
    # AWS is right: the group exists; retrying blindly would hide a create that state lost
    "creating Global Accelerator Endpoint Group: EndpointGroupAlreadyExistsException: listener already "
    "has an endpoint group in eu-south-1",
    "creating ELBv2 application Load Balancer (web): DuplicateLoadBalancerName",
    "InvalidParameterValue: the subnet does not exist",
    "timeout while waiting for plugin to start",
    "Unsupported argument",
])
def test_other_errors_are_not_retried(message: str) -> None:
    assert match(message) is None


def test_rerun_list_is_the_rerun_entries_only() -> None:
    rerun = fast_waiters.rerun_allow_list()
    assert set(rerun) == {e.pattern for e in ALLOW_LIST if e.action is Action.RERUN}
    assert not any(match(p, (Action.UNTAINT, Action.REPLACE)) for p in ("text file busy",))


ALWAYS_NEW_WAITER = """
variable "dir" { type = string }
resource "terraform_data" "a" {
  provisioner "local-exec" {
    command = "sh flaky.sh ${var.dir}/a 'timeout while waiting for state to become active'"
  }
}
resource "terraform_data" "b" {
  depends_on = [terraform_data.a]
  provisioner "local-exec" {
    command = "sh flaky.sh ${var.dir}/b 'timeout while waiting for state to become active'"
  }
}
resource "terraform_data" "c" {
  depends_on = [terraform_data.b]
}
"""


def _applies(seen: list[TfEvent]) -> int:
    return sum(1 for e in seen if e.type == "command_start" and e.command == "apply")


def test_rounds_are_bounded_and_the_error_carries_command_exit_code_and_stderr(
        make_module: MakeModule, make_runner: MakeRunner, tmp_path: Path) -> None:
    """Each round times out one more resource; two rounds are not enough for two of them plus c."""
    flags = tmp_path / "flags"
    flags.mkdir()
    runner, seen = make_runner(make_module(ALWAYS_NEW_WAITER, **{"flaky.sh": FLAKY_SH}), vars={"dir": str(flags)})
    runner.init()
    with pytest.raises(MaxRetriesExceeded) as ei:
        runner.apply(fast_waiters=True, max_rounds=2)
    assert _applies(seen) == 2
    err = ei.value
    assert err.attempts == 2 and isinstance(err.last_error, TerraformRunError)
    assert err.command is not None and err.command[:2] == [str(runner.terraform), "apply"]
    assert err.returncode == 1
    assert err.stderr is not None and "timeout while waiting for state to become active" in err.stderr
    # a third round converges (a and b were untainted, not replaced)
    runner.apply(fast_waiters=True, max_rounds=1)
    assert sorted(runner.state_list()) == ["terraform_data.a", "terraform_data.b", "terraform_data.c"]
    runner.destroy()


def test_an_error_off_the_list_stops_at_the_first_round(make_module: MakeModule, make_runner: MakeRunner,
                                                       tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    module = make_module("""
        variable "dir" { type = string }
        resource "terraform_data" "group" {
          provisioner "local-exec" {
            command = "sh flaky.sh ${var.dir}/g 'EndpointGroupAlreadyExistsException: listener has a group'"
          }
        }
    """, **{"flaky.sh": FLAKY_SH})
    runner, seen = make_runner(module, vars={"dir": str(flags)})
    runner.init()
    with pytest.raises(TerraformError) as ei:
        runner.apply(fast_waiters=True, max_rounds=5)
    assert not isinstance(ei.value, MaxRetriesExceeded)
    assert "EndpointGroupAlreadyExistsException" in ei.value.stderr
    assert _applies(seen) == 1
    runner.destroy()


def test_a_timeout_on_a_resource_absent_from_state_is_an_untracked_create(
        make_module: MakeModule, make_runner: MakeRunner) -> None:
    """A create cut before its API call returned leaves no id in state: re-applying would create the
    object twice, so the loop stops with UntrackedCreate instead of running more rounds."""
    module = make_module("""
        variable "created" { default = false }
        resource "terraform_data" "cut" {
          lifecycle {
            precondition {
              condition     = var.created
              error_message = "operation error Global Accelerator: CreateEndpointGroup, context deadline exceeded"
            }
          }
        }
    """)
    runner, seen = make_runner(module)
    runner.init()
    with pytest.raises(UntrackedCreate) as ei:
        runner.apply(fast_waiters=True, max_rounds=4)
    assert ei.value.resources == ["terraform_data.cut"]
    assert "not tainted in state" in str(ei.value)
    assert _applies(seen) == 1
