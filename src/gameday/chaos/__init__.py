"""gameday's own Chaos Toolkit activities, in chaostoolkit-aws's style (one module per target).

``discover`` / ``load_exported_activities`` follow chaosaws so ``chaos discover`` can list them;
chaoslib looks ``discover`` up on the distribution's top-level package (``gameday``).
"""

from __future__ import annotations

from pathlib import Path

from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result
from chaoslib.types import DiscoveredActivities, Discovery

__all__ = ["ACTIVITY_MODULES", "discover", "load_exported_activities"]

def _activity_modules() -> tuple[tuple[str, str], ...]:
    """Every ``<target>/actions.py`` and ``<target>/probes.py`` under this package, found on disk.

    Found rather than listed, so a new target package cannot be forgotten by ``chaos discover``.
    """
    root = Path(__file__).parent
    found: list[tuple[str, str]] = []
    for pkg in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file()):
        for stem, kind in (("actions", "action"), ("probes", "probe")):
            if (pkg / f"{stem}.py").is_file():
                found.append((f"{__name__}.{pkg.name}.{stem}", kind))
    return tuple(found)


ACTIVITY_MODULES: tuple[tuple[str, str], ...] = _activity_modules()


def discover(discover_system: bool = True) -> Discovery:
    """Discovery payload listing every gameday activity (no system discovery: targets come from config)."""
    from gameday import __version__

    discovery: Discovery = initialize_discovery_result("gameday", __version__, "gameday")
    discovery["activities"].extend(load_exported_activities())
    return discovery


def load_exported_activities() -> list[DiscoveredActivities]:
    """Metadata (name, module, doc, arguments) of every exported action and probe."""
    activities: list[DiscoveredActivities] = []
    for mod, kind in ACTIVITY_MODULES:
        activities.extend(discover_actions(mod) if kind == "action" else discover_probes(mod))
    return activities
