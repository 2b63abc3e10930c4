"""gameday: chaos and disaster-recovery verification for a two-region AWS system."""

__version__ = "0.1.0"
