"""Fault injection on the data plane: a crashed primary, a cut or slow link, frozen nodes and regions."""

from __future__ import annotations

import signal
import time

from gameday.errors import SandboxError
from gameday.sandbox.pg.links import LinkOps


class FaultOps(LinkOps):
    """Faults as the world inflicts them; recovering from them is the monitor's and failover's job."""

    def crash_primary(self) -> int:
        """SIGKILL the whole process group of the current primary (a host dying); return its pid."""
        node = self.nodes[self._primary]
        if not node.alive() or node.proc is None:
            raise SandboxError(f"primary {node.name} is not running")
        pid = node.proc.pid
        self._crash_at = time.monotonic()
        self._kill_tree(node)
        return pid

    def cut_link(self) -> None:
        """Cut the inter-region link: replication to c and cross-region writer sessions fail."""
        with self._lock:
            self.proxies["link"].cut()
            if not self._replica_promoted:
                self.proxies["writer-recovery"].cut()
            self._link_cut = True
            self._emit("link_cut", link="inter-region", regions=self._regions())

    def heal_link(self) -> None:
        with self._lock:
            self.proxies["link"].heal()
            self.proxies["writer-recovery"].heal()
            self._link_cut = False
            self._emit("link_healed", link="inter-region", regions=self._regions())

    def set_link_delay(self, ms: float) -> None:
        """One-way inter-region latency (replication to c, and the recovery writer while cross-region)."""
        with self._lock:
            self.link_delay_ms = float(ms)
            self.proxies["link"].set_delay(ms)
            if not self._replica_promoted:
                self.proxies["writer-recovery"].set_delay(ms)
            self._emit("link_delay", delay_ms=float(ms))

    def freeze_region(self, region: str) -> None:
        """SIGSTOP every node of region (whole process groups) and freeze its proxies and the link."""
        key = self._region_key(region)
        with self._lock:
            for node in self.nodes.values():
                if node.region == region and node.alive() and not node.frozen:
                    self._signal(node, signal.SIGSTOP)
                    node.frozen = True
            self.proxies[f"writer-{key}"].freeze()
            self.proxies[f"reader-{key}"].freeze()
            if key == "primary":
                self.proxies["az"].freeze()
            self.proxies["link"].freeze()
            self._frozen_regions.add(key)

    def thaw_region(self, region: str) -> None:
        key = self._region_key(region)
        with self._lock:
            for node in self.nodes.values():
                if node.region == region and node.frozen:
                    self._signal(node, signal.SIGCONT)
                    node.frozen = False
            self.proxies[f"writer-{key}"].thaw()
            self.proxies[f"reader-{key}"].thaw()
            if key == "primary":
                self.proxies["az"].thaw()
            self._frozen_regions.discard(key)
            if not self._frozen_regions:
                self.proxies["link"].thaw()

    def freeze_node(self, name: str) -> None:
        """SIGSTOP one node (its process group): a hung instance, for targeted fault tests."""
        with self._lock:
            node = self.nodes[name]
            if node.alive() and not node.frozen:
                self._signal(node, signal.SIGSTOP)
                node.frozen = True

    def thaw_node(self, name: str) -> None:
        with self._lock:
            node = self.nodes[name]
            if node.frozen:
                self._signal(node, signal.SIGCONT)
                node.frozen = False
