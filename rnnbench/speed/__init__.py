"""The speed benchmark: the schema (schema.py), what is timed (bench.py), the timing procedure
(timing.py), the grids and ratios (grid.py), the environment and the matmul yardstick (env.py),
Numba's start-up (startup.py), the run (run.py) and its files and MLflow runs (export.py)."""
