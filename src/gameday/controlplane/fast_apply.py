"""Fast cold apply against the control plane: short create timeouts, then untaint and re-apply.

The provider's waiters sleep fixed client-side delays (ALB 2x30 s, RDS 60 s + 3 polls, SQS
~25 s) that no control-plane answer can shorten. moto creates synchronously, so in the sandbox
the stack sets ``create_timeout`` (e.g. "5s"): a waiter gives up, terraform marks the (already
complete) resource *tainted*, and we clear the taint and apply again until nothing is left.
See provision/README.md ("Fast apply against the sandbox") for the procedure these helpers serve.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

# A short create timeout that still covers the create API call itself (only the waiter is cut).
SANDBOX_CREATE_TIMEOUT = "5s"
MAX_ROUNDS = 6

# Errors that mean "the waiter was cut by our short timeout", not a real failure.
WAITER_TIMEOUT = re.compile(
    r"timeout while waiting for (resource to|state to become)|context deadline exceeded|"
    r"waiting for .* (create|creation|to become)",
    re.IGNORECASE,
)


def is_waiter_timeout(message: str) -> bool:
    """Whether a terraform diagnostic is only the cut-short waiter (safe to untaint and re-apply)."""
    return bool(WAITER_TIMEOUT.search(message))


def tainted_addresses(state: dict[str, Any]) -> list[str]:
    """Addresses of tainted resource instances in a ``terraform state pull`` document."""
    out = []
    for res in state.get("resources", []):
        if res.get("mode") != "managed":
            continue
        base = (f"{res['module']}." if res.get("module") else "") + f"{res['type']}.{res['name']}"
        for inst in res.get("instances", []):
            if inst.get("status") == "tainted":
                key = inst.get("index_key")
                suffix = (
                    "" if key is None else (f"[{json.dumps(key)}]" if isinstance(key, str) else f"[{key}]")
                )
                out.append(base + suffix)
    return out


def untaint_state(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Copy of the state with every taint cleared and ``serial`` bumped (for ``terraform state push``).

    One pull/push replaces one ``terraform untaint`` per resource (each takes ~1 s of state locking).
    """
    cleared = tainted_addresses(state)
    new = json.loads(json.dumps(state))
    for res in new.get("resources", []):
        for inst in res.get("instances", []):
            if inst.get("status") == "tainted":
                del inst["status"]
    new["serial"] = int(new.get("serial", 0)) + 1
    return new, cleared


class FastApplyError(Exception):
    """A round failed for a reason other than a cut-short waiter (message carries terraform's stderr)."""


def fast_apply(
    terraform: Callable[[list[str], str | None], tuple[int, str, str]],
    *,
    extra_args: Sequence[str] = (),
    max_rounds: int = MAX_ROUNDS,
) -> int:
    """Apply in rounds until terraform succeeds; return the number of rounds.

    ``terraform(args, stdin) -> (returncode, stdout, stderr)`` runs one terraform command in the
    working directory (the caller owns env, CLI config, timeouts). Each round: ``apply`` with
    ``create_timeout``/``delete_timeout`` set; on failure every error must be a waiter timeout,
    then the taints are cleared with one ``state pull`` / ``state push`` and the next round starts.
    """
    timeouts = [
        f"-var=create_timeout={SANDBOX_CREATE_TIMEOUT}",
        f"-var=delete_timeout={SANDBOX_CREATE_TIMEOUT}",
    ]
    for round_no in range(1, max_rounds + 1):
        rc, out, err = terraform(
            ["apply", "-auto-approve", "-input=false", "-no-color", *timeouts, *extra_args], None
        )
        if rc == 0:
            return round_no
        errors = err.split("Error: ")[1:]
        if not errors or not all(is_waiter_timeout(e) for e in errors):
            raise FastApplyError(f"terraform apply round {round_no} failed:\n{err[-4000:]}")
        rc, out, err = terraform(["state", "pull"], None)
        if rc != 0:
            raise FastApplyError(f"terraform state pull failed:\n{err[-2000:]}")
        new_state, cleared = untaint_state(json.loads(out))
        if not cleared:
            raise FastApplyError(f"round {round_no} timed out but left nothing tainted:\n{err[-2000:]}")
        rc, out, err = terraform(["state", "push", "-"], json.dumps(new_state))
        if rc != 0:
            raise FastApplyError(f"terraform state push failed:\n{err[-2000:]}")
    raise FastApplyError(f"stack did not converge within {max_rounds} apply rounds")


def fast_destroy(
    terraform: Callable[[list[str], str | None], tuple[int, str, str]],
    *,
    extra_args: Sequence[str] = (),
    max_rounds: int = 3,
) -> int:
    """Destroy, repeating while the only errors are cut-short delete waiters; return the rounds."""
    timeouts = [
        f"-var=create_timeout={SANDBOX_CREATE_TIMEOUT}",
        f"-var=delete_timeout={SANDBOX_CREATE_TIMEOUT}",
    ]
    for round_no in range(1, max_rounds + 1):
        rc, _out, err = terraform(
            ["destroy", "-auto-approve", "-input=false", "-no-color", *timeouts, *extra_args], None
        )
        if rc == 0:
            return round_no
        errors = err.split("Error: ")[1:]
        if not errors or not all(is_waiter_timeout(e) for e in errors):
            raise FastApplyError(f"terraform destroy round {round_no} failed:\n{err[-4000:]}")
    raise FastApplyError(f"destroy did not finish within {max_rounds} rounds")
