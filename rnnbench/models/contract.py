"""The one contract every built model honours; the training loop, the probes and the speed
benchmark use only this (and the registry's facts), never a family's name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch


@runtime_checkable
class SequenceModel(Protocol):
    """A torch module mapping a batch of encoded inputs to predictions for the task's loss.

    takes_targets: forward(x, y) while training (encoder-decoders feed the true previous token:
        teacher forcing); otherwise forward(x).
    stateful: each call starts from the state the previous call left (truncated BPTT over
        chunks of a stream) until reset_state().
    precompile(): compile any JIT kernels (or load them from their cache) before timed work;
        returns the seconds it took (0 for models with none).
    """

    takes_targets: bool
    stateful: bool

    def __call__(self, x: torch.Tensor, *args) -> torch.Tensor: ...

    def reset_state(self) -> None: ...

    def precompile(self) -> float: ...
