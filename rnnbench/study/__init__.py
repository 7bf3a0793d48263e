"""Studies: controlled experiments over ordinary tracked runs; the schema (schema.py) and the
runner with its summary (run.py)."""
