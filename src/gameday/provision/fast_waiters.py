"""The one allow-list of retryable terraform errors and the bounded fast-waiter round loop.

terratest style: an error is retried only when it matches an entry of ``ALLOW_LIST``, and each
entry says why a retry can succeed. The fast apply (provision/README.md, "Fast apply against the
sandbox") gives slow resources a short create timeout: the provider's client-side waiter is cut,
terraform taints the (complete) resource, we untaint it and apply again, at most ``max_rounds``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from gameday.errors import MaxRetriesExceeded, TerraformError
from gameday.provision.tfjson import Diagnostic, RunResult, TerraformRunError, TfEvent


class Action(Enum):
    """What makes the retry succeed."""

    RERUN = "rerun"  # run the same command again at once; nothing in state changed
    UNTAINT = "untaint"  # the resource is complete, only its waiter was cut: untaint, next round
    REPLACE = "replace"  # terraform tainted a broken resource: the next round replaces it


@dataclass(frozen=True)
class Retryable:
    """One allow-list entry: a regex over terraform's error text and why retrying helps."""

    pattern: str
    action: Action
    reason: str

    def matches(self, message: str) -> bool:
        return re.search(self.pattern, message) is not None


#: Every terraform error the harness retries. Anything else fails the command at once.
ALLOW_LIST: tuple[Retryable, ...] = (
    Retryable(r"text file busy", Action.RERUN,
              "a provider plugin binary was still being written when exec'd (concurrent init); "
              "the next attempt finds the finished file"),
    Retryable(r"Error acquiring the state lock|Error locking state", Action.RERUN,
              "another terraform run held the state lock; it is released when that run ends"),
    Retryable(r"connection reset by peer", Action.RERUN,
              "the local AWS endpoint dropped a connection mid-request (overloaded werkzeug); "
              "terraform calls are idempotent on re-run"),
    Retryable(r"timeout while waiting for state to become", Action.UNTAINT,
              "provider waiter outlived the short create timeout (fixed client-side delay); "
              "the resource exists"),
    Retryable(r"timeout while waiting for resource to be gone", Action.UNTAINT,
              "provider delete waiter outlived a short delete timeout; the next refresh sees it gone"),
    Retryable(r"context deadline exceeded", Action.UNTAINT,
              "the short create/delete timeout expired inside a provider waiter; only trusted when "
              "terraform tainted the resource (state proves the create call returned an id)"),
    # moto only: its security-group rule bookkeeping races with the provider's revoke of the
    # default egress rule (about 1 apply in 10 on a loaded machine)
    Retryable(r"revoking default IPv4 egress rule.*InvalidPermission\.NotFound", Action.REPLACE,
              "moto lost the default egress rule it had just created; the SG is tainted and "
              "replaced on the next round"),
    Retryable(r"InvalidPermission\.Duplicate", Action.REPLACE,
              "moto reported a rule it had not yet listed; the SG is tainted and replaced on the "
              "next round"),
)

MAX_ROUNDS = 6
MAX_DESTROY_ROUNDS = 4


def match(message: str, actions: Sequence[Action] = tuple(Action)) -> Retryable | None:
    """The first allow-list entry with one of ``actions`` whose pattern occurs in message."""
    for entry in ALLOW_LIST:
        if entry.action in actions and entry.matches(message):
            return entry
    return None


def rerun_allow_list() -> dict[str, str]:
    """``pattern -> reason`` of the RERUN entries (for ``util.retry.do_with_retry``)."""
    return {e.pattern: e.reason for e in ALLOW_LIST if e.action is Action.RERUN}


class UntrackedCreate(TerraformRunError):
    """A create was cut by its timeout before the API call returned: the object may exist in AWS
    with no id in state, so another round would create it twice (AWS answers AlreadyExists)."""


@dataclass
class RoundPlan:
    """How one failed round is handled: addresses to untaint, addresses replaced, the rest."""

    untaint: list[str]
    replace: list[tuple[Diagnostic, Retryable]]
    fatal: list[Diagnostic]


def plan_round(diagnostics: Sequence[Diagnostic]) -> RoundPlan:
    """Sort a failed apply's error diagnostics by what the allow-list says about them."""
    plan = RoundPlan([], [], [])
    for d in diagnostics:
        entry = match(f"{d.summary} {d.detail}", (Action.UNTAINT, Action.REPLACE))
        if entry is None or d.address is None:
            plan.fatal.append(d)
        elif entry.action is Action.UNTAINT:
            if d.address not in plan.untaint:
                plan.untaint.append(d.address)
        else:
            plan.replace.append((d, entry))
    return plan


def converge_apply(apply_once: Callable[[], RunResult], untaint_many: Callable[[Sequence[str]], list[str]],
                   emit: Callable[[TfEvent], None], *, max_rounds: int = MAX_ROUNDS) -> RunResult:
    """Apply until terraform succeeds, handling only allow-listed errors, at most max_rounds rounds.

    Raises the failing round's TerraformError for anything not on the allow-list, UntrackedCreate
    when a timed-out resource is not tainted in state, MaxRetriesExceeded after max_rounds.
    """
    last: TerraformError | None = None
    for rnd in range(1, max_rounds + 1):
        try:
            return apply_once()
        except TerraformError as exc:
            diags = exc.diagnostics if isinstance(exc, TerraformRunError) else []
            plan = plan_round(diags)
            # Untaint even when something else failed too: those resources exist and are fine,
            # and a later re-run must not replace them.
            untainted = untaint_many(plan.untaint)
            if plan.fatal or not (plan.untaint or plan.replace):
                raise
            untracked = [a for a in plan.untaint if a not in untainted]
            if untracked:
                raise UntrackedCreate(
                    exc.command, exc.returncode, exc.stderr, resources=untracked, diagnostics=diags,
                    summary=f"round {rnd}: {', '.join(untracked)} timed out but is not tainted in state: "
                            "the create call itself was cut, the object may exist untracked; "
                            "raise create_timeout") from exc
            for d, entry in plan.replace:
                emit(TfEvent("retry", f"round {rnd}: {d.address} will be replaced: {entry.reason}",
                             level="warn", command="apply"))
            if plan.untaint:
                emit(TfEvent("fast_waiter_round",
                             f"round {rnd}: untainted after waiter timeouts: {', '.join(plan.untaint)}",
                             level="warn", command="apply"))
            last = exc
    assert last is not None
    raise MaxRetriesExceeded("terraform apply (fast waiters)", max_rounds, last) from last


def converge_destroy(destroy_once: Callable[[], RunResult], emit: Callable[[TfEvent], None], *,
                     max_rounds: int = MAX_DESTROY_ROUNDS) -> RunResult:
    """Destroy, re-running (bounded) while every error is a cut delete waiter."""
    last: TerraformError | None = None
    for _ in range(max_rounds):
        try:
            return destroy_once()
        except TerraformError as exc:
            # delete diagnostics carry no address; re-running destroy needs none
            diags = exc.diagnostics if isinstance(exc, TerraformRunError) else []
            if not diags or any(match(f"{d.summary} {d.detail}", (Action.UNTAINT,)) is None for d in diags):
                raise
            last = exc
            emit(TfEvent("fast_waiter_round", "destroy: delete waiter timeouts; re-running destroy",
                         level="warn", command="destroy"))
    assert last is not None
    raise MaxRetriesExceeded("terraform destroy", max_rounds, last) from last
