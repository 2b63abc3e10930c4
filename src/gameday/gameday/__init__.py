"""Scheduled game days: a plan of drills, run with the drill engine, kept in a history, compared over time."""
