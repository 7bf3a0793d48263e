"""rnnbench: a reproducible benchmark of recurrent neural networks.

Tasks and models register by name (rnnbench.tasks, rnnbench.models.families); every run goes
through the one training step and loop (rnnbench.training) and is recorded by
rnnbench.tracking. The README's "How it is organised" maps the rest.
"""

__version__ = "0.1.0"
