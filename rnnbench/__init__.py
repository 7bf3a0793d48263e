"""rnnbench: a reproducible benchmark of recurrent neural networks.

Tasks and models register by name (rnnbench.tasks, rnnbench.models); every run goes through the
one training loop (rnnbench.train.fit) and is recorded by rnnbench.tracking.
"""

__version__ = "0.1.0"
