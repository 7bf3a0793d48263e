"""Sweeps across machines: a grid (or a seeded sample) of training runs as Ray tasks, logged to
one tracking server, resumable; the schema (schema.py), the plan (plan.py), the run (run.py)
and the `rnnbench sweep` command (command.py)."""
