"""Safe drills: the undo log, cleanup on every exit, the kill switch and stop conditions.

A fault is only injected after an entry saying how to undo it is on disk (fsync'd), in the run
folder and in a per-target folder that ``gameday abort`` finds without the harness.
"""
