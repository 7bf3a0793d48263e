"""Numba kernels (array in, array out) for the hand-written RNN; see :mod:`.rnn`."""

from rnnbench.kernels.rnn import fast_tanh, rnn_backward, rnn_forward, tanh_array

__all__ = ["fast_tanh", "rnn_backward", "rnn_forward", "tanh_array"]
