"""Build hook: the wheel carries the folders gameday reads at run time, as ``gameday/_data``.

Everything else is declared in pyproject.toml. setuptools' package-data only takes files inside a
package; these folders live at the repository root (a checkout reads them in place, see
gameday.resources), so build_py copies them into the built package, same layout. An editable
install skips the copy: it reads the checkout.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: gameday.resources.RESOURCES' folders (tests/provision/test_installed_package.py checks they agree).
TREES = ("provision/terraform", "experiments", "scenarios", "loadtests", "gamedays", "monitoring")
#: Local state a checkout may hold in those folders (as their .gitignore files say); never shipped.
SKIP_DIRS = {"__pycache__", ".terraform", ".pytest_cache", ".hypothesis"}
SKIP_NAMES = ("*.pyc", "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl", "*_override.tf")


def shipped_files() -> list[Path]:
    """The files of TREES that belong in a wheel, relative to the repository root."""
    out = []
    for tree in TREES:
        if not (ROOT / tree).is_dir():
            raise SystemExit(f"build: {tree}/ is missing; build from a checkout or from an sdist that carries it")
        for path in sorted((ROOT / tree).rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and not SKIP_DIRS & set(rel.parts) and \
                    not any(fnmatch(path.name, pattern) for pattern in SKIP_NAMES):
                out.append(rel)
    return out


class BuildPyWithResources(build_py):
    """build_py, then the resource folders into ``<build>/gameday/_data``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        data = Path(self.build_lib) / "gameday" / "_data"
        for rel in shipped_files():
            target = data / rel
            self.mkpath(str(target.parent))
            self.copy_file(str(ROOT / rel), str(target))


setup(cmdclass={"build_py": BuildPyWithResources})
