"""gameday installed from its wheel, away from any checkout, finds everything it reads at run time.

The wheel is built the way a user's ``python -m build`` does it (sdist, then a wheel from the sdist,
so MANIFEST.in is exercised too), in a copy of the checkout so the checkout gets no build
litter, offline (``--no-build-isolation``: the venv carries the backend). It is installed with
``pip install --target`` and imported from there, with the working directory outside the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gameday import resources
from gameday.drill.derive import terraform_variables_path
from gameday.drill.runner import experiments_dir
from gameday.errors import GamedayError, ResourceMissing
from gameday.load.runner import default_locustfile
from gameday.provision import module_dir

REPO = Path(__file__).resolve().parents[2]
# local state and tools that a build never needs (and that are large)
_NOT_BUILT = shutil.ignore_patterns(".git", ".venv*", "node_modules", "reports", "build", "dist", "*.egg-info",
                                    "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                                    ".gameday", ".terraform")


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"{' '.join(argv)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding gameday installed from a freshly built wheel (its dependencies: the venv's)."""
    base = tmp_path_factory.mktemp("installed")
    src = base / "checkout-copy"
    shutil.copytree(REPO, src, ignore=_NOT_BUILT)
    dist = base / "dist"
    dist.mkdir()
    _run([sys.executable, "-c", "import sys, setuptools.build_meta as b; b.build_sdist(sys.argv[1])", str(dist)],
         cwd=src)
    (sdist,) = dist.glob("gameday-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(dist), str(sdist)], cwd=base)
    (wheel,) = dist.glob("gameday-*.whl")
    target = base / "site"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
          str(wheel)], cwd=base)
    return target


def _installed_env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEDAY_")}
    env["PYTHONPATH"] = str(site)
    return env


def _outside(site: Path) -> Path:
    away = site.parent / "elsewhere"
    away.mkdir(exist_ok=True)
    return away


PROBE = textwrap.dedent("""
    import json, gameday
    from gameday import resources
    from gameday.drill.derive import terraform_variables_path
    from gameday.drill.runner import experiments_dir
    from gameday.load.runner import default_locustfile
    from gameday.provision import module_dir
    print(json.dumps({
        "package": gameday.__file__,
        "checkout": None if resources.checkout_root() is None else str(resources.checkout_root()),
        "terraform": str(module_dir()),
        "variables": str(terraform_variables_path()),
        "experiments": str(experiments_dir()),
        "scenarios": str(resources.scenarios_dir()),
        "locustfile": str(default_locustfile()),
        "gamedays": str(resources.gamedays_dir()),
    }))
""")


def test_the_installed_wheel_finds_every_resource_inside_itself(site: Path) -> None:
    out = _run([sys.executable, "-c", PROBE], cwd=_outside(site), env=_installed_env(site))
    found = {k: (Path(v) if v else None) for k, v in json.loads(out.stdout).items()}
    package = site / "gameday"
    assert found["package"] == package / "__init__.py"  # the installed copy, not the checkout
    assert found["checkout"] is None
    for key, path in found.items():
        if key not in ("package", "checkout"):
            assert path is not None and path.is_relative_to(package / resources.DATA_DIR), (key, path)
    assert found["terraform"] is not None and (found["terraform"] / "main.tf").is_file()
    assert found["variables"] is not None and found["variables"].is_file()
    assert found["experiments"] is not None and (found["experiments"] / "region-outage.json").is_file()
    assert found["scenarios"] is not None and (found["scenarios"] / "instance-termination.yaml").is_file()
    assert found["locustfile"] is not None and found["locustfile"].is_file()
    assert found["gamedays"] is not None and (found["gamedays"] / "weekly.yaml").is_file()
    # the wheel carries the checkout's trees whole (every tracked file), and none of a checkout's local state
    tracked = _run(["git", "ls-files", "--", *resources.RESOURCES.values()], cwd=REPO).stdout.split()
    data = package / resources.DATA_DIR
    shipped = {str(p.relative_to(data)) for p in data.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}  # pip compiles what it installs
    assert tracked and set(tracked) <= shipped, sorted(set(tracked) - shipped)
    assert not [s for s in shipped if s.endswith((".tfstate", ".pyc", ".terraform.lock.hcl"))]


def test_the_installed_cli_validates_the_installed_scenarios(site: Path) -> None:
    scenarios = sorted(str(p) for p in (site / "gameday" / resources.DATA_DIR / "scenarios").glob("*.yaml"))
    assert len(scenarios) >= 7
    out = _run([sys.executable, "-m", "gameday", "scenario", "validate", *scenarios], cwd=_outside(site),
               env=_installed_env(site))
    assert out.stdout.count("\n") >= len(scenarios), out.stdout


def test_an_installed_package_missing_a_resource_says_which_and_how_to_fix(site: Path) -> None:
    broken = site.parent / "broken-site"
    if not broken.exists():
        shutil.copytree(site, broken)
        shutil.rmtree(broken / "gameday" / resources.DATA_DIR / "provision" / "terraform")
    probe = ("from gameday.errors import ResourceMissing\nfrom gameday.provision import module_dir\n"
             "try:\n    module_dir()\nexcept ResourceMissing as exc:\n    print(exc)\n    raise SystemExit(7)\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=_outside(site), env=_installed_env(broken),
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 7, out.stdout + out.stderr
    assert "provision/terraform/ folder not found at" in out.stdout
    assert str(broken / "gameday" / resources.DATA_DIR / "provision" / "terraform") in out.stdout
    assert "fix: reinstall gameday" in out.stdout
    assert issubclass(ResourceMissing, GamedayError)  # the CLI's one-line error, no traceback


# --- a checkout ------------------------------------------------------------------------------


def test_a_checkout_reads_its_own_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GAMEDAY_TF_MODULE", "GAMEDAY_EXPERIMENTS_DIR", "GAMEDAY_LOCUSTFILE"):
        monkeypatch.delenv(var, raising=False)
    assert resources.checkout_root() == REPO
    assert resources.data_root() == REPO
    assert module_dir() == REPO / "provision" / "terraform"
    assert terraform_variables_path() == REPO / "provision" / "terraform" / "variables.tf"
    assert experiments_dir() == REPO / "experiments"
    assert resources.scenarios_dir() == REPO / "scenarios"
    assert default_locustfile() == REPO / "loadtests" / "locustfile.py"
    assert resources.gamedays_dir() == REPO / "gamedays"


def test_the_overrides_still_win_in_a_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAMEDAY_TF_MODULE", str(tmp_path / "tf"))
    monkeypatch.setenv("GAMEDAY_EXPERIMENTS_DIR", str(tmp_path / "exp"))
    monkeypatch.setenv("GAMEDAY_LOCUSTFILE", str(tmp_path / "l.py"))
    assert module_dir() == tmp_path / "tf"
    assert experiments_dir() == tmp_path / "exp"
    assert default_locustfile() == tmp_path / "l.py"


def test_the_build_ships_exactly_the_folders_resources_knows() -> None:
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    trees = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                 if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TREES" for t in node.targets))
    assert set(trees) == set(resources.RESOURCES.values())
    manifest = (REPO / "MANIFEST.in").read_text(encoding="utf-8")
    assert set(re.findall(r"^graft (\S+)$", manifest, re.MULTILINE)) == set(resources.RESOURCES.values())


def test_no_module_finds_the_repository_by_counting_parent_folders() -> None:
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in sorted((REPO / "src" / "gameday").rglob("*.py"))
                 if p != REPO / "src" / "gameday" / "resources.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "parents[" in line]
    assert offenders == [], "locate shipped files with gameday.resources, not Path(__file__).parents[N]"
