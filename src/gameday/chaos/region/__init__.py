"""Region-scale faults through AWS FIS: a whole region dark, or its inter-region link cut."""
