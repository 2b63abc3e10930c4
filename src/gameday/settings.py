"""Every ``GAMEDAY_*`` environment variable, declared once: name, type, default, doc and readers.

Code in ``src`` reads them through the accessors here (``text``, ``integer``, ``number``, ``flag``,
``path``, ``paths``), so a bad value fails the same way everywhere: a ``ConfigError`` naming the
variable, the value and what is accepted. An empty value counts as unset; values are stripped
(secrets are used verbatim).

Variables read only by Chaos Toolkit (``type: env`` in experiments/*.json) or by the locustfile
(its own locust process) are declared too, with where they are read; tests/util/test_settings.py fails
when a ``GAMEDAY_*`` name appears in the code but not here, or here but nowhere else.
docs/SETTINGS.md is generated from these declarations: ``python -m gameday.settings > docs/SETTINGS.md``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gameday.errors import ConfigError

KINDS = ("str", "int", "float", "bool", "path", "paths", "choice")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
Value = str | int | float | bool | None


@dataclass(frozen=True)
class Setting:
    """One environment variable. ``default`` None: unset means what ``unset`` says (the reader decides)."""

    name: str
    kind: str
    default: Value
    doc: str
    readers: tuple[str, ...]  # files (globs) that read or set it by name
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    unset: str = ""
    secret: bool = False


def _s(name: str, kind: str, default: Value, doc: str, *readers: str, **kw: object) -> Setting:
    return Setting(name, kind, default, doc, readers, **kw)  # type: ignore[arg-type]


_EXP = "experiments/*.json"
_LOCUST = "loadtests/locustfile.py"
_DECLARED: tuple[Setting, ...] = (
    # where things are: gameday home, state, config, tools
    _s("GAMEDAY_HOME", "path", "~/.gameday", "gameday home: snapshots, history, AWS undo logs",
       "src/gameday/settings.py"),
    _s("GAMEDAY_STATE_DIR", "path", None, "root of provisioned systems' state: sandboxes/NAME/ and aws/",
       "src/gameday/settings.py", unset="the gameday home"),
    _s("GAMEDAY_CONFIG", "path", None, "gameday config (allow-lists, scope tag, blast radius)",
       "src/gameday/guard/config.py", "src/gameday/guard/hooks.py",
       unset="~/.gameday/config.yaml (an absent default file is not an error)"),
    _s("GAMEDAY_TERRAFORM", "path", None, "terraform binary", "src/gameday/provision/prereqs.py",
       "src/gameday/sandbox/snapshot.py", unset="`terraform` on PATH"),
    _s("GAMEDAY_PROMETHEUS", "path", None, "prometheus binary (>= 2.37), one per sandbox region",
       "src/gameday/provision/prereqs.py", unset="`prometheus` on PATH"),
    _s("GAMEDAY_PROMTOOL", "path", None, "promtool binary (checks the alert rules)",
       "src/gameday/provision/prereqs.py", unset="beside the prometheus found, else PATH"),
    _s("GAMEDAY_HAPROXY", "path", None, "haproxy binary (>= 2.4)", "src/gameday/provision/prereqs.py",
       unset="`haproxy` on PATH, else /usr/sbin/haproxy"),
    _s("GAMEDAY_PG_BIN", "path", None, "PostgreSQL bin directory (>= 14)", "src/gameday/provision/prereqs.py",
       unset="PATH, then the newest /usr/lib/postgresql/VERSION/bin"),
    _s("GAMEDAY_UNPRIVILEGED_USER", "str", "postgres", "user PostgreSQL runs as when gameday runs as root",
       "src/gameday/util/procs.py"),
    _s("GAMEDAY_TF_MODULE", "path", None, "terraform root module the sandbox applies",
       "src/gameday/provision/__init__.py", unset="gameday's own provision/terraform"),
    _s("GAMEDAY_TF_PLUGIN_MIRROR", "path", None, "terraform provider filesystem mirror (authoritative)",
       "src/gameday/provision/mirror.py", unset="the CLI config's mirror, well-known folders, the registry"),
    _s("GAMEDAY_ALLURE_CLI", "path", None, "another allure cli.js for `gameday report`",
       "src/gameday/allure_html.py", unset="the repo's node_modules"),
    _s("GAMEDAY_EXPERIMENTS_DIR", "path", None, "experiments folder", "src/gameday/drill/runner.py",
       "src/gameday/guard/experiment_cli.py", unset="gameday's own experiments/"),
    _s("GAMEDAY_LOCUSTFILE", "path", None, "locustfile the load runner starts", "src/gameday/load/runner.py",
       unset="gameday's own loadtests/locustfile.py"),
    _s("GAMEDAY_HISTORY_URL", "str", None, "history database URL (SQLAlchemy)", "src/gameday/gameday/cli.py",
       "src/gameday/gameday/engine.py", unset="the plan's history.url, else SQLite under the gameday home"),
    # snapshots
    _s("GAMEDAY_SNAPSHOTS", "bool", True, "reuse sandbox snapshots (false: every up is a cold apply)",
       "src/gameday/sandbox/snapshot.py"),
    _s("GAMEDAY_SNAPSHOT_MAX_MB", "float", 2048, "snapshot folder size bound (MB)", "src/gameday/sandbox/snapshot.py",
       minimum=0),
    _s("GAMEDAY_SNAPSHOT_MAX_COUNT", "int", 8, "snapshot count bound", "src/gameday/sandbox/snapshot.py", minimum=0),
    # safety
    _s("GAMEDAY_CONFIRM_ACCOUNT", "str", None, "confirms destructive runs against this AWS account id",
       "src/gameday/guard/guardrails.py", unset="--yes or the account typed in"),
    _s("GAMEDAY_UNDO_DIR", "path", None, "undo-log folder of a plain `chaos run`", "src/gameday/safety/undolog.py",
       unset="by endpoint: the sandbox's, else GAMEDAY_HOME/undo/aws"),
    _s("GAMEDAY_UNDO_LOGS", "paths", None, "undo-log files this process appends to (os.pathsep list)",
       "src/gameday/safety/undolog.py", unset="a new file in the undo dir"),
    # pytest plugin (drills)
    _s("GAMEDAY_TARGET", "choice", "sandbox", "default of --target", "src/gameday/pytest_plugin.py",
       choices=("sandbox", "aws")),
    _s("GAMEDAY_TIMING", "choice", "fast", "default of --timing", "src/gameday/pytest_plugin.py",
       choices=("fast", "aws")),
    _s("GAMEDAY_ROUTING_MODE", "choice", "global_accelerator", "default of --routing-mode",
       "src/gameday/pytest_plugin.py", choices=("global_accelerator", "route53")),
    _s("GAMEDAY_REUSE_SANDBOX", "path", None, "default of --reuse-sandbox (a running sandbox's state dir)",
       "src/gameday/pytest_plugin.py", unset="a fresh sandbox per worker"),
    _s("GAMEDAY_SANDBOX_VAR_FILES", "paths", None, "default of --sandbox-var-file (os.pathsep list)",
       "src/gameday/pytest_plugin.py", unset="none"),
    _s("GAMEDAY_LOAD_WORKERS", "int", 0, "locust workers per load run (0: one locust process); "
       "--load-workers sets it", "src/gameday/load/runner.py", "src/gameday/pytest_plugin.py"),
    # experiments (Chaos Toolkit configuration, built by gameday.chaos.config)
    _s("GAMEDAY_DB_PASSWORD", "str", None, "database password (never logged)", "src/gameday/app/config.py",
       "src/gameday/provision/cli.py", "src/gameday/gameday/engine.py",
       "src/gameday/pytest_plugin.py", _EXP, unset="sandbox: its state dir's secrets.json", secret=True),
    _s("GAMEDAY_PRIMARY_REGION", "str", None, "primary region (also chaosaws's aws_region)",
       "src/gameday/chaos/config.py", "src/gameday/safety/harness.py", "src/gameday/guard/hooks.py", _EXP,
       unset="AWS_REGION, else us-east-1 (bare chaos run)"),
    _s("GAMEDAY_RECOVERY_REGION", "str", None, "recovery region", "src/gameday/chaos/config.py",
       "src/gameday/safety/harness.py", "src/gameday/guard/hooks.py", _EXP, unset="the primary region"),
    _s("GAMEDAY_SERVICE_URLS", "str", None, 'JSON {"web": "http://...", ...}: global URL per service',
       "src/gameday/chaos/config.py", _EXP, unset="required"),
    _s("GAMEDAY_PROMETHEUS_URLS", "str", None, 'JSON {"REGION": "http://..."}: Prometheus per region',
       "src/gameday/chaos/config.py", unset="none: the monitoring probes fail with a hint"),
    _s("GAMEDAY_DB_WRITER", "str", None, 'JSON {"REGION": "host:port"} or one host:port',
       "src/gameday/chaos/config.py", _EXP, unset="required"),
    _s("GAMEDAY_DB_READER", "str", None, 'JSON {"REGION": "host:port"} of the replicas',
       "src/gameday/chaos/config.py", _EXP, unset="required"),
    _s("GAMEDAY_DB_NAME", "str", "gameday", "database name", "src/gameday/chaos/config.py", _EXP),
    _s("GAMEDAY_DB_USER", "str", "gameday", "database user", "src/gameday/chaos/config.py", _EXP),
    _s("GAMEDAY_MAX_LAG_S", "float", 5, "replication lag still healthy (s)", "src/gameday/chaos/config.py", _EXP),
    _s("GAMEDAY_TIMEOUT_S", "float", 180, "every bounded wait of an experiment (s)",
       "src/gameday/chaos/config.py", _EXP),
    _s("GAMEDAY_PRIMARY_ASGS", "str", None, "JSON list of the primary region's ASG names",
       "src/gameday/chaos/config.py", _EXP, unset="required (instance-termination, az-outage)"),
    _s("GAMEDAY_PRIMARY_AZ", "str", None, "AZ of the az-outage", "src/gameday/chaos/config.py", _EXP,
       unset="required (az-outage)"),
    _s("GAMEDAY_DB_PRIMARY_ID", "str", None, "database.primary_identifier", "src/gameday/chaos/config.py", _EXP,
       unset="required (database-failover)"),
    _s("GAMEDAY_DB_REPLICA_ID", "str", None, "database.replica_identifier", "src/gameday/chaos/config.py", _EXP,
       unset="required (region-outage)"),
    _s("GAMEDAY_FAILOVER_SERVICE", "str", "orders", "service the service-failover fails over",
       "src/gameday/chaos/config.py", _EXP),
    _s("GAMEDAY_FAILOVER_ASG", "str", None, "that service's primary-region ASG", "src/gameday/chaos/config.py",
       _EXP, unset="required (service-failover)"),
    _s("GAMEDAY_FIS_ROLE_ARN", "str", "", "FIS execution role", "src/gameday/chaos/config.py", _EXP,
       unset="arn:aws:iam::ACCOUNT:role/gameday-fis (the caller's account)"),
    # locustfile (its own process; gameday.load.runner sets most of these)
    _s("GAMEDAY_TARGETS", "str", None, 'JSON {"web": "http://127.0.0.1:p1", ...}', _LOCUST,
       "src/gameday/load/runner.py", unset="one service, GAMEDAY_SERVICE, at --host"),
    _s("GAMEDAY_SERVICE", "str", "web", "the one service when GAMEDAY_TARGETS is unset", _LOCUST),
    _s("GAMEDAY_PROBE_RATE", "float", 20.0, "GET /items per second per service", _LOCUST,
       "src/gameday/load/runner.py", minimum=0),
    _s("GAMEDAY_WRITE_RATE", "float", 10.0, "POST /records per second per write service", _LOCUST,
       "src/gameday/load/runner.py", minimum=0),
    _s("GAMEDAY_WRITE_SERVICES", "str", "orders", "comma list of services that get writes (empty: none)",
       _LOCUST, "src/gameday/load/runner.py"),
    _s("GAMEDAY_RECORDS_DIR", "path", "gameday-records", "where requests.jsonl, ledger.jsonl and run.json go",
       _LOCUST, "src/gameday/load/runner.py"),
    _s("GAMEDAY_RUN_ID", "str", None, "prefix of every written id", _LOCUST, "src/gameday/load/runner.py",
       unset="time + random"),
    _s("GAMEDAY_CONNECT_TIMEOUT", "float", 1.0, "connect timeout (s)", _LOCUST, "src/gameday/load/runner.py",
       minimum=0.01),
    _s("GAMEDAY_READ_TIMEOUT", "float", 2.0, "read timeout (s)", _LOCUST, "src/gameday/load/runner.py",
       minimum=0.01),
    _s("GAMEDAY_RECORD", "bool", True, "journal requests or not", _LOCUST, "src/gameday/load/runner.py"),
    _s("GAMEDAY_EXPECT_WORKERS", "int", 0, "workers the locust master waits for", _LOCUST,
       "src/gameday/load/runner.py"),
    _s("GAMEDAY_WORKER_ID", "str", None, "a locust worker's id in journal names and write ids", _LOCUST,
       unset="wN, N = worker index + 1"),
    _s("GAMEDAY_MAX_RUN_TIME", "float", 3600.0, "safety stop (s) when no --run-time is given", _LOCUST,
       minimum=1.0),
    _s("GAMEDAY_MAX_INFLIGHT", "float", 0.0, "cap on concurrent requests per user (0: rate x timeouts x 1.5)",
       _LOCUST, minimum=0),
    _s("GAMEDAY_JOURNAL_MAX_MB", "float", 64.0, "journal segment size before rotation (MB)", _LOCUST, minimum=0),
    _s("GAMEDAY_JOURNAL_COMPRESSION", "choice", None, "compression of rotated journal segments", _LOCUST,
       choices=("gzip", "zstd", "none"), unset="zstd if installed, else gzip"),
    _s("GAMEDAY_JOURNAL_FLUSH_S", "float", 0.2, "how often buffered journal lines reach the file (s)", _LOCUST,
       minimum=0.01),
)
SETTINGS: dict[str, Setting] = {s.name: s for s in _DECLARED}
#: Name prefixes matched with str.startswith (not settings themselves).
PREFIXES: dict[str, str] = {
    "GAMEDAY_DB": "the sandbox daemon drops inherited GAMEDAY_DB* before it sets the app's own "
                  "(src/gameday/sandbox/daemon.py)",
}


def setting(name: str) -> Setting:
    """The declaration of ``name`` (KeyError for an undeclared name: declare it above)."""
    return SETTINGS[name]


def _raw(name: str, env: Mapping[str, str] | None) -> str | None:
    s = setting(name)
    value = (os.environ if env is None else env).get(name, "")
    if not value.strip():
        return None
    return value if s.secret else value.strip()  # a password is used verbatim


def _bad(s: Setting, raw: str, accepted: str) -> ConfigError:
    return ConfigError(f"{s.name}={raw!r} is not valid: expected {accepted}", field=s.name,
                       hint=f"set {s.name} to {accepted}, or unset it for the default")


def _number(s: Setting, raw: str, kind: type[int] | type[float]) -> int | float:
    word = "a whole number" if kind is int else "a number"
    if s.minimum is not None:
        word += f" >= {s.minimum:g}"
    try:
        value = kind(raw)
    except ValueError as exc:
        raise _bad(s, raw, word) from exc
    if s.minimum is not None and value < s.minimum:
        raise _bad(s, raw, word)
    return value


def parse(name: str, raw: str) -> Value:
    """``raw`` as the declared type of ``name``; ConfigError naming variable, value and what is accepted."""
    s = setting(name)
    if s.kind == "int":
        return _number(s, raw, int)
    if s.kind == "float":
        return float(_number(s, raw, float))
    if s.kind == "bool":
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise _bad(s, raw, "one of 1/0, true/false, yes/no")
    if s.kind == "choice" and raw.lower() not in s.choices:
        raise _bad(s, raw, "one of " + ", ".join(s.choices))
    return raw.lower() if s.kind == "choice" else raw


def get(name: str, env: Mapping[str, str] | None = None) -> Value:
    """The value of ``name`` in ``env`` (default os.environ), parsed; the declared default when unset."""
    raw = _raw(name, env)
    return setting(name).default if raw is None else parse(name, raw)


def get_raw(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The unparsed value (else the default as text), for a caller that reports bad values itself."""
    raw = _raw(name, env)
    default = setting(name).default
    return raw if raw is not None else (None if default is None else str(default))


def text(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A str or choice setting."""
    value = get(name, env)
    return None if value is None else str(value)


def integer(name: str, env: Mapping[str, str] | None = None) -> int:
    """An int setting (declared with an int default)."""
    value = get(name, env)
    assert isinstance(value, int), name
    return value


def number(name: str, env: Mapping[str, str] | None = None) -> float:
    """A float setting (declared with a numeric default)."""
    value = get(name, env)
    assert isinstance(value, (int, float)), name
    return float(value)


def flag(name: str, env: Mapping[str, str] | None = None) -> bool:
    """A bool setting."""
    value = get(name, env)
    assert isinstance(value, bool), name
    return value


def path(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """A path setting, as given (a ``~`` in the declared default is expanded)."""
    raw = _raw(name, env)
    if raw is not None:
        return Path(raw)
    default = setting(name).default
    return None if default is None else Path(str(default)).expanduser()


def paths(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """An os.pathsep-separated list of paths, empty entries dropped."""
    raw = _raw(name, env) or ""
    return [p for p in raw.split(os.pathsep) if p.strip()]


def home() -> Path:
    """The gameday home: ``$GAMEDAY_HOME``, else ``~/.gameday`` (snapshots, history, AWS undo logs)."""
    home = path("GAMEDAY_HOME")
    assert home is not None  # declared with a default
    return home


def state_root() -> Path:
    """Where provisioned systems keep their state: ``$GAMEDAY_STATE_DIR``, else the gameday home.

    One layout for every target: ``<root>/sandboxes/<name>/`` for a sandbox, ``<root>/aws/`` for
    AWS; each holds ``terraform/`` (the work dir and its state) and ``topology.json``.
    """
    return path("GAMEDAY_STATE_DIR") or home()


def _cell(v: Value) -> str:
    return "" if v is None else f"`{str(v).lower() if isinstance(v, bool) else v}`"


def render_markdown() -> str:
    """docs/SETTINGS.md: one row per setting, in declaration order."""
    lines = ["# Settings (environment variables)", "",
             "Generated from `src/gameday/settings.py` (`python -m gameday.settings > docs/SETTINGS.md`); "
             "tests/util/test_settings.py fails when the two differ.", "",
             "An empty value counts as unset. Booleans accept 1/0, true/false, yes/no (and on/off); "
             "a bad value stops the run with an error naming the variable and what it accepts.", "",
             "| Variable | Type | Default | Meaning | Read / set in |", "|---|---|---|---|---|"]
    for s in _DECLARED:
        kind = f"choice: {' / '.join(s.choices)}" if s.kind == "choice" else s.kind
        default = _cell(s.default) or "unset"
        if s.unset:
            default = f"{default}: {s.unset}" if s.default not in (None, "") else s.unset
        doc = s.doc.replace("|", "\\|")
        readers = ", ".join(f"`{r}`" for r in s.readers)
        lines.append(f"| `{s.name}` | {kind} | {default} | {doc} | {readers} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
