"""Load balancers and the global router of the sandbox, played by real HAProxy processes.

* ``AlbProxy`` is one Application Load Balancer: one HAProxy, one HTTP frontend, one
  round-robin backend whose servers are the registered targets. Targets come and go through
  the runtime API (``add server`` / drain / ``del server``), never by a restart, so in-flight
  requests survive (de)registration like they do on ALB. Health comes from HAProxy's own
  active checks, configured from the target group (interval → ``inter``, timeout →
  ``timeout check``, healthy threshold → ``rise``, unhealthy threshold → ``fall``).
* ``GlobalRouter`` is Global Accelerator: one HAProxy, one frontend per service, the primary
  region's ALB as normal server and the recovery region's ALB as ``backup``. Global Accelerator
  checks an ALB endpoint by Elastic Load Balancing's view of its targets: the router asks each
  ALB's ``ELB_HEALTH_PATH`` (answered by that HAProxy: 503 once no target is healthy), at the
  endpoint group's interval and threshold. In Route 53 mode the checks are Route 53's own HTTP
  checks of the ALB's name, so they go *through* the ALB to one of its targets, as on AWS.
  Traffic dials are runtime weight/state changes.
* ``HAProxyRuntime`` talks to the admin stats socket (a unix socket in the work dir).

Everything binds 127.0.0.1 and every process is started through ``ProcessRegistry``.
"""

from gameday.sandbox.haproxy.alb import ELB_HEALTH_PATH, AlbProxy
from gameday.sandbox.haproxy.base import TARGET_STATES, HAProxyRuntime, HealthCheck, haproxy_binary
from gameday.sandbox.haproxy.router import GlobalRouter, RouterServerState

__all__ = [
    "ELB_HEALTH_PATH", "TARGET_STATES", "AlbProxy", "GlobalRouter", "HAProxyRuntime", "HealthCheck",
    "RouterServerState", "haproxy_binary",
]
