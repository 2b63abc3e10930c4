"""Local AWS control plane: moto server + Global Accelerator emulation + call hooks."""

from gameday.controlplane.hooks import ApiCall, Hooks
from gameday.controlplane.server import ControlPlane

__all__ = ["ApiCall", "ControlPlane", "Hooks"]
