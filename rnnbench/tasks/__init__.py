"""Tasks: the contract (base.py), the registry (registry.py), one module per task, and their
data on disk (data.py)."""
