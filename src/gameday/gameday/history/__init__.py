"""Game-day history: every run, scenario, SLO verdict and measurement, in SQLite or PostgreSQL."""
