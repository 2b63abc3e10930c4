"""Timing profiles: what AWS does on its own, in real time (``aws``) or scaled down (``fast``).

``aws`` is the Terraform's own settings (health-check intervals, thresholds and timeouts,
deregistration delay, the Auto Scaling group's grace period, Route 53 TTLs: read from the
control plane, never from here) plus AWS's documented service-side figures below, each with
its source. ``fast`` multiplies every duration by one factor, so the *shape* of each failure
and recovery is kept while a whole drill takes seconds. Where AWS gives a range, the profile
takes its top (the pessimistic reading); where AWS gives no figure the field says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from gameday.errors import ConfigError


@dataclass(frozen=True)
class TimingProfile:
    """Durations (seconds, before scaling) of what AWS does on its own, plus the scale."""

    name: str
    scale: float
    # RDS Multi-AZ (instance) failover: "Failovers, as defined by the interval between the detection
    # of the failure on the primary and the resumption of transactions on the standby, typically
    # complete within one to two minutes" (aws.amazon.com/rds/faqs/): the top, 120 s
    db_failover_s: float = 120.0
    # how long RDS takes to notice a dead primary: AWS gives no figure ("fails to respond to RDS
    # health checks", repost.aws/knowledge-center/rds-multi-az-failover-restart); 30 s assumed
    db_crash_detect_s: float = 30.0
    # RDS Single-AZ recovery of a crashed instance (restart, or host replacement re-attaching its
    # storage), after detection. AWS gives no figure ("Recovery time will vary with the amount of
    # data to be recovered", RDS event RDS-EVENT-0020,
    # https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html); pessimistic
    # reading: 30 min, the top of the 10-30 min commonly reported for Single-AZ host recovery
    db_single_az_recovery_s: float = 1800.0
    # not AWS's: the reference service's own setting, how long its deep health check tolerates a
    # database that does not answer. It outlasts detection + the longest Multi-AZ failover (150 s)
    # by a factor of two, so a failover does not make the ALB (and an ELB-checked Auto Scaling
    # group) take every instance out; a longer outage (Single-AZ recovery) does, as on AWS.
    db_health_grace_s: float = 300.0
    # floors of scaled health-check settings: a scaled interval never below 0.1 s, a scaled timeout
    # never below 1 s (a loaded 2-core machine answering in 200 ms is not an outage). Both floors
    # only ever make detection slower than the scaled figure, never faster.
    min_interval_s: float = 0.1
    min_timeout_s: float = 1.0

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
    "fast": TimingProfile("fast", 0.02),
}


def get_profile(name: str) -> TimingProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown timing profile {name!r}", field="timing",
                          hint=f"use one of: {', '.join(sorted(PROFILES))}") from None
