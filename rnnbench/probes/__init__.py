"""Gradient-through-time probes: the schema (schema.py), dL/dh_t and its derived figures inside
a training run (gradients.py), and the cell-by-cell recomputation with the cell-level theory
they rest on (unrolled.py)."""
