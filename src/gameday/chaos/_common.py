"""Helpers shared by our Chaos Toolkit activities: errors, region-scoped AWS clients, config lookups.

Activities run inside ``chaos run`` (one process per experiment), so everything here is plain
functions over the experiment's ``configuration`` / ``secrets`` mappings; no global state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from chaosaws import aws_client
from chaoslib.exceptions import FailedActivity

from gameday.errors import GamedayError
from gameday.util.redact import Secret, redact

GA_API_REGION = "us-west-2"  # the Global Accelerator API exists only in us-west-2


class ActivityFailed(GamedayError, FailedActivity):
    """Raised by an activity whose fault or check could not be carried out.

    Deriving from chaoslib's FailedActivity makes ``chaos run`` record it as a failed activity
    (no traceback); deriving from GamedayError keeps the harness's single error root.
    """


def conf(configuration: Mapping[str, Any] | None) -> dict[str, Any]:
    """A mutable copy of the configuration (activities must not change the caller's)."""
    return dict(configuration or {})


def region_of(configuration: Mapping[str, Any] | None, region: str | None = None) -> str:
    """The region an activity works in: the explicit one, else ``aws_region`` of the configuration."""
    if region:
        return region
    value = (configuration or {}).get("aws_region")
    if value:
        return str(value)
    env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if env:
        return env
    raise ActivityFailed("no AWS region: set the configuration key 'aws_region' or AWS_REGION")


def client(service: str, configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None,
           region: str | None = None) -> Any:
    """A boto3 client through chaosaws (so AWS_ENDPOINT_URL / profiles / roles work unchanged)."""
    cfg = conf(configuration)
    cfg["aws_region"] = region_of(configuration, region)
    return aws_client(service, cfg, dict(secrets) if secrets else None)


def json_value(value: Any, name: str) -> Any:
    """Accept a configuration value given either as JSON text (env) or already decoded."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ActivityFailed(f"configuration '{name}' is not valid JSON: {exc}") from exc
    return value


def db_password(secrets: Mapping[str, Any] | None) -> Secret:
    """The database password from ``secrets`` (scoped ``{"db_password"}`` or ``{"gameday": {...}}``)."""
    s = dict(secrets or {})
    value = s.get("db_password")
    if value is None and isinstance(s.get("gameday"), Mapping):
        value = s["gameday"].get("db_password")
    if value is None:
        raise ActivityFailed("no database password: declare \"secrets\": [\"gameday\"] on the activity and "
                             "set secrets.gameday.db_password (e.g. {\"type\": \"env\", "
                             "\"key\": \"GAMEDAY_DB_PASSWORD\"})")
    return Secret(str(value))


def scrub(text: str, *secret_values: str) -> str:
    """Text with every known secret value masked (used on driver error messages)."""
    return str(redact(text, tuple(v for v in secret_values if v)))
