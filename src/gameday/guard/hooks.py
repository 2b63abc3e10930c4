"""The one guard every path that starts ``chaos run`` goes through (drills, ``gameday experiment run``).

It loads the config, checks credentials, identity and regions, previews the experiment with
read-only calls, applies scope and blast radius, and asks for consent; it returns the preview,
which ``--dry-run`` prints instead of running anything.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from gameday import settings
from gameday.guard.config import load_config
from gameday.guard.guardrails import ENV_CONFIRM, NO_IMDS, aws_client, check_plan, confirm, guard_applies, preflight
from gameday.guard.plan import DESTRUCTIVE, PlannedAction, load_experiment, preview

ENV_CONFIG_PATH = "GAMEDAY_CONFIG"


def target_of(env: MutableMapping[str, str]) -> str:
    """A run aimed at a local endpoint is the sandbox; anything else is real AWS."""
    url = env.get("AWS_ENDPOINT_URL", "")
    return "sandbox" if url.startswith(("http://127.0.0.1", "http://localhost")) else "aws"


def guard_experiment(path: Path, env: MutableMapping[str, str], *, target: str | None = None, yes: bool = False,
                     config_path: str | None = None, dry_run: bool = False) -> list[PlannedAction] | None:
    """Refuse (GuardrailRefused / ConfigError) or return the preview; None when no guard applies.

    ``env`` is the environment ``chaos run`` will get; instance metadata is switched off in it.
    """
    env.update(NO_IMDS)
    target = target or target_of(env)
    cfg = load_config(config_path or settings.text(ENV_CONFIG_PATH, env), required=target == "aws")
    applies = cfg is not None and guard_applies(cfg, target)
    if not applies and not dry_run:
        return None
    experiment = load_experiment(Path(path))
    what = f"experiment {Path(path).stem} on {target}"
    ident = None
    if applies:
        assert cfg is not None
        regions = [r for n in ("GAMEDAY_PRIMARY_REGION", "GAMEDAY_RECOVERY_REGION") if (r := settings.text(n, env))]
        ident = preflight(cfg, dict(env), regions, what)
    clients: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in clients:
            clients[(service, region)] = aws_client(dict(env), service, region)
        return clients[(service, region)]

    plan = preview(experiment, dict(env), client)
    if applies:
        assert cfg is not None and ident is not None
        check_plan(cfg, plan, what)
        if not dry_run and any(a.effect == DESTRUCTIVE for a in plan):
            confirm(cfg, ident, what, yes=yes, env=env)
            env[ENV_CONFIRM] = ident.account  # consent given: chaos run's own guard (the runner's) must not ask again
    return plan
