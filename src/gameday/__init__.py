"""gameday: chaos and disaster-recovery verification for a two-region AWS system."""

__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict[str, object]:
    """Chaos Toolkit extension discovery: ``chaos discover gameday`` lists our activities."""
    from gameday.chaos import discover as _discover

    return _discover(discover_system)
