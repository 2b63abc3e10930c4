"""Sandbox snapshots: the control plane and the Terraform state after a cold apply, restored in seconds.

A cold ``sandbox up`` spends most of its minute in ``terraform apply``. The result of that apply
is fully decided by the HCL, the variables, the routing mode and the versions of terraform, the
provider, moto and gameday, so it is saved once (``$GAMEDAY_HOME/snapshots/<key>/``) and a later
``up`` with the same key restores it instead of applying again:

* ``controlplane.pickle``: every instantiated moto backend (all services, accounts and regions
  in one pickle, so cross-service references stay shared) and our Global Accelerator models.
  Pickling moto's backends is what LocalStack's persistence does; locks and conditions are
  replaced by fresh ones (``_Pickler.reducer_override``). It is taken at a quiet point: right
  after the apply, before the data plane exists, under the control plane's moto lock.
* ``terraform/``: the terraform work dir (state, lock file, ``.terraform``), so ``terraform plan``
  against the restored sandbox sees exactly the state a cold apply left.
* ``topology.json`` and ``secrets.json`` (0600): the database password the restored RDS holds.

Only the control plane's port differs on restore; the one resource attribute that embeds it
(an SQS queue URL, ``http://HOST:PORT/ACCOUNT/NAME``) is rewritten in the state and topology to
the new endpoint, as a cold apply on that port would have produced it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gameday
from gameday import settings
from gameday.errors import SandboxError

#: Bump when the snapshot layout changes.
FORMAT = 1
#: Bounds of the snapshot directory (override with GAMEDAY_SNAPSHOT_MAX_MB / GAMEDAY_SNAPSHOT_MAX_COUNT).
DEFAULT_MAX_MB = 2048
DEFAULT_MAX_COUNT = 8
_SRC = Path(gameday.__file__).resolve().parent
#: gameday code that decides what the apply leaves in the control plane.
_CODE = ("controlplane", "provision", "sandbox/moto_patches.py")  # snapshot layout: FORMAT
CLI_VARS_FILE = "cli-vars.tfvars.json"  # gameday.provision.sandbox.CLI_VARS_FILE
_IGNORED = (".terraform", "terraform.tfstate", ".terraform.lock.info", "_override.tf", ".tfplan")


def snapshots_dir() -> Path:
    """``$GAMEDAY_HOME/snapshots`` (gameday home: ``$GAMEDAY_HOME``, else ``~/.gameday``)."""
    home = settings.home()
    return home / "snapshots"


def enabled() -> bool:
    """``GAMEDAY_SNAPSHOTS=0`` turns snapshots off everywhere (every up is a cold apply)."""
    return settings.flag("GAMEDAY_SNAPSHOTS")


# ------------------------------------------------------------------------------ the key


def _hash_tree(h: Any, root: Path, label: str) -> None:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or any(part in rel for part in _IGNORED) or "__pycache__" in rel:
            continue
        h.update(f"{label}/{rel}\0".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())


def _terraform_version() -> str:
    exe = str(settings.path("GAMEDAY_TERRAFORM") or shutil.which("terraform") or "terraform")
    try:
        out = subprocess.run([exe, "version", "-json"], capture_output=True, text=True, timeout=30, check=False)
        return str(json.loads(out.stdout).get("terraform_version"))
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return "unknown"


def _provider_versions() -> list[str]:
    from gameday.provision import mirror

    try:
        found = mirror.find_provider_mirror(online=True)
    except Exception:
        return ["unavailable"]
    return mirror.provider_versions(found) if found else ["registry"]


def _dist(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def key_parts(module: Path, routing_mode: str, var_files: Sequence[str], tf_vars: Sequence[str]) -> dict[str, Any]:
    """Everything that decides the apply's result, in a JSON-able form (stored in meta.json)."""
    h = hashlib.sha256()
    _hash_tree(h, module, "module")
    code = hashlib.sha256()
    for rel in _CODE:
        p = _SRC / rel
        if p.is_dir():
            _hash_tree(code, p, rel)
        elif p.is_file():
            code.update(rel.encode() + b"\0" + p.read_bytes())
    files = []
    for f in var_files:
        try:
            files.append(hashlib.sha256(Path(f).read_bytes()).hexdigest())
        except OSError as exc:
            raise SandboxError(f"cannot read variables file {f}: {exc.strerror}") from exc
    return {
        "format": FORMAT, "module": h.hexdigest(), "gameday_code": code.hexdigest(),
        "var_files": files, "tf_vars": list(tf_vars), "routing_mode": routing_mode,
        "terraform": _terraform_version(), "provider": _provider_versions(),
        "moto": _dist("moto"), "botocore": _dist("botocore"), "gameday": gameday.__version__,
        "python": platform.python_version(),
    }


def snapshot_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


# ------------------------------------------------------------------------- pickling moto


def _fresh_lock(kind: str) -> Any:
    return {"lock": threading.Lock, "rlock": threading.RLock, "cond": threading.Condition,
            "event": threading.Event}[kind]()


_LOCK_TYPES: dict[type, str] = {type(threading.Lock()): "lock", type(threading.RLock()): "rlock",
                                threading.Condition: "cond", threading.Event: "event"}


def _rebuild_function(code: bytes, module: str, name: str, defaults: Any, closure: tuple[Any, ...] | None) -> Any:
    import importlib
    import marshal
    import types

    cells = tuple(types.CellType(v) for v in closure) if closure is not None else None
    fn = types.FunctionType(marshal.loads(code), importlib.import_module(module).__dict__, name, defaults, cells)
    return fn


def _new_defaultdict(cls: Any, factory: Any) -> Any:
    """A defaultdict subclass whose ``__init__`` wants more than the factory (moto's ParameterDict)."""
    from collections import defaultdict

    obj = cls.__new__(cls)
    defaultdict.__init__(obj, factory)
    return obj


class _Pickler(pickle.Pickler):
    """Locks and conditions are process state, not data: each becomes a fresh one on load.

    Lambdas and local functions (moto's ``defaultdict(lambda: ...)`` factories) are not importable
    by name, so they travel as code (same interpreter version: it is in the key) with their module's
    globals and their closure values, as dill does for LocalStack.
    """

    def reducer_override(self, obj: Any) -> Any:
        import marshal
        import types
        from collections import defaultdict

        kind = _LOCK_TYPES.get(type(obj))
        if kind is not None:
            return _fresh_lock, (kind,)
        if isinstance(obj, defaultdict) and type(obj) is not defaultdict:
            return (_new_defaultdict, (type(obj), obj.default_factory), getattr(obj, "__dict__", None) or None,
                    None, iter(obj.items()))
        if isinstance(obj, types.FunctionType) and ("<lambda>" in obj.__qualname__ or "<locals>" in obj.__qualname__):
            closure = tuple(c.cell_contents for c in obj.__closure__) if obj.__closure__ else None
            return _rebuild_function, (marshal.dumps(obj.__code__), obj.__module__, obj.__name__,
                                       obj.__defaults__, closure)
        return NotImplemented


def _moto_backend_dicts() -> dict[str, Any]:
    """module name -> every moto BackendDict that holds at least one account's backends."""
    from moto.core.base_backend import BackendDict

    out: dict[str, Any] = {}
    for name, mod in list(sys.modules.items()):
        if not (name.startswith("moto.") and name.endswith(".models")) or mod is None:
            continue
        for attr, value in list(vars(mod).items()):
            if isinstance(value, BackendDict) and len(value):
                out[f"{name}:{attr}"] = value
    return out


def dump_controlplane(path: Path) -> int:
    """Pickle every moto backend and the GA models to ``path``; returns the byte size."""
    from gameday.controlplane.globalaccelerator.models import ga_backends

    data = {"moto": {where: {acct: dict(asb) for acct, asb in bd.items()}
                     for where, bd in _moto_backend_dicts().items()},
            "ga": dict(ga_backends)}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        _Pickler(fh, protocol=pickle.HIGHEST_PROTOCOL).dump(data)
    tmp.replace(path)
    return path.stat().st_size


def load_controlplane(path: Path, old_netloc: str = "", new_netloc: str = "") -> None:
    """Install the pickled backends into moto's and our global dicts (before anything reads them),
    with the snapshot's control-plane address replaced by the new one (see :func:`rewrite_endpoint`)."""
    import importlib

    from gameday.controlplane.globalaccelerator.models import ga_backends

    with open(path, "rb") as fh:
        data = pickle.load(fh)  # our own file, 0600 in a 0700 directory
    if old_netloc and new_netloc and old_netloc != new_netloc:
        rewrite_endpoint(data, old_netloc, new_netloc)
    for where, accounts in data["moto"].items():
        modname, attr = where.split(":", 1)
        bd = getattr(importlib.import_module(modname), attr)
        for acct, regions in accounts.items():
            asb = bd[acct]  # creates the account's (empty) AccountSpecificBackend
            for region, backend in regions.items():
                asb[region] = backend
    ga_backends.clear()
    ga_backends.update(data["ga"])


_B64 = re.compile(r"^[A-Za-z0-9+/=\s]{24,}$")


def _swap(value: str, old: str, new: str) -> str:
    if old in value:
        return value.replace(old, new)
    if len(value) >= 24 and _B64.match(value):
        try:
            raw = base64.b64decode(value, validate=False)
        except ValueError:
            return value
        if old.encode() in raw:
            return base64.b64encode(raw.replace(old.encode(), new.encode())).decode()
    return value


def rewrite_endpoint(root: Any, old: str, new: str, limit: int = 5_000_000) -> int:
    """Replace the control plane's ``host:port`` in every string of an object graph, in place.

    The apply wrote the endpoint into a few values: SQS queue URLs (the queue's id) and, through
    them, the launch templates' base64 ``user_data``. A cold apply on the new port would have
    written the new one; so does this, in moto's objects and in the terraform state alike, so
    ``terraform plan`` finds nothing to change. Bounded walk (``limit`` objects).
    """
    seen: set[int] = set()
    stack: list[Any] = [root]
    changed = 0
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            items: Any = list(obj.items())
            setter: Any = obj.__setitem__
        elif isinstance(obj, list):
            items, setter = list(enumerate(obj)), obj.__setitem__
        elif isinstance(obj, tuple | set | frozenset):
            stack.extend(v for v in obj if not isinstance(v, str | bytes | int | float | bool | type(None)))
            continue
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith(("moto.", "gameday.")):
            items, setter = list(vars(obj).items()), obj.__dict__.__setitem__  # model objects only
        else:
            continue
        for k, v in items:
            if isinstance(v, str):
                nv = _swap(v, old, new)
                if nv is not v and nv != v:
                    setter(k, nv)
                    changed += 1
            elif not isinstance(v, bytes | int | float | bool | type(None)):
                stack.append(v)
    return changed


# ----------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class Snapshot:
    key: str
    path: Path

    @property
    def meta(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.path / "meta.json").read_text()))
        except (OSError, ValueError):
            return {}

    @property
    def password(self) -> str:
        return str(json.loads((self.path / "secrets.json").read_text())["db_password"])

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file() and not p.is_symlink())


def lookup(key: str, root: Path | None = None) -> Snapshot | None:
    path = (root or snapshots_dir()) / key
    if not (path / "meta.json").is_file() or not (path / "controlplane.pickle").is_file():
        return None
    with contextlib.suppress(OSError):
        os.utime(path / "meta.json")  # last use, for pruning
    return Snapshot(key, path)


def list_snapshots(root: Path | None = None) -> list[Snapshot]:
    base = root or snapshots_dir()
    if not base.is_dir():
        return []
    snaps = [Snapshot(p.name, p) for p in base.iterdir() if (p / "meta.json").is_file()]
    return sorted(snaps, key=lambda s: (s.path / "meta.json").stat().st_mtime, reverse=True)


def _copy_private(src: Path, dst: Path) -> None:
    shutil.copy2(src, dst)
    dst.chmod(0o600)


def save(key: str, parts: dict[str, Any], state_dir: Path, endpoint_url: str, quiesce: Callable[[], Any],
         seconds: float, root: Path | None = None) -> Snapshot | None:
    """Save the control plane + terraform work dir; None when another sandbox saved the key first."""
    base = root or snapshots_dir()
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)
    final = base / key
    if final.exists():
        return None
    tmp = base / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    try:
        with quiesce():
            size = dump_controlplane(tmp / "controlplane.pickle")
        (tmp / "controlplane.pickle").chmod(0o600)  # holds the RDS master password
        shutil.copytree(state_dir / "terraform", tmp / "terraform", symlinks=True,
                        ignore=shutil.ignore_patterns("*.tfplan", "*.log", ".terraform.tfstate.lock.info"))
        for name in ("topology.json", "secrets.json", CLI_VARS_FILE):
            if (state_dir / name).exists() or name != CLI_VARS_FILE:
                _copy_private(state_dir / name, tmp / name)
        meta = {"key": key, "parts": parts, "created": time.time(), "endpoint_url": endpoint_url,
                "cold_apply_s": round(seconds, 3), "controlplane_bytes": size}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            tmp.rename(final)
        except OSError:
            return None  # a concurrent sandbox with the same key won the race: same content
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune()
    return Snapshot(key, final)


def restore_terraform(snap: Snapshot, state_dir: Path, endpoint_url: str) -> None:
    """Terraform work dir, topology and secrets into the new state dir, pointed at the new endpoint."""
    old = str(snap.meta.get("endpoint_url") or "")
    work = state_dir / "terraform"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(snap.path / "terraform", work, symlinks=True)
    work.chmod(0o700)
    # the state (SQS queue URLs), the provider endpoints override and the topology name the old port
    old_netloc, new_netloc = urlsplit(old).netloc, urlsplit(endpoint_url).netloc
    for p in [work / "terraform.tfstate", *work.glob("*_override.tf"), state_dir / "topology.json"]:
        src = p if p.parent == work else snap.path / "topology.json"
        text = src.read_text(encoding="utf-8")
        if old_netloc and p.name == "terraform.tfstate":
            state = json.loads(text)
            rewrite_endpoint(state, old_netloc, new_netloc)  # also inside base64 user_data
            text = json.dumps(state, indent=2)
        elif old_netloc:
            text = text.replace(old_netloc, new_netloc)
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    _copy_private(snap.path / "secrets.json", state_dir / "secrets.json")
    if (snap.path / CLI_VARS_FILE).exists():  # the --var values, for a later terraform plan
        _copy_private(snap.path / CLI_VARS_FILE, state_dir / CLI_VARS_FILE)


def prune(max_mb: float | None = None, max_count: int | None = None, root: Path | None = None,
          remove_all: bool = False) -> list[Snapshot]:
    """Drop the least recently used snapshots beyond the count / size bounds; returns those removed."""
    mb = max_mb if max_mb is not None else settings.number("GAMEDAY_SNAPSHOT_MAX_MB")
    count = max_count if max_count is not None else settings.integer("GAMEDAY_SNAPSHOT_MAX_COUNT")
    kept, removed, total = 0, [], 0
    for snap in list_snapshots(root):
        total += snap.size()
        if remove_all or kept >= count or total > mb * 1024 * 1024:
            shutil.rmtree(snap.path, ignore_errors=True)
            removed.append(snap)
        else:
            kept += 1
    return removed


# -------------------------------------------------------------------- used by the daemon


def find(mode: str, routing_mode: str, var_files: Sequence[str], tf_vars: Sequence[str],
         progress: Callable[[str], None]) -> tuple[str | None, dict[str, Any] | None, Snapshot | None]:
    """(key, key parts, snapshot to restore or None); no key when snapshots are off."""
    from gameday.provision import module_dir

    if mode == "off" or not enabled():
        return None, None, None
    parts = key_parts(module_dir(), routing_mode, var_files, tf_vars)
    key = snapshot_key(parts)
    snap = lookup(key) if mode == "use" else None
    if snap is None:
        progress(f"no snapshot {key} ({'--cold' if mode == 'cold' else 'new key'}): cold terraform apply")
    return key, parts, snap


def save_after_apply(key: str, parts: dict[str, Any], mode: str, state_dir: Path, cp: Any, seconds: float,
                     progress: Callable[[str], None]) -> None:
    """Save right after the apply: the quiet point before the data plane changes the control plane."""
    t = time.monotonic()
    if mode == "cold":
        old = lookup(key)
        if old is not None:
            shutil.rmtree(old.path, ignore_errors=True)
    try:
        saved = save(key, parts, state_dir, cp.url, cp.quiesced, seconds)
    except Exception as exc:  # a snapshot is an optimisation: the sandbox itself is fine
        progress(f"snapshot {key} not saved: {type(exc).__name__}: {str(exc)[:300]}")
        return
    if saved is not None:
        progress(f"snapshot {key} saved in {time.monotonic() - t:.1f} s")
