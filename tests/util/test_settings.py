"""gameday.settings: every GAMEDAY_* name is declared once, parsed strictly and documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gameday import settings
from gameday.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("src", "loadtests", "experiments", "scenarios")
NAME = re.compile(r"GAMEDAY_[A-Z0-9_]+")
SETTINGS_PY = REPO / "src" / "gameday" / "settings.py"


def _scanned_files() -> list[Path]:
    out = []
    for top in SCANNED:
        for p in sorted((REPO / top).rglob("*")):
            if not p.is_file() or "__pycache__" in p.parts or any(x.endswith(".egg-info") for x in p.parts):
                continue
            if p != SETTINGS_PY and p.suffix in (".py", ".json", ".yaml", ".yml", ".md", ".txt", ".tf", ".cfg"):
                out.append(p)
    return out


def _uses() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for p in _scanned_files():
        for name in NAME.findall(p.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(name, set()).add(str(p.relative_to(REPO)))
    return found


def test_every_name_in_the_code_is_declared() -> None:
    undeclared = {n: sorted(w) for n, w in _uses().items() if n not in settings.SETTINGS and n not in settings.PREFIXES}
    assert not undeclared, f"declare these in src/gameday/settings.py: {undeclared}"


def test_every_declared_name_is_used() -> None:
    unused = sorted(n for n in [*settings.SETTINGS, *settings.PREFIXES] if n not in _uses())
    assert not unused, f"declared in src/gameday/settings.py but used nowhere: {unused}"


def test_readers_name_the_variable() -> None:
    wrong = []
    for s in settings.SETTINGS.values():
        assert s.readers, s.name
        for reader in s.readers:
            files = sorted(REPO.glob(reader))
            if not any(s.name in f.read_text(encoding="utf-8") for f in files):
                wrong.append(f"{s.name}: {reader}")
    assert not wrong, f"readers that do not mention the variable: {wrong}"


def test_declarations_are_consistent() -> None:
    for s in settings.SETTINGS.values():
        assert s.kind in settings.KINDS, s.name
        assert s.doc and "\n" not in s.doc, s.name
        if s.kind in ("int", "float"):
            assert isinstance(s.default, int | float) and not isinstance(s.default, bool), s.name
        if s.kind == "bool":
            assert isinstance(s.default, bool), s.name
        if s.kind == "choice":
            assert s.choices and (s.default is None or s.default in s.choices), s.name
        if s.default is None:
            assert s.unset, f"{s.name}: say what unset means"


def test_doc_matches_declarations() -> None:
    doc = (REPO / "docs" / "SETTINGS.md").read_text(encoding="utf-8")
    assert doc == settings.render_markdown(), "regenerate: python -m gameday.settings > docs/SETTINGS.md"


def test_experiment_env_keys_and_defaults_match() -> None:
    seen = set()
    for exp in sorted((REPO / "experiments").glob("*.json")):
        data = json.loads(exp.read_text(encoding="utf-8"))
        entries = list(data.get("configuration", {}).values())
        entries += [v for group in data.get("secrets", {}).values() for v in group.values()]
        for entry in entries:
            if isinstance(entry, dict) and entry.get("type") == "env":
                s = settings.setting(entry["key"])
                seen.add(s.name)
                if "default" in entry:
                    given = str(entry["default"])
                    got = settings.parse(s.name, given) if given else ""
                    assert got == s.default, f"{exp.name}: {s.name} default {given!r}, declared {s.default!r}"
    assert "GAMEDAY_DB_PASSWORD" in seen and "GAMEDAY_PRIMARY_REGION" in seen


def test_locustfile_defaults_match() -> None:
    text = (REPO / "loadtests" / "locustfile.py").read_text(encoding="utf-8")
    pairs = re.findall(r'_env_float\("(GAMEDAY_\w+)", ([0-9.]+)', text)
    assert len(pairs) >= 8
    for name, default in pairs:
        assert settings.setting(name).default == float(default), name
    for name, default in re.findall(r'os\.environ\.get\("(GAMEDAY_\w+)", "([^"]*)"\)', text):
        declared = settings.setting(name).default
        want = "" if declared is None else str(int(declared) if isinstance(declared, bool) else declared)
        assert want == default, name


def test_module_constants_match_declarations() -> None:
    from gameday import pytest_plugin
    from gameday.chaos.config import DEFAULT_FAILOVER_SERVICE
    from gameday.provision.topology import ROUTING_MODES
    from gameday.sandbox import snapshot

    assert settings.setting("GAMEDAY_TARGET").choices == pytest_plugin.TARGETS
    assert settings.setting("GAMEDAY_TIMING").choices == pytest_plugin.TIMINGS
    assert settings.setting("GAMEDAY_ROUTING_MODE").choices == ROUTING_MODES
    assert settings.setting("GAMEDAY_SNAPSHOT_MAX_MB").default == snapshot.DEFAULT_MAX_MB
    assert settings.setting("GAMEDAY_SNAPSHOT_MAX_COUNT").default == snapshot.DEFAULT_MAX_COUNT
    assert settings.setting("GAMEDAY_FAILOVER_SERVICE").default == DEFAULT_FAILOVER_SERVICE


@pytest.mark.parametrize(("raw", "want"), [("1", True), ("true", True), ("YES", True), ("on", True),
                                           ("0", False), ("false", False), ("no", False), (" off ", False)])
def test_bool_words(raw: str, want: bool) -> None:
    assert settings.flag("GAMEDAY_SNAPSHOTS", {"GAMEDAY_SNAPSHOTS": raw}) is want


@pytest.mark.parametrize(("name", "raw", "accepted"), [
    ("GAMEDAY_SNAPSHOTS", "banana", "1/0, true/false, yes/no"),
    ("GAMEDAY_SNAPSHOT_MAX_COUNT", "2.5", "a whole number >= 0"),
    ("GAMEDAY_SNAPSHOT_MAX_MB", "-1", "a number >= 0"),
    ("GAMEDAY_PROBE_RATE", "fast", "a number >= 0"),
    ("GAMEDAY_JOURNAL_COMPRESSION", "lz4", "gzip, zstd, none"),
])
def test_bad_value_names_variable_value_and_accepted(name: str, raw: str, accepted: str) -> None:
    with pytest.raises(ConfigError) as ei:
        settings.get(name, {name: raw})
    msg = str(ei.value)
    assert name in msg and repr(raw) in msg and accepted in msg
    assert ei.value.field == name and ei.value.exit_code == 2


def test_unset_and_empty_give_the_default() -> None:
    assert settings.integer("GAMEDAY_SNAPSHOT_MAX_COUNT", {}) == 8
    assert settings.number("GAMEDAY_SNAPSHOT_MAX_MB", {"GAMEDAY_SNAPSHOT_MAX_MB": "  "}) == 2048.0
    assert settings.text("GAMEDAY_HISTORY_URL", {"GAMEDAY_HISTORY_URL": ""}) is None
    assert settings.path("GAMEDAY_HOME", {}) == Path("~/.gameday").expanduser()
    assert settings.paths("GAMEDAY_UNDO_LOGS", {"GAMEDAY_UNDO_LOGS": "a.jsonl::b.jsonl"}) == ["a.jsonl", "b.jsonl"]
    assert settings.get_raw("GAMEDAY_TARGET", {"GAMEDAY_TARGET": "moon"}) == "moon"  # the plugin reports it


def test_a_secret_is_verbatim_other_values_are_stripped() -> None:
    assert settings.text("GAMEDAY_DB_PASSWORD", {"GAMEDAY_DB_PASSWORD": " pw with spaces "}) == " pw with spaces "
    assert settings.text("GAMEDAY_HISTORY_URL", {"GAMEDAY_HISTORY_URL": " sqlite:// "}) == "sqlite://"


def test_undeclared_name_is_refused() -> None:
    with pytest.raises(KeyError):
        settings.text("GAMEDAY_NOT_A_SETTING", {})


def test_readers_fail_on_a_bad_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gameday.load.runner import LoadRunner
    from gameday.sandbox import snapshot

    monkeypatch.setenv("GAMEDAY_SNAPSHOTS", "maybe")
    with pytest.raises(ConfigError, match="GAMEDAY_SNAPSHOTS='maybe'"):
        snapshot.enabled()
    monkeypatch.setenv("GAMEDAY_SNAPSHOTS", "no")
    assert snapshot.enabled() is False
    monkeypatch.setenv("GAMEDAY_LOAD_WORKERS", "two")
    with pytest.raises(ConfigError, match="GAMEDAY_LOAD_WORKERS='two'"):
        LoadRunner({"web": "http://127.0.0.1:9"}, tmp_path, run_time_s=1)


def test_an_unset_config_path_is_not_an_explicit_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset GAMEDAY_CONFIG means "the default file, if there is one", so a sandbox run needs none."""
    from gameday.guard.hooks import guard_experiment

    monkeypatch.setenv("HOME", str(tmp_path))
    env: dict[str, str] = {}
    assert settings.path("GAMEDAY_CONFIG", env) is None
    experiment = REPO / "experiments" / "instance-termination.json"
    assert guard_experiment(experiment, env, target="sandbox") is None  # no config: no guard, no error
