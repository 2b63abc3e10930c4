"""Auto Scaling activities chaostoolkit-aws lacks: drain a group to 0 and restore its capacity."""
