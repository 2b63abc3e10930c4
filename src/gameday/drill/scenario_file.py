"""Reading a scenario file: strict YAML, and JSON Schema errors a YAML author can act on.

Every problem is a ``ConfigError`` naming the file, the field path (``slos.rto_s.orders``) and the
fix. Game-day plans (``gameday.gameday.plan``) read their YAML the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError

from gameday.errors import ConfigError

# --- YAML ---------------------------------------------------------------------------------------

class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("scenario file not found", file=str(path),
                          hint="check the path, or list scenarios/ for the available names") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file: {exc.strerror}", file=str(path)) from exc
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML{where}: {problem}", file=str(path),
                          hint="fix the YAML syntax (indentation, ':' after keys, quotes)") from exc


# --- validation ---------------------------------------------------------------------------------

def field_path(parts: Any) -> str:
    return ".".join(str(p) for p in parts)


def schema_error(error: ValidationError, path: Path) -> ConfigError:
    """Turn the most relevant schema error into a message a YAML author can act on."""
    where = list(error.absolute_path)
    validator = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in schema.get("properties", {}))
        key = extra[0] if extra else "?"
        hint = f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
        return ConfigError(f"unknown key '{key}'", file=str(path), field=field_path([*where, key]),
                           hint=hint)
    if validator == "required":
        required: list[str] = list(error.validator_value) if isinstance(error.validator_value, list) else []
        missing = [r for r in required if isinstance(instance, dict) and r not in instance]
        key = missing[0] if missing else str(error.validator_value)
        return ConfigError("required field is missing", file=str(path), field=field_path([*where, key]),
                           hint=f"add '{key}' ({describe(schema.get('properties', {}).get(key, {}))})")
    if validator == "propertyNames":
        bad = error.instance
        return ConfigError(f"invalid key {bad!r}", file=str(path), field=field_path([*where, bad]),
                           hint="keys here are service names (lower-case, digits, '-') "
                                "or '*' for every service")
    field_name = field_path(where) or None
    if validator in ("type", "enum"):
        expected = describe(schema)
        return ConfigError(f"expected {expected}, got {show(instance)}", file=str(path), field=field_name,
                           hint=f"set it to {expected}")
    if validator == "pattern":
        return ConfigError(f"{show(instance)} does not have the expected form", file=str(path),
                           field=field_name, hint=_pattern_hint(where, str(error.validator_value)))
    return ConfigError(error.message, file=str(path), field=field_name,
                       hint=f"expected {describe(schema)}" if describe(schema) != "a value" else None)


def _pattern_hint(where: list[Any], pattern: str) -> str:
    if where and where[-1] == "experiment":
        return "name a file of experiments/: 'region-outage' or 'experiments/region-outage.json'"
    if where and where[-1] == "name":
        return "use lower-case letters, digits and '-', the same as the file name"
    return f"it must match the regular expression {pattern}"


def describe(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("title") == "seconds":
        return "a number of seconds > 0"
    if "$ref" in schema:
        ref = str(schema["$ref"]).rsplit("/", 1)[-1]
        return {"seconds": "a number of seconds > 0",
                "budgets": "a mapping service -> seconds or {derive: ..., margin_s: ...}",
                "derivation": "a mapping {derive: NAME or [NAMES], margin_s: seconds}",
                "derivation_name": "a derivation name",
                "regions": "a mapping service -> primary|recovery", "load": "a mapping of load settings",
                "slos": "a mapping of SLOs", "ratio": "a ratio between 0 and 1",
                "service": "a service name"}.get(ref, ref)
    types = schema.get("type")
    names = {"number": "a number", "integer": "an integer", "string": "a string", "object": "a mapping",
             "array": "a list", "boolean": "true/false", "null": "null"}
    if isinstance(types, list):
        return " or ".join(names.get(str(t), str(t)) for t in types)
    if isinstance(types, str):
        text = names.get(types, types)
        if "exclusiveMinimum" in schema:
            text += f" > {schema['exclusiveMinimum']}"
        elif "minimum" in schema:
            text += f" >= {schema['minimum']}"
        return text
    return "a value"


def show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if value is None:
        return "null (empty value)"
    if isinstance(value, str):
        return f"string {value!r}"
    return f"{type(value).__name__} {value!r}"


__all__ = ["StrictLoader", "describe", "field_path", "read_yaml", "schema_error", "show"]
