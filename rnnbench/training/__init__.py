"""Training: the schema of the train section (schema.py), tensors and losses (encode.py), the
one training step (step.py), the one loop (fit.py) and one tracked run (run.py)."""
