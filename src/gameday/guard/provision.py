"""Guardrails before terraform: inputs first (nothing started on bad input), then identity and consent."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError
from gameday.guard.config import load_config
from gameday.guard.guardrails import NO_IMDS, confirm, guard_applies, preflight

_DEFAULT = re.compile(r'variable\s+"(primary_region|recovery_region)"\s*\{[^}]*?default\s*=\s*"([^"]+)"', re.S)


def check_provision_inputs(args: argparse.Namespace) -> None:
    """Var files exist and parse (the sandbox's are checked like ``sandbox up``'s): before any process starts."""
    files = list(getattr(args, "var_file", []) or [])
    for f in files:
        if not Path(f).is_file():
            raise ConfigError("variables file does not exist", file=f, field="--var-file",
                              hint="pass an existing .tfvars file")
    if files:
        from gameday.provision.sandbox import read_tfvars

        for f in files:
            if not f.endswith(".json"):
                read_tfvars(Path(f), f)   # HCL syntax errors name the file, line and variable
    timeout = getattr(args, "timeout", None)
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout {timeout:g} must be positive", field="--timeout", hint="e.g. --timeout 1800")


def stack_regions(args: argparse.Namespace) -> list[str]:
    """The two regions terraform would use: the var files' values, else the module's defaults."""
    from gameday.provision import module_dir
    from gameday.provision.sandbox import read_tfvars

    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(module_dir().glob("variables.tf")))
    regions = dict(_DEFAULT.findall(text))
    for f in getattr(args, "var_file", []) or []:
        if f.endswith(".json"):
            import json

            data = json.loads(Path(f).read_text(encoding="utf-8"))
            regions.update({k: str(v) for k, v in data.items() if k in ("primary_region", "recovery_region")})
        else:
            for k, (v, _line) in read_tfvars(Path(f), f).items():
                if k in ("primary_region", "recovery_region"):
                    regions[k] = str(v)
    return [regions[k] for k in ("primary_region", "recovery_region") if k in regions]


def guard_provision(args: argparse.Namespace, *, endpoint_url: str | None = None,
                    extra_env: dict[str, str] | None = None) -> Any:
    """``provision up``: refuse before terraform unless the account, regions and consent are in order.

    Real AWS always; the sandbox only when the config lists it in ``apply_to`` (then its moto STS
    answers for account 123456789012). Returns the identity, or None when no guard applies.
    """
    target = args.target
    cfg = load_config(getattr(args, "config", None), required=target == "aws")
    if cfg is None or not guard_applies(cfg, target):
        return None
    env = dict(os.environ)
    env.update(extra_env or {})
    env.update(NO_IMDS)
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    what = f"provision up --target {target}"
    ident = preflight(cfg, env, stack_regions(args), what)
    confirm(cfg, ident, what, yes=bool(getattr(args, "yes", False)), env=env)
    return ident
