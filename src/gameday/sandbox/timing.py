"""Timing profiles: AWS's documented defaults, or the same behaviour scaled down.

``aws`` keeps real-world durations (a drill takes minutes); ``fast`` multiplies every
duration by one factor so the *shape* of each failure and recovery is kept while a
whole drill takes seconds. Health-check settings come from the Terraform target groups
and accelerators and are scaled by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from gameday.errors import ConfigError


@dataclass(frozen=True)
class TimingProfile:
    """Durations (seconds, before scaling) of what AWS does on its own, plus the scale."""

    name: str
    scale: float
    db_failover_s: float = 60.0        # RDS Multi-AZ failover: 60-120 s documented
    db_crash_detect_s: float = 30.0    # how long RDS takes to notice a dead primary
    # RDS Single-AZ recovery of a crashed instance (restart, or host replacement re-attaching its
    # storage), after detection. AWS gives no figure ("Recovery time will vary with the amount of
    # data to be recovered", RDS event RDS-EVENT-0020,
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html); pessimistic
    # reading: 30 min, the top of the 10-30 min commonly reported for Single-AZ host recovery
    db_single_az_recovery_s: float = 1800.0
    asg_replace_s: float = 60.0        # unhealthy instance noticed and a replacement launched
    db_health_grace_s: float = 150.0   # deep health checks ride out a Multi-AZ failover (60-120 s)
    instance_boot_s: float = 60.0      # launch + boot + user data before the service process starts
    min_interval_s: float = 0.1        # floor of any scaled health-check interval
    min_timeout_s: float = 1.0         # floor of any scaled health-check timeout

    def s(self, seconds: float) -> float:
        """Scale a real-world duration to this profile."""
        return seconds * self.scale

    def interval(self, seconds: float) -> float:
        return max(self.min_interval_s, seconds * self.scale)

    def timeout(self, seconds: float) -> float:
        """Health-check timeouts keep a floor: a loaded 2-core machine must not look like an outage."""
        return max(self.min_timeout_s, seconds * self.scale)


PROFILES = {
    "aws": TimingProfile("aws", 1.0),
    "fast": TimingProfile("fast", 0.02, db_failover_s=60.0, db_crash_detect_s=20.0, asg_replace_s=60.0),
}


def get_profile(name: str) -> TimingProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown timing profile {name!r}", field="timing",
                          hint=f"use one of: {', '.join(sorted(PROFILES))}") from None
