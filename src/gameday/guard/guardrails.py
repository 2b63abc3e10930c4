"""Checks that run before anything changes an AWS account: credentials, identity, regions, consent.

Order matters: credentials are resolved first (never from instance metadata: a laptop or CI
runner must not silently pick up a role from an EC2 host), then STS ``GetCallerIdentity``
names the account, which must be on the config's allow-list, then regions, then the plan's
scope and blast radius (``check_plan``), and last the human's confirmation naming the account.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from gameday import settings
from gameday.errors import ConfigError
from gameday.guard.config import GuardConfig

#: botocore: "AWS_EC2_METADATA_DISABLED ... If set to true, disables the use of the EC2 instance metadata
#: service to obtain credentials" (https://docs.aws.amazon.com/sdkref/latest/guide/feature-imds-client.html)
NO_IMDS = {"AWS_EC2_METADATA_DISABLED": "true"}
ENV_CONFIRM = "GAMEDAY_CONFIRM_ACCOUNT"
_ENV_LOCK = threading.Lock()


class GuardrailRefused(ConfigError):
    """Raised when a guardrail refuses a run (account, region, scope, blast radius, confirmation)."""


@dataclass(frozen=True)
class Identity:
    """Who the credentials are (STS GetCallerIdentity)."""

    account: str
    arn: str


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """boto3 reads credentials and ``AWS_ENDPOINT_URL`` from os.environ: use exactly ``env`` meanwhile."""
    with _ENV_LOCK:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        os.environ.update(NO_IMDS)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def session(env: Mapping[str, str]) -> Any:
    """A boto3 session over ``env`` with credentials resolved now (clear error when there are none)."""
    import boto3
    import botocore.exceptions

    with environment(env):
        try:
            s = boto3.Session()
            creds = s.get_credentials()
        except botocore.exceptions.BotoCoreError as exc:  # a broken profile, config file, SSO cache
            raise ConfigError(f"AWS credentials cannot be resolved: {exc}", field="AWS credentials",
                              hint="check AWS_PROFILE and ~/.aws/config (instance metadata is not used)") from exc
        if creds is None:
            raise ConfigError("no AWS credentials found", field="AWS credentials",
                              hint="export AWS_PROFILE=<profile> (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); "
                                   "gameday never reads instance metadata")
    return s


def aws_client(env: Mapping[str, str], service: str, region: str) -> Any:
    """A boto3 client for ``service`` in ``region`` built under ``env`` (endpoint and credentials)."""
    s = session(env)
    with environment(env):
        return s.client(service, region_name=region)


def caller_identity(env: Mapping[str, str], region: str) -> Identity:
    """STS GetCallerIdentity with the run's credentials; any failure is a refusal, never a guess."""
    import botocore.exceptions

    sts = aws_client(env, "sts", region)
    try:
        with environment(env):
            ident = sts.get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ConfigError(f"STS GetCallerIdentity failed: {exc}", field="AWS credentials",
                          hint="refresh the credentials (aws sso login / new keys) and try again") from exc
    return Identity(account=str(ident["Account"]), arn=str(ident.get("Arn", "")))


def check_account(cfg: GuardConfig, ident: Identity) -> None:
    if ident.account not in cfg.accounts:
        raise GuardrailRefused(f"account {ident.account} ({ident.arn}) is not on the allow-list "
                               f"({', '.join(cfg.accounts)}): refused", file=cfg.path, field="accounts",
                               hint="switch credentials, or add the account if it is meant for game days")


def check_regions(cfg: GuardConfig, regions: Iterable[str], what: str) -> None:
    bad = sorted({r for r in regions if r not in cfg.regions})
    if bad:
        raise GuardrailRefused(f"{what} uses region(s) {', '.join(bad)}, not on the allow-list "
                               f"({', '.join(cfg.regions)}): refused", file=cfg.path, field="regions",
                               hint="add the region to 'regions' or change the target's regions")


def confirm(cfg: GuardConfig, ident: Identity, what: str, *, yes: bool, env: Mapping[str, str] | None = None,
            stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
    """A destructive run needs --yes, ``$GAMEDAY_CONFIRM_ACCOUNT=<account>`` or the account typed in."""
    if not cfg.confirm_destructive or yes:
        return
    given = settings.text(ENV_CONFIRM, env or None) or ""
    if given:
        if given != ident.account:
            raise GuardrailRefused(f"${ENV_CONFIRM} is {given}, but the credentials are account {ident.account}: "
                                   "refused", field=ENV_CONFIRM, hint=f"set it to {ident.account} to confirm")
        return
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if stdin is None or not stdin.isatty():
        raise GuardrailRefused(f"{what} changes account {ident.account} and needs confirmation: refused",
                               field="--yes", hint=f"pass --yes (or set {ENV_CONFIRM}={ident.account}, or type "
                                                   "the account id at the prompt on a terminal)")
    stderr.write(f"{what} will change AWS account {ident.account} ({ident.arn}).\n"
                 f"Type the account id to go on: ")
    stderr.flush()
    answer = stdin.readline().strip()
    if answer != ident.account:
        raise GuardrailRefused(f"confirmation {answer!r} does not name account {ident.account}: refused",
                               field="confirmation", hint="type the 12-digit account id exactly, or pass --yes")


def guard_applies(cfg: GuardConfig | None, target: str) -> bool:
    """Real AWS: always (a missing config is refused by ``load_config(required=True)``); sandbox: on request."""
    if target == "aws":
        return True
    return cfg is not None and cfg.applies_to(target)


def preflight(cfg: GuardConfig, env: Mapping[str, str], regions: Iterable[str], what: str) -> Identity:
    """Credentials, identity on the allow-list, regions on the allow-list; returns the identity."""
    regions = list(regions)
    check_regions(cfg, regions, what)
    ident = caller_identity(env, regions[0] if regions else cfg.regions[0])
    check_account(cfg, ident)
    return ident


def check_plan(cfg: GuardConfig, plan: list[Any], what: str) -> None:
    """Every destructive action: previewable, allowed regions (at most max_regions), only resources
    carrying the scope tag, and within the blast radius (instances and share of any group)."""
    from gameday.guard.plan import DESTRUCTIVE

    br = cfg.blast
    for a in plan:
        if a.effect != DESTRUCTIVE:
            continue
        label = f"{what}: action '{a.name}' ({a.func})"
        if a.unresolved:
            raise GuardrailRefused(f"{label} cannot be previewed ({a.unresolved}): refused", file=cfg.path,
                                   field="scope_tag", hint="guardrails only allow actions whose targets they "
                                                           "can resolve; run it against the sandbox instead")
        check_regions(cfg, a.regions, label)
        if len(a.regions) > br.max_regions:
            raise GuardrailRefused(f"{label} touches {len(a.regions)} regions, more than {br.max_regions}: "
                                   "refused", file=cfg.path, field="blast_radius.max_regions",
                                   hint="split the fault into one action per region")
        for r in a.resources:
            if r.kind.startswith("sandbox:"):
                continue  # a sandbox-only process, not an AWS resource (the activity refuses non-loopback)
            if r.tags.get(cfg.scope_key) != cfg.scope_value:
                raise GuardrailRefused(
                    f"{label} would touch {r.kind} {r.id} in {r.region}, which lacks the scope tag "
                    f"{cfg.scope_key}={cfg.scope_value}: refused", file=cfg.path, field="scope_tag",
                    hint="narrow the action's targets to the game-day stack, or tag the resource")
        counts_instances = any(r.kind == "ec2:instance" for r in a.resources) or \
            any(r.kind == "autoscaling:group" for r in a.resources)
        if br.max_instances is not None and counts_instances and a.touched > br.max_instances:
            raise GuardrailRefused(f"{label} would stop {a.touched} instances, more than max_instances "
                                   f"{br.max_instances}: refused", file=cfg.path, field="blast_radius.max_instances",
                                   hint="lower the action's count or raise the limit")
        if br.max_percent is not None:
            for group, (n, size) in sorted(a.group_share.items()):
                share = 100.0 * n / size if size else 100.0
                if n and share > br.max_percent + 1e-9:
                    raise GuardrailRefused(
                        f"{label} would stop {n} of {size} instances ({share:.0f} %) of {group}, more than "
                        f"max_percent {br.max_percent:g}: refused", file=cfg.path,
                        field="blast_radius.max_percent", hint="lower the action's count or raise the limit")
