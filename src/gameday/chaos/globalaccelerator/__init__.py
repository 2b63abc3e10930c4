"""Global Accelerator activities: traffic dials and endpoint health (API in us-west-2)."""
