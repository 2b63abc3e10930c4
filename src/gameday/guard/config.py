"""The gameday config file: which AWS accounts and regions a run may touch, and how much of them.

Real AWS is never reached without one: the account allow-list is the only thing standing between
a typo in ``AWS_PROFILE`` and a chaos experiment in production. Every bad field is a one-line
``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from gameday import settings
from gameday.errors import ConfigError

ENV_CONFIG = "GAMEDAY_CONFIG"
DEFAULT_SCOPE_KEY = "gameday:stack"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["accounts", "regions", "scope_tag"],
    "properties": {
        "accounts": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "pattern": "^[0-9]{12}$"}},
        "regions": {"type": "array", "minItems": 1, "uniqueItems": True,
                    "items": {"type": "string", "pattern": "^[a-z]{2}(-gov)?-[a-z]+-[0-9]$"}},
        "scope_tag": {"type": "object", "additionalProperties": False, "required": ["value"],
                      "properties": {"key": {"type": "string", "minLength": 1},
                                     "value": {"type": "string", "minLength": 1}}},
        "blast_radius": {"type": "object", "additionalProperties": False, "properties": {
            "max_instances": {"type": "integer", "minimum": 1},
            "max_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
            "max_regions": {"type": "integer", "minimum": 1, "maximum": 1}}},
        "confirm_destructive": {"type": "boolean"},
        "apply_to": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"enum": ["aws", "sandbox"]}},
    },
}
EXAMPLE = ("accounts: ['111122223333']\nregions: [eu-south-1, eu-central-1]\n"
           "scope_tag: {key: 'gameday:stack', value: gameday}")


@dataclass(frozen=True)
class BlastRadius:
    """Per destructive action: at most ``max_instances`` instances, ``max_percent`` of any group, one region."""

    max_instances: int | None = None
    max_percent: float | None = None
    max_regions: int = 1


@dataclass(frozen=True)
class GuardConfig:
    """A parsed, validated config file; ``path`` is where it came from (named in every refusal)."""

    path: str
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    scope_key: str
    scope_value: str
    blast: BlastRadius = field(default_factory=BlastRadius)
    confirm_destructive: bool = True
    apply_to: tuple[str, ...] = ("aws",)

    def applies_to(self, target: str) -> bool:
        return target in self.apply_to


def default_config_path() -> Path:
    """``$GAMEDAY_CONFIG``, else ``~/.gameday/config.yaml``."""
    given = settings.path(ENV_CONFIG)
    return given.expanduser() if given else Path.home() / ".gameday" / "config.yaml"


def _schema_error(err: Any, path: str) -> ConfigError:
    where = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in err.schema.get("properties", {}))
        key = f"{where}.{extra[0]}" if where else extra[0]
        return ConfigError(f"unknown key '{extra[0]}'", file=path, field=key,
                           hint=f"allowed keys here: {', '.join(allowed)}")
    if err.validator == "required":
        missing = next(k for k in err.validator_value if k not in err.instance)
        key = f"{where}.{missing}" if where else missing
        return ConfigError("required field is missing", file=path, field=key,
                           hint=f"a minimal config: {EXAMPLE}".replace("\n", "; "))
    hints = {"accounts": "12-digit AWS account ids as strings, e.g. ['111122223333']",
             "regions": "region names such as eu-south-1", "max_regions": "a destructive action touches one region",
             "max_percent": "a number in (0, 100]", "max_instances": "a whole number >= 1",
             "apply_to": "a list of targets: aws, sandbox", "confirm_destructive": "true or false"}
    top = str(err.absolute_path[-1] if err.absolute_path and not isinstance(err.absolute_path[-1], int)
              else (err.absolute_path[0] if err.absolute_path else ""))
    return ConfigError(f"{err.message}", file=path, field=where or None,
                       hint=hints.get(top, hints.get(str(err.absolute_path[0]) if err.absolute_path else "",
                                                     "see docs/GUARDRAILS.md")))


def parse_config(data: Any, path: str) -> GuardConfig:
    """Validate ``data`` (the YAML document) against the schema; the first error becomes a ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("a gameday config must be a YAML mapping", file=path,
                          hint=f"a minimal config: {EXAMPLE}".replace("\n", "; "))
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        raise _schema_error(errors[0], path)
    br = data.get("blast_radius") or {}
    scope = data["scope_tag"]
    return GuardConfig(
        path=path, accounts=tuple(data["accounts"]), regions=tuple(data["regions"]),
        scope_key=str(scope.get("key", DEFAULT_SCOPE_KEY)), scope_value=str(scope["value"]),
        blast=BlastRadius(br.get("max_instances"), br.get("max_percent"), int(br.get("max_regions", 1))),
        confirm_destructive=bool(data.get("confirm_destructive", True)),
        apply_to=tuple(data.get("apply_to", ["aws"])))


def load_config(path: str | os.PathLike[str] | None = None, *, required: bool = False) -> GuardConfig | None:
    """The config at ``path`` (or the default); None when absent and not ``required``."""
    explicit = path is not None
    p = Path(path).expanduser() if path is not None else default_config_path()
    name = str(p)
    if not p.exists():
        if explicit or required:
            raise ConfigError("no gameday config file: real AWS needs an account and region allow-list",
                              file=name, field="--config" if explicit else None,
                              hint=f"create it with: {EXAMPLE}".replace("\n", "; "))
        return None
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the config file ({getattr(exc, 'strerror', None) or exc})",
                          file=name, hint="make it a readable UTF-8 YAML file") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}: {getattr(exc, 'problem', None) or exc}", file=name,
                          hint="fix the YAML syntax (indentation, ':' after keys, quotes)") from exc
    return parse_config(data, name)
