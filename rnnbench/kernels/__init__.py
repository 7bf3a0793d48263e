"""Numba kernels (array in, array out) for the hand-written RNN; see rnnbench.kernels.rnn."""
