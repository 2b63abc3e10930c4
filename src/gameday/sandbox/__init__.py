"""The local two-region sandbox: control plane state turned into a real data plane."""
