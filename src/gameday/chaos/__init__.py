"""gameday's own Chaos Toolkit activities, in chaostoolkit-aws's style (one module per target).

``discover`` / ``load_exported_activities`` follow chaosaws so ``chaos discover`` can list them;
chaoslib looks ``discover`` up on the distribution's top-level package (``gameday``).
"""

from __future__ import annotations

from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result
from chaoslib.types import DiscoveredActivities, Discovery

__all__ = ["ACTIVITY_MODULES", "discover", "load_exported_activities"]

ACTIVITY_MODULES: tuple[tuple[str, str], ...] = (
    ("gameday.chaos.globalaccelerator.actions", "action"),
    ("gameday.chaos.globalaccelerator.probes", "probe"),
    ("gameday.chaos.region.actions", "action"),
    ("gameday.chaos.region.probes", "probe"),
    ("gameday.chaos.database.actions", "action"),
    ("gameday.chaos.database.probes", "probe"),
    ("gameday.chaos.http.actions", "action"),
    ("gameday.chaos.http.probes", "probe"),
    ("gameday.chaos.autoscaling.actions", "action"),
    ("gameday.chaos.sandbox.actions", "action"),
)


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
