"""Apply the Terraform stack to the sandbox daemon's in-process control plane.

The same HCL as for AWS; only the provider endpoints differ (an override file), and slow
resources converge through the fast-waiter procedure of ``TerraformRunner.apply``.

Users vary the stack with their own ``.tfvars`` files and ``NAME=VALUE`` variables (e.g. the
broken variants in ``provision/terraform/examples/``). They are checked here before anything
starts: terraform only *warns* about an undeclared variable in a var file, so a misspelt name
would silently run the reference system and the drill would "pass" against the wrong variant.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError
from gameday.provision import module_dir
from gameday.provision.runner import TerraformRunner, TfEvent
from gameday.provision.sandbox_override import render_sandbox_override
from gameday.provision.topology import Topology
from gameday.target import SANDBOX_CREDENTIALS
from gameday.util.redact import Secret

#: Create timeout of the slow resources against the local control plane; they converge by untaint
#: and re-apply (``TerraformRunner.apply(fast_waiters=True)``) instead of sleeping in provider waiters.
DEFAULT_CREATE_TIMEOUT = "5s"
#: Sleeping provider waiters hold parallelism slots; against the local control plane use more.
SANDBOX_PARALLELISM = 30
#: Environment of terraform aimed at the sandbox: moto's dummy credentials, no instance metadata look-up.
SANDBOX_ENV = {**SANDBOX_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}
#: Real-AWS credential settings that must not leak into a sandbox run.
AWS_ENV_DROPPED_FOR_SANDBOX = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE",
                                "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")

#: Written next to the terraform work dir: the ``--var`` values, applied after every var file.
CLI_VARS_FILE = "cli-vars.tfvars.json"

#: Variables the sandbox sets itself; a user value would make the sandbox and the stack disagree.
RESERVED_VARIABLES = {
    "db_password": "the sandbox generates its own database password (kept 0600 in its state dir)",
    "routing_mode": "use --routing-mode (pytest: --routing-mode), so the daemon and the stack agree",
}

#: Values the stack accepts but the sandbox's data plane cannot run yet (refused before anything starts).
UNSUPPORTED_VALUES: dict[str, dict[str, str]] = {
    "database_mode": {
        "cluster": "the sandbox does not map Aurora clusters to PostgreSQL yet; use database_mode = \"instance\" "
                   "(the default) in the sandbox, cluster mode on AWS",
    },
}

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_VAR_RE = re.compile(rf"({_NAME})=(.*)", re.DOTALL)
_VARIABLE_BLOCK = re.compile(rf'^\s*variable\s+"({_NAME})"\s*\{{', re.MULTILINE)
_TYPE_LINE = re.compile(r"^\s*type\s*=\s*([a-z]+)", re.MULTILINE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(_NAME)
#: Types whose ``-var`` value terraform parses as an HCL expression; others take it as a string.
COMPLEX_TYPES = ("list", "set", "map", "object", "tuple")


# ------------------------------------------------------------------ reading .tfvars


class _TfvarsReader:
    """Recursive-descent reader of what a variable definitions file may hold: literal values only.

    Terraform evaluates .tfvars without variables or functions ("Variables not allowed",
    "Function calls not allowed"), so literals, lists, objects and heredocs are the whole language.
    """

    def __init__(self, text: str, file: str | None, what: str = "") -> None:
        self.s, self.i, self.file, self.what = text, 0, file, what

    def error(self, message: str, fld: str | None = None) -> ConfigError:
        line = self.s.count("\n", 0, self.i) + 1
        col = self.i - (self.s.rfind("\n", 0, self.i) + 1) + 1
        where = f"line {line}, column {col}: " if self.file else ""
        hint = ("a .tfvars file holds lines of NAME = literal value (string, number, bool, list, map); "
                "see provision/terraform/examples/") if self.file else \
            "the value of a list/map variable is an HCL literal, e.g. --var 'services=[\"web\", \"orders\"]'"
        return ConfigError(f"{where}{message}{self.what}", file=self.file, field=fld, hint=hint)

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def skip(self, newlines: bool = True) -> None:
        """Skip blanks and comments (``#``, ``//``, ``/* */``); newlines too when ``newlines``."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#" or self.peek(2) == "//":
                end = self.s.find("\n", self.i)
                self.i = len(self.s) if end < 0 else end
            elif self.peek(2) == "/*":
                end = self.s.find("*/", self.i + 2)
                if end < 0:
                    raise self.error("unterminated /* comment")
                self.i = end + 2
            else:
                return

    def attributes(self) -> dict[str, tuple[Any, int]]:
        """Top level: ``NAME = value`` per line; returns name -> (value, line)."""
        out: dict[str, tuple[Any, int]] = {}
        self.skip()
        while self.i < len(self.s):
            m = _IDENT.match(self.s, self.i)
            if not m:
                raise self.error(f"expected a variable name, found {self.peek(12)!r}")
            name, line = m.group(0), self.s.count("\n", 0, self.i) + 1
            self.i = m.end()
            self.skip(newlines=False)
            if self.peek() != "=":
                what = "a block" if self.peek() == "{" else repr(self.peek(12))
                raise self.error(f"expected '=' after {name}, found {what}", name)
            self.i += 1
            self.skip(newlines=False)
            value = self.value(name)
            if name in out:
                raise self.error(f"{name} is set twice (lines {out[name][1]} and {line})", name)
            out[name] = (value, line)
            self.skip(newlines=False)
            if self.i < len(self.s) and self.peek() != "\n":
                raise self.error(f"expected a new line after the value of {name}, found {self.peek(12)!r}", name)
            self.skip()
        return out

    def value(self, name: str | None = None) -> Any:
        c = self.peek()
        if c == '"':
            return self.string(name)
        if self.peek(2) == "<<":
            return self.heredoc(name)
        if c == "[":
            return self.sequence(name)
        if c == "{":
            return self.mapping(name)
        m = _NUMBER.match(self.s, self.i)
        if m:
            self.i = m.end()
            text = m.group(0)
            return float(text) if any(ch in text for ch in ".eE") else int(text)
        m = _IDENT.match(self.s, self.i)
        if m and m.group(0) in ("true", "false", "null"):
            self.i = m.end()
            return {"true": True, "false": False, "null": None}[m.group(0)]
        if m:
            raise self.error(f"{m.group(0)!r} is not a literal value (variables, functions and references are "
                             "not allowed in variable definitions; quote strings)", name)
        raise self.error(f"expected a value, found {self.peek(12)!r}" if c else "expected a value", name)

    def string(self, name: str | None) -> str:
        self.i += 1
        out: list[str] = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if c == "\n":
                break
            if c == "\\":
                nxt = self.peek(2)[1:]
                if nxt in escapes:
                    out.append(escapes[nxt])
                    self.i += 2
                    continue
                if nxt in ("u", "U"):
                    width = 4 if nxt == "u" else 8
                    digits = self.s[self.i + 2:self.i + 2 + width]
                    if re.fullmatch(rf"[0-9A-Fa-f]{{{width}}}", digits):
                        out.append(chr(int(digits, 16)))
                        self.i += 2 + width
                        continue
                raise self.error(f"invalid escape sequence {self.peek(2)!r}", name)
            if self.peek(3) in ("$${", "%%{"):
                out.append(c + "{")
                self.i += 3
                continue
            if self.peek(2) in ("${", "%{"):
                raise self.error("templates are not allowed in variable definitions (write $${ for a literal ${)",
                                 name)
            out.append(c)
            self.i += 1
        raise self.error("unterminated string", name)

    def heredoc(self, name: str | None) -> str:
        m = re.compile(rf"<<(-?)({_NAME})[ \t]*\r?\n").match(self.s, self.i)
        if not m:
            raise self.error("a heredoc starts with <<MARKER or <<-MARKER and a new line", name)
        indent, marker = bool(m.group(1)), m.group(2)
        end = re.compile(rf"^[ \t]*{re.escape(marker)}[ \t]*\r?$", re.MULTILINE).search(self.s, m.end())
        if not end:
            raise self.error(f"heredoc {marker} is never closed", name)
        lines = self.s[m.end():end.start()].splitlines(keepends=True)
        self.i = end.end()
        if indent:
            width = min((len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()), default=0)
            lines = [ln[width:] for ln in lines]
        return "".join(lines)

    def sequence(self, name: str | None) -> list[Any]:
        self.i += 1
        out: list[Any] = []
        while True:
            self.skip()
            if self.peek() == "]":
                self.i += 1
                return out
            out.append(self.value(name))
            self.skip()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "]":
                raise self.error(f"expected ',' or ']' in a list, found {self.peek(12)!r}", name)

    def mapping(self, name: str | None) -> dict[str, Any]:
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.peek() == "}":
                self.i += 1
                return out
            if self.peek() == '"':
                key = self.string(name)
            else:
                m = _IDENT.match(self.s, self.i)
                if not m:
                    raise self.error(f"expected a map key, found {self.peek(12)!r}", name)
                key, self.i = m.group(0), m.end()
            self.skip(newlines=False)
            if self.peek() not in ("=", ":"):
                raise self.error(f"expected '=' or ':' after map key {key!r}", name)
            self.i += 1
            self.skip()
            out[key] = self.value(name)
            self.skip(newlines=False)
            if self.peek() == ",":
                self.i += 1
            elif self.peek() not in ("\n", "}", "#", "/"):
                raise self.error(f"expected ',', a new line or '}}' after map key {key!r}", name)


def read_tfvars(path: Path, label: str) -> dict[str, tuple[Any, int]]:
    """name -> (value, line) of a ``.tfvars`` (HCL) or ``.tfvars.json`` file; ConfigError if unusable."""
    if not path.exists():
        raise ConfigError("variables file does not exist", file=label, hint="pass an existing .tfvars file")
    if not path.is_file():
        raise ConfigError("variables file is not a regular file", file=label, hint="pass a .tfvars file")
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError as exc:
        raise ConfigError("variables file is not readable (permission denied)", file=label,
                          hint="make it readable by this user (chmod u+r)") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"variables file is not UTF-8 text ({exc.reason} at byte {exc.start})", file=label,
                          hint="terraform reads .tfvars as UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"variables file cannot be read ({exc.strerror})", file=label,
                          hint="pass a readable .tfvars file") from exc
    if path.name.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})", file=label,
                              hint="a .tfvars.json file holds one JSON object of NAME: value") from exc
        if not isinstance(data, dict):
            raise ConfigError("a .tfvars.json file must hold one JSON object", file=label,
                              hint='e.g. {"recovery_traffic_dial": 0}')
        return {str(k): (v, 0) for k, v in data.items()}
    return _TfvarsReader(text, label).attributes()


# ------------------------------------------------------------ checking against the module


def declared_variables(module: Path | None = None) -> dict[str, str | None]:
    """Variables the root module declares (any ``*.tf`` at its top level): name -> type keyword."""
    root = Path(module or module_dir())
    out: dict[str, str | None] = {}
    for tf in sorted(root.glob("*.tf")):
        if tf.name.endswith("_override.tf"):
            continue
        text = tf.read_text(encoding="utf-8", errors="replace")
        blocks = list(_VARIABLE_BLOCK.finditer(text))
        for k, m in enumerate(blocks):
            body = text[m.end():blocks[k + 1].start() if k + 1 < len(blocks) else len(text)]
            t = _TYPE_LINE.search(body)
            out[m.group(1)] = t.group(1) if t else None
    return out


def _undeclared(name: str, declared: Mapping[str, Any], label: str | None, line: int) -> ConfigError:
    close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
    hint = (f"did you mean {close[0]!r}? " if close else "") + \
        "only variables declared in provision/terraform/*.tf can be set (terraform would only warn and " \
        "ignore it)"
    where = f" (line {line})" if line else ("" if label else " (--var)")
    return ConfigError(f"variable {name!r}{where} is not declared by the Terraform module", file=label,
                       field=name, hint=hint)


def _check_value(name: str, value: Any, vtype: str | None, label: str | None) -> None:
    """The obvious type mistakes terraform would only report after the control plane started."""
    numeric = (isinstance(value, int | float) and not isinstance(value, bool)) or \
        (isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None)
    if vtype == "number" and not numeric:
        raise ConfigError(f"{name} is a number variable, got {value!r}", file=label, field=name,
                          hint=f"e.g. {name} = 0")
    if vtype == "bool" and not isinstance(value, bool) and value not in ("true", "false"):
        raise ConfigError(f"{name} is a bool variable, got {value!r}", file=label, field=name,
                          hint=f"{name} = true or {name} = false")


@dataclass(frozen=True)
class SandboxVars:
    """Checked user input of a sandbox apply: absolute var-file paths and the ``--var`` values."""

    var_files: tuple[str, ...] = ()
    cli_values: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.var_files and not self.cli_values


def _check_supported(name: str, value: Any, label: str | None) -> None:
    why = UNSUPPORTED_VALUES.get(name, {}).get(str(value)) if isinstance(value, str) else None
    if why is not None:
        raise ConfigError(f"{name} = {value!r} is not supported by the sandbox yet", file=label, field=name,
                          hint=why)


def check_sandbox_vars(var_files: Sequence[str | os.PathLike[str]] = (), tf_vars: Sequence[str] = (),
                       module: Path | None = None) -> SandboxVars:
    """Validate var files and ``NAME=VALUE`` strings against the module; ConfigError names the fix."""
    declared = declared_variables(module)
    files: list[str] = []
    for f in var_files:
        label = os.fspath(f)
        path = Path(label).expanduser()
        for name, (value, line) in read_tfvars(path, label).items():
            if name not in declared:
                raise _undeclared(name, declared, label, line)
            if name in RESERVED_VARIABLES:
                raise ConfigError(f"{name} cannot be set for the sandbox", file=label, field=name,
                                  hint=f"remove it from the file: {RESERVED_VARIABLES[name]}")
            _check_value(name, value, declared[name], label)
            _check_supported(name, value, label)
        files.append(str(path.resolve()))
    values: dict[str, Any] = {}
    for text in tf_vars:
        m = _VAR_RE.fullmatch(text)
        if not m:
            raise ConfigError(f"--var {text!r} is not NAME=VALUE", field="--var",
                              hint="e.g. --var recovery_traffic_dial=0 (one variable per --var)")
        name, raw = m.groups()
        if name not in declared:
            raise _undeclared(name, declared, None, 0)
        if name in RESERVED_VARIABLES:
            raise ConfigError(f"{name} cannot be set for the sandbox", field=name,
                              hint=f"drop --var {name}=...: {RESERVED_VARIABLES[name]}")
        vtype = declared[name]
        if vtype in COMPLEX_TYPES:
            # terraform -var parses complex types as an HCL expression, primitives as a string
            reader = _TfvarsReader(raw, None, what=f" in --var {name}")
            value = reader.value(name)
            reader.skip()
            if reader.i != len(raw):
                raise reader.error(f"unexpected text after the value: {raw[reader.i:][:20]!r}", name)
        else:
            value = raw
        _check_value(name, value, vtype, None)
        _check_supported(name, value, None)
        values[name] = value
    return SandboxVars(tuple(files), values)


# --------------------------------------------------------------------- the apply


def terraform_var_files(state: Path, var_files: Sequence[str | os.PathLike[str]] = (),
                        tf_vars: Sequence[str] = (), module: Path | None = None) -> list[str]:
    """The ``-var-file`` list of a sandbox apply: the checked files in order, then the ``--var`` values.

    Terraform applies ``-var-file`` options in command-line order, later ones winning, so the
    generated JSON file of ``--var`` values goes last: a ``--var`` overrides any file.
    """
    checked = check_sandbox_vars(var_files, tf_vars, module)
    files = list(checked.var_files)
    cli_file = Path(state) / CLI_VARS_FILE
    cli_file.unlink(missing_ok=True)
    if checked.cli_values:
        Path(state).mkdir(parents=True, exist_ok=True)
        cli_file.write_text(json.dumps(checked.cli_values, indent=2), encoding="utf-8")
        files.append(str(cli_file))
    return files


def apply_sandbox_stack(endpoint_url: str, work_dir: Path, password: Secret,
                        progress: Callable[[str], None] | None = None,
                        routing_mode: str = "global_accelerator",
                        var_files: Sequence[str | os.PathLike[str]] = (),
                        tf_vars: Sequence[str] = ()) -> Topology:
    """Apply provision/terraform against endpoint_url; save topology.json and a 0600 secrets.json.

    ``var_files`` go to terraform in order, then the ``tf_vars`` (``NAME=VALUE``) as one generated
    JSON var file, so a ``--var`` wins over any file as terraform's command-line order says.
    """
    say = progress or (lambda _m: None)
    state = Path(work_dir).parent
    files = terraform_var_files(state, var_files, tf_vars)
    if files:
        say(f"terraform variables from: {', '.join(files)}")

    def on_event(ev: TfEvent) -> None:
        if ev.type in ("apply_complete", "fast_waiter_round", "retry"):
            say(f"terraform: {ev.message}")

    runner = TerraformRunner(module_dir(), work_dir, env=dict(SANDBOX_ENV), unset_env=AWS_ENV_DROPPED_FOR_SANDBOX,
                             vars={"db_password": password, "create_timeout": DEFAULT_CREATE_TIMEOUT,
                                   "routing_mode": routing_mode},
                             var_files=files, timeout_s=600.0, on_event=on_event)
    runner.write_override("sandbox", render_sandbox_override(endpoint_url))
    runner.init()
    runner.apply(fast_waiters=True)
    topo = Topology.from_outputs(runner.output(), source=f"terraform output ({work_dir})")
    topo.save(state / "topology.json")
    fd = os.open(state / "secrets.json", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"db_password": str(password)}, fh)
    return topo
